import type { Mac, Uuid } from '../machines/mac.js';
import type { Machine, MachineEvent, NewEvent } from '../machines/model.js';
import type { MachineState } from '../machines/state.js';
import type { Lease } from './lease.js';

export type { Lease, LeaseState } from './lease.js';

export interface MachineFilter {
  state?: MachineState;
  /** Every label given must match exactly. */
  labels?: Record<string, string>;
  profile?: string;
}

/** A window of a listing ordered by primary MAC. */
export interface MachinePage {
  /** Only machines whose primary MAC sorts after this one. */
  after?: Mac;
  limit: number;
}

/** What the machines table can be sorted by. */
export const MACHINE_SORTS = ['hostname', 'ip', 'mac', 'state', 'profile', 'firmware', 'power', 'lastSeen'] as const;
export type MachineSort = (typeof MACHINE_SORTS)[number];

/** The largest `limit` of a search; a larger one is a RangeError. */
export const MACHINE_SEARCH_MAX_LIMIT = 1000;

/**
 * One page of the machines that match every filter given, for a table. Sorted by the key, then by
 * primary MAC; a machine without a value for the key (no hostname, never seen) sorts after those
 * with one. `descending` reverses the whole order, so those come first then. Keys: hostname;
 * ip (the reservation's, as an IPv4 number); mac (primary); state and profile (as text);
 * firmware (observed platform, then arch); power (bmcStatus.powerState); lastSeen (observed).
 */
export interface MachineSearch {
  state?: MachineState;
  profile?: string;
  /** `key=value`: the label must match exactly. */
  labels?: Record<string, string>;
  /**
   * Case-insensitive (ASCII) substring of hostname, any MAC (primary or `macs`, any of the forms
   * aa:bb:.., aa-bb-.., aabb..), IP (reservation `ip`), or serial (observed.serial or
   * inventory.serial). Trimmed; empty matches every machine. `%` and `_` are literal.
   */
  text?: string;
  /** Default 'mac'. */
  sort?: MachineSort;
  descending?: boolean;
  /** Whole numbers: offset ≥ 0, 0 ≤ limit ≤ MACHINE_SEARCH_MAX_LIMIT; anything else is a RangeError. */
  offset: number;
  limit: number;
}

export interface MachineSearchPage {
  machines: Machine[];
  /** How many machines match, whatever the offset and limit. */
  total: number;
}

/** Every machine that matches, read a page at a time: the callers that need them all. */
export async function* eachMachine(store: Pick<MachineRepository, 'listMachines'>, filter: MachineFilter = {}, pageSize = 500): AsyncGenerator<Machine> {
  let after: Mac | undefined;
  for (;;) {
    const page = await store.listMachines(filter, { ...(after && { after }), limit: pageSize });
    yield* page;
    const last = page.at(-1);
    if (page.length < pageSize || !last) return;
    after = last.mac;
  }
}

/**
 * What a mutation decides, given the machine as it is now (undefined: absent). Returning
 * `keep` writes nothing; throwing aborts the transaction and reaches the caller unchanged.
 */
export type MachineChange = { kind: 'keep'; events?: NewEvent[] } | { kind: 'save'; machine: Machine; events?: NewEvent[] } | { kind: 'delete' };

export interface MutationResult {
  machine: Machine | undefined;
  events: MachineEvent[];
}

/** A machine with the version of its row: 1 when created, one more at every save. */
export interface VersionedMachine {
  machine: Machine;
  version: number;
}

/** A MAC (or UUID) already belongs to another machine. */
export class StoreConflictError extends Error {
  constructor(
    message: string,
    readonly owner: Mac,
    readonly conflicting: string,
  ) {
    super(message);
    this.name = 'StoreConflictError';
  }
}

/**
 * A write based on a row that another writer (another host on the same database) changed
 * since it was read. `mutateMachine`/`updateMachine` catch it and run the callback again on
 * the fresh row; it reaches callers of `saveMachine` only.
 */
