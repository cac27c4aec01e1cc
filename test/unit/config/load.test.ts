import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import t, { type Test } from 'tap';
import { ConfigError } from '../../../src/config/config.js';
import { checkConfig, CONFIG_KEYS, loadConfig, parseByteSize, parseListen, upperSnake, type LoadOptions } from '../../../src/config/load.js';

/** The TFTP defaults beyond listen and roots. */
const TFTP_TUNING = { maxBlockSize: 1468, maxWindowSize: 64, timeoutSeconds: 1, retries: 5, maxTransfers: 512, maxTransfersPerClient: 16 };

type RawDoc = Parameters<typeof checkConfig>[0];

const dir = mkdtempSync(join(tmpdir(), 'edgeboot-config-test-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
let fileCount = 0;
/** Writes a config file into the temporary folder and returns its path. */
function writeConfig(text: string, ext = '.yaml'): string {
  const file = join(dir, `config-${++fileCount}${ext}`);
  writeFileSync(file, text);
  return file;
}

/** The ConfigError `fn` throws; fails the test if it throws nothing or something else. */
function configErrorOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw new Error(`expected a ConfigError, got ${String(err)}`, { cause: err });
  }
  throw new Error('expected a ConfigError, nothing was thrown');
}
const loadError = (opts: LoadOptions) => configErrorOf(() => loadConfig(opts));

/** Asserts one problem line holds every fragment, and that the message carries that line too. */
function hasProblem(t: Test, err: ConfigError, fragments: string[], what: string): void {
  const line = err.problems.find((p) => fragments.every((f) => p.includes(f)));
  t.ok(line, `${what}: a problem mentions ${fragments.map((f) => JSON.stringify(f)).join(' and ')} (got ${JSON.stringify(err.problems)})`);
  if (line) t.ok(err.message.includes(line), `${what}: the message includes that problem`);
}

const BMC_DEFAULTS = { pollSeconds: 60, bootTimeoutSeconds: 600, maxRetries: 2, parallel: 16, requestTimeoutSeconds: 15, bootTarget: 'pxe' };

t.test('embedded defaults', async (t) => {
  const { config, warnings } = loadConfig();
  t.same(warnings, []);
  t.same(config.server, { advertiseAddress: 'auto', dataDir: resolve('var') }, './var, resolved against the working directory');
  t.same(config.http.listen, { host: '0.0.0.0', port: 8080 });
  t.same(config.tftp, { enabled: true, listen: { host: '0.0.0.0', port: 69 }, roots: ['/usr/lib/ipxe'], ...TFTP_TUNING });
  t.equal(config.dhcp.mode, 'proxy');
  t.same(config.dhcp.interfaces, []);
  t.equal(config.dhcp.proxyPort, 4011);
  t.equal(config.dhcp.listenPort, 67);
  t.equal(config.dhcp.pxeLeaseSeconds, 600);
  t.equal(config.dhcp.declineSeconds, 600);
  t.equal(config.dhcp.efiBinary, 'ipxe.efi');
  t.same(config.dhcp.subnets, [
    { cidr: '10.77.0.0/24', pool: ['10.77.0.100', '10.77.0.199'], router: '10.77.0.1', dns: ['10.77.0.1'], domain: 'lab.example', leaseSeconds: 3600 },
  ]);
  t.equal(config.store.url, `sqlite:${resolve('var/edgeboot.db')}`);
  t.same(config.cache, { dir: resolve('var/cache'), maxBytes: 214748364800, maxTransfers: 0, largeBytes: 64 * 2 ** 20, retryAfterSeconds: 10, clientRate: 0 });
  t.equal(config.cache.maxBytes, 200 * 2 ** 30, '200GiB');
  const { allowedUpstreams, ...registry } = config.registry;
  t.same(registry, { pullSecret: '', insecureRegistries: [], pullThrough: true, readTokens: [], upstreams: {} });
  t.ok(
    allowedUpstreams.includes('quay.io/openshift-release-dev') && allowedUpstreams.includes('registry.redhat.io/multicluster-engine'),
    'the OpenShift release and MCE upstreams by default',
  );
  t.same(
    config.auth,
    { adminTokens: [], viewerTokens: [], sessionHours: 12, secretKeyFile: resolve('var/secret.key') },
    'no viewer token, 12-hour dashboard logins, the secret key beside the database by default',
  );
  t.same(config.bmc, BMC_DEFAULTS, 'no caFile when none is set');
  t.same(config.profiles, { dirs: [] });
  t.equal(config.boot.unknownMachines, 'exit');
  t.equal(config.boot.recheckSeconds, 30);
  t.equal(config.log.level, 'info');
  t.same(loadConfig({}).config, config, 'no options and empty options agree');
  t.same(loadConfig({ env: {}, sets: [] }).config, config, 'empty env and sets change nothing');
});

