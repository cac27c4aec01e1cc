/** Forward-only schema steps; each runs once, in its own transaction. Never edit a released one. */
export const MIGRATIONS: readonly { version: number; sql: string }[] = [
  {
    version: 1,
    sql: `
      CREATE TABLE machines (
        mac TEXT PRIMARY KEY,
        uuid TEXT,
        state TEXT NOT NULL,
        profile TEXT,
        doc TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
      );
      CREATE INDEX machines_uuid ON machines (uuid);
      CREATE INDEX machines_state ON machines (state);
      CREATE TABLE machine_macs (
        mac TEXT PRIMARY KEY,
        machine TEXT NOT NULL REFERENCES machines (mac) ON DELETE CASCADE
      );
      CREATE INDEX machine_macs_machine ON machine_macs (machine);
      CREATE TABLE events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        machine TEXT NOT NULL REFERENCES machines (mac) ON DELETE CASCADE,
        time TEXT NOT NULL,
        source TEXT NOT NULL,
        type TEXT NOT NULL,
        from_state TEXT,
        to_state TEXT,
        message TEXT,
        data TEXT
      );
      CREATE INDEX events_machine ON events (machine, id);
      CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    `,
  },
  {
    version: 2,
    sql: `
      CREATE TABLE leases (
        ip TEXT PRIMARY KEY,
        mac TEXT NOT NULL,
        state TEXT NOT NULL,
        expires_at INTEGER NOT NULL,
        hostname TEXT
      );
      CREATE INDEX leases_mac ON leases (mac);
    `,
  },
  {
    version: 3,
    sql: `
      CREATE TABLE cache_entries (
        key TEXT PRIMARY KEY,
        digest TEXT NOT NULL,
        size INTEGER NOT NULL,
        media_type TEXT,
        etag TEXT,
        last_modified TEXT,
        created_at TEXT NOT NULL,
        last_used_at TEXT NOT NULL
      );
      CREATE INDEX cache_entries_digest ON cache_entries (digest);
    `,
  },
  {
    version: 4,
    sql: `
      CREATE TABLE hub_artifacts (
        id TEXT PRIMARY KEY,
        request TEXT NOT NULL,
        registered_at TEXT NOT NULL
      );
      CREATE INDEX hub_artifacts_registered ON hub_artifacts (registered_at);
    `,
  },
  {
    version: 5,
    sql: `
      CREATE TABLE registry_manifests (
        digest TEXT PRIMARY KEY,
        media_type TEXT NOT NULL,
        size INTEGER NOT NULL,
        created_at TEXT NOT NULL
      );
      CREATE TABLE registry_tags (
        upstream TEXT NOT NULL,
        repository TEXT NOT NULL,
        tag TEXT NOT NULL,
        digest TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (upstream, repository, tag)
      );
    `,
  },
  {
    version: 6,
    sql: `
      CREATE TABLE registry_tag_lists (
        upstream TEXT NOT NULL,
        repository TEXT NOT NULL,
        tags TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (upstream, repository)
      );
    `,
  },
  {
    // Optimistic concurrency for hosts sharing one database: 1 when created, one more per save.
    version: 7,
    sql: `ALTER TABLE machines ADD COLUMN version INTEGER NOT NULL DEFAULT 1;`,
  },
];
