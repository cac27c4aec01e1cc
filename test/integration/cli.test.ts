/**
 * The real CLI (`node dist/main.js …`) against a real `edgeboot serve` on loopback: the
 * machines commands with the three ways of naming server and token (flags, EDGEBOOT_URL /
 * EDGEBOOT_TOKEN, ./var/admin-token), their output, their exit codes and error messages;
 * `config check`; `--help`; and `serve` on a port that is taken.
 */
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import t from 'tap';
import { CONFIG_KEYS } from '../../src/config/load.js';
import type { Machine } from '../../src/machines/model.js';
import { closedPort, runCli, startServer, tempDir, type CliResult } from '../helpers/process.js';

const srv = await startServer(t);
const conn = ['--server', srv.url, '--token', srv.token];
const M1 = '52:54:00:00:00:01';
const M1b = '52:54:00:00:00:02';
const M2 = '52:54:00:00:00:11';

/** `edgeboot <args> --server URL --token T`, from a directory with no ./var. */
const cli = (args: string[]): Promise<CliResult> => runCli(t, [...args, ...conn], { cwd: tempDir(t) });

/** A subtest, as `t.test` hands it to its callback. */
type SubTest = Parameters<Parameters<typeof t.test>[0]>[0];

function failsWith(t: SubTest, r: CliResult, code: number, stderr: RegExp, what: string): void {
  t.equal(r.code, code, `${what}: exit code ${code}`);
  t.match(r.stderr, stderr, `${what}: stderr says why`);
  t.equal(r.stdout, '', `${what}: nothing on stdout`);
}

t.test('machines add prints a saved line', async (t) => {
  const r = await cli([
    'machines',
    'add',
    M1,
    '--profile',
    'rhcos-live',
    '--hostname',
    'n1',
    '--ip',
    '10.77.0.51',
    '--mac',
    '52-54-00-00-00-02',
    '--label',
    'site=f1',
  ]);
  t.equal(r.code, 0, `exit 0 (stderr: ${r.stderr})`);
  t.equal(r.stdout, `${M1} saved: state registered, profile rhcos-live\n`, 'one saved line with the state and profile');
  t.equal(r.stderr, '', 'nothing on stderr');
});

t.test('machines add with EDGEBOOT_URL and EDGEBOOT_TOKEN in the environment', async (t) => {
  const r = await runCli(t, ['machines', 'add', M2, '--label', 'site=f2', '--json'], {
    cwd: tempDir(t),
    env: { EDGEBOOT_URL: srv.url, EDGEBOOT_TOKEN: srv.token },
  });
  t.equal(r.code, 0, `exit 0 (stderr: ${r.stderr})`);
  const m = JSON.parse(r.stdout) as Machine;
  t.equal(m.mac, M2, '--json prints the saved machine');
  t.equal(m.state, 'discovered', 'no profile: discovered');
  t.same(m.labels, { site: 'f2' }, 'with its label');
});

t.test('machines list with the token from ./var/admin-token of the working directory', async (t) => {
  const r = await runCli(t, ['machines', 'list', '--server', srv.url], { cwd: srv.cwd });
  t.equal(r.code, 0, `exit 0 (stderr: ${r.stderr})`);
  const lines = r.stdout.trimEnd().split('\n');
  t.equal(lines.length, 3, 'a header and two rows');
  t.match(lines[0] ?? '', /^MAC\s+STATE\s+PROFILE\s+HOSTNAME\s+IP\s+PRECACHE\s+LAST SEEN$/, 'the header');
  t.match(lines[1] ?? '', new RegExp(`^${M1}\\s+registered\\s+rhcos-live\\s+n1\\s+10\\.77\\.0\\.51\\s+-\\s+-$`), 'the first machine');
  t.match(lines[2] ?? '', new RegExp(`^${M2}\\s+discovered\\s+-\\s+-\\s+-\\s+-\\s+-$`), 'the second machine');
  const cols = (lines[0] ?? '').indexOf('STATE');
  t.equal((lines[1] ?? '').indexOf('registered'), cols, 'columns line up');

  const noToken = await runCli(t, ['machines', 'list', '--server', srv.url], { cwd: tempDir(t) });
  failsWith(t, noToken, 1, /admin token.*no token: pass --token, set EDGEBOOT_TOKEN/, 'no token anywhere');
});

