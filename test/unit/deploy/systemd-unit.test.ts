/**
 * The shipped systemd unit (deploy/systemd/edgeboot.service):
 * - `systemd-analyze verify` accepts a copy whose ExecStart names this checkout's node and
 *   dist/main.js, with no warning at all (an unknown key or a bad value is only a warning);
 * - `systemd-analyze security --offline=yes` rates its exposure at 2.0 or below;
 * - the hardening keys are set, the capabilities are exactly CAP_NET_BIND_SERVICE, the address
 *   families exactly the four edgeboot opens, and the environment it sets puts the database,
 *   the admin token and the cache in its StateDirectory, as the config loader resolves it;
 * - `systemd-sysusers` creates the service user from the shipped sysusers.d file;
 * - the test supervisor (test/helpers/supervisor.ts), which the crash tests use in place of
 *   systemd, reads its restart policy from this unit and decides as Restart=on-failure does.
 * Needs Debian's systemd package (systemd-analyze, systemd-sysusers; .ci/run installs it). It
 * does not need systemd running as PID 1. The system test test/system/service-capabilities.test.ts
 * shows edgeboot serving DHCP, TFTP and HTTP with exactly these capabilities.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { CONFIG_KEYS, loadConfig } from '../../../src/config/load.js';
import { MAIN_JS, REPO_ROOT } from '../../helpers/process.js';
import { parseUnit, policyFromUnit, restartDecision, UNIT_FILE } from '../../helpers/supervisor.js';
const SYSUSERS_FILE = join(REPO_ROOT, 'deploy/systemd/edgeboot.sysusers');
const ENV_FILE = join(REPO_ROOT, 'deploy/systemd/edgeboot.env');
const SHIPPED_EXEC = '/usr/bin/node --max-semi-space-size=8 --heap-growing-percent=100 /opt/edgeboot/dist/main.js serve';

const unitText = readFileSync(UNIT_FILE, 'utf8');
const unit = parseUnit(unitText);
const service = unit.get('Service') ?? new Map<string, string[]>();
/** The last value of a key, as systemd applies it for single-valued keys. */
const one = (section: Map<string, string[]> | undefined, key: string): string | undefined => section?.get(key)?.at(-1);
/** A list-valued key: every assignment, split on whitespace. */
const words = (key: string): string[] => (service.get(key) ?? []).flatMap((v) => v.split(/\s+/).filter((w) => w !== ''));

function requireTool(bin: string): void {
  const r = spawnSync(bin, ['--version'], { encoding: 'utf8' });
  if (r.error) throw new Error(`${bin} is missing: apt-get install systemd (see .ci/run)`);
}

/** A copy of the unit whose ExecStart runs this checkout's build with this node. */
function localCopy(dir: string): string {
  if (!existsSync(MAIN_JS)) throw new Error(`${MAIN_JS} is missing: build first (npx tsc -p tsconfig.json)`);
  const local = SHIPPED_EXEC.replace('/usr/bin/node', process.execPath).replace('/opt/edgeboot/dist/main.js', MAIN_JS);
  const text = unitText.replace(`ExecStart=${SHIPPED_EXEC}`, `ExecStart=${local}`);
  if (text === unitText) throw new Error(`the unit's ExecStart is not "${SHIPPED_EXEC}"`);
  const path = join(dir, 'edgeboot.service');
  writeFileSync(path, text);
  return path;
}

