/**
 * The capabilities of the shipped systemd unit (deploy/systemd/edgeboot.service) are enough,
 * and needed: `edgeboot serve` runs as an unprivileged user (nobody) holding exactly the unit's
 * CapabilityBoundingSet as ambient capabilities (util-linux setpriv, as systemd's User= with
 * AmbientCapabilities= would), with NoNewPrivileges, in a network namespace:
 *
 *   client namespace  eth0 ──veth── eth0 10.79.0.1/24  server namespace: edgeboot as nobody,
 *                                                       DHCP full on :67, TFTP :69, HTTP :80
 *
 * - with the unit's set (CAP_NET_BIND_SERVICE alone) it binds ports 67, 69 and 80; busybox
 *   udhcpc gets a lease from it (broadcast DHCP without CAP_NET_RAW), tftp-hpa fetches a file
 *   over TFTP and curl gets /healthz; /proc/<pid>/status shows the capabilities it ran with;
 * - with no capability at all it does not start, and says which port it could not bind.
 * Needs root, iproute2, setpriv (util-linux), udhcpc, tftp-hpa and curl (.ci/run) and a built
 * dist/. All traffic stays inside namespaces this test creates (eb-sc-<pid>-<n>).
 */
import { chmodSync, chownSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { udhcpc } from '../helpers/dhcp-system.js';
import { createLab, netnsList, netnsSkip, requireTools, type Lab } from '../helpers/netns.js';
import { NOBODY, serveAsNobody } from '../helpers/nobody.js';
import { tempDir } from '../helpers/process.js';
import { parseUnit, UNIT_FILE } from '../helpers/supervisor.js';

const skip = netnsSkip();
t.setTimeout(120_000);

const SERVER = '10.79.0.1';

/** CAP_NET_BIND_SERVICE → net_bind_service, as setpriv(1) names capabilities. */
const unitCaps = (): string[] =>
  (parseUnit(readFileSync(UNIT_FILE, 'utf8')).get('Service')?.get('CapabilityBoundingSet') ?? [])
    .flatMap((v) => v.split(/\s+/))
    .filter((c) => c !== '')
    .map((c) => c.replace(/^CAP_/, '').toLowerCase());

/** capability(7) numbers of the names the unit may use, for reading /proc/<pid>/status. */
const CAP_BITS: Record<string, number> = { net_bind_service: 10, net_broadcast: 11, net_admin: 12, net_raw: 13 };

interface Setup {
  lab: Lab;
  serverNs: string;
  clientNs: string;
  dir: string;
  tftpRoot: string;
}

/** A subtest's `t` (the last overload of t.test takes the callback alone). */
type Test = Parameters<Parameters<typeof t.test>[0]>[0];

function setup(tt: Test): Setup {
  requireTools({ setpriv: [['--version'], 'util-linux'], udhcpc: [['--help'], 'udhcpc'], tftp: [['-V'], 'tftp-hpa'], curl: [['--version'], 'curl'] });
  const lab = createLab(tt, 'sc');
  const serverNs = lab.netns('server');
  const clientNs = lab.netns('client');
  lab.veth({ ns: serverNs, dev: 'eth0' }, { ns: clientNs, dev: 'eth0', mac: '52:54:00:eb:15:c1' });
  lab.ipIn(serverNs, 'addr', 'add', `${SERVER}/24`, 'dev', 'eth0');
  // nobody must reach the checkout, its data dir and the TFTP root.
  const dir = tempDir(tt, 'edgeboot-caps-');
  chmodSync(dir, 0o755);
  const tftpRoot = join(dir, 'tftp');
  mkdirSync(tftpRoot);
  writeFileSync(join(tftpRoot, 'hello.txt'), 'served by an unprivileged edgeboot\n');
  return { lab, serverNs, clientNs, dir, tftpRoot };
}

/** `edgeboot serve` as nobody in the server namespace, holding `caps` and nothing else. */
function serveWith(s: Setup, name: string, caps: string[]) {
  const dataDir = join(s.dir, name);
  mkdirSync(dataDir);
  chownSync(dataDir, NOBODY, NOBODY);
  const configFile = join(dataDir, 'config.json');
  writeFileSync(
    configFile,
    JSON.stringify({ dhcp: { subnets: [{ cidr: '10.79.0.0/24', pool: ['10.79.0.100', '10.79.0.120'], router: SERVER, dns: [SERVER], domain: 'caps.test' }] } }),
  );
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    EDGEBOOT_SERVER_DATA_DIR: dataDir,
    EDGEBOOT_STORE_URL: `sqlite:${join(dataDir, 'edgeboot.db')}`,
    EDGEBOOT_CACHE_DIR: join(dataDir, 'cache'),
    EDGEBOOT_DHCP_MODE: 'full',
    EDGEBOOT_HTTP_LISTEN: '0.0.0.0:80',
    EDGEBOOT_TFTP_LISTEN: '0.0.0.0:69',
    EDGEBOOT_TFTP_ROOTS: s.tftpRoot,
  };
  return serveAsNobody({ lab: s.lab, ns: s.serverNs, dir: s.dir, caps, args: ['--config', configFile], env });
}