t.test('bmc and auth.secretKeyFile: environment names, paths resolved, bounds and words checked', async (t) => {
  const { config } = loadConfig({
    env: {
      EDGEBOOT_SERVER_DATA_DIR: '/srv/e',
      EDGEBOOT_BMC_PARALLEL: '64',
      EDGEBOOT_BMC_BOOT_TIMEOUT_SECONDS: '900',
      EDGEBOOT_BMC_BOOT_TARGET: 'uefi-http',
      EDGEBOOT_BMC_CA_FILE: '<dataDir>/bmc-ca.pem',
      EDGEBOOT_AUTH_SECRET_KEY_FILE: 'keys/edgeboot.key',
    },
  });
  t.same(config.bmc, { ...BMC_DEFAULTS, parallel: 64, bootTimeoutSeconds: 900, bootTarget: 'uefi-http', caFile: '/srv/e/bmc-ca.pem' });
  t.equal(config.auth.secretKeyFile, resolve('keys/edgeboot.key'), 'a relative path against the working directory');
  t.equal(loadConfig({ env: { EDGEBOOT_SERVER_DATA_DIR: '/srv/e' } }).config.auth.secretKeyFile, '/srv/e/secret.key', 'the default follows the data dir');
  const err = loadError({
    env: { EDGEBOOT_BMC_PARALLEL: '0', EDGEBOOT_BMC_POLL_SECONDS: '1', EDGEBOOT_BMC_MAX_RETRIES: '11', EDGEBOOT_BMC_BOOT_TARGET: 'http' },
    sets: ['bmc.requestTimeoutSeconds=301'],
  });
  hasProblem(t, err, ['bmc.parallel', 'got 0', 'concurrent BMC sessions, 1 to 512'], 'parallel');
  hasProblem(t, err, ['bmc.pollSeconds', 'got 1', 'at least 5'], 'pollSeconds');
  hasProblem(t, err, ['bmc.maxRetries', 'got 11', '0 to 10'], 'maxRetries');
  hasProblem(t, err, ['bmc.bootTarget', '"http"', 'pxe (BootSourceOverrideTarget Pxe)'], 'bootTarget');
  hasProblem(t, err, ['bmc.requestTimeoutSeconds', 'got 301', '1 to 300'], 'requestTimeoutSeconds');
});

t.test('defaults are fresh for every load', async (t) => {
  const first = loadConfig().config;
  first.tftp.roots.push('/mutated');
  const subnet = first.dhcp.subnets[0];
  if (subnet) subnet.cidr = '192.0.2.0/24';
  first.dhcp.interfaces.push('eth9');
  const second = loadConfig().config;
  t.same(second.tftp.roots, ['/usr/lib/ipxe']);
  t.equal(second.dhcp.subnets[0]?.cidr, '10.77.0.0/24');
  t.same(second.dhcp.interfaces, []);
});

t.test('CONFIG_KEYS: every section.key with its EDGEBOOT_ variable', async (t) => {
  const byPath = new Map(CONFIG_KEYS.map((k) => [k.path, k.env]));
  t.equal(byPath.size, CONFIG_KEYS.length, 'paths are unique');
  t.equal(new Set(CONFIG_KEYS.map((k) => k.env)).size, CONFIG_KEYS.length, 'variable names are unique');
  const expected: Record<string, string> = {
    'server.advertiseAddress': 'EDGEBOOT_SERVER_ADVERTISE_ADDRESS',
    'server.dataDir': 'EDGEBOOT_SERVER_DATA_DIR',
    'http.listen': 'EDGEBOOT_HTTP_LISTEN',
    'tftp.listen': 'EDGEBOOT_TFTP_LISTEN',
    'tftp.roots': 'EDGEBOOT_TFTP_ROOTS',
    'tftp.maxWindowSize': 'EDGEBOOT_TFTP_MAX_WINDOW_SIZE',
    'tftp.maxTransfersPerClient': 'EDGEBOOT_TFTP_MAX_TRANSFERS_PER_CLIENT',
    'dhcp.mode': 'EDGEBOOT_DHCP_MODE',
    'dhcp.interfaces': 'EDGEBOOT_DHCP_INTERFACES',
    'dhcp.proxyPort': 'EDGEBOOT_DHCP_PROXY_PORT',
    'dhcp.subnets': 'EDGEBOOT_DHCP_SUBNETS',
    'store.url': 'EDGEBOOT_STORE_URL',
    'cache.dir': 'EDGEBOOT_CACHE_DIR',
    'cache.maxBytes': 'EDGEBOOT_CACHE_MAX_BYTES',
    'registry.pullSecret': 'EDGEBOOT_REGISTRY_PULL_SECRET',
    'registry.insecureRegistries': 'EDGEBOOT_REGISTRY_INSECURE_REGISTRIES',
    'registry.allowedUpstreams': 'EDGEBOOT_REGISTRY_ALLOWED_UPSTREAMS',
    'auth.adminTokens': 'EDGEBOOT_AUTH_ADMIN_TOKENS',
    'auth.viewerTokens': 'EDGEBOOT_AUTH_VIEWER_TOKENS',
    'auth.sessionHours': 'EDGEBOOT_AUTH_SESSION_HOURS',
    'profiles.dirs': 'EDGEBOOT_PROFILES_DIRS',
    'boot.unknownMachines': 'EDGEBOOT_BOOT_UNKNOWN_MACHINES',
    'precache.installReserveGiB': 'EDGEBOOT_PRECACHE_INSTALL_RESERVE_GIB',
    'auth.secretKeyFile': 'EDGEBOOT_AUTH_SECRET_KEY_FILE',
    'bmc.parallel': 'EDGEBOOT_BMC_PARALLEL',
    'bmc.bootTimeoutSeconds': 'EDGEBOOT_BMC_BOOT_TIMEOUT_SECONDS',
    'bmc.caFile': 'EDGEBOOT_BMC_CA_FILE',
  };
  for (const [path, env] of Object.entries(expected)) t.equal(byPath.get(path), env, path);
  for (const k of CONFIG_KEYS) {
    t.equal(k.path, `${k.section}.${k.key}`, `${k.path} is section.key`);
    t.ok(k.schema.description, `${k.path} has a description for --help and errors`);
    // A one-letter word (…_GI_B) is an acronym or a unit cut in two.
    t.notMatch(k.env, /(^|_)[A-Z0-9](_|$)/, `${k.env} has no word of one letter`);
  }
});