export class StaleMachineError extends Error {
  constructor(
    readonly mac: Mac,
    readonly expected: number | undefined,
  ) {
    super(`store: machine ${mac} changed since version ${expected ?? '(absent)'} was read`);
    this.name = 'StaleMachineError';
  }
}

/** How often a mutation runs its callback again after losing to another writer before giving up. */
export const MUTATION_ATTEMPTS = 10;

/** One upstream artifact in the cache index: where it came from (secrets cut) and its blob. */
export interface CacheEntry {
  /** The source URL without secret query parameters (src/cache/source-key.ts). */
  key: string;
  /** sha256 of the content, lower-case hex: the blob's name in the content store. */
  digest: string;
  size: number;
  mediaType?: string;
  /** The upstream's validators, for revalidation. */
  etag?: string;
  lastModified?: string;
  createdAt: string;
  lastUsedAt: string;
}

export interface RegistryManifest {
  /** `sha256:<hex>` of the bytes. */
  digest: string;
  mediaType: string;
  size: number;
  createdAt: string;
}

export interface RegistryTagList {
  /** In lexical order. */
  tags: string[];
  updatedAt: string;
}

/**
 * Machines and their timelines. Every method is async so that a store shared by several hosts
 * (PostgreSQL) fits the same callers; every multi-row change is one transaction.
 */
export interface MachineRepository {
  /** By any of the machine's MACs. */
  getMachine(mac: Mac): Promise<Machine | undefined>;
  /** `getMachine` with the version of the row, for `saveMachine`. */
  readMachine(mac: Mac): Promise<VersionedMachine | undefined>;
  /** The first machine that owns any of these MACs, else the one with this UUID. */
  findMachine(key: { macs: readonly Mac[]; uuid?: Uuid }): Promise<Machine | undefined>;
  /**
   * Ordered by primary MAC. With `page`, only machines after `page.after` and at most
   * `page.limit` of them; without, every match (callers with many machines page, or use
   * `eachMachine`).
   */
  listMachines(filter?: MachineFilter, page?: MachinePage): Promise<Machine[]>;
  /** A page of the machines a table shows, filtered and sorted (MachineSearch); the SQL store does it in SQL. */
  searchMachines(search: MachineSearch): Promise<MachineSearchPage>;
  /** How many machines are in each state that has any. */
  countMachinesByState(): Promise<Partial<Record<MachineState, number>>>;
  /**
   * When more than `max` machines are `discovered`, deletes the least recently seen of those
   * a boot recorded and nobody reserved (no profile or operator field) until `keep` (default
   * `max`) are left; the MACs it deleted. A registered machine, or one an admin gave fields
   * to, is never touched.
   */
  pruneDiscovered(max: number, keep?: number): Promise<Mac[]>;
  /**
   * Compare-and-set write of one machine: `expected` is the version read (undefined: the
   * machine must not exist yet). Throws StaleMachineError when the row is at another version,
   * StoreConflictError when a MAC belongs to another machine; returns the new version.
   */
  saveMachine(machine: Machine, expected: number | undefined): Promise<number>;
  /**
   * Read-modify-write of one machine (looked up by any of its MACs): `change` sees the current
   * row and returns what to write, which is written only if the row is still at the version
   * read; otherwise `change` runs again on the fresh row (at most MUTATION_ATTEMPTS times).
   * `change` must therefore be pure and synchronous. Throwing aborts and reaches the caller.
   */
  mutateMachine(mac: Mac, change: (current: Machine | undefined) => MachineChange): Promise<MutationResult>;
  /**
   * `mutateMachine` whose callback also computes a value from the row it saw; the value of the
   * run that committed is handed back after the commit.
   */
  updateMachine<R>(mac: Mac, change: (current: Machine | undefined) => { change: MachineChange; result: R }): Promise<MutationResult & { result: R }>;
  /** Appends to the timeline of the machine that owns `mac`; ids increase per machine. None when absent. */
  appendEvents(mac: Mac, events: readonly NewEvent[]): Promise<MachineEvent[]>;
  /** Oldest first; `afterId` pages forward. With `newest`, the last `limit` events (after `afterId`), still oldest first. */
  listEvents(mac: Mac, opts?: { afterId?: number; limit?: number; newest?: boolean }): Promise<MachineEvent[]>;
}

