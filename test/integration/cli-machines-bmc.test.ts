/**
 * The real CLI (`node dist/main.js machines add … --bmc …`) against a real `edgeboot serve`: the
 * password read from a file (one trailing newline dropped) and sealed by the server, never printed,
 * never logged; the errors of a missing, empty or unreadable file and of flags without --bmc; the
 * server's refusals named with the flag that set the field; `machines show`'s BMC lines.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import type { Mac } from '../../src/machines/mac.js';
import { loadSecretKey, SealedBox } from '../../src/secrets/sealed-box.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import { runCli, startServer, tempDir, type CliResult } from '../helpers/process.js';

const dataDir = tempDir(t);
const srv = await startServer(t, { dataDir, logLevel: 'trace' });
const conn = ['--server', srv.url, '--token', srv.token];
const M1 = '52:54:00:b1:00:01' as Mac;
const M2 = '52:54:00:b1:00:02' as Mac;
const PASSWORD = 'cli-Pa55 with spaces ';
const files = tempDir(t);

const cli = (args: string[]): Promise<CliResult> => runCli(t, [...args, ...conn], { cwd: files });

function fileWith(name: string, content: string): string {
  const file = join(files, name);
  writeFileSync(file, content, { mode: 0o600 });
  return file;
}

function failsWith(t: Test, r: CliResult, stderr: RegExp, what: string): void {
  t.equal(r.code, 1, `${what}: exit code 1`);
  t.match(r.stderr, stderr, `${what}: stderr says why`);
  t.equal(r.stdout, '', `${what}: nothing on stdout`);
}

const noPassword = (t: Test, r: CliResult, what: string) => t.notOk(`${r.stdout}${r.stderr}`.includes(PASSWORD.trim()), `${what}: the password is not printed`);

t.test('machines add --bmc … --bmc-password-file: saved, the password sealed without its newline, never printed', async (t) => {
  const file = fileWith('pw', `${PASSWORD}\n`);
  const r = await cli([
    'machines',
    'add',
    M1,
    '--profile',
    'local-disk',
    '--bmc',
    'redfish+http://127.0.0.1:9',
    '--bmc-user',
    'root',
    '--bmc-password-file',
    file,
  ]);
  t.equal(r.code, 0, `exit 0 (stderr: ${r.stderr})`);
  t.equal(r.stdout, `${M1} saved: state registered, profile local-disk\n`);
  noPassword(t, r, 'add');

  const json = await cli([
    'machines',
    'add',
    M2,
    '--bmc',
    'idrac-redfish://10.0.0.9',
    '--bmc-user',
    'admin',
    '--bmc-password-file',
    fileWith('crlf', 'other-password\r\n'),
    '--bmc-system-id',
    'System.Embedded.1',
    '--bmc-insecure',
    '--bmc-boot-mode',
    'uefi',
    '--json',
  ]);
  t.equal(json.code, 0, `--json exit 0 (stderr: ${json.stderr})`);
  const m = JSON.parse(json.stdout) as { bmc?: Record<string, unknown> };
  t.same(m.bmc, {
    address: 'idrac-redfish://10.0.0.9',
    username: 'admin',
    passwordSet: true,
    systemId: 'System.Embedded.1',
    verifyTls: false,
    bootMode: 'uefi',
  });
  t.notMatch(json.stdout, /other-password|passwordSealed|"password"/, 'the JSON holds no password');
});

t.test('machines show prints the BMC lines', async (t) => {
  const r = await cli(['machines', 'show', M2]);
  t.equal(r.code, 0, `exit 0 (stderr: ${r.stderr})`);
  t.match(r.stdout, /^bmc: {7}idrac-redfish:\/\/10\.0\.0\.9 system System\.Embedded\.1 \(user admin, password set, TLS not verified, boot mode uefi\)$/m);
  noPassword(t, r, 'show');
});

t.test('a missing, empty or unreadable file, and BMC flags without --bmc, are clear errors; nothing is sent', async (t) => {
  const base = ['machines', 'add', M1, '--profile', 'local-disk', '--bmc', 'redfish+http://127.0.0.1:9', '--bmc-user', 'root'];
  failsWith(t, await cli([...base, '--bmc-password-file', join(files, 'absent')]), /--bmc-password-file .*absent: cannot read it: ENOENT/, 'a missing file');
  failsWith(t, await cli([...base, '--bmc-password-file', fileWith('empty', '\n')]), /--bmc-password-file .*empty: the file is empty/, 'an empty file');
  // A directory: unreadable as a file even to root (EISDIR).
  failsWith(t, await cli([...base, '--bmc-password-file', files]), /--bmc-password-file .*: cannot read it: EISDIR/, 'an unreadable file');
  failsWith(t, await cli(['machines', 'add', M1, '--bmc-user', 'root', '--bmc-insecure']), /--bmc-user, --bmc-insecure need --bmc <address>/, 'no --bmc');
  failsWith(t, await cli(['machines', 'add', M1, '--bmc', 'redfish://h']), /--bmc needs --bmc-user/, 'no --bmc-user');
});

t.test("the server's refusals name the flag", async (t) => {
  const file = fileWith('pw2', PASSWORD);
  const bad = await cli(['machines', 'add', M1, '--profile', 'local-disk', '--bmc', 'https://10.0.0.5', '--bmc-user', 'root', '--bmc-password-file', file]);
  failsWith(t, bad, /bmc\.address \(--bmc\): .*did you mean redfish:\/\//, 'an https:// address');
  noPassword(t, bad, 'a refused address');
  const moved = await cli(['machines', 'add', M1, '--profile', 'local-disk', '--bmc', 'redfish+http://127.0.0.3:9', '--bmc-user', 'root']);
  failsWith(t, moved, /give bmc\.password \(--bmc-password-file\) again/, 'a new address without the password');
});

t.test('on the server: the sealed password opens to the file without its newline; the log holds none', async (t) => {
  await srv.stop();
  const store = openSqliteStore({ path: join(dataDir, 'edgeboot.db') });
  t.teardown(() => store.close());
  const box = new SealedBox(loadSecretKey(join(dataDir, 'secret.key')));
  t.equal(box.open((await store.getMachine(M1))?.bmc?.passwordSealed ?? ''), PASSWORD, 'one trailing newline dropped, the spaces kept');
  t.equal(box.open((await store.getMachine(M2))?.bmc?.passwordSealed ?? ''), 'other-password', 'a CRLF dropped too');
  const log = [...srv.logLines.map((l) => JSON.stringify(l)), srv.stderr()].join('\n');
  t.notOk(log.includes(PASSWORD.trim()) || log.includes('other-password'), 'no password in the server log');
});