t.test('machines list --json and the filters', async (t) => {
  // Read-only and independent of each other: run them side by side.
  const [all, registered, discovered, f1, none, bad] = await Promise.all([
    cli(['machines', 'list', '--json']),
    cli(['machines', 'list', '--state', 'registered', '--json']),
    cli(['machines', 'list', '--state', 'discovered']),
    cli(['machines', 'list', '--label', 'site=f1', '--json']),
    cli(['machines', 'list', '--label', 'site=nowhere']),
    cli(['machines', 'list', '--state', 'sleeping']),
  ]);
  t.equal(all.code, 0, 'exit 0');
  const machines = JSON.parse(all.stdout) as Machine[];
  t.same(
    machines.map((m) => m.mac),
    [M1, M2],
    'parseable JSON with both machines',
  );
  t.same(machines[0]?.macs, [M1b], 'the further MAC, normalised');

  t.same(
    (JSON.parse(registered.stdout) as Machine[]).map((m) => m.mac),
    [M1],
    '--state registered',
  );
  t.match(discovered.stdout, M2, '--state discovered shows the other one');
  t.notMatch(discovered.stdout, M1, 'and not the registered one');
  t.same(
    (JSON.parse(f1.stdout) as Machine[]).map((m) => m.mac),
    [M1],
    '--label site=f1',
  );
  t.equal(none.code, 0, 'an empty result is not an error');
  t.equal(none.stdout, 'no machines\n', 'and says so');
  t.equal(bad.code, 1, 'an unknown state: exit 1');
  t.match(bad.stderr, /sleeping.*(registered|Allowed choices)/s, 'names the value and the choices');
});

t.test('machines show by the further MAC', async (t) => {
  const [r, json] = await Promise.all([cli(['machines', 'show', '52-54-00-00-00-02']), cli(['machines', 'show', M1b, '--json'])]);
  t.equal(r.code, 0, `exit 0 (stderr: ${r.stderr})`);
  t.match(r.stdout, new RegExp(`^mac:\\s+${M1}, ${M1b}$`, 'm'), 'both MACs');
  t.match(r.stdout, /^state:\s+registered$/m, 'state');
  t.match(r.stdout, /^profile:\s+rhcos-live$/m, 'profile');
  t.match(r.stdout, /^hostname:\s+n1$/m, 'hostname');
  t.match(r.stdout, /^ip:\s+10\.77\.0\.51$/m, 'ip');
  t.match(r.stdout, /^labels:\s+site=f1$/m, 'labels');
  t.match(r.stdout, /^events:\n\S+Z\s+api\s+reservation-created/m, 'the events, with the creation');

  const doc = JSON.parse(json.stdout) as { machine: Machine; events: { type: string }[] };
  t.equal(doc.machine.mac, M1, '--json: the machine');
  t.same(
    doc.events.map((e) => e.type),
    ['reservation-created'],
    '--json: its events',
  );
});

