import type Database from 'better-sqlite3';
import type { Mac, Uuid } from '../machines/mac.js';
import { allMacs, type Machine, type MachineEvent, type NewEvent } from '../machines/model.js';
import type { MachineState } from '../machines/state.js';
import { checkVersion, mutateWithRetry } from './mutation.js';
import {
  StaleMachineError,
  StoreConflictError,
  type MachineChange,
  type MachineFilter,
  type MachinePage,
  type MachineRepository,
  type MutationResult,
  type VersionedMachine,
} from './store.js';

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

/**
 * A machine a boot recorded and nobody reserved: `discovered`, and none of the fields an
 * operator sets. Only these are pruned (boot.maxDiscovered).
 */
const UNRESERVED_DISCOVERED = `state = 'discovered' AND profile IS NULL AND uuid IS NULL
  AND json_extract(doc, '$.hostname') IS NULL AND json_extract(doc, '$.ip') IS NULL
  AND json_extract(doc, '$.assisted') IS NULL AND json_extract(doc, '$.precache') IS NULL
  AND json_array_length(doc, '$.macs') = 0 AND json_extract(doc, '$.labels') = '{}'`;

function statements(db: Database.Database) {
  return {
    machineByMac: db.prepare<[string], { doc: string; version: number }>(
      'SELECT m.doc, m.version FROM machine_macs x JOIN machines m ON m.mac = x.machine WHERE x.mac = ?',
    ),
    machinesByUuid: db.prepare<[string], { doc: string }>('SELECT doc FROM machines WHERE uuid = ? LIMIT 2'),
    version: db.prepare<[string], { version: number }>('SELECT version FROM machines WHERE mac = ?'),
    countByState: db.prepare<[], { state: MachineState; n: number }>('SELECT state, count(*) AS n FROM machines GROUP BY state'),
    countDiscovered: db.prepare<[], { n: number }>("SELECT count(*) AS n FROM machines WHERE state = 'discovered'"),
    pruneDiscovered: db.prepare<[number], { mac: string }>(
      `DELETE FROM machines WHERE mac IN (
         SELECT mac FROM machines WHERE ${UNRESERVED_DISCOVERED}
         ORDER BY coalesce(json_extract(doc, '$.observed.lastSeenAt'), updated_at) DESC, mac DESC LIMIT -1 OFFSET ?)
       RETURNING mac`,
    ),
    upsertMachine: db.prepare(
      `INSERT INTO machines (mac, uuid, state, profile, doc, created_at, updated_at, version)
       VALUES (@mac, @uuid, @state, @profile, @doc, @createdAt, @updatedAt, @version)
       ON CONFLICT (mac) DO UPDATE SET uuid = excluded.uuid, state = excluded.state,
         profile = excluded.profile, doc = excluded.doc, updated_at = excluded.updated_at, version = excluded.version`,
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
    eventsAfter: db.prepare<[string, number, number], EventRow>('SELECT * FROM events WHERE machine = ? AND id > ? ORDER BY id LIMIT ?'),
    newestEvents: db.prepare<[string, number, number], EventRow>(
      'SELECT * FROM (SELECT * FROM events WHERE machine = ? AND id > ? ORDER BY id DESC LIMIT ?) ORDER BY id',
    ),
  };
}

/** Machines and their events in SQLite: the document in `doc`, the columns that are queried beside it (the search: sqlite-search.ts). */
export function sqliteMachines(db: Database.Database, now: () => Date): Omit<MachineRepository, 'searchMachines'> {
  const q = statements(db);
  const listings = new Map<string, Database.Statement<(string | number)[], { doc: string }>>();

  /** One prepared statement per shape of listing query (filters × paging: a handful). */
  const prepared = (sql: string): Database.Statement<(string | number)[], { doc: string }> => {
    let st = listings.get(sql);
    if (!st) {
      st = db.prepare<(string | number)[], { doc: string }>(sql);
      listings.set(sql, st);
    }
    return st;
  };

  const read = (mac: Mac): VersionedMachine | undefined => {
    const row = q.machineByMac.get(mac);
    return row && { machine: parseDoc(row.doc), version: row.version };
  };

  const write = (m: Machine, version: number): void => {
    const macs = allMacs(m);
    for (const x of macs) {
      const owner = q.macOwner.get(x)?.machine;
      if (owner !== undefined && owner !== m.mac) {
        throw new StoreConflictError(`MAC ${x} already belongs to machine ${owner}`, owner as Mac, x);
      }
    }
    const row = { mac: m.mac, uuid: m.uuid ?? null, state: m.state, profile: m.profile ?? null, doc: JSON.stringify(m) };
    q.upsertMachine.run({ ...row, createdAt: m.createdAt, updatedAt: m.updatedAt, version });
    q.clearMacs.run(m.mac);
    for (const x of macs) q.addMac.run(x, m.mac);
  };

  /** Compare-and-set inside the caller's transaction; the new version. */
  const save = (m: Machine, expected: number | undefined): number => {
    checkVersion(m.mac, q.version.get(m.mac)?.version, expected);
    const version = (expected ?? 0) + 1;
    write(m, version);
    return version;
  };

  const insertEvents = (machine: Mac, events: readonly NewEvent[]): MachineEvent[] => {
    const time = now().toISOString();
    const out = events.map((e): MachineEvent => {
      const data = e.data === undefined ? null : JSON.stringify(e.data);
      const info = q.insertEvent.run({
        machine,
        time,
        source: e.source,
        type: e.type,
        from: e.from ?? null,
        to: e.to ?? null,
        message: e.message ?? null,
        data,
      });
      return { ...e, id: Number(info.lastInsertRowid), mac: machine, time };
    });
    if (out.length > 0) q.pruneEvents.run(machine, machine, EVENTS_KEPT_PER_MACHINE);
    return out;
  };

  const commit = (lookup: Mac, current: VersionedMachine | undefined, c: MachineChange): MutationResult => {
    if (c.kind === 'keep' && !c.events?.length) return { machine: current?.machine, events: [] };
    return db
      .transaction((): MutationResult => {
        if (current) checkVersion(current.machine.mac, q.version.get(current.machine.mac)?.version, current.version);
        // Absent when read: another writer has created a machine with this MAC since.
        else if (c.kind === 'save' && q.macOwner.get(lookup)) throw new StaleMachineError(lookup, undefined);
        switch (c.kind) {
          case 'keep':
            return { machine: current?.machine, events: current && c.events ? insertEvents(current.machine.mac, c.events) : [] };
          case 'delete':
            if (current) q.deleteMachine.run(current.machine.mac);
            return { machine: undefined, events: [] };
          case 'save':
            save(c.machine, current?.version);
            return { machine: c.machine, events: c.events ? insertEvents(c.machine.mac, c.events) : [] };
        }
      })
      .immediate();
  };

  return {
    getMachine: async (mac) => read(mac)?.machine,
    readMachine: async (mac) => read(mac),

    async findMachine(key: { macs: readonly Mac[]; uuid?: Uuid }) {
      for (const mac of key.macs) {
        const m = read(mac);
        if (m) return m.machine;
      }
      if (key.uuid) {
        const rows = q.machinesByUuid.all(key.uuid);
        // Two machines with one UUID (cloned or blank SMBIOS): the UUID identifies neither.
        if (rows.length === 1 && rows[0]) return parseDoc(rows[0].doc);
      }
      return undefined;
    },

    async listMachines(filter: MachineFilter = {}, page?: MachinePage) {
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
      return prepared(sql)
        .all(...params)
        .map((r) => parseDoc(r.doc));
    },

    async countMachinesByState() {
      return Object.fromEntries(q.countByState.all().map((r) => [r.state, r.n]));
    },

    async pruneDiscovered(max: number, keep = max) {
      // The count reads the state index only; the prune sorts every record by its JSON last-seen.
      if ((q.countDiscovered.get()?.n ?? 0) <= max) return [];
      return q.pruneDiscovered.all(keep).map((r) => r.mac as Mac);
    },

    saveMachine: async (machine, expected) => db.transaction(() => save(machine, expected)).immediate(),

    async mutateMachine(mac, change) {
      const { machine, events } = mutateWithRetry({ read, commit }, mac, (current) => ({ change: change(current), result: undefined }));
      return { machine, events };
    },

    updateMachine: async (mac, change) => mutateWithRetry({ read, commit }, mac, change),

    async appendEvents(mac, events) {
      return db
        .transaction(() => {
          const m = read(mac);
          return m ? insertEvents(m.machine.mac, events) : [];
        })
        .immediate();
    },

    async listEvents(mac, opts = {}) {
      const m = read(mac);
      if (!m) return [];
      return (opts.newest === true ? q.newestEvents : q.eventsAfter).all(m.machine.mac, opts.afterId ?? 0, opts.limit ?? 1000).map(toEvent);
    },
  };
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
