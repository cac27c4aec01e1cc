import Database from 'better-sqlite3';
import { chmodSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { MIGRATIONS } from './migrations.js';
import { sqliteCacheIndex, sqliteRegistryIndex, sqliteSettings } from './sqlite-index.js';
import { sqliteLeases } from './sqlite-leases.js';
import { sqliteMachines } from './sqlite-machines.js';
import { sqliteMachineSearch } from './sqlite-search.js';
import type { Store } from './store.js';

export { EVENTS_KEPT_PER_MACHINE } from './sqlite-machines.js';

/** Every repository over one SQLite database. */
export type SqliteStore = Store;

export interface SqliteStoreOptions {
  /** A file path, or `:memory:`. */
  path: string;
  now?: () => Date;
}

export function openSqliteStore(opts: SqliteStoreOptions): SqliteStore {
  if (opts.path !== ':memory:') mkdirSync(dirname(opts.path), { recursive: true });
  const db = new Database(opts.path);
  // It holds the token-signing secret and the hub's artifact URLs with their api_key.
  if (opts.path !== ':memory:') chmodSync(opts.path, 0o600);
  // WAL: readers never block the writer; FULL: a committed transaction survives power loss too.
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  migrate(db);
  const ping = db.prepare('SELECT 1');
  return {
    ...sqliteMachines(db, opts.now ?? (() => new Date())),
    ...sqliteMachineSearch(db),
    ...sqliteLeases(db),
    ...sqliteCacheIndex(db),
    ...sqliteRegistryIndex(db),
    ...sqliteSettings(db),
    async ping() {
      ping.get();
    },
    async close() {
      if (db.open) db.close();
    },
  };
}

function migrate(db: Database.Database): void {
  db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)');
  const applied = new Set(
    db
      .prepare<[], { version: number }>('SELECT version FROM schema_migrations')
      .all()
      .map((r) => r.version),
  );
  const record = db.prepare('INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)');
  for (const m of MIGRATIONS) {
    if (applied.has(m.version)) continue;
    db.transaction(() => {
      db.exec(m.sql);
      record.run(m.version, new Date().toISOString());
    })();
  }
}