/** DHCP leases of full mode, unique per address and per client MAC. */
export interface LeaseRepository {
  /** Every DHCP lease (full mode keeps them in memory and journals them here). */
  listLeases(): Promise<Lease[]>;
  /**
   * The journal: saves and removes leases (by IP) in one transaction, last writer wins. A
   * saved lease ends the client's other leases. Correct while one host serves the pools.
   */
  writeLeases(save: readonly Lease[], remove: readonly string[]): Promise<void>;
  /**
   * Atomic allocation for hosts sharing one database: in one transaction, records `lease`
   * only if its address is free, expired at `now` (ms), or already held by `lease.mac`, and
   * then ends the client's other leases. Whether it won; a loser changes nothing.
   */
  claimLease(lease: Lease, now: number): Promise<boolean>;
}

/** The HTTP cache's index: upstream artifacts by source key, and the hub's artifact requests. */
export interface CacheIndexRepository {
  getCacheEntry(key: string): Promise<CacheEntry | undefined>;
  /** Creates or replaces the entry of `entry.key`. */
  putCacheEntry(entry: CacheEntry): Promise<void>;
  /** Sets `lastUsedAt` of the entries that exist, in one transaction. */
  touchCacheEntries(touches: readonly { key: string; time: string }[]): Promise<void>;
  deleteCacheEntry(key: string): Promise<void>;
  /** Every entry, least recently used first. */
  listCacheEntries(): Promise<CacheEntry[]>;
  /**
   * The upstream request (JSON, its URL's secrets included) behind an id that a rewritten hub
   * script names; registering again refreshes it, and those not registered since `keepSince`
   * are dropped.
   */
  putHubArtifact(id: string, request: string, time: string, keepSince: string): Promise<void>;
  getHubArtifact(id: string): Promise<string | undefined>;
}

/** The registry mirror's index: manifests (bytes in the content store) and tags as last seen upstream. */
export interface RegistryIndexRepository {
  /** A mirrored manifest and its media type; the first record of a digest stays. */
  putRegistryManifest(m: RegistryManifest): Promise<void>;
  getRegistryManifest(digest: string): Promise<RegistryManifest | undefined>;
  /** What a tag of an upstream repository pointed at when last asked. */
  putRegistryTag(upstream: string, repository: string, tag: string, digest: string, time: string): Promise<void>;
  getRegistryTag(upstream: string, repository: string, tag: string): Promise<string | undefined>;
  /** The last full tag list of an upstream repository (replacing the one before), for answering offline. */
  putRegistryTagList(upstream: string, repository: string, list: RegistryTagList): Promise<void>;
  getRegistryTagList(upstream: string, repository: string): Promise<RegistryTagList | undefined>;
}

export interface SettingsRepository {
  getSetting(key: string): Promise<string | undefined>;
  /** Sets the value only if the key is absent; returns the value stored afterwards (the first writer's). */
  initSetting(key: string, value: string): Promise<string>;
  /** Sets the value, replacing any (last writer wins). */
  putSetting(key: string, value: string): Promise<void>;
}

/**
 * The whole store: one implementation serves every repository, and a caller that needs one
 * concern takes that repository's type. Precache bundles and registry pull jobs persist
 * nothing here: bundles are files of the content store, jobs live in memory.
 */
export interface Store extends MachineRepository, LeaseRepository, CacheIndexRepository, RegistryIndexRepository, SettingsRepository {
  /** A cheap round trip, for /readyz. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
