import { isSecretKey, redactSecrets, REDACTED } from '../secrets/redact.js';
import type { Config } from './config.js';
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
  return String(value);
}

/**
 * The resolved configuration as `edgeboot config show` prints it: paths already absolute (load.ts),
 * every credential cut — admin and read tokens, the pull secret, userinfo and secret parameters
 * of URLs (a postgres:// password) — so the output can be pasted into a ticket.
 */
export function shownConfig(config: Config): Shown {
  const shown = redactValue(config, false) as { [section: string]: Shown };
  // Sections in the schema's order, whatever order the file and the environment named them in.
  return Object.fromEntries(Object.keys(configSchema.properties).filter((s) => s in shown).map((s) => [s, shown[s] ?? null]));
}
