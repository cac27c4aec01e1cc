import type { Mac, Uuid } from '../machines/mac.js';
import type { Machine, MachineEvent, NewEvent } from '../machines/model.js';
import type { MachineState } from '../machines/state.js';
import type { Lease } from '../dhcp/leases.js';

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

/** Every machine that matches, read a page at a time: the callers that need them all. */
export async function* eachMachine(store: Pick<Store, 'listMachines'>, filter: MachineFilter = {}, pageSize = 500): AsyncGenerator<Machine> {
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
export type MachineChange =
  | { kind: 'keep'; events?: NewEvent[] }
  | { kind: 'save'; machine: Machine; events?: NewEvent[] }
  | { kind: 'delete' };

export interface MutationResult {
  machine: Machine | undefined;
  events: MachineEvent[];
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
 * The one persistence interface. Every method is async so that a PostgreSQL store fits the
 * same callers; every multi-row change happens inside one transaction of the implementation.
 */
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

export interface Store {
  /** By any of the machine's MACs. */
  getMachine(mac: Mac): Promise<Machine | undefined>;
  /** The first machine that owns any of these MACs, else the one with this UUID. */
  findMachine(key: { macs: readonly Mac[]; uuid?: Uuid }): Promise<Machine | undefined>;
  /**
   * Ordered by primary MAC. With `page`, only machines after `page.after` and at most
   * `page.limit` of them; without, every match (callers with many machines page, or use
   * `eachMachine`).
   */
  listMachines(filter?: MachineFilter, page?: MachinePage): Promise<Machine[]>;
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
   * Read-modify-write of one machine (looked up by any of its MACs) in one transaction:
   * `change` sees the current row and returns what to write. It must be pure and synchronous.
   */
  mutateMachine(mac: Mac, change: (current: Machine | undefined) => MachineChange): Promise<MutationResult>;
  /**
   * `mutateMachine` whose callback also computes a value from the row it saw; that value is
   * handed back after the commit (same transaction, same purity rule).
   */
  updateMachine<R>(mac: Mac, change: (current: Machine | undefined) => { change: MachineChange; result: R }): Promise<MutationResult & { result: R }>;
  appendEvents(mac: Mac, events: readonly NewEvent[]): Promise<MachineEvent[]>;
  /** Oldest first; `afterId` pages forward. */
  listEvents(mac: Mac, opts?: { afterId?: number; limit?: number }): Promise<MachineEvent[]>;
  /** Every DHCP lease (full mode keeps them in memory and journals them here). */
  listLeases(): Promise<Lease[]>;
  /** Saves and removes leases (by IP) in one transaction. */
  writeLeases(save: readonly Lease[], remove: readonly string[]): Promise<void>;
  getSetting(key: string): Promise<string | undefined>;
  /** Sets the value only if the key is absent; returns the value that is stored afterwards. */
  initSetting(key: string, value: string): Promise<string>;
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
  /** A mirrored manifest (its bytes are a blob of the content store) and its media type. */
  putRegistryManifest(m: RegistryManifest): Promise<void>;
  getRegistryManifest(digest: string): Promise<RegistryManifest | undefined>;
  /** What a tag of an upstream repository pointed at when last asked. */
  putRegistryTag(upstream: string, repository: string, tag: string, digest: string, time: string): Promise<void>;
  getRegistryTag(upstream: string, repository: string, tag: string): Promise<string | undefined>;
  /** The last full tag list of an upstream repository (replacing the one before), for answering offline. */
  putRegistryTagList(upstream: string, repository: string, list: RegistryTagList): Promise<void>;
  getRegistryTagList(upstream: string, repository: string): Promise<RegistryTagList | undefined>;
  /** A cheap round trip, for /readyz. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
