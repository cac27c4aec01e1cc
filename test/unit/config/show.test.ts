/**
 * Default paths under server.dataDir and the pure view `edgeboot config show` prints (issue 15 §7):
 * a resolved config with its secrets cut, which loads back to the same config. The real CLI and
 * `serve` are in test/integration/config-show.test.ts.
 */
import { resolve } from 'node:path';
import t from 'tap';
import { parse as parseYaml } from 'yaml';
import type { Config } from '../../../src/config/config.js';
import { checkConfig, loadConfig } from '../../../src/config/load.js';
import { configSchema } from '../../../src/config/schema.js';
import { configDocument, shownConfig, showText } from '../../../src/config/show.js';
import { REDACTED } from '../../../src/secrets/redact.js';

const ADMIN = 'SECRET-admin-token-value';
const READ = 'SECRET-read-token-value';
t.test('shownConfig cuts every credential and keeps the rest', async (t) => {
  const { config } = loadConfig({
    env: {
      EDGEBOOT_SERVER_DATA_DIR: '/srv/e',
      EDGEBOOT_AUTH_ADMIN_TOKENS: ADMIN,
      EDGEBOOT_REGISTRY_READ_TOKENS: READ,
      EDGEBOOT_REGISTRY_PULL_SECRET: '/etc/edgeboot/SECRET-pull-path.json',
      EDGEBOOT_STORE_URL: 'postgres://edge:SECRET-db-password@db:5432/edgeboot?sslmode=require&password=SECRET-db-param',
    },
  });
  const shown = shownConfig(config) as Record<string, Record<string, unknown>>;
  const text = JSON.stringify(shown);
  t.notMatch(text, /SECRET/, 'no secret in the view');
  t.same(shown.auth?.adminTokens, [REDACTED]);
  t.same(shown.registry?.readTokens, [REDACTED]);
  t.equal(shown.registry?.pullSecret, REDACTED);
  t.equal(shown.store?.url, `postgres://${REDACTED}@db:5432/edgeboot?sslmode=require&password=${REDACTED}`);
  t.equal(shown.cache?.dir, '/srv/e/cache', 'paths resolved');
  t.same(Object.keys(shown).slice(0, 3), ['server', 'http', 'tftp'], 'sections in the schema order');
  t.equal((shownConfig(loadConfig().config) as Record<string, Record<string, unknown>>).registry?.pullSecret, '', 'an empty value stays empty');
});

/** A config as `config show` prints it, read back as a file is. */
const reread = (config: Config, format: 'yaml' | 'json'): Config => {
  const text = showText(config, format);
  return checkConfig((format === 'json' ? JSON.parse(text) : parseYaml(text)) as Parameters<typeof checkConfig>[0], `shown ${format}`);
};

t.test('config show round-trips: what it prints loads to the same config', async (t) => {
  const defaults = loadConfig().config;
  t.same(reread(defaults, 'yaml'), defaults, 'the defaults, as YAML');
  t.same(reread(defaults, 'json'), defaults, 'the defaults, as JSON');
  const { config } = loadConfig({
    env: {
      EDGEBOOT_HTTP_LISTEN: '[::1]:9000',
      EDGEBOOT_TFTP_LISTEN: ':6969',
      EDGEBOOT_BOOT_UNKNOWN_MACHINES: 'rhcos-live',
      EDGEBOOT_CACHE_MAX_BYTES: '1.5GiB',
      EDGEBOOT_CACHE_CLIENT_RATE: '40MiB',
      EDGEBOOT_STORE_URL: 'sqlite:rel/db.sqlite',
      EDGEBOOT_DHCP_MODE: 'full',
      EDGEBOOT_DHCP_SUBNETS: JSON.stringify([
        { cidr: '192.168.50.0/24', pool: ['192.168.50.10', '192.168.50.20'], router: '192.168.50.1', dns: ['9.9.9.9'], domain: 'x.example' },
        { cidr: '192.168.51.0/24' },
      ]),
      EDGEBOOT_REGISTRY_UPSTREAMS: '{"lab": "127.0.0.1:5000"}',
      EDGEBOOT_PRECACHE_INSTALL_RESERVE_GIB: '64',
      EDGEBOOT_BMC_CA_FILE: 'rel/bmc-ca.pem',
      EDGEBOOT_BMC_BOOT_TARGET: 'auto',
      EDGEBOOT_AUTH_SECRET_KEY_FILE: '/etc/edgeboot/secret.key',
    },
  });
  t.same(reread(config, 'yaml'), config, 'a non-trivial config, as YAML');
  t.same(reread(config, 'json'), config, 'and as JSON');
  const doc = configDocument(config) as { http: { listen: string }; tftp: { listen: string }; boot: { unknownMachines: string } };
  t.equal(doc.http.listen, '[::1]:9000', 'an IPv6 listen address in brackets');
  t.equal(doc.tftp.listen, '0.0.0.0:6969');
  t.equal(doc.boot.unknownMachines, 'rhcos-live', 'a profile policy as its name');
  t.notMatch(showText(config, 'yaml'), /^#/, 'nothing cut, no note');
  const shownBmc = shownConfig(config) as Record<string, Record<string, unknown>>;
  t.equal(shownBmc.auth?.secretKeyFile, '/etc/edgeboot/secret.key', 'the secret key file is a path, shown as it is');
  t.equal(shownBmc.bmc?.caFile, resolve('rel/bmc-ca.pem'), 'the BMC CA file resolved');
  t.notOk('caFile' in ((shownConfig(defaults) as Record<string, Record<string, unknown>>).bmc ?? {}), 'no caFile line when none is set');
  const reordered = shownConfig(loadConfig({ env: { EDGEBOOT_TFTP_ROOTS: '/srv/ipxe' } }).config) as Record<string, Record<string, unknown>>;
  t.same(Object.keys(reordered.tftp ?? {}), Object.keys(configSchema.properties.tftp.properties), 'keys in the schema order, not the order they were set in');
});

t.test('a redacted secret does not round-trip silently', async (t) => {
  const { config } = loadConfig({ env: { EDGEBOOT_AUTH_ADMIN_TOKENS: ADMIN, EDGEBOOT_STORE_URL: 'postgres://edge:SECRET-pw@db/edgeboot' } });
  const text = showText(config, 'yaml');
  const note = '# *redacted* stands for a secret cut from this view; config check refuses it until the real value is put back.\n';
  t.ok(text.startsWith(note), 'YAML opens with a note');
  t.notMatch(text, /SECRET/);
  t.throws(() => reread(config, 'yaml'), /auth\.adminTokens\[0\]: got the placeholder \*redacted\*/, 'the check names the token');
  t.throws(() => reread(config, 'json'), /store\.url: got the placeholder \*redacted\*/, 'and the store url');
});