t.test('upperSnake keeps units and acronyms whole', async (t) => {
  const cases: Record<string, string> = {
    installReserveGiB: 'INSTALL_RESERVE_GIB',
    sizeMiB: 'SIZE_MIB',
    maxTransfersPerClient: 'MAX_TRANSFERS_PER_CLIENT',
    ipxeScriptURL: 'IPXE_SCRIPT_URL',
    pxeURLPrefix: 'PXE_URL_PREFIX',
    hostId: 'HOST_ID',
    ipv4Address: 'IPV4_ADDRESS',
    giBytes: 'GI_BYTES',
    dataDir: 'DATA_DIR',
  };
  for (const [key, env] of Object.entries(cases)) t.equal(upperSnake(key), env, key);
});

t.test('the old spelling of a variable still works, with a deprecation warning', async (t) => {
  const { config, warnings, explicit } = loadConfig({ env: { EDGEBOOT_PRECACHE_INSTALL_RESERVE_GI_B: '80' } });
  t.equal(config.precache.installReserveGiB, 80, 'the value is taken');
  t.ok(explicit.has('precache.installReserveGiB'), 'and counts as set');
  t.same(warnings, [
    'EDGEBOOT_PRECACHE_INSTALL_RESERVE_GI_B is deprecated: it is spelt EDGEBOOT_PRECACHE_INSTALL_RESERVE_GIB now (for precache.installReserveGiB)',
  ]);
  const strict = loadConfig({ env: { EDGEBOOT_PRECACHE_INSTALL_RESERVE_GI_B: '80' }, strictEnv: true });
  t.equal(strict.warnings.length, 1, 'a warning in config check too, not an error');
  const both = loadConfig({ env: { EDGEBOOT_PRECACHE_INSTALL_RESERVE_GIB: '90' } });
  t.same(both.warnings, [], 'the new spelling warns of nothing');
  t.equal(both.config.precache.installReserveGiB, 90);
});

t.test('a YAML file', async (t) => {
  const file = writeConfig(
    [
      'server: { dataDir: /srv/edgeboot, advertiseAddress: 10.77.0.2 }',
      'http:',
      '  listen: 127.0.0.1:9090',
      'tftp: { roots: [/a, /b] }',
      'dhcp:',
      '  mode: full',
      '  interfaces: [eth1]',
      '  subnets:',
      '    - { cidr: 10.9.0.0/16, router: 10.9.0.1 }',
      'cache: { maxBytes: 512MiB }',
      'boot: { unknownMachines: wait }',
      '',
    ].join('\n'),
  );
  const { config, warnings } = loadConfig({ file });
  t.same(warnings, []);
  t.same(config.server, { dataDir: '/srv/edgeboot', advertiseAddress: '10.77.0.2' });
  t.same(config.http.listen, { host: '127.0.0.1', port: 9090 });
  t.same(
    config.tftp,
    { enabled: true, listen: { host: '0.0.0.0', port: 69 }, roots: ['/a', '/b'], ...TFTP_TUNING },
    'unset keys of a section keep their defaults',
  );
  t.equal(config.dhcp.mode, 'full');
  t.same(config.dhcp.interfaces, ['eth1']);
  t.equal(config.dhcp.proxyPort, 4011);
  t.same(config.dhcp.subnets, [{ cidr: '10.9.0.0/16', router: '10.9.0.1', leaseSeconds: 3600 }], 'subnet defaults are filled in');
  t.equal(config.cache.maxBytes, 512 * 2 ** 20);
  t.equal(config.cache.dir, '/srv/edgeboot/cache', 'the default cache dir follows server.dataDir');
  t.equal(config.boot.unknownMachines, 'wait');
  t.equal(config.store.url, 'sqlite:/srv/edgeboot/edgeboot.db', 'an absent section keeps its default, under server.dataDir');
});

