import Database from 'better-sqlite3';
import { chmodSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Mac, Uuid } from '../machines/mac.js';
import { allMacs, type Machine, type MachineEvent, type NewEvent } from '../machines/model.js';
import type { MachineState } from '../machines/state.js';
import type { Lease } from '../dhcp/leases.js';
import { MIGRATIONS } from './migrations.js';
import { StoreConflictError, type CacheEntry, type MachineChange, type MachineFilter, type MachinePage, type MutationResult, type RegistryManifest, type RegistryTagList, type Store } from './store.js';

/** Events kept per machine; older ones are pruned in the transaction that appends. */
export const EVENTS_KEPT_PER_MACHINE = 5000;

interface EventRow {
  id: number;
  machine: string;
  time: string;
  source: MachineEvent['source'];
  type: string;
  from_state: MachineState | null;
  to_state: MachineState | null;
  message: string | null;
  data: string | null;
}

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
  return new SqliteStore(db, opts.now ?? (() => new Date()));
}

function migrate(db: Database.Database): void {
  db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)');
  const applied = new Set(
    db.prepare<[], { version: number }>('SELECT version FROM schema_migrations').all().map((r) => r.version),
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

/**
 * A machine a boot recorded and nobody reserved: `discovered`, and none of the fields an
 * operator sets. Only these are pruned (boot.maxDiscovered).
 */
const UNRESERVED_DISCOVERED = `state = 'discovered' AND profile IS NULL AND uuid IS NULL
  AND json_extract(doc, '$.hostname') IS NULL AND json_extract(doc, '$.ip') IS NULL
  AND json_extract(doc, '$.assisted') IS NULL AND json_extract(doc, '$.precache') IS NULL
  AND json_array_length(doc, '$.macs') = 0 AND json_extract(doc, '$.labels') = '{}'`;

export class SqliteStore implements Store {
  private readonly q;
  private readonly listings = new Map<string, Database.Statement<(string | number)[], { doc: string }>>();

  constructor(
    private readonly db: Database.Database,
    private readonly now: () => Date,
  ) {
    this.q = {
      machineByMac: db.prepare<[string], { doc: string }>(
        'SELECT m.doc FROM machine_macs x JOIN machines m ON m.mac = x.machine WHERE x.mac = ?',
      ),
      machinesByUuid: db.prepare<[string], { doc: string }>('SELECT doc FROM machines WHERE uuid = ? LIMIT 2'),
      countByState: db.prepare<[], { state: MachineState; n: number }>('SELECT state, count(*) AS n FROM machines GROUP BY state'),
      countDiscovered: db.prepare<[], { n: number }>("SELECT count(*) AS n FROM machines WHERE state = 'discovered'"),
      pruneDiscovered: db.prepare<[number], { mac: string }>(
        `DELETE FROM machines WHERE mac IN (
           SELECT mac FROM machines WHERE ${UNRESERVED_DISCOVERED}
           ORDER BY coalesce(json_extract(doc, '$.observed.lastSeenAt'), updated_at) DESC, mac DESC LIMIT -1 OFFSET ?)
         RETURNING mac`,
      ),
      upsertMachine: db.prepare(
        `INSERT INTO machines (mac, uuid, state, profile, doc, created_at, updated_at)
         VALUES (@mac, @uuid, @state, @profile, @doc, @createdAt, @updatedAt)
         ON CONFLICT (mac) DO UPDATE SET uuid = excluded.uuid, state = excluded.state,
           profile = excluded.profile, doc = excluded.doc, updated_at = excluded.updated_at`,
      ),
      deleteMachine: db.prepare<[string]>('DELETE FROM machines WHERE mac = ?'),
      macOwner: db.prepare<[string], { machine: string }>('SELECT machine FROM machine_macs WHERE mac = ?'),
      clearMacs: db.prepare<[string]>('DELETE FROM machine_macs WHERE machine = ?'),
      addMac: db.prepare<[string, string]>('INSERT INTO machine_macs (mac, machine) VALUES (?, ?)'),
      insertEvent: db.prepare(
        `INSERT INTO events (machine, time, source, type, from_state, to_state, message, data)
         VALUES (@machine, @time, @source, @type, @from, @to, @message, @data)`,
      ),
      pruneEvents: db.prepare<[string, string, number]>(
        `DELETE FROM events WHERE machine = ? AND id <= (
           SELECT id FROM events WHERE machine = ? ORDER BY id DESC LIMIT 1 OFFSET ?)`,
      ),
      eventsAfter: db.prepare<[string, number, number], EventRow>(
        'SELECT * FROM events WHERE machine = ? AND id > ? ORDER BY id LIMIT ?',
      ),
      getSetting: db.prepare<[string], { value: string }>('SELECT value FROM settings WHERE key = ?'),
      initSetting: db.prepare<[string, string]>('INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT DO NOTHING'),
      ping: db.prepare('SELECT 1'),
      allLeases: db.prepare<[], { ip: string; mac: string; state: Lease['state']; expires_at: number; hostname: string | null }>('SELECT * FROM leases'),
      upsertLease: db.prepare(
        `INSERT INTO leases (ip, mac, state, expires_at, hostname) VALUES (@ip, @mac, @state, @expiresAt, @hostname)
         ON CONFLICT (ip) DO UPDATE SET mac = excluded.mac, state = excluded.state, expires_at = excluded.expires_at, hostname = excluded.hostname`,
      ),
      deleteLease: db.prepare<[string]>('DELETE FROM leases WHERE ip = ?'),
      deleteOtherLeases: db.prepare<[string, string]>('DELETE FROM leases WHERE mac = ? AND ip != ?'),
      cacheEntry: db.prepare<[string], CacheRow>('SELECT * FROM cache_entries WHERE key = ?'),
      cacheEntries: db.prepare<[], CacheRow>('SELECT * FROM cache_entries ORDER BY last_used_at, key'),
      putCacheEntry: db.prepare(
        `INSERT INTO cache_entries (key, digest, size, media_type, etag, last_modified, created_at, last_used_at)
         VALUES (@key, @digest, @size, @mediaType, @etag, @lastModified, @createdAt, @lastUsedAt)
         ON CONFLICT (key) DO UPDATE SET digest = excluded.digest, size = excluded.size, media_type = excluded.media_type,
           etag = excluded.etag, last_modified = excluded.last_modified, created_at = excluded.created_at, last_used_at = excluded.last_used_at`,
      ),
      touchCacheEntry: db.prepare<[string, string]>('UPDATE cache_entries SET last_used_at = ? WHERE key = ?'),
      deleteCacheEntry: db.prepare<[string]>('DELETE FROM cache_entries WHERE key = ?'),
      putHubArtifact: db.prepare<[string, string, string]>(
        'INSERT INTO hub_artifacts (id, request, registered_at) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET request = excluded.request, registered_at = excluded.registered_at',
      ),
      pruneHubArtifacts: db.prepare<[string]>('DELETE FROM hub_artifacts WHERE registered_at < ?'),
      getHubArtifact: db.prepare<[string], { request: string }>('SELECT request FROM hub_artifacts WHERE id = ?'),
      putRegistryManifest: db.prepare('INSERT INTO registry_manifests (digest, media_type, size, created_at) VALUES (@digest, @mediaType, @size, @createdAt) ON CONFLICT (digest) DO NOTHING'),
      getRegistryManifest: db.prepare<[string], { digest: string; media_type: string; size: number; created_at: string }>('SELECT * FROM registry_manifests WHERE digest = ?'),
      putRegistryTag: db.prepare<[string, string, string, string, string]>(
        'INSERT INTO registry_tags (upstream, repository, tag, digest, updated_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (upstream, repository, tag) DO UPDATE SET digest = excluded.digest, updated_at = excluded.updated_at',
      ),
      getRegistryTag: db.prepare<[string, string, string], { digest: string }>('SELECT digest FROM registry_tags WHERE upstream = ? AND repository = ? AND tag = ?'),
      putRegistryTagList: db.prepare<[string, string, string, string]>(
        'INSERT INTO registry_tag_lists (upstream, repository, tags, updated_at) VALUES (?, ?, ?, ?) ON CONFLICT (upstream, repository) DO UPDATE SET tags = excluded.tags, updated_at = excluded.updated_at',
      ),
      getRegistryTagList: db.prepare<[string, string], { tags: string; updated_at: string }>('SELECT tags, updated_at FROM registry_tag_lists WHERE upstream = ? AND repository = ?'),
    };
  }

  async getMachine(mac: Mac): Promise<Machine | undefined> {
    return this.readMachine(mac);
  }

  async findMachine(key: { macs: readonly Mac[]; uuid?: Uuid }): Promise<Machine | undefined> {
    for (const mac of key.macs) {
      const m = this.readMachine(mac);
      if (m) return m;
    }
    if (key.uuid) {
      const rows = this.q.machinesByUuid.all(key.uuid);
      // Two machines with one UUID (cloned or blank SMBIOS): the UUID identifies neither.
      if (rows.length === 1 && rows[0]) return parseDoc(rows[0].doc);
    }
    return undefined;
  }

  async listMachines(filter: MachineFilter = {}, page?: MachinePage): Promise<Machine[]> {
    const where: string[] = [];
    const params: (string | number)[] = [];
    const add = (condition: string, ...values: (string | number)[]) => {
      where.push(condition);
      params.push(...values);
    };
    if (filter.state !== undefined) add('state = ?', filter.state);
    if (filter.profile !== undefined) add('profile = ?', filter.profile);
    for (const [k, v] of Object.entries(filter.labels ?? {})) {
      // A JSON path cannot quote a double quote, and no label key holds one (the API's label pattern).
      if (k.includes('"')) return [];
      add('json_extract(doc, ?) = ?', `$.labels."${k}"`, v);
    }
    if (page?.after !== undefined) add('mac > ?', page.after);
    const sql = `SELECT doc FROM machines${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY mac${page ? ' LIMIT ?' : ''}`;
    if (page) params.push(page.limit);
    return this.prepared(sql).all(...params).map((r) => parseDoc(r.doc));
  }

  async countMachinesByState(): Promise<Partial<Record<MachineState, number>>> {
    return Object.fromEntries(this.q.countByState.all().map((r) => [r.state, r.n]));
  }

  async pruneDiscovered(max: number, keep = max): Promise<Mac[]> {
    // The count reads the state index only; the prune sorts every record by its JSON last-seen.
    if ((this.q.countDiscovered.get()?.n ?? 0) <= max) return [];
    return this.q.pruneDiscovered.all(keep).map((r) => r.mac as Mac);
  }

  /** One prepared statement per shape of listing query (filters × paging: a handful). */
  private prepared(sql: string): Database.Statement<(string | number)[], { doc: string }> {
    let st = this.listings.get(sql);
    if (!st) {
      st = this.db.prepare<(string | number)[], { doc: string }>(sql);
      this.listings.set(sql, st);
    }
    return st;
  }

  async mutateMachine(mac: Mac, change: (current: Machine | undefined) => MachineChange): Promise<MutationResult> {
    const { machine, events } = await this.updateMachine(mac, (current) => ({ change: change(current), result: undefined }));
    return { machine, events };
  }

  async updateMachine<R>(mac: Mac, change: (current: Machine | undefined) => { change: MachineChange; result: R }): Promise<MutationResult & { result: R }> {
    return this.db.transaction((): MutationResult & { result: R } => {
      const current = this.readMachine(mac);
      const { change: c, result } = change(current);
      return { ...this.apply(current, c), result };
    }).immediate();
  }

  private apply(current: Machine | undefined, c: MachineChange): MutationResult {
    switch (c.kind) {
      case 'keep':
        return { machine: current, events: current && c.events ? this.insertEvents(current.mac, c.events) : [] };
      case 'delete':
        if (current) this.q.deleteMachine.run(current.mac);
        return { machine: undefined, events: [] };
      case 'save':
        if (current && current.mac !== c.machine.mac) {
          throw new Error(`store: a save must keep the primary MAC ${current.mac}`);
        }
        this.writeMachine(c.machine);
        return { machine: c.machine, events: c.events ? this.insertEvents(c.machine.mac, c.events) : [] };
    }
  }

  async appendEvents(mac: Mac, events: readonly NewEvent[]): Promise<MachineEvent[]> {
    return this.db.transaction(() => {
      const m = this.readMachine(mac);
      return m ? this.insertEvents(m.mac, events) : [];
    }).immediate();
  }

  async listEvents(mac: Mac, opts: { afterId?: number; limit?: number } = {}): Promise<MachineEvent[]> {
    const m = this.readMachine(mac);
    if (!m) return [];
    return this.q.eventsAfter.all(m.mac, opts.afterId ?? 0, opts.limit ?? 1000).map(toEvent);
  }

  async listLeases(): Promise<Lease[]> {
    return this.q.allLeases.all().map((r) => ({ ip: r.ip, mac: r.mac, state: r.state, expiresAt: r.expires_at, ...(r.hostname !== null && { hostname: r.hostname }) }));
  }

  async writeLeases(save: readonly Lease[], remove: readonly string[]): Promise<void> {
    this.db.transaction(() => {
      for (const ip of remove) this.q.deleteLease.run(ip);
      for (const l of save) {
        // One address per client: a new binding ends the client's older ones.
        if (l.mac) this.q.deleteOtherLeases.run(l.mac, l.ip);
        this.q.upsertLease.run({ ip: l.ip, mac: l.mac, state: l.state, expiresAt: l.expiresAt, hostname: l.hostname ?? null });
      }
    }).immediate();
  }

  async getCacheEntry(key: string): Promise<CacheEntry | undefined> {
    const row = this.q.cacheEntry.get(key);
    return row && cacheEntryOf(row);
  }

  async putCacheEntry(e: CacheEntry): Promise<void> {
    this.q.putCacheEntry.run({ mediaType: null, etag: null, lastModified: null, ...e });
  }

  async touchCacheEntries(touches: readonly { key: string; time: string }[]): Promise<void> {
    this.db.transaction(() => {
      for (const t of touches) this.q.touchCacheEntry.run(t.time, t.key);
    }).immediate();
  }

  async deleteCacheEntry(key: string): Promise<void> {
    this.q.deleteCacheEntry.run(key);
  }

  async listCacheEntries(): Promise<CacheEntry[]> {
    return this.q.cacheEntries.all().map(cacheEntryOf);
  }

  async putHubArtifact(id: string, request: string, time: string, keepSince: string): Promise<void> {
    this.db.transaction(() => {
      this.q.putHubArtifact.run(id, request, time);
      this.q.pruneHubArtifacts.run(keepSince);
    }).immediate();
  }

  async getHubArtifact(id: string): Promise<string | undefined> {
    return this.q.getHubArtifact.get(id)?.request;
  }

  async putRegistryManifest(m: RegistryManifest): Promise<void> {
    this.q.putRegistryManifest.run(m);
  }

  async getRegistryManifest(digest: string): Promise<RegistryManifest | undefined> {
    const r = this.q.getRegistryManifest.get(digest);
    return r && { digest: r.digest, mediaType: r.media_type, size: r.size, createdAt: r.created_at };
  }

  async putRegistryTag(upstream: string, repository: string, tag: string, digest: string, time: string): Promise<void> {
    this.q.putRegistryTag.run(upstream, repository, tag, digest, time);
  }

  async getRegistryTag(upstream: string, repository: string, tag: string): Promise<string | undefined> {
    return this.q.getRegistryTag.get(upstream, repository, tag)?.digest;
  }

  async putRegistryTagList(upstream: string, repository: string, list: RegistryTagList): Promise<void> {
    this.q.putRegistryTagList.run(upstream, repository, JSON.stringify(list.tags), list.updatedAt);
  }

  async getRegistryTagList(upstream: string, repository: string): Promise<RegistryTagList | undefined> {
    const r = this.q.getRegistryTagList.get(upstream, repository);
    return r && { tags: JSON.parse(r.tags) as string[], updatedAt: r.updated_at };
  }

  async getSetting(key: string): Promise<string | undefined> {
    return this.q.getSetting.get(key)?.value;
  }

  async initSetting(key: string, value: string): Promise<string> {
    this.q.initSetting.run(key, value);
    const stored = this.q.getSetting.get(key);
    if (!stored) throw new Error(`store: setting ${key} vanished after insert`);
    return stored.value;
  }

  async ping(): Promise<void> {
    this.q.ping.get();
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }

  private readMachine(mac: Mac): Machine | undefined {
    const row = this.q.machineByMac.get(mac);
    return row ? parseDoc(row.doc) : undefined;
  }

  private writeMachine(m: Machine): void {
    const macs = allMacs(m);
    for (const x of macs) {
      const owner = this.q.macOwner.get(x)?.machine;
      if (owner !== undefined && owner !== m.mac) {
        throw new StoreConflictError(`MAC ${x} already belongs to machine ${owner}`, owner as Mac, x);
      }
    }
    this.q.upsertMachine.run({
      mac: m.mac,
      uuid: m.uuid ?? null,
      state: m.state,
      profile: m.profile ?? null,
      doc: JSON.stringify(m),
      createdAt: m.createdAt,
      updatedAt: m.updatedAt,
    });
    this.q.clearMacs.run(m.mac);
    for (const x of macs) this.q.addMac.run(x, m.mac);
  }

  private insertEvents(machine: Mac, events: readonly NewEvent[]): MachineEvent[] {
    const time = this.now().toISOString();
    const out = events.map((e): MachineEvent => {
      const info = this.q.insertEvent.run({
        machine,
        time,
        source: e.source,
        type: e.type,
        from: e.from ?? null,
        to: e.to ?? null,
        message: e.message ?? null,
        data: e.data === undefined ? null : JSON.stringify(e.data),
      });
      return { ...e, id: Number(info.lastInsertRowid), mac: machine, time };
    });
    if (out.length > 0) this.q.pruneEvents.run(machine, machine, EVENTS_KEPT_PER_MACHINE);
    return out;
  }
}

function parseDoc(doc: string): Machine {
  return JSON.parse(doc) as Machine;
}

function toEvent(r: EventRow): MachineEvent {
  const e: MachineEvent = { id: r.id, mac: r.machine as Mac, time: r.time, source: r.source, type: r.type };
  if (r.from_state) e.from = r.from_state;
  if (r.to_state) e.to = r.to_state;
  if (r.message !== null) e.message = r.message;
  if (r.data !== null) e.data = JSON.parse(r.data) as Record<string, unknown>;
  return e;
}

interface CacheRow {
  key: string;
  digest: string;
  size: number;
  media_type: string | null;
  etag: string | null;
  last_modified: string | null;
  created_at: string;
  last_used_at: string;
}

function cacheEntryOf(r: CacheRow): CacheEntry {
  return {
    key: r.key,
    digest: r.digest,
    size: r.size,
    ...(r.media_type !== null && { mediaType: r.media_type }),
    ...(r.etag !== null && { etag: r.etag }),
    ...(r.last_modified !== null && { lastModified: r.last_modified }),
    createdAt: r.created_at,
    lastUsedAt: r.last_used_at,
  };
}
