import { stringify } from 'yaml';
import { isSecretKey, redactSecrets, REDACTED } from '../secrets/redact.js';
import type { Config, Listen } from './config.js';
import { configSchema } from './schema.js';

type Shown = null | boolean | number | string | Shown[] | { [key: string]: Shown };

/** Keys whose values are credentials beyond the shared list: token lists (`adminTokens`, `readTokens`, …). */
const isSecretField = (key: string): boolean => isSecretKey(key) || /tokens?$/i.test(key);

function redactValue(value: unknown, secret: boolean): Shown {
  if (Array.isArray(value)) return value.map((v) => redactValue(v, secret));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redactValue(v, secret || isSecretField(k))]));
  }
  if (typeof value === 'string') return secret && value !== '' ? REDACTED : redactSecrets(value);
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return secret ? REDACTED : value;
  // eslint-disable-next-line @typescript-eslint/no-base-to-string -- objects were returned above (TS cannot narrow unknown by exclusion): what is left, undefined, a bigint, a symbol or a function, has its own string form
  return String(value);
}

/**
 * The resolved configuration as `edgeboot config show` prints it: paths already absolute (load.ts),
 * every credential cut — admin and read tokens, the pull secret, userinfo and secret parameters
 * of URLs (a postgres:// password) — so the output can be pasted into a ticket.
 */
export function shownConfig(config: Config): Shown {
  const shown = redactValue(configDocument(config), false) as Record<string, Shown>;
  // Sections and their keys in the schema's order, whatever order the file and the environment named them in.
  const sections = configSchema.properties as Record<string, { properties: Record<string, unknown> }>;
  return Object.fromEntries(
    Object.keys(sections)
      .filter((s) => s in shown)
      .map((s) => [s, inSchemaOrder(shown[s] ?? null, Object.keys(sections[s]?.properties ?? {}))]),
  );
}

function inSchemaOrder(section: Shown, keys: string[]): Shown {
  if (section === null || typeof section !== 'object' || Array.isArray(section)) return section;
  const rank = (k: string) => (keys.includes(k) ? keys.indexOf(k) : keys.length);
  return Object.fromEntries(Object.entries(section).sort(([a], [b]) => rank(a) - rank(b)));
}

const listenText = (l: Listen): string => `${l.host.includes(':') ? `[${l.host}]` : l.host}:${l.port}`;

/**
 * A resolved config back in the form the config file takes, so that what `config show` prints is
 * a file `config check` accepts and that loads to the same config: listen addresses as host:port,
 * the unknown-machine policy as its word or profile name. Sizes stay byte counts and paths stay
 * absolute, both forms the file accepts.
 */
export function configDocument(config: Config): Record<string, unknown> {
  const policy = config.boot.unknownMachines;
  return {
    ...config,
    http: { ...config.http, listen: listenText(config.http.listen) },
    tftp: { ...config.tftp, listen: listenText(config.tftp.listen) },
    boot: { ...config.boot, unknownMachines: typeof policy === 'string' ? policy : policy.profile },
  };
}

/**
 * `config show`'s output: JSON, or YAML with a note on top when a secret was cut, since `config
 * check` refuses the placeholder rather than take it for a token or a path.
 */
export function showText(config: Config, format: 'yaml' | 'json'): string {
  const shown = shownConfig(config);
  if (format === 'json') return JSON.stringify(shown, null, 2);
  const text = stringify(shown).trimEnd();
  if (!text.includes(REDACTED)) return text;
  return `# ${REDACTED} stands for a secret cut from this view; config check refuses it until the real value is put back.\n${text}`;
}