t.test('a JSON file, a .yml file and an empty file', async (t) => {
  const json = writeConfig(JSON.stringify({ http: { listen: '[::]:8443' }, dhcp: { mode: 'off', proxyPort: 4012 }, cache: { maxBytes: 1000 } }), '.json');
  const { config } = loadConfig({ file: json });
  t.same(config.http.listen, { host: '::', port: 8443 });
  t.equal(config.dhcp.mode, 'off');
  t.equal(config.dhcp.proxyPort, 4012);
  t.equal(config.cache.maxBytes, 1000);

  const yml = writeConfig('store:\n  url: postgres://edgeboot@db/edgeboot\n', '.yml');
  t.equal(loadConfig({ file: yml }).config.store.url, 'postgres://edgeboot@db/edgeboot');

  const empty = writeConfig('');
  t.same(loadConfig({ file: empty }).config, loadConfig().config, 'an empty file means the defaults');
  const comments = writeConfig('# nothing but a comment\n');
  t.same(loadConfig({ file: comments }).config, loadConfig().config, 'a file of comments means the defaults');
});

t.test('environment overrides', async (t) => {
  const env = {
    EDGEBOOT_HTTP_LISTEN: '127.0.0.1:18080',
    EDGEBOOT_SERVER_DATA_DIR: '/var/lib/edgeboot',
    EDGEBOOT_DHCP_MODE: 'full',
    EDGEBOOT_TFTP_ROOTS: 'a,b',
    EDGEBOOT_DHCP_INTERFACES: ' eth0 , eth1 ',
    EDGEBOOT_DHCP_PROXY_PORT: '4012',
    EDGEBOOT_DHCP_SUBNETS: JSON.stringify([{ cidr: '192.168.50.0/24', pool: ['192.168.50.10', '192.168.50.20'], dns: ['192.168.50.1'] }]),
    EDGEBOOT_CACHE_MAX_BYTES: '1048576',
    EDGEBOOT_BOOT_UNKNOWN_MACHINES: 'rhcos-live',
    EDGEBOOT_AUTH_ADMIN_TOKENS: 'aaaaaaaaaaaaaaaa,bbbbbbbbbbbbbbbb',
    EDGEBOOT_AUTH_VIEWER_TOKENS: 'cccccccccccccccc, dddddddddddddddd',
    EDGEBOOT_AUTH_SESSION_HOURS: '8',
    PATH: '/usr/bin',
    HOME: '/root',
  };
  const { config, warnings } = loadConfig({ env });
  t.same(warnings, [], 'every variable is known; non-EDGEBOOT_ variables are not looked at');
  t.same(config.http.listen, { host: '127.0.0.1', port: 18080 });
  t.equal(config.server.dataDir, '/var/lib/edgeboot');
  t.equal(config.dhcp.mode, 'full');
  t.same(config.tftp.roots, ['a', 'b'], 'lists are comma-separated');
  t.same(config.dhcp.interfaces, ['eth0', 'eth1'], 'list items are trimmed');
  t.same(config.auth.viewerTokens, ['cccccccccccccccc', 'dddddddddddddddd'], 'viewer tokens, comma-separated');
  t.equal(config.auth.sessionHours, 8);
  t.equal(config.dhcp.proxyPort, 4012);
  t.equal(typeof config.dhcp.proxyPort, 'number', 'integers arrive as numbers');
  t.same(config.dhcp.subnets, [{ cidr: '192.168.50.0/24', pool: ['192.168.50.10', '192.168.50.20'], dns: ['192.168.50.1'], leaseSeconds: 3600 }]);
  t.equal(config.cache.maxBytes, 1048576);
  t.same(config.boot.unknownMachines, { profile: 'rhcos-live' }, 'a profile name');
  t.same(config.auth.adminTokens, ['aaaaaaaaaaaaaaaa', 'bbbbbbbbbbbbbbbb']);

  t.equal(loadConfig({ env: { EDGEBOOT_CACHE_MAX_BYTES: '5GiB' } }).config.cache.maxBytes, 5 * 2 ** 30, 'a size with a unit');
  t.same(loadConfig({ env: { EDGEBOOT_TFTP_ROOTS: '' } }).config.tftp.roots, [], 'an empty list');
  t.equal(loadConfig({ env: { EDGEBOOT_BOOT_UNKNOWN_MACHINES: 'wait' } }).config.boot.unknownMachines, 'wait');
  t.equal(loadConfig({ env: { EDGEBOOT_BOOT_UNKNOWN_MACHINES: 'exit' } }).config.boot.unknownMachines, 'exit');
  t.equal(loadConfig({ env: { EDGEBOOT_HTTP_LISTEN: undefined } }).config.http.listen.port, 8080, 'an unset variable is skipped');
});

t.test('boot.unknownMachines from a file', async (t) => {
  t.same(loadConfig({ file: writeConfig('boot: { unknownMachines: x }') }).config.boot.unknownMachines, { profile: 'x' });
  t.equal(loadConfig({ file: writeConfig('boot: { unknownMachines: exit }') }).config.boot.unknownMachines, 'exit');
});

