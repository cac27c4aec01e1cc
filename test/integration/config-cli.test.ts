/**
 * `edgeboot config check` and `config show` as a newcomer runs them (issue 16 §3): the real CLI,
 * run as a process on files in a temp folder. Mistakes that used to pass the check and fail at
 * boot now fail the check, naming the key; what `config show` prints passes it.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { runCli, startServer, tempDir } from '../helpers/process.js';

/** Writes `text` as `name` into `dir` and returns the path. */
function fileIn(dir: string, name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

t.test('config check refuses what used to fail at boot, naming the key', async (t) => {
  const dir = tempDir(t);
  const subnets = fileIn(
    dir,
    'subnets.yaml',
    [
      'dhcp:',
      '  subnets:',
      '    - { cidr: 10.77.0.0/24, pool: [10.77.1.100, 10.77.1.199], router: 10.77.1.1 }',
      '    - { cidr: 10.77.0.0/23 }',
      '    - { cidr: 10.90.0.9/24 }',
      '',
    ].join('\n'),
  );
  const r = await runCli(t, ['config', 'check', subnets]);
  t.equal(r.code, 2, 'exit 2');
  t.notMatch(r.stdout, /valid/, 'not called valid');
  for (const expected of [
    'dhcp.subnets[0].pool: got [10.77.1.100, 10.77.1.199], expected addresses inside 10.77.0.0/24',
    'dhcp.subnets[0].router: got "10.77.1.1", expected an address inside 10.77.0.0/24',
    'dhcp.subnets[1].cidr: 10.77.0.0/23 overlaps dhcp.subnets[0].cidr 10.77.0.0/24',
    'dhcp.subnets[2].cidr: got "10.90.0.9/24", expected a network address with no host bits set, such as 10.90.0.0/24',
  ]) {
    t.ok(r.stderr.includes(expected), `stderr names ${expected.slice(0, expected.indexOf(':'))} (got ${r.stderr.trim()})`);
  }

  const dirs = fileIn(dir, 'dirs.yaml', `tftp: { roots: [${join(dir, 'no-such-dir')}] }\nprofiles: { dirs: [${join(dir, 'nope')}] }\n`);
  const d = await runCli(t, ['config', 'check', dirs]);
  t.equal(d.code, 2, 'missing directories: exit 2');
  const missingRoot = `tftp.roots[0]: ${join(dir, 'no-such-dir')} does not exist; expected an existing directory`;
  t.ok(d.stderr.includes(missingRoot), `tftp.roots named (got ${d.stderr.trim()})`);
  t.ok(d.stderr.includes(`profiles.dirs[0]: ${join(dir, 'nope')} does not exist; expected an existing directory`), 'profiles.dirs named');
});

t.test('config check: directories that exist pass; the embedded /usr/lib/ipxe only warns', async (t) => {
  const dir = tempDir(t);
  mkdirSync(join(dir, 'ipxe'));
  const good = fileIn(dir, 'good.yaml', `tftp: { roots: [${join(dir, 'ipxe')}] }\nprofiles: { dirs: [${dir}] }\n`);
  const r = await runCli(t, ['config', 'check', good]);
  t.equal(r.code, 0, `exit 0 (stderr: ${r.stderr})`);
  t.equal(r.stdout, `${good}: valid\n`);
  t.equal(r.stderr, '', 'no warning');

  const empty = fileIn(dir, 'empty.yaml', '');
  const onDefaults = await runCli(t, ['config', 'check', empty]);
  t.equal(onDefaults.code, 0, `the embedded defaults pass the check (stderr: ${onDefaults.stderr})`);
  const hasIpxe = existsSync('/usr/lib/ipxe');
  const warning = 'edgeboot: warning: tftp.roots[0]: /usr/lib/ipxe does not exist';
  t.equal(onDefaults.stderr.includes(warning), !hasIpxe, 'a warning exactly when /usr/lib/ipxe is missing');
  t.equal(onDefaults.stderr.includes('apt-get install ipxe'), !hasIpxe, 'naming the fix');
});

t.test('unknown EDGEBOOT_ variables: config check fails with a did-you-mean, serve warns', async (t) => {
  const dir = tempDir(t);
  const file = fileIn(dir, 'c.yaml', 'tftp: { enabled: false }\n');
  const r = await runCli(t, ['config', 'check', file], { env: { EDGEBOOT_DHCP_MOED: 'full' } });
  t.equal(r.code, 2, 'exit 2');
  t.match(r.stderr, 'EDGEBOOT_DHCP_MOED: no such config key; did you mean EDGEBOOT_DHCP_MODE?');
  const client = await runCli(t, ['config', 'check', file], { env: { EDGEBOOT_URL: 'http://127.0.0.1:1', EDGEBOOT_TOKEN: 'tttttttttttttttttt' } });
  t.equal(client.code, 0, `the client's own variables are no config keys (stderr: ${client.stderr})`);
  t.equal(client.stderr, '');

  const deprecated = await runCli(t, ['config', 'check', file], { env: { EDGEBOOT_PRECACHE_INSTALL_RESERVE_GI_B: '80' } });
  t.equal(deprecated.code, 0, 'the old spelling still passes');
  t.match(deprecated.stderr, 'edgeboot: warning: EDGEBOOT_PRECACHE_INSTALL_RESERVE_GI_B is deprecated: it is spelt EDGEBOOT_PRECACHE_INSTALL_RESERVE_GIB now');

  const server = await startServer(t, { dataDir: join(dir, 'data'), env: { EDGEBOOT_DHCP_MOED: 'full', EDGEBOOT_TFTP_ENABLED: 'false' } });
  const warned = server.logLines.find((l) => typeof l.msg === 'string' && l.msg.startsWith('ignoring EDGEBOOT_DHCP_MOED'));
  t.ok(warned, 'serve starts and logs the unknown variable');
  t.match(warned?.msg, 'did you mean EDGEBOOT_DHCP_MODE?');
  t.equal(warned?.level, 40, 'at warn');
  await server.stop();
});

t.test('config show prints a file config check accepts and that loads to the same config', async (t) => {
  const dir = tempDir(t);
  mkdirSync(join(dir, 'ipxe'));
  mkdirSync(join(dir, 'profiles'));
  // A machine without Debian's ipxe has no /usr/lib/ipxe; a shown file names tftp.roots, so it must exist.
  const roots = { EDGEBOOT_TFTP_ROOTS: join(dir, 'ipxe') };
  const source = fileIn(
    dir,
    'source.yaml',
    [
      'server: { dataDir: data }',
      'http: { listen: "[::1]:9000" }',
      'tftp: { listen: 127.0.0.1:6969 }',
      `profiles: { dirs: [${join(dir, 'profiles')}] }`,
      'dhcp:',
      '  mode: full',
      '  subnets:',
      '    - { cidr: 192.168.50.0/24, pool: [192.168.50.10, 192.168.50.20], router: 192.168.50.1, dns: [9.9.9.9] }',
      '    - { cidr: 192.168.51.0/25 }',
      'cache: { maxBytes: 1.5GiB, largeBytes: 8MiB, clientRate: 40MiB }',
      'boot: { unknownMachines: rhcos-live }',
      'registry: { upstreams: { lab: "127.0.0.1:5000" } }',
      'store: { url: "sqlite:db/edgeboot.db" }',
      '',
    ].join('\n'),
  );
  // Both forms of both configs round-trip in the unit test (show.test.ts); here the real CLI, for two of them.
  for (const [what, args, json] of [
    ['the defaults', [], true],
    ['a non-trivial config', [source], false],
  ] as const) {
    {
      const label = `${what}, ${json ? 'JSON' : 'YAML'}`;
      const show = (file: string[]) => runCli(t, [...(json ? ['--json'] : []), 'config', 'show', ...file], { cwd: dir, env: roots });
      const first = await show([...args]);
      t.equal(first.code, 0, `${label}: show exits 0 (stderr: ${first.stderr})`);
      const shownFile = fileIn(dir, `shown-${what.replaceAll(' ', '-')}.${json ? 'json' : 'yaml'}`, first.stdout);
      const check = await runCli(t, ['config', 'check', shownFile], { cwd: dir, env: roots });
      t.equal(check.code, 0, `${label}: config check accepts it (stderr: ${check.stderr})`);
      const again = await show([shownFile]);
      t.equal(again.stdout, first.stdout, `${label}: the shown file loads to the same config`);
    }
  }
});

t.test('a shown secret is cut, marked, and refused by the check', async (t) => {
  const dir = tempDir(t);
  const source = fileIn(dir, 'secret.yaml', 'auth: { adminTokens: [SECRET-admin-token-value] }\ntftp: { enabled: false }\n');
  const shown = await runCli(t, ['config', 'show', source], { cwd: dir });
  t.equal(shown.code, 0);
  t.notMatch(shown.stdout, /SECRET/, 'the token is not printed');
  t.match(shown.stdout, /^# \*redacted\* stands for a secret cut from this view/, 'a note on top says so');
  const file = fileIn(dir, 'shown.yaml', shown.stdout);
  const check = await runCli(t, ['config', 'check', file], { cwd: dir });
  t.equal(check.code, 2, 'refused');
  t.match(check.stderr, 'auth.adminTokens[0]: got the placeholder *redacted* of a secret edgeboot config show cut, expected the real value');
});

t.test('serve stops on a named directory that is missing, and warns on the embedded one', async (t) => {
  const dir = tempDir(t);
  const missing = join(dir, 'no-ipxe-here');
  const r = await runCli(t, ['serve', '--set', 'http.listen=127.0.0.1:0', '--set', `tftp.roots=${missing}`], { cwd: dir });
  t.equal(r.code, 2, `exit 2 before serving (stdout: ${r.stdout.slice(0, 400)})`);
  t.match(r.stderr, `tftp.roots[0]: ${missing} does not exist; expected an existing directory`);
  t.notOk(existsSync(join(dir, 'var')), 'nothing was started or created');

  const server = await startServer(t, { dataDir: join(dir, 'data') });
  const warned = server.logLines.some((l) => l.level === 40 && typeof l.msg === 'string' && l.msg.includes('apt-get install ipxe'));
  t.equal(warned, !existsSync('/usr/lib/ipxe'), 'on the embedded tftp.roots the server serves, warning exactly when /usr/lib/ipxe is missing');
  await server.stop();
});