t.test("with the unit's capabilities alone, edgeboot serves DHCP, TFTP and HTTP as nobody", { skip }, async (t) => {
  const s = setup(t);
  const caps = unitCaps();
  t.same(caps, ['net_bind_service'], 'the unit grants CAP_NET_BIND_SERVICE alone');
  const srv = serveWith(s, 'granted', caps);
  await srv.waitFor(/"msg":"DHCP serving"/, 30_000);
  const status = readFileSync(`/proc/${srv.child.pid}/status`, 'utf8');
  const field = (name: string) => BigInt(`0x${new RegExp(`^${name}:\\s*([0-9a-f]+)$`, 'm').exec(status)?.[1] ?? 'ffffffffffffffff'}`);
  const want = caps.reduce((acc, c) => acc | (1n << BigInt(CAP_BITS[c] ?? 63)), 0n);
  t.equal(field('CapEff'), want, `it runs with effective capabilities ${want.toString(16)} (CAP_NET_BIND_SERVICE) only`);
  t.equal(field('CapBnd'), want, 'and can never gain another (bounding set)');
  t.match(status, new RegExp(`^Uid:\\s+${NOBODY}\\s+${NOBODY}\\s+${NOBODY}\\s+${NOBODY}$`, 'm'), 'as nobody');
  t.match(status, /^NoNewPrivs:\s+1$/m, 'with NoNewPrivileges');

  const leaseRun = await udhcpc(s.lab, s.dir, s.clientNs, 'eth0');
  t.match(
    leaseRun.lease,
    { ip: /^10\.79\.0\.1[0-2][0-9]$/, serverid: SERVER },
    `busybox udhcpc got a lease over broadcast DHCP (${leaseRun.lease?.ip ?? 'none'})`,
  );

  // The client needs an address on the link for TFTP and HTTP: the one it was leased.
  s.lab.ipIn(s.clientNs, 'addr', 'add', `${leaseRun.lease?.ip ?? '10.79.0.99'}/24`, 'dev', 'eth0');
  const out = join(s.dir, 'hello.out');
  const tftp = await s.lab.run(s.clientNs, ['tftp', SERVER, '-m', 'binary', '-c', 'get', 'hello.txt', out], { timeoutMs: 15_000 });
  t.equal(tftp.code, 0, `tftp-hpa fetched a file from port 69 (${tftp.stderr.trim() || 'no error'})`);
  t.equal(readFileSync(out, 'utf8'), 'served by an unprivileged edgeboot\n', 'intact');
  const health = await s.lab.run(s.clientNs, ['curl', '-sS', '--max-time', '5', '-o', '/dev/null', '-w', '%{http_code}', `http://${SERVER}:80/healthz`], {
    timeoutMs: 10_000,
  });
  t.equal(health.stdout, '200', 'curl got /healthz from port 80');

  const stopped = await srv.stop(10_000);
  t.equal(stopped.code, 0, 'SIGTERM stops it cleanly (exit 0: Restart=on-failure leaves it stopped)');
  s.lab.cleanup();
  t.same(
    netnsList().filter((n) => n.startsWith(s.lab.prefix)),
    [],
    'no namespace is left behind',
  );
});

t.test('without CAP_NET_BIND_SERVICE it cannot bind its ports, and says so', { skip }, async (t) => {
  const s = setup(t);
  const srv = serveWith(s, 'none', []);
  const exit = await Promise.race([srv.exited, new Promise<'running'>((r) => setTimeout(() => r('running'), 30_000))]);
  if (exit === 'running') {
    t.fail(`edgeboot without capabilities is still running after 30 s: ${srv.output().slice(-2000)}`);
    return;
  }
  t.not(exit.code, 0, `it exits with an error (${exit.code})`);
  t.match(srv.output(), /permission denied/, 'naming the permission it lacks');
  t.match(srv.output(), 'setcap cap_net_bind_service,cap_net_raw+ep "$(readlink -f "$(which node)")"', 'and the command that grants it');
  t.match(srv.output(), /\b(67|69|80)\b/, 'and the port');
  s.lab.cleanup();
});