t.test('default paths follow server.dataDir; explicit values win', async (t) => {
  const moved = loadConfig({ env: { EDGEBOOT_SERVER_DATA_DIR: '/var/lib/edgeboot' } }).config;
  t.equal(moved.server.dataDir, '/var/lib/edgeboot');
  t.equal(moved.store.url, 'sqlite:/var/lib/edgeboot/edgeboot.db', 'EDGEBOOT_SERVER_DATA_DIR alone moves the database');
  t.equal(moved.cache.dir, '/var/lib/edgeboot/cache', 'and the cache');
  const relative = loadConfig({ sets: ['server.dataDir=data/here'] }).config;
  t.equal(relative.server.dataDir, resolve('data/here'), 'a relative data dir is made absolute');
  t.equal(relative.store.url, `sqlite:${resolve('data/here/edgeboot.db')}`);
  const file = writeConfig('server: { dataDir: /srv/e }\nstore: { url: "sqlite:/db/elsewhere.db" }\ncache: { dir: scratch/cache }\n');
  const explicit = loadConfig({ file }).config;
  t.equal(explicit.store.url, 'sqlite:/db/elsewhere.db', 'an explicit store.url wins');
  t.equal(explicit.cache.dir, resolve('scratch/cache'), 'an explicit cache.dir wins (relative: to the working directory)');
  t.equal(
    loadConfig({ env: { EDGEBOOT_SERVER_DATA_DIR: '/srv/e', EDGEBOOT_CACHE_DIR: '<dataDir>/big-cache' } }).config.cache.dir,
    '/srv/e/big-cache',
    '<dataDir> in an explicit value',
  );
  t.equal(
    loadConfig({ env: { EDGEBOOT_SERVER_DATA_DIR: '/srv/e', EDGEBOOT_STORE_URL: 'postgres://edge@db/edge' } }).config.store.url,
    'postgres://edge@db/edge',
    'a postgres URL is left as it is',
  );
});

t.test('precedence: defaults < file < environment < --set', async (t) => {
  const file = writeConfig('http: { listen: 10.0.0.1:1001 }\ndhcp: { mode: off }\nserver: { dataDir: /from-file }\n');
  const env = { EDGEBOOT_HTTP_LISTEN: '10.0.0.2:1002', EDGEBOOT_SERVER_DATA_DIR: '/from-env' };
  const sets = ['http.listen=10.0.0.3:1003'];

  t.same(loadConfig({}).config.http.listen, { host: '0.0.0.0', port: 8080 }, 'defaults');
  const fromFile = loadConfig({ file }).config;
  t.same(fromFile.http.listen, { host: '10.0.0.1', port: 1001 }, 'file over defaults');

  const fromEnv = loadConfig({ file, env }).config;
  t.same(fromEnv.http.listen, { host: '10.0.0.2', port: 1002 }, 'environment over file');
  t.equal(fromEnv.server.dataDir, '/from-env');
  t.equal(fromEnv.dhcp.mode, 'off', 'file keys the environment does not name stay');

  const fromSet = loadConfig({ file, env, sets }).config;
  t.same(fromSet.http.listen, { host: '10.0.0.3', port: 1003 }, '--set over environment');
  t.equal(fromSet.server.dataDir, '/from-env', 'environment keys --set does not name stay');
  t.equal(fromSet.dhcp.mode, 'off');

  t.same(loadConfig({ env, sets }).config.http.listen, { host: '10.0.0.3', port: 1003 }, '--set over environment, no file');
  t.equal(loadConfig({ sets: ['dhcp.mode=full', 'dhcp.mode=off'] }).config.dhcp.mode, 'off', 'the last --set wins');
  t.equal(loadConfig({ sets: ['store.url=sqlite:/x=y.db'] }).config.store.url, 'sqlite:/x=y.db', 'only the first = splits');
  t.equal(loadConfig({ sets: ['dhcp.proxyPort=5000'] }).config.dhcp.proxyPort, 5000, '--set converts like the environment');
});

t.test('explicit: the keys the file, the environment and --set named', async (t) => {
  t.same([...loadConfig().explicit], [], 'embedded defaults: nothing explicit');
  t.same([...loadConfig({ env: { EDGEBOOT_URL: 'http://x', EDGEBOOT_TOKEN: 't', PATH: '/bin' } }).explicit], [], 'client and foreign variables are no keys');
  const file = writeConfig(['http: { listen: 127.0.0.1:9000 }', 'dhcp:', '  mode: full', '  interfaces: [eth1]', 'tftp: {}', ''].join('\n'));
  const { explicit } = loadConfig({ file, env: { EDGEBOOT_TFTP_LISTEN: '127.0.0.1:6969' }, sets: ['cache.maxBytes=1GiB'] });
  t.same([...explicit].sort(), ['cache.maxBytes', 'dhcp.interfaces', 'dhcp.mode', 'http.listen', 'tftp.listen'].sort());
  t.notOk(explicit.has('tftp.roots'), 'an empty file section sets no key');
  t.notOk(explicit.has('dhcp.proxyPort'), 'a key of a named section left out stays on its default');
  t.ok(loadConfig({ sets: ['http.listen=0.0.0.0:8080'] }).explicit.has('http.listen'), 'a key set to its default value is still explicit');
});

