/**
 * The first start as a newcomer meets it, in a network namespace this test creates (lo only):
 *
 * - as nobody, with no capability, on the embedded defaults (no config file, no DHCP or TFTP key
 *   in the environment or on the command line): DHCP and TFTP stay off with a warning naming the
 *   setcap command, HTTP serves on 0.0.0.0:8080 (curl /healthz), the start-up lines say what is
 *   bound and Fastify's "Server listening at http://127.0.0.1:8080" is not among them;
 * - a port the configuration names (--set tftp.listen=0.0.0.0:69, EDGEBOOT_DHCP_MODE=proxy)
 *   still fails the start, with the same command in the message;
 * - as root on the defaults: the DHCP line says what proxy DHCP answers, on which interfaces and
 *   how to change it, and follows boot.unknownMachines and dhcp.interfaces.
 *
 * Needs root, iproute2, setpriv (util-linux), curl and a built dist/. Nothing leaves the
 * namespace (eb-ns-<pid>-<n>), removed at the end.
 */
import { chmodSync, chownSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { createLab, netnsList, netnsSkip, requireTools, type Background, type Lab } from '../helpers/netns.js';
import { NOBODY, serveAsNobody } from '../helpers/nobody.js';
import { MAIN_JS, tempDir, type LogLine } from '../helpers/process.js';

const skip = netnsSkip();
t.setTimeout(120_000);

const SETCAP = 'setcap cap_net_bind_service,cap_net_raw+ep "$(readlink -f "$(which node)")"';

/** A subtest's `t` (the last overload of t.test takes the callback alone). */
type Test = Parameters<Parameters<typeof t.test>[0]>[0];

interface Setup {
  lab: Lab;
  ns: string;
  dir: string;
}

function setup(tt: Test): Setup {
  requireTools({ setpriv: [['--version'], 'util-linux'], curl: [['--version'], 'curl'] });
  const lab = createLab(tt, 'ns');
  const ns = lab.netns('server');
  const dir = tempDir(tt, 'edgeboot-nonroot-');
  chmodSync(dir, 0o755);
  return { lab, ns, dir };
}

/** A data dir of its own for each run, writable by nobody; the only key set (server.dataDir). */
function envFor(s: Setup, name: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const dataDir = join(s.dir, name);
  mkdirSync(dataDir);
  chownSync(dataDir, NOBODY, NOBODY);
  return { PATH: process.env.PATH ?? '/usr/bin:/bin', EDGEBOOT_SERVER_DATA_DIR: dataDir, ...extra };
}

/** The pino lines of the output so far (stderr's lines and a partial last line left out). */
function logLines(out: string): LogLine[] {
  const lines: LogLine[] = [];
  for (const text of out.split('\n')) {
    if (!text.startsWith('{"level":')) continue;
    try {
      lines.push(JSON.parse(text) as LogLine);
    } catch {
      // the last line, still being written
      continue;
    }
  }
  return lines;
}

/** Waits (bounded) for the process to exit by itself. */
async function exitWithin(srv: Background, ms: number): Promise<{ code: number | null } | 'running'> {
  let timer: NodeJS.Timeout | undefined;
  const r = await Promise.race([srv.exited, new Promise<'running'>((res) => (timer = setTimeout(() => res('running'), ms)))]);
  clearTimeout(timer);
  return r;
}

t.test('as nobody on the embedded defaults: DHCP and TFTP off with the setcap command, HTTP serves', { skip }, async (t) => {
  const s = setup(t);
  const srv = serveAsNobody({ lab: s.lab, ns: s.ns, dir: s.dir, caps: [], args: [], env: envFor(s, 'defaults') });
  await srv.waitFor(/"msg":"edgeboot serving"/, 30_000);
  const lines = logLines(srv.output());
  const warned = (server: string) => lines.find((l) => l.level === 40 && l.server === server);
  t.match(
    warned('tftp'),
    { bind: 'UDP 0.0.0.0:69', msg: /^TFTP off: this user may not bind UDP 0\.0\.0\.0:69 \(permission denied\)/ },
    'a warning: TFTP off, the port it may not bind',
  );
  t.match(
    warned('dhcp'),
    { bind: 'UDP port 67', msg: /^DHCP off: this user may not bind UDP port 67 \(permission denied\)/ },
    'a warning: DHCP off, the port it may not bind',
  );
  for (const server of ['tftp', 'dhcp']) {
    t.ok(
      warned(server)?.msg.includes(`run edgeboot as root, or give node the capability (as root, once): ${SETCAP}`),
      `the ${server} warning names the fix: ${SETCAP}, or root`,
    );
  }
  t.notOk(
    lines.some((l) => l.msg === 'TFTP serving' || l.msg === 'DHCP serving'),
    'neither says it serves',
  );
  t.match(
    lines.find((l) => l.msg === 'HTTP serving'),
    { listen: '0.0.0.0:8080', reach: 'all interfaces' },
    'HTTP says what it bound: 0.0.0.0:8080, all interfaces',
  );
  t.match(
    lines.find((l) => l.msg === 'edgeboot serving'),
    { http: '0.0.0.0:8080' },
    'the serving line names the bound address',
  );
  t.notOk(
    lines.some((l) => /Server listening|127\.0\.0\.1:8080/.test(JSON.stringify(l))),
    'no line suggests loopback alone is bound',
  );
  const curl = ['curl', '-sS', '--max-time', '5', '-o', '/dev/null', '-w', '%{http_code}', 'http://127.0.0.1:8080/healthz'];
  const health = await s.lab.run(s.ns, curl, { timeoutMs: 10_000 });
  t.equal(health.stdout, '200', 'curl gets /healthz from port 8080');
  t.equal((await srv.stop(10_000)).code, 0, 'SIGTERM stops it cleanly');
});

t.test('as nobody, a port the configuration names still fails the start', { skip }, async (t) => {
  const s = setup(t);
  const tftp = serveAsNobody({ lab: s.lab, ns: s.ns, dir: s.dir, caps: [], args: ['--set', 'tftp.listen=0.0.0.0:69'], env: envFor(s, 'tftp-set') });
  const tftpExit = await exitWithin(tftp, 30_000);
  t.not(tftpExit === 'running' ? 'running' : tftpExit.code, 0, 'with --set tftp.listen=0.0.0.0:69 it exits with an error');
  t.match(
    tftp.output(),
    `TFTP: cannot bind UDP 0.0.0.0:69: permission denied; run edgeboot as root, or give node the capability (as root, once): ${SETCAP}`,
    'naming the port and the fix',
  );
  t.notMatch(tftp.output(), /"msg":"edgeboot serving"/, 'it never said it was serving');

  // DHCP named in the environment fails; TFTP, on its defaults, is only a warning before it.
  const dhcp = serveAsNobody({ lab: s.lab, ns: s.ns, dir: s.dir, caps: [], args: [], env: envFor(s, 'dhcp-env', { EDGEBOOT_DHCP_MODE: 'proxy' }) });
  const dhcpExit = await exitWithin(dhcp, 30_000);
  t.not(dhcpExit === 'running' ? 'running' : dhcpExit.code, 0, 'with EDGEBOOT_DHCP_MODE=proxy it exits with an error');
  t.match(
    dhcp.output(),
    `DHCP: cannot bind UDP port 67: permission denied; run edgeboot as root, or give node the capability (as root, once): ${SETCAP}`,
    'naming the DHCP port and the fix',
  );
  t.match(
    dhcp.output(),
    /"server":"http","listen":\["0\.0\.0\.0:8080"\],"msg":"stopped: another server could not start"/,
    'HTTP, started first, is stopped: nothing half-starts',
  );
  s.lab.cleanup();
  t.same(
    netnsList().filter((n) => n.startsWith(s.lab.prefix)),
    [],
    'no namespace is left behind',
  );
});

t.test('as root on the defaults: the DHCP line says what it answers, where, and how to change it', { skip }, async (t) => {
  const s = setup(t);
  const start = (name: string, args: string[]) => s.lab.start(s.ns, [process.execPath, MAIN_JS, 'serve', ...args], { env: envFor(s, name) });
  const fresh = start('root-defaults', []);
  await fresh.waitFor(/"msg":"edgeboot serving"/, 30_000);
  const lines = logLines(fresh.output());
  t.match(
    lines.find((l) => l.msg === 'DHCP serving'),
    {
      mode: 'proxy',
      listen: ['0.0.0.0:67', '0.0.0.0:4011'],
      interfaces: 'all',
      answers:
        'proxy DHCP on all interfaces answers registered machines only (boot.unknownMachines: exit); unknown machines boot their own disk. ' +
        'Register a machine (npx edgeboot machines add MAC --profile NAME) or set boot.unknownMachines: wait',
    },
    'proxy DHCP on all interfaces, registered machines only, and how to change it',
  );
  t.match(
    lines.find((l) => l.msg === 'TFTP serving'),
    { listen: '0.0.0.0:69', reach: 'all interfaces' },
    'TFTP says what it bound',
  );
  t.notOk(
    lines.some((l) => l.level >= 40 && l.msg.includes('off:')),
    'no server is off',
  );
  t.equal((await fresh.stop(10_000)).code, 0, 'stops cleanly');

  const waiting = start('root-wait', ['--set', 'boot.unknownMachines=wait', '--set', 'dhcp.interfaces=lo', '--set', 'http.listen=127.0.0.1:8080']);
  await waiting.waitFor(/"msg":"edgeboot serving"/, 30_000);
  const wlines = logLines(waiting.output());
  t.match(
    wlines.find((l) => l.msg === 'DHCP serving'),
    {
      interfaces: ['lo'],
      answers:
        'proxy DHCP on interface lo answers every PXE client (boot.unknownMachines: wait); an unknown machine waits in iPXE until it is registered. ' +
        'To boot registered machines only, set boot.unknownMachines: exit',
    },
    'with boot.unknownMachines: wait and dhcp.interfaces: [lo], the line says so',
  );
  t.match(
    wlines.find((l) => l.msg === 'HTTP serving'),
    { listen: '127.0.0.1:8080', reach: 'loopback only' },
    'HTTP on loopback says so',
  );
  t.equal((await waiting.stop(10_000)).code, 0, 'stops cleanly');
  s.lab.cleanup();
  t.same(
    netnsList().filter((n) => n.startsWith(s.lab.prefix)),
    [],
    'no namespace is left behind',
  );
});
