/**
 * A machine's BMC on the record through the admin API: the write-only password sealed under the
 * server's key (never answered, never logged, never in the database in the clear), the address
 * checked, the password kept only while the address stays, the status and run shown under `bmc`,
 * PATCH and GET → PUT round trips. First over the Fastify app (inject), then the real server with
 * curl: the key file, the SQLite bytes, a restart, auth.secretKeyFile and the log.
 */
import { execFile } from 'node:child_process';
import { chmodSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { LightMyRequestResponse } from 'fastify';
import t, { type Test } from 'tap';
import type { BmcRun, BmcStatus } from '../../src/machines/bmc.js';
import type { Mac } from '../../src/machines/mac.js';
import type { Machine } from '../../src/machines/model.js';
import { loadSecretKey, SealedBox } from '../../src/secrets/sealed-box.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import { testApp, type ErrorBody, type TestApp } from '../helpers/app.js';
import { startServer, tempDir, type ServerProcess } from '../helpers/process.js';

const MAC = '52:54:00:b0:00:01' as Mac;
const PASSWORD = 'Pa55-calvin-0123456789';
const OTHER_PASSWORD = 'second-Pa55-9876543210';
/** Ports nothing listens on: the BMC service's background reads fail at once. */
const ADDRESS = 'redfish+http://127.0.0.1:9';
const OTHER_ADDRESS = 'redfish+http://127.0.0.2:9';
const BMC = { address: ADDRESS, username: 'root', password: PASSWORD };

interface BmcAnswer {
  address: string;
  username: string;
  passwordSet: boolean;
  systemId?: string;
  verifyTls: boolean;
  bootMode: string;
  reachable?: boolean;
  powerState?: string;
  run?: BmcRun;
  [field: string]: unknown;
}
type MachineAnswer = Omit<Machine, 'bmc'> & { bmc?: BmcAnswer };

const url = (mac: string) => `/api/v1/machines/${mac}`;
const send = (ta: TestApp, method: 'PUT' | 'PATCH', body: unknown): Promise<LightMyRequestResponse> =>
  ta.app.inject({ method, url: url(MAC), headers: { ...ta.auth, 'content-type': 'application/json' }, payload: JSON.stringify(body) });
const get = (ta: TestApp, path = url(MAC)) => ta.app.inject({ method: 'GET', url: path, headers: ta.auth });
async function stored(ta: TestApp): Promise<Machine> {
  const m = await ta.store.getMachine(MAC);
  if (!m) throw new Error(`no record of ${MAC}`);
  return m;
}
const boxOf = (ta: TestApp) => new SealedBox(loadSecretKey(join(ta.dir, 'secret.key')));

/** What every answer promises: the BMC without its password in any form, nothing of the record's raw BMC fields. */
function noSecrets(t: Test, body: string, what: string): void {
  t.notOk(body.includes(PASSWORD) || body.includes(OTHER_PASSWORD), `${what}: no password`);
  t.notOk(body.includes('passwordSealed') || /"v1\.[A-Za-z0-9_-]+\./.test(body), `${what}: no sealed password`);
  t.notMatch(body, /"password"|"bmcStatus"|"bmcRun"/, `${what}: no password, bmcStatus or bmcRun field`);
}

function answer(t: Test, res: LightMyRequestResponse, status: number, what: string): MachineAnswer {
  t.equal(res.statusCode, status, `${what}: ${status} (${res.body})`);
  noSecrets(t, res.body, what);
  return res.json<MachineAnswer>();
}

function refused(t: Test, res: LightMyRequestResponse, code: string, message: RegExp, what: string): void {
  t.equal(res.statusCode, 400, `${what}: 400 (${res.body})`);
  const b = res.json<ErrorBody>();
  t.equal(b.error, code, `${what}: ${code}`);
  t.match(b.message, message, `${what}: says why`);
  noSecrets(t, res.body, what);
}

/** The BMC service (when wired) reads a new BMC in the background; wait for that to land before writing a status of our own. */
async function settled(ta: TestApp): Promise<void> {
  for (let i = 0; i < 40 && (await stored(ta)).bmcStatus === undefined; i++) await new Promise((r) => setTimeout(r, 25));
}

async function putStatus(ta: TestApp, status: BmcStatus, run?: BmcRun): Promise<void> {
  await settled(ta);
  await ta.store.mutateMachine(MAC, (cur) => (cur ? { kind: 'save', machine: { ...cur, bmcStatus: status, ...(run && { bmcRun: run }) } } : { kind: 'keep' }));
}

const STATUS: BmcStatus = {
  reachable: true,
  powerState: 'On',
  checkedAt: '2026-12-07T06:00:00.000Z',
  vendor: 'dell',
  manufacturer: 'Dell Inc.',
  model: 'PowerEdge R650',
  serial: 'SN123',
  uuid: '4c4c4544-0000-1000-8000-000000000001',
  macs: ['52:54:00:b0:00:01'],
};
const RUN: BmcRun = { phase: 'powered', attempts: 1, startedAt: '2026-12-07T06:00:01.000Z', deadlineAt: '2026-12-07T06:10:01.000Z' };

t.test('PUT with a bmc: 201, passwordSet, the password sealed on the record under <dataDir>/secret.key (0600)', async (t) => {
  const ta = await testApp(t);
  const m = answer(t, await send(ta, 'PUT', { profile: 'local-disk', bmc: { ...BMC, systemId: 'System.Embedded.1' } }), 201, 'PUT');
  t.same(m.bmc, { address: ADDRESS, username: 'root', passwordSet: true, systemId: 'System.Embedded.1', verifyTls: true, bootMode: 'auto' });
  t.equal(statSync(join(ta.dir, 'secret.key')).mode & 0o777, 0o600, 'the key file is 0600');
  const record = await stored(ta);
  t.match(record.bmc?.passwordSealed, /^v1\./, 'sealed on the record');
  t.equal(boxOf(ta).open(record.bmc?.passwordSealed ?? ''), PASSWORD, 'and opens with the key in the data dir');
  const one = answer(t, await get(ta), 200, 'GET');
  t.same(one.bmc, m.bmc, 'GET shows the same');
  const list = await get(ta, '/api/v1/machines');
  noSecrets(t, list.body, 'list');
  t.same(list.json<{ machines: MachineAnswer[] }>().machines[0]?.bmc, m.bmc, 'the list too');

  const other = { address: OTHER_ADDRESS, username: 'u', verifyTls: false, bootMode: 'legacy' };
  refused(t, await send(ta, 'PUT', { bmc: other }), 'bmc_password_required', /give bmc\.password again/, 'a replace at another address without the password');
  answer(t, await send(ta, 'PATCH', { bmc: null }), 200, 'the BMC removed');
  const noPassword = answer(t, await send(ta, 'PUT', { profile: 'local-disk', bmc: other }), 200, 'a replace');
  t.same(noPassword.bmc, { address: OTHER_ADDRESS, username: 'u', passwordSet: false, verifyTls: false, bootMode: 'legacy' }, 'a BMC without a password');
});

t.test('PATCH: other fields keep the password; a new address needs it again; null removes the BMC', async (t) => {
  const ta = await testApp(t);
  answer(t, await send(ta, 'PUT', { profile: 'local-disk', bmc: BMC }), 201, 'PUT');
  const sealed = (await stored(ta)).bmc?.passwordSealed;
  let m = answer(t, await send(ta, 'PATCH', { labels: { rack: 'r1' } }), 200, 'PATCH labels');
  t.equal(m.bmc?.passwordSet, true);
  t.equal((await stored(ta)).bmc?.passwordSealed, sealed, 'the same sealed password');
  m = answer(t, await send(ta, 'PATCH', { bmc: { username: 'admin', bootMode: 'uefi' } }), 200, 'PATCH bmc.username');
  t.same([m.bmc?.username, m.bmc?.bootMode, m.bmc?.passwordSet], ['admin', 'uefi', true]);
  t.equal((await stored(ta)).bmc?.passwordSealed, sealed, 'kept while the address stays');

  refused(
    t,
    await send(ta, 'PATCH', { bmc: { address: OTHER_ADDRESS } }),
    'bmc_password_required',
    /bmc\.address changed .* give bmc\.password again/,
    'new address',
  );
  t.equal((await stored(ta)).bmc?.address, ADDRESS, 'nothing saved');
  answer(t, await send(ta, 'PATCH', { bmc: { address: OTHER_ADDRESS, password: OTHER_PASSWORD } }), 200, 'new address with a password');
  t.equal(boxOf(ta).open((await stored(ta)).bmc?.passwordSealed ?? ''), OTHER_PASSWORD, 'the new password sealed');
  refused(
    t,
    await send(ta, 'PUT', { profile: 'local-disk', bmc: { address: ADDRESS, username: 'root' } }),
    'bmc_password_required',
    /give bmc\.password/,
    'PUT',
  );

  await putStatus(ta, STATUS, RUN);
  m = answer(t, await send(ta, 'PATCH', { bmc: null }), 200, 'PATCH bmc null');
  t.equal(m.bmc, undefined, 'no bmc in the answer');
  const record = await stored(ta);
  t.same([record.bmc, record.bmcStatus, record.bmcRun], [undefined, undefined, undefined], 'the BMC, its status and run gone from the record');
});

t.test('what was seen of the BMC and its run are shown under bmc, only the public fields', async (t) => {
  const ta = await testApp(t);
  answer(t, await send(ta, 'PUT', { profile: 'local-disk', bmc: BMC }), 201, 'PUT');
  // A stray field on the stored status must not reach an answer: the response schema lists the public ones.
  const withStray: BmcStatus & Record<string, unknown> = { ...STATUS, lastError: 'timed out', sessionToken: 'x-auth-token-secret' };
  await putStatus(ta, withStray, RUN);
  const m = answer(t, await get(ta), 200, 'GET');
  t.same(m.bmc, { address: ADDRESS, username: 'root', passwordSet: true, verifyTls: true, bootMode: 'auto', ...STATUS, lastError: 'timed out', run: RUN });
  t.notMatch((await get(ta)).body, /sessionToken|x-auth-token-secret/, 'an unknown status field is dropped');

  let after = answer(t, await send(ta, 'PATCH', { hostname: 'n1' }), 200, 'PATCH at the same address');
  t.same([after.bmc?.powerState, after.bmc?.run], ['On', RUN], 'status and run kept');
  after = answer(t, await send(ta, 'PATCH', { bmc: { address: OTHER_ADDRESS, password: PASSWORD } }), 200, 'PATCH to another address');
  t.same([after.bmc?.reachable, after.bmc?.powerState, after.bmc?.run], [undefined, undefined, undefined], 'what was seen of the old BMC dropped');
  t.equal((await stored(ta)).bmcRun, undefined, 'the run too');
});

t.test('GET → edit → PUT round-trips, with or without the password given again', async (t) => {
  const ta = await testApp(t);
  answer(t, await send(ta, 'PUT', { profile: 'local-disk', labels: { a: 'b' }, bmc: BMC }), 201, 'PUT');
  await putStatus(ta, STATUS, RUN);
  const sealed = (await stored(ta)).bmc?.passwordSealed;
  const doc = answer(t, await get(ta), 200, 'GET');
  let m = answer(t, await send(ta, 'PUT', { ...doc, hostname: 'edited' }), 200, 'the answer PUT back');
  t.same([m.hostname, m.bmc?.passwordSet, m.bmc?.powerState], ['edited', true, 'On'], 'saved, password and status kept');
  t.equal((await stored(ta)).bmc?.passwordSealed, sealed, 'the same sealed password');
  m = answer(t, await send(ta, 'PUT', { ...doc, bmc: { ...doc.bmc, password: OTHER_PASSWORD } }), 200, 'with a new password');
  t.equal(boxOf(ta).open((await stored(ta)).bmc?.passwordSealed ?? ''), OTHER_PASSWORD);
  const reread = await send(ta, 'PATCH', {});
  t.same(answer(t, reread, 200, 'an empty PATCH').bmc, m.bmc, 'an empty merge patch changes nothing');
});

t.test('bad BMC input is refused with a reason, the password never echoed', async (t) => {
  const ta = await testApp(t);
  const cases: [string, Record<string, unknown>, string, RegExp][] = [
    ['https scheme', { address: 'https://10.0.0.5' }, 'invalid_bmc_address', /bmc\.address: .*did you mean redfish:\/\//],
    ['user info in the address', { address: 'redfish://root:secret@10.0.0.5' }, 'invalid_bmc_address', /user name or password in it/],
    ['no scheme', { address: '10.0.0.5' }, 'invalid_bmc_address', /no scheme/],
    ['a path that is no system', { address: 'redfish://10.0.0.5/redfish/v1/Managers/1' }, 'invalid_bmc_address', /is not a system/],
    ['path and systemId disagree', { address: 'redfish://10.0.0.5/redfish/v1/Systems/1', systemId: '2' }, 'invalid_bmc_address', /give one of them/],
    ['white space', { address: 'redfish://10.0.0.5 x' }, 'invalid_request', /address/],
    ['a long address', { address: `redfish://${'a'.repeat(2050)}` }, 'invalid_request', /address/],
    ['an empty user', { username: '' }, 'invalid_request', /username/],
    ['a control character in the user', { username: 'ro\not' }, 'invalid_request', /username/],
    ['an empty password', { password: '' }, 'invalid_request', /password/],
    ['a systemId that climbs', { systemId: '..' }, 'invalid_request', /systemId/],
    ['a boot mode', { bootMode: 'bios' }, 'invalid_request', /bootMode/],
  ];
  for (const [what, change, code, message] of cases) {
    refused(t, await send(ta, 'PUT', { profile: 'local-disk', bmc: { ...BMC, ...change } }), code, message, what);
  }
  const outside = await send(ta, 'PUT', { bmc: { ...BMC, passwordSealed: 'v1.AAAA.BBBB.CCCC' } });
  t.equal(outside.statusCode, 400, 'a sealed password from outside is refused');
  t.equal(outside.json<ErrorBody>().error, 'invalid_request');
  t.equal(await ta.store.getMachine(MAC), undefined, 'nothing saved');
  const alias = answer(
    t,
    await send(ta, 'PUT', { bmc: { ...BMC, address: 'idrac-redfish://[fd00::5]:8443/redfish/v1/Systems/System.Embedded.1' } }),
    201,
    'an alias',
  );
  t.equal(alias.bmc?.address, 'idrac-redfish://[fd00::5]:8443/redfish/v1/Systems/System.Embedded.1', 'kept as written');
});

/** Every file of the SQLite database (the main file, its WAL and shared memory), concatenated. */
function databaseBytes(dataDir: string): Buffer {
  return Buffer.concat(
    readdirSync(dataDir)
      .filter((f) => f.startsWith('edgeboot.db'))
      .map((f) => readFileSync(join(dataDir, f))),
  );
}

const run = promisify(execFile);
async function curlJson(srv: ServerProcess, method: string, path: string, body?: unknown): Promise<{ status: number; body: string }> {
  const args = ['-sS', '--max-time', '10', '-X', method, '-H', `Authorization: Bearer ${srv.token}`, '-w', '\n%{http_code}'];
  if (body !== undefined) args.push('-H', 'content-type: application/json', '--data-binary', JSON.stringify(body));
  const { stdout } = await run('curl', [...args, `${srv.url}${path}`], { timeout: 15_000 });
  const at = stdout.lastIndexOf('\n');
  return { status: Number(stdout.slice(at + 1)), body: stdout.slice(0, at) };
}

function logText(srv: ServerProcess): string {
  return [...srv.logLines.map((l) => JSON.stringify(l)), ...srv.otherStdout, srv.stderr()].join('\n');
}

t.test('the real server with curl: key file, database bytes, a restart, the log', async (t) => {
  const dataDir = tempDir(t);
  let srv = await startServer(t, { dataDir, logLevel: 'trace' });
  const put = await curlJson(srv, 'PUT', url(MAC), { profile: 'local-disk', bmc: BMC });
  t.equal(put.status, 201, `PUT with curl (${put.body})`);
  noSecrets(t, put.body, 'curl PUT');
  const keyFile = join(dataDir, 'secret.key');
  t.equal(statSync(keyFile).mode & 0o777, 0o600, '<dataDir>/secret.key made 0600');
  t.match(readFileSync(keyFile, 'utf8'), /^[0-9a-f]{64}\n$/);
  const got = await curlJson(srv, 'GET', url(MAC));
  noSecrets(t, got.body, 'curl GET');
  await srv.stop();
  const logged = logText(srv);

  const store = openSqliteStore({ path: join(dataDir, 'edgeboot.db') });
  const sealed = (await store.getMachine(MAC))?.bmc?.passwordSealed ?? '';
  await store.close();
  const bytes = databaseBytes(dataDir);
  t.notOk(bytes.includes(PASSWORD), 'the database files do not hold the password');
  t.ok(sealed !== '' && bytes.includes(sealed), 'they hold the sealed form');

  t.notOk(
    srv.logLines.some((l) => l.msg.includes('chmod 600')),
    'a 0600 key: no warning',
  );
  chmodSync(keyFile, 0o640);
  srv = await startServer(t, { dataDir, logLevel: 'trace' });
  const warning = srv.logLines.find((l) => l.msg.includes(keyFile));
  t.match(warning?.msg, /readable by others than its owner \(mode 0640\); chmod 600 it/, 'a key others can read: a warning at start');
  t.equal(warning?.level, 40, 'at warn');
  const again = await curlJson(srv, 'GET', url(MAC));
  t.equal((JSON.parse(again.body) as MachineAnswer).bmc?.passwordSet, true, 'after a restart the BMC is still there');
  t.equal(new SealedBox(loadSecretKey(keyFile)).open(sealed), PASSWORD, 'and its password opens with the same key');
  const patched = await curlJson(srv, 'PATCH', url(MAC), { labels: { after: 'restart' } });
  t.equal(patched.status, 200, `PATCH after the restart (${patched.body})`);
  await srv.stop();
  for (const text of [logged, logText(srv)]) {
    t.notOk(text.includes(PASSWORD), 'the log holds no password');
    t.notOk(text.includes(sealed), 'nor the sealed one');
  }
});

t.test('auth.secretKeyFile: the key is made and read there instead', async (t) => {
  const dataDir = tempDir(t);
  const keyFile = join(tempDir(t), 'keys', 'edgeboot.key');
  const srv = await startServer(t, { dataDir, env: { EDGEBOOT_AUTH_SECRET_KEY_FILE: keyFile } });
  const put = await curlJson(srv, 'PUT', url(MAC), { bmc: BMC });
  t.equal(put.status, 201, `PUT (${put.body})`);
  await srv.stop();
  t.equal(statSync(keyFile).mode & 0o777, 0o600, 'made 0600 where configured, its folder made');
  t.notOk(readdirSync(dataDir).includes('secret.key'), 'none in the data dir');
  const store = openSqliteStore({ path: join(dataDir, 'edgeboot.db') });
  t.teardown(() => store.close());
  t.equal(new SealedBox(loadSecretKey(keyFile)).open((await store.getMachine(MAC))?.bmc?.passwordSealed ?? ''), PASSWORD);
});