t.test('unknown EDGEBOOT_ variables warn; the client ones do not', async (t) => {
  const { config, warnings } = loadConfig({
    env: { EDGEBOOT_HTTP_LISTN: '1.2.3.4:5', EDGEBOOT_URL: 'http://127.0.0.1:8080', EDGEBOOT_TOKEN: 'secret', EDGEBOOT_CONFIG: '/etc/edgeboot.yaml' },
  });
  t.equal(warnings.length, 1, JSON.stringify(warnings));
  t.match(warnings[0], 'EDGEBOOT_HTTP_LISTN');
  t.match(warnings[0], 'no such config key');
  t.match(warnings[0], 'did you mean EDGEBOOT_HTTP_LISTEN?');
  t.equal(config.http.listen.port, 8080, 'the misspelt variable changes nothing');
  t.same(loadConfig({ env: { EDGEBOOT_URL: 'http://x', EDGEBOOT_TOKEN: 't' } }).warnings, []);
});

t.test('strictEnv (config check): an unknown EDGEBOOT_ variable is an error with a did-you-mean', async (t) => {
  const err = loadError({ env: { EDGEBOOT_DHCP_MOED: 'full' }, strictEnv: true });
  t.same(err.problems, ['EDGEBOOT_DHCP_MOED: no such config key; did you mean EDGEBOOT_DHCP_MODE? (see edgeboot serve --help)']);
  const far = loadError({ env: { EDGEBOOT_WHATEVER_ELSE_ENTIRELY: '1' }, strictEnv: true });
  t.same(far.problems, ['EDGEBOOT_WHATEVER_ELSE_ENTIRELY: no such config key (see edgeboot serve --help)'], 'no guess when nothing is near');
  const warned = loadConfig({ env: { EDGEBOOT_DHCP_MOED: 'full' } });
  const serveWarning = 'ignoring EDGEBOOT_DHCP_MOED: no such config key; did you mean EDGEBOOT_DHCP_MODE? (see edgeboot serve --help)';
  t.same(warned.warnings, [serveWarning], 'serve: the same words as a warning');
  const client = loadConfig({ env: { EDGEBOOT_URL: 'http://x', EDGEBOOT_TOKEN: 't', EDGEBOOT_CONFIG: '/etc/e.yaml' }, strictEnv: true });
  t.same(client.warnings, [], 'the client variables are never reported');
  hasProblem(t, loadError({ sets: ['http.listn=127.0.0.1:1'] }), ['--set http.listn=127.0.0.1:1', 'did you mean http.listen?'], '--set guesses too');
});

t.test('a secret config show cut is refused, naming the key', async (t) => {
  const file = writeConfig(
    [
      'auth: { adminTokens: [aaaaaaaaaaaaaaaaaaaa, "*redacted*"] }',
      'registry: { pullSecret: "*redacted*" }',
      'store: { url: "postgres://*redacted*@db/edgeboot" }',
      '',
    ].join('\n'),
  );
  const err = loadError({ file });
  t.equal(err.problems.length, 3, JSON.stringify(err.problems));
  for (const key of ['auth.adminTokens[1]', 'registry.pullSecret', 'store.url']) {
    hasProblem(t, err, [`${key}: got the placeholder *redacted*`, 'the real value'], key);
  }
  t.notOk(
    err.problems.some((p) => p.includes('at least 16')),
    'no second line from the token pattern',
  );
});