t.test('machines add --bundle, and show prints the precache run and the disks', async (t) => {
  const M3 = '52:54:00:00:00:21';
  const add = await cli([
    'machines',
    'add',
    M3,
    '--profile',
    'precache-assisted',
    '--assisted-url',
    'https://hub.example.com/s',
    '--bundle',
    '0123456789abcdef',
    '--size-gib',
    '2',
    '--disk',
    '/dev/vda',
    '--ip',
    '127.0.0.1',
    '--json',
  ]);
  t.equal(add.code, 0, `exit 0 (stderr: ${add.stderr})`);
  t.same(
    (JSON.parse(add.stdout) as Machine).precache,
    { bundle: '0123456789abcdef', sizeGiB: 2, disk: '/dev/vda' },
    'the precache settings are on the reservation',
  );
  // The machine boots the live environment and its job reports, as the real one does (from
  // 127.0.0.1, its reservation's ip: boot.verifyClient serves it its secrets).
  t.equal((await fetch(`${srv.url}/ipxe?mac=${M3}`)).status, 200);
  const boot = (await (await fetch(`${srv.url}/api/v1/machines/${M3}/boot`, { headers: { authorization: `Bearer ${srv.token}` } })).json()) as {
    eventsUrl: string;
  };
  const token = new URL(boot.eventsUrl).searchParams.get('token') ?? '';
  const post = (path: string, body: unknown) =>
    fetch(`${srv.url}/api/v1/machines/${M3}/${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
  t.equal(
    (
      await post('inventory', {
        disks: [{ path: '/dev/vda', name: 'vda', sizeBytes: 4 * 2 ** 30, type: 'disk', removable: false, readOnly: false }],
        macs: [M3],
      })
    ).status,
    200,
  );
  t.equal(
    (
      await post('events', {
        type: 'precache-progress',
        message: 'downloading a.tgz',
        data: { step: 'download', filesDone: 1, filesTotal: 3, bytesDone: 3 * 2 ** 20, bytesTotal: 12 * 2 ** 20 },
      })
    ).status,
    201,
  );
  const show = await cli(['machines', 'show', M3]);
  t.equal(show.code, 0, `exit 0 (stderr: ${show.stderr})`);
  t.match(show.stdout, /^state:\s+precaching$/m);
  t.match(show.stdout, /^progress:\s+download, 1\/3 files, 3\.0 MiB of 12\.0 MiB, boot 1 \(last heard \S+Z\): downloading a\.tgz$/m, 'where the run is');
  t.match(show.stdout, /^disks:\s+\/dev\/vda 4\.0 GiB$/m, 'what the job found');
  const list = await cli(['machines', 'list', '--state', 'precaching']);
  t.match(
    list.stdout,
    new RegExp(`^${M3}\\s+precaching\\s+precache-assisted\\s+-\\s+127\\.0\\.0\\.1\\s+download 1/3 25%\\s+\\S+Z$`, 'm'),
    'list shows how far the run is',
  );
});

t.test('machines reset on a registered machine fails with the server message', async (t) => {
  const r = await cli(['machines', 'reset', M1]);
  failsWith(t, r, 1, /^edgeboot: .*only failed or installed machines can be reset \[invalid_transition\]\n$/, 'reset');
  t.match(r.stderr, /registered/, 'naming the state');
});

t.test('machines rm, then show: no machine', async (t) => {
  const rm = await cli(['machines', 'rm', M2]);
  t.equal(rm.code, 0, 'rm exits 0');
  t.equal(rm.stdout, `${M2} removed\n`, 'and says so');
  const show = await cli(['machines', 'show', M2]);
  failsWith(t, show, 1, new RegExp(`no machine has MAC ${M2}`), 'show after rm');
  const again = await cli(['machines', 'rm', M2]);
  failsWith(t, again, 1, /no machine/, 'rm twice');
});

t.test('client errors: bad MAC, wrong token, no server', async (t) => {
  const port = await closedPort();
  const [badMac, badMacAdd, badLabel, wrong, down] = await Promise.all([
    cli(['machines', 'show', '52:54:00:00:00']),
    cli(['machines', 'add', M1, '--mac', 'zz-zz-zz-zz-zz-zz']),
    cli(['machines', 'add', M1, '--label', 'nolabel']),
    runCli(t, ['machines', 'list', '--server', srv.url, '--token', 'wrong-token-0123456789'], { cwd: tempDir(t) }),
    runCli(t, ['machines', 'list', '--server', `http://127.0.0.1:${port}`, '--token', srv.token], { cwd: tempDir(t) }),
  ]);
  failsWith(t, badMac, 1, /"52:54:00:00:00" is not a MAC address \(aa:bb:cc:dd:ee:ff/, 'invalid MAC');
  failsWith(t, badMacAdd, 1, /"zz-zz-zz-zz-zz-zz" is not a MAC address/, 'invalid further MAC');
  failsWith(t, badLabel, 1, /--label nolabel: expected key=value/, 'label without =');

  failsWith(t, wrong, 1, /token/, 'wrong token');
  t.notMatch(wrong.stderr, /wrong-token-0123456789/, 'the token is not echoed');

  failsWith(t, down, 1, new RegExp(`cannot reach http://127\\.0\\.0\\.1:${port}.*ECONNREFUSED`), 'closed port');
  t.match(down.stderr, /--server or EDGEBOOT_URL/, 'with a hint');
});

