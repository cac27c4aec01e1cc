import { ConfigError } from '../config/config.js';
import { openSqliteStore } from './sqlite.js';
import type { Store } from './store.js';

/** The store `store.url` names (a credential in the URL is never echoed back). */
export function openStore(url: string): Store {
  if (url.startsWith('sqlite:')) return openSqliteStore({ path: url.slice('sqlite:'.length) });
  const shown = JSON.stringify(url.replace(/\/\/[^@/]*@/, '//<credentials>@'));
  throw new ConfigError([`store.url: got ${shown}, expected sqlite:<path>; the PostgreSQL store is not available in this version`]);
}