t.test('errors name the key, the value and what was expected', async (t) => {
  t.test('http.listen: nope', async (t) => {
    const err = loadError({ file: writeConfig('http:\n  listen: nope\n') });
    hasProblem(t, err, ['http.listen', '"nope"', 'host:port'], 'bad listen');
    t.equal(err.problems.length, 1);
    t.match(err.message, /^invalid configuration \(.*config-\d+\.yaml\)/, 'the message names the file');
  });
  t.test('dhcp.mode: fast', async (t) => {
    const err = loadError({ file: writeConfig('dhcp: { mode: fast }\n') });
    hasProblem(t, err, ['dhcp.mode', '"fast"', 'off, proxy, full'], 'bad mode');
    t.equal(err.problems.length, 1);
  });
  t.test('an unknown key lists the known ones', async (t) => {
    const err = loadError({ file: writeConfig('http: { lisen: 0.0.0.0:80 }\n') });
    hasProblem(t, err, ['http.lisen', 'unknown key', 'listen'], 'http.lisen');
    const err2 = loadError({ file: writeConfig('dhcp: { mood: full }\n') });
    hasProblem(
      t,
      err2,
      ['dhcp.mood', 'unknown key', 'mode, interfaces, proxyPort, listenPort, pxeLeaseSeconds, declineSeconds, efiBinary, subnets'],
      'dhcp.mood',
    );
  });
  t.test('an unknown section lists the sections', async (t) => {
    const err = loadError({ file: writeConfig('htp: { listen: 0.0.0.0:80 }\n') });
    hasProblem(t, err, ['htp', 'unknown key', 'server, http, tftp, dhcp, store, cache, registry, auth, profiles, boot, precache, bmc, log'], 'htp');
  });
  t.test('a wrong type from a file', async (t) => {
    const err = loadError({ file: writeConfig('dhcp:\n  proxyPort: "x"\n') });
    hasProblem(t, err, ['dhcp.proxyPort', '"x"', 'a UDP port number'], 'proxyPort "x"');
    const err2 = loadError({ file: writeConfig('tftp: { roots: /usr/lib/ipxe }\n') });
    hasProblem(t, err2, ['tftp.roots', '"/usr/lib/ipxe"', 'a list of directories'], 'a string for a list');
    const err3 = loadError({ file: writeConfig('http: 8080\n') });
    hasProblem(t, err3, ['http', '8080'], 'a number for a section');
  });
  t.test('a bad size', async (t) => {
    const err = loadError({ file: writeConfig('cache: { maxBytes: 12 parsecs }\n') });
    hasProblem(t, err, ['cache.maxBytes', '"12 parsecs"', '200GiB'], 'parsecs');
    t.equal(err.problems.length, 1, 'one line for the oneOf, not one per branch');
    const err2 = loadError({ file: writeConfig('cache: { maxBytes: -5 }\n') });
    hasProblem(t, err2, ['cache.maxBytes', '-5', 'a byte count'], 'negative');
  });
  t.test('errors inside a list name the item', async (t) => {
    const err = loadError({ file: writeConfig('dhcp:\n  subnets:\n    - { cidr: 10.0.0.0/8, router: 10.0.0.300 }\n') });
    hasProblem(t, err, ['dhcp.subnets[0].router', '"10.0.0.300"', 'an IPv4 address'], 'bad router');
    const err2 = loadError({ file: writeConfig('auth: { adminTokens: [short] }\n') });
    hasProblem(t, err2, ['auth.adminTokens[0]', '"short"'], 'short token');
  });
  t.test('errors from the environment and --set', async (t) => {
    hasProblem(t, loadError({ env: { EDGEBOOT_DHCP_MODE: 'fast' } }), ['dhcp.mode', '"fast"', 'off, proxy, full'], 'env mode');
    hasProblem(t, loadError({ env: { EDGEBOOT_DHCP_PROXY_PORT: 'abc' } }), ['dhcp.proxyPort', '"abc"', 'a UDP port number'], 'env port');
    hasProblem(t, loadError({ env: { EDGEBOOT_DHCP_SUBNETS: '[{cidr:' } }), ['EDGEBOOT_DHCP_SUBNETS', '"[{cidr:"', 'expected JSON'], 'env JSON');
    hasProblem(t, loadError({ sets: ['http.lisen=0.0.0.0:1'] }), ['--set http.lisen=0.0.0.0:1', 'known key'], 'unknown --set key');
    hasProblem(t, loadError({ sets: ['http.listen'] }), ['--set http.listen', 'section.key=value'], '--set without =');
    hasProblem(t, loadError({ sets: ['=x'] }), ['--set =x', 'section.key=value'], '--set without a key');
    hasProblem(t, loadError({ sets: ['http.listen=nope'] }), ['http.listen', '"nope"', 'host:port'], '--set bad value');
  });
});

t.test('file errors name the file', async (t) => {
  t.test('a YAML syntax error', async (t) => {
    const file = writeConfig('http:\n  listen: [0.0.0.0:8080\n');
    const err = loadError({ file });
    hasProblem(t, err, [`cannot parse ${file}`], 'YAML');
  });
  t.test('a JSON syntax error', async (t) => {
    const file = writeConfig('{ "http": ', '.json');
    hasProblem(t, loadError({ file }), [`cannot parse ${file}`], 'JSON');
  });
  t.test('a missing file', async (t) => {
    const file = join(dir, 'does-not-exist.yaml');
    const err = loadError({ file });
    hasProblem(t, err, [`cannot read ${file}`, 'ENOENT'], 'missing');
    t.ok(err.message.includes(`(${file})`), 'the heading names the file');
  });
  t.test('a top-level list or scalar is refused', async (t) => {
    const list = writeConfig('- http\n- dhcp\n');
    hasProblem(t, loadError({ file: list }), ['top level must be a mapping', '["http","dhcp"]'], 'list');
    const scalar = writeConfig('just text\n');
    hasProblem(t, loadError({ file: scalar }), ['top level must be a mapping', '"just text"'], 'scalar');
    const jsonList = writeConfig('[1, 2]', '.json');
    hasProblem(t, loadError({ file: jsonList }), ['top level must be a mapping', '[1,2]'], 'JSON list');
  });
});

t.test('several problems at once are all reported', async (t) => {
  const file = writeConfig(['http: { listen: nope }', 'dhcp: { mode: fast, proxyPort: "x" }', 'cache: { maxBytes: 12 parsecs }', 'htp: {}', ''].join('\n'));
  const err = loadError({ file });
  hasProblem(t, err, ['http.listen', '"nope"'], 'listen');
  hasProblem(t, err, ['dhcp.mode', '"fast"'], 'mode');
  hasProblem(t, err, ['dhcp.proxyPort', '"x"'], 'proxyPort');
  hasProblem(t, err, ['cache.maxBytes', '"12 parsecs"'], 'maxBytes');
  hasProblem(t, err, ['htp', 'unknown key'], 'section');
  t.equal(err.problems.length, 5, JSON.stringify(err.problems));

  t.test('with problems from the environment and --set as well', async (t) => {
    const err = loadError({ file, env: { EDGEBOOT_DHCP_SUBNETS: 'not json', EDGEBOOT_STORE_URL: 'mysql://x' }, sets: ['nokey=1'] });
    hasProblem(t, err, ['EDGEBOOT_DHCP_SUBNETS', 'expected JSON'], 'env JSON');
    hasProblem(t, err, ['--set nokey=1'], 'bad --set');
    hasProblem(t, err, ['store.url', '"mysql://x"', 'sqlite:<path>'], 'env value');
    hasProblem(t, err, ['http.listen', '"nope"'], 'file value');
    hasProblem(t, err, ['htp', 'unknown key'], 'file section');
    t.equal(err.problems.length, 8, JSON.stringify(err.problems));
  });
});