t.test('systemd-analyze verify accepts the unit without a single warning', async (t) => {
  requireTool('systemd-analyze');
  const dir = mkdtempSync(join(tmpdir(), 'edgeboot-unit-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const r = spawnSync('systemd-analyze', ['verify', localCopy(dir)], { encoding: 'utf8', timeout: 30_000 });
  t.equal(r.status, 0, `systemd-analyze verify exits 0 (stderr: ${r.stderr.trim() || 'none'})`);
  t.equal(r.stderr.trim(), '', 'and prints no warning (an unknown key or a bad value is only a warning)');

  // The check itself fails on a broken unit, so the pass above means something.
  const broken = join(dir, 'broken.service');
  writeFileSync(broken, readFileSync(join(dir, 'edgeboot.service'), 'utf8').replace(/^Restart=on-failure$/m, 'Restart=sometimes'));
  const b = spawnSync('systemd-analyze', ['verify', broken], { encoding: 'utf8', timeout: 30_000 });
  t.match(b.stderr, /Failed to parse service restart specifier/, 'a bad Restart= value is reported');
});

t.test('systemd-analyze security rates the unit 2.0 or better', async (t) => {
  requireTool('systemd-analyze');
  const dir = mkdtempSync(join(tmpdir(), 'edgeboot-unit-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const r = spawnSync('systemd-analyze', ['security', '--offline=yes', '--no-pager', localCopy(dir)], { encoding: 'utf8', timeout: 30_000 });
  const m = /Overall exposure level for edgeboot\.service: ([0-9.]+)/.exec(r.stdout);
  t.ok(m, `systemd-analyze security printed an overall exposure (exit ${r.status}, stderr: ${r.stderr.trim() || 'none'})`);
  const score = Number(m?.[1]);
  t.comment(`systemd-analyze security --offline=yes: exposure ${score}`);
  t.ok(score <= 2.0, `exposure ${score} is at most 2.0 (systemd calls up to 2.0 "OK"; an unhardened service is 9.6)`);
});

t.test('the unit restarts on failure, bounded, and stops in time', async (t) => {
  t.equal(one(service, 'Restart'), 'on-failure', 'Restart=on-failure');
  t.match(one(service, 'RestartSec'), /^[1-9][0-9]*s$/, 'a RestartSec in seconds');
  t.equal(one(service, 'RestartPreventExitStatus'), '2', 'a config error (exit 2) is not restarted');
  t.ok(Number(one(unit.get('Unit'), 'StartLimitBurst')) > 1, 'a start limit burst');
  t.ok(Number(one(unit.get('Unit'), 'StartLimitIntervalSec')) > 0, 'over an interval, in [Unit]');
  t.match(one(service, 'TimeoutStopSec'), /^[1-9][0-9]*s$/, 'a stop timeout for the graceful stop');
  t.ok(Number(one(service, 'LimitNOFILE')) >= 65536, 'LimitNOFILE of 65536 or more');
  t.equal(one(service, 'ExecStart'), SHIPPED_EXEC, 'ExecStart runs `edgeboot serve` from /opt/edgeboot');
  t.equal(one(unit.get('Install'), 'WantedBy'), 'multi-user.target', 'enabled for multi-user.target');
});

t.test('the unit is hardened and has exactly the capabilities edgeboot needs', async (t) => {
  const expected: Record<string, string> = {
    User: 'edgeboot',
    NoNewPrivileges: 'yes',
    ProtectSystem: 'strict',
    ProtectHome: 'yes',
    PrivateTmp: 'yes',
    PrivateDevices: 'yes',
    ProtectKernelTunables: 'yes',
    ProtectKernelModules: 'yes',
    ProtectControlGroups: 'yes',
    RestrictNamespaces: 'yes',
    RestrictSUIDSGID: 'yes',
    LockPersonality: 'yes',
    SystemCallArchitectures: 'native',
  };
  for (const [key, value] of Object.entries(expected)) t.equal(one(service, key), value, `${key}=${value}`);
  t.same(words('CapabilityBoundingSet'), ['CAP_NET_BIND_SERVICE'], 'the bounding set is CAP_NET_BIND_SERVICE alone: no CAP_NET_RAW, no CAP_NET_ADMIN');
  t.same(words('AmbientCapabilities'), ['CAP_NET_BIND_SERVICE'], 'and the service user holds it (ports 67, 69, 4011)');
  t.same(words('RestrictAddressFamilies').sort(), ['AF_INET', 'AF_INET6', 'AF_NETLINK', 'AF_UNIX'], 'IPv4, IPv6, Unix sockets and netlink (getifaddrs) only');
  t.notOk(service.has('ProcSubset'), 'no ProcSubset: /proc/net/arp stays readable (src/net/neighbors.ts)');
  t.notOk(service.has('PrivateUsers'), 'no PrivateUsers: its capability would not reach the host network namespace');
  t.ok(words('SystemCallFilter').includes('@system-service'), 'system calls limited to @system-service');
});

t.test('the data dir is the StateDirectory, and every default path resolves inside it', async (t) => {
  t.equal(one(service, 'StateDirectory'), 'edgeboot', 'StateDirectory=edgeboot (/var/lib/edgeboot)');
  const env: Record<string, string> = {};
  for (const v of words('Environment')) {
    const eq = v.indexOf('=');
    env[v.slice(0, eq)] = v.slice(eq + 1);
  }
  const known = new Set(CONFIG_KEYS.map((k) => k.env));
  for (const name of Object.keys(env)) t.ok(known.has(name), `${name} is a config key`);
  const { config, warnings } = loadConfig({ env });
  t.same(warnings, [], 'the unit environment loads without a warning');
  t.equal(config.server.dataDir, '/var/lib/edgeboot', 'server.dataDir is the StateDirectory');
  t.equal(config.store.url, 'sqlite:/var/lib/edgeboot/edgeboot.db', 'the database is in it');
  t.equal(config.cache.dir, '/var/lib/edgeboot/cache', 'and the cache');
  t.equal(one(service, 'WorkingDirectory'), '/var/lib/edgeboot', 'a relative path lands there too');
  const readOnly = words('ReadOnlyPaths').map((p) => p.replace(/^-/, ''));
  for (const root of config.tftp.roots) t.ok(readOnly.includes(root), `the default TFTP root ${root} is a ReadOnlyPaths entry`);
  t.same(service.get('EnvironmentFile'), ['-/etc/edgeboot/edgeboot.env'], 'site settings from /etc/edgeboot/edgeboot.env, if present');
  // The example env file only holds comments and variables `edgeboot serve` reads.
  known.add('EDGEBOOT_CONFIG');
  for (const line of readFileSync(ENV_FILE, 'utf8').split('\n')) {
    const m = /^#?(EDGEBOOT_[A-Z_]+)=/.exec(line);
    if (m) t.ok(known.has(m[1] as string), `the example's ${m[1]} is read by edgeboot serve`);
    else t.ok(line === '' || line.startsWith('#'), `the example's line "${line}" is a comment`);
  }
});

t.test('systemd-sysusers creates the service user from the shipped file', async (t) => {
  requireTool('systemd-sysusers');
  const root = mkdtempSync(join(tmpdir(), 'edgeboot-sysusers-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  mkdirSync(join(root, 'etc'));
  execFileSync('systemd-sysusers', [`--root=${root}`, SYSUSERS_FILE], { encoding: 'utf8', timeout: 30_000, stdio: ['ignore', 'pipe', 'pipe'] });
  const passwd = readFileSync(join(root, 'etc/passwd'), 'utf8');
  t.match(
    passwd,
    /^edgeboot:x:[0-9]+:[0-9]+:[^:]*:\/var\/lib\/edgeboot:\/usr\/sbin\/nologin$/m,
    'a system user edgeboot, home /var/lib/edgeboot, no login shell',
  );
  t.match(readFileSync(join(root, 'etc/group'), 'utf8'), /^edgeboot:x:[0-9]+:/m, 'and its group');
});

t.test('the package ships deploy/', async (t) => {
  const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { files: string[] };
  t.ok(pkg.files.includes('deploy'), 'package.json "files" lists deploy');
});

t.test('the test supervisor restarts as the unit says (Restart=on-failure, systemd.service(5))', async (t) => {
  const policy = policyFromUnit();
  t.same(
    policy,
    { restartDelayMs: 2_000, preventExitStatus: [2], startLimitBurst: 10, startLimitIntervalMs: 300_000 },
    'RestartSec, RestartPreventExitStatus and the start limit of the unit',
  );
  const now = 1_000_000;
  const once = [now - 60_000];
  t.same(restartDecision({ code: null, signal: 'SIGKILL' }, once, now, policy), { restart: true }, 'killed by SIGKILL: restarted');
  t.same(restartDecision({ code: null, signal: 'SIGABRT' }, once, now, policy), { restart: true }, 'aborted: restarted');
  t.same(restartDecision({ code: 1, signal: null }, once, now, policy), { restart: true }, 'exit 1 (an uncaught exception): restarted');
  t.match(restartDecision({ code: 0, signal: null }, once, now, policy), { restart: false }, 'exit 0: not restarted');
  t.match(restartDecision({ code: null, signal: 'SIGTERM' }, once, now, policy), { restart: false }, 'SIGTERM (systemctl stop): not restarted');
  t.match(
    restartDecision({ code: 2, signal: null }, once, now, policy),
    { restart: false, reason: /RestartPreventExitStatus/ },
    'exit 2 (a config error): not restarted',
  );
  const burst = Array.from({ length: 10 }, (_, i) => now - 10_000 * i);
  t.match(
    restartDecision({ code: 1, signal: null }, burst, now, policy),
    { restart: false, reason: /start limit/ },
    '10 starts in 5 minutes: the start limit stops it',
  );
  const spread = Array.from({ length: 10 }, (_, i) => now - 60_000 * i);
  t.same(restartDecision({ code: 1, signal: null }, spread, now, policy), { restart: true }, '10 starts over 9 minutes: restarted');
});