t.test('config check', async (t) => {
  const dir = tempDir(t);
  const good = join(dir, 'good.yaml');
  const bad = join(dir, 'bad.yaml');
  const unknown = join(dir, 'unknown.yaml');
  writeFileSync(good, `http:\n  listen: 127.0.0.1:9000\ndhcp:\n  mode: off\nstore:\n  url: "sqlite:${join(dir, 'x.db')}"\n`);
  writeFileSync(bad, 'dhcp:\n  mode: sometimes\nhttp:\n  listen: nowhere\n');
  writeFileSync(unknown, 'http:\n  lisen: 127.0.0.1:9000\n');
  const [ok, no, u, missing] = await Promise.all(
    [good, bad, unknown, join(dir, 'absent.yaml')].map((file) => runCli(t, ['config', 'check', file], { cwd: dir })),
  );
  if (!ok || !no || !u || !missing) throw new Error('four runs, four results');

  t.equal(ok.code, 0, `a good file: exit 0 (stderr: ${ok.stderr})`);
  t.equal(ok.stdout, `${good}: valid\n`, 'says valid');

  failsWith(t, no, 2, /dhcp\.mode: got "sometimes", expected one of off, proxy, full/, 'a bad file');
  t.match(no.stderr, /http\.listen: got "nowhere", expected host:port/, 'every problem, each with key, value and expectation');
  t.match(no.stderr, new RegExp(`invalid configuration \\(${bad.replaceAll('.', '\\.')}\\)`), 'naming the file');

  failsWith(t, u, 2, /http\.lisen: unknown key; expected one of listen/, 'a misspelt key');
  failsWith(t, missing, 2, /cannot read .*absent\.yaml/, 'a missing file');
});

t.test('--help', async (t) => {
  const [serve, add] = await Promise.all([runCli(t, ['serve', '--help']), runCli(t, ['machines', 'add', '--help'])]);
  t.equal(serve.code, 0, 'serve --help exits 0');
  for (const name of ['EDGEBOOT_HTTP_LISTEN', 'EDGEBOOT_SERVER_DATA_DIR', 'EDGEBOOT_DHCP_MODE', 'EDGEBOOT_STORE_URL', 'EDGEBOOT_LOG_LEVEL']) {
    t.match(serve.stdout, new RegExp(`^\\s+${name}\\s`, 'm'), `lists ${name}`);
  }
  const missing = CONFIG_KEYS.filter((k) => !new RegExp(`^\\s+${k.env}\\s+${k.path.replace('.', '\\.')}:`, 'm').test(serve.stdout));
  t.same(
    missing.map((k) => k.env),
    [],
    `lists every one of the ${CONFIG_KEYS.length} config keys with its env variable`,
  );
  t.ok(CONFIG_KEYS.length >= 15, 'and there are that many keys');
  t.match(serve.stdout, /--config/, 'and the --config option');

  t.equal(add.code, 0, 'machines add --help exits 0');
  t.match(add.stdout, /Usage: edgeboot machines add \[options\] <mac>/, 'usage line');
  for (const opt of ['--profile', '--hostname', '--ip', '--mac', '--label']) t.match(add.stdout, opt, `mentions ${opt}`);
});

t.test('serve on a taken port exits non-zero naming the port', async (t) => {
  const holder = createServer();
  await new Promise<void>((resolve, reject) => {
    holder.once('error', reject);
    holder.listen(0, '127.0.0.1', () => resolve());
  });
  t.teardown(() => new Promise<void>((r) => holder.close(() => r())));
  const addr = holder.address();
  if (addr === null || typeof addr === 'string') throw new Error('no port');
  const cwd = tempDir(t);
  const r = await runCli(t, ['serve', '--set', `http.listen=127.0.0.1:${addr.port}`], {
    cwd,
    env: { EDGEBOOT_LOG_LEVEL: 'warn' },
    timeoutMs: 15_000,
  });
  t.not(r.code, 0, `exits non-zero (${r.code})`);
  t.equal(r.signal, null, 'by itself');
  t.match(r.stderr, new RegExp(`TCP 127\\.0\\.0\\.1:${addr.port}: another server already holds it`), 'stderr names the address and port');
});