t.test('listen ports stop at 65535', async (t) => {
  hasProblem(t, loadError({ file: writeConfig('http: { listen: 0.0.0.0:99999 }\n') }), ['http.listen', '"0.0.0.0:99999"', 'host:port', '65535'], 'file, http');
  hasProblem(t, loadError({ env: { EDGEBOOT_TFTP_LISTEN: ':65536' } }), ['tftp.listen', '":65536"', '65535'], 'env, tftp');
  hasProblem(t, loadError({ sets: ['http.listen=[::]:70000'] }), ['http.listen', '"[::]:70000"', '65535'], '--set, IPv6');
  const both = loadError({ sets: ['http.listen=0.0.0.0:99999', 'tftp.listen=0.0.0.0:99999', 'dhcp.mode=fast'] });
  t.equal(both.problems.length, 3, `reported with the others: ${JSON.stringify(both.problems)}`);
  const once = loadError({ sets: ['http.listen=a b:99999'] });
  t.equal(once.problems.filter((p) => p.startsWith('http.listen:')).length, 1, 'one line per bad key');

  t.same(loadConfig({ sets: ['http.listen=0.0.0.0:65535'] }).config.http.listen, { host: '0.0.0.0', port: 65535 }, 'the highest port');
  t.same(loadConfig({ sets: ['http.listen=127.0.0.1:0'] }).config.http.listen, { host: '127.0.0.1', port: 0 }, 'port 0: any free port');
  hasProblem(t, loadError({ sets: ['dhcp.proxyPort=65536'] }), ['dhcp.proxyPort', '65536', 'a UDP port number'], 'proxyPort above 65535');
  hasProblem(t, loadError({ sets: ['dhcp.proxyPort=0'] }), ['dhcp.proxyPort', '0', 'a UDP port number'], 'proxyPort 0');
});

t.test('checkConfig on a parsed document', async (t) => {
  const doc: RawDoc = { http: { listen: '127.0.0.1:1234' } };
  const config = checkConfig(doc);
  t.same(config.http.listen, { host: '127.0.0.1', port: 1234 });
  t.equal(config.dhcp.mode, 'proxy');
  t.same(
    doc.dhcp,
    {
      mode: 'proxy',
      interfaces: [],
      proxyPort: 4011,
      listenPort: 67,
      pxeLeaseSeconds: 600,
      declineSeconds: 600,
      efiBinary: 'ipxe.efi',
      subnets: loadConfig().config.dhcp.subnets,
    },
    'defaults are filled in place',
  );

  const err = configErrorOf(() => checkConfig({ dhcp: { mode: 'fast' } }, 'my.yaml'));
  t.match(err.message, /^invalid configuration \(my\.yaml\):\n {2}dhcp\.mode: got "fast", expected one of off, proxy, full$/);
  t.equal(err.name, 'ConfigError');
  const err2 = configErrorOf(() => checkConfig({ log: { level: 'loud' } }));
  t.match(err2.message, '(config)', 'the default source');
  hasProblem(t, err2, ['log.level', '"loud"', 'fatal, error, warn, info, debug, trace, silent'], 'log level');
});

t.test('parseListen', async (t) => {
  t.same(parseListen('0.0.0.0:8080'), { host: '0.0.0.0', port: 8080 });
  t.same(parseListen('localhost:69'), { host: 'localhost', port: 69 });
  t.same(parseListen('[::]:8080'), { host: '::', port: 8080 });
  t.same(parseListen('[fe80::1]:4011'), { host: 'fe80::1', port: 4011 });
  t.same(parseListen(':8080'), { host: '0.0.0.0', port: 8080 }, 'an empty host means all interfaces');
});

t.test('parseByteSize', async (t) => {
  const cases: [number | string, number][] = [
    [0, 0],
    [12345, 12345],
    ['512', 512],
    ['512B', 512],
    ['10KB', 10_000],
    ['10KiB', 10_240],
    ['3MB', 3_000_000],
    ['1.5 MiB', 1_572_864],
    ['200GiB', 214748364800],
    ['2GB', 2e9],
    ['1TiB', 2 ** 40],
    ['1TB', 1e12],
    ['4gib', 4 * 2 ** 30],
    ['  7 KiB  ', 7168],
    ['0.5KB', 500],
  ];
  for (const [input, bytes] of cases) t.equal(parseByteSize(input), bytes, JSON.stringify(input));
  for (const bad of ['12 parsecs', '', 'GiB', '-1', '1,5GiB', '1 GiB extra', '5PiB']) {
    const err = configErrorOf(() => parseByteSize(bad));
    t.match(err.problems[0], `cannot read size ${JSON.stringify(bad)}`, JSON.stringify(bad));
  }
});
