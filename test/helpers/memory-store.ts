/**
 * An in-memory Store for tests (matchbox's testfakes): the same contract as the SQLite store
 * (test/unit/store/contract.ts holds both to it), no file, no SQL. Handles made with `share`
 * see one set of tables, like two hosts on one database.
 */
import type { Mac, Uuid } from '../../src/machines/mac.js';
import { allMacs, type Machine, type MachineEvent, type NewEvent } from '../../src/machines/model.js';
import type { MachineState } from '../../src/machines/state.js';
import { parseIpv4 } from '../../src/net/ipv4.js';
import type { Lease } from '../../src/store/lease.js';
import { checkVersion, mutateWithRetry, type MutationSteps } from '../../src/store/mutation.js';
import { asciiLowerCase, checkSearchWindow, searchText, type SearchText } from '../../src/store/search.js';
import { EVENTS_KEPT_PER_MACHINE } from '../../src/store/sqlite-machines.js';
import {
  StaleMachineError,
  StoreConflictError,
  type CacheEntry,
  type MachineChange,
  type MachineFilter,
  type MachinePage,
  type MachineSearch,
  type MachineSearchPage,
  type MachineSort,
  type MutationResult,
  type RegistryManifest,
  type RegistryTagList,
  type Store,
  type VersionedMachine,
} from '../../src/store/store.js';

interface Tables {
  machines: Map<Mac, VersionedMachine>;
  /** Every MAC to its machine's primary MAC. */
  macs: Map<Mac, Mac>;
  events: Map<Mac, MachineEvent[]>;
  nextEventId: number;
  leases: Map<string, Lease>;
  cache: Map<string, CacheEntry>;
  hub: Map<string, { request: string; time: string }>;
  manifests: Map<string, RegistryManifest>;
  tags: Map<string, string>;
  tagLists: Map<string, RegistryTagList>;
  settings: Map<string, string>;
}

const copy = <T>(v: T): T => structuredClone(v);
const repoKey = (...parts: string[]) => JSON.stringify(parts);

/** Nobody reserved it: the condition under which SQLite's pruneDiscovered may delete a machine. */
const unreserved = (m: Machine) =>
  m.state === 'discovered' &&
  m.profile === undefined &&
  m.uuid === undefined &&
  m.hostname === undefined &&
  m.ip === undefined &&
  m.assisted === undefined &&
  m.precache === undefined &&
  m.macs.length === 0 &&
  Object.keys(m.labels).length === 0;

/** What each sort orders by, before the primary MAC; undefined sorts after every value. */
const sortValues: Record<MachineSort, (m: Machine) => (string | number | undefined)[]> = {
  hostname: (m) => [m.hostname],
  ip: (m) => [m.ip === undefined ? undefined : parseIpv4(m.ip)],
  mac: () => [],
  state: (m) => [m.state],
  profile: (m) => [m.profile],
  firmware: (m) => [m.observed.platform, m.observed.arch],
  power: (m) => [m.bmcStatus?.powerState],
  lastSeen: (m) => [m.observed.lastSeenAt],
};

function compareSortValues(a: (string | number | undefined)[], b: (string | number | undefined)[]): number {
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    const y = b[i];
    if (x === y) continue;
    if (x === undefined) return 1;
    if (y === undefined) return -1;
    return x < y ? -1 : 1;
  }
  return 0;
}

function matchesText(m: Machine, text: SearchText): boolean {
  const fields = [m.hostname, m.ip, m.observed.serial, m.inventory?.serial];
  if (fields.some((f) => f !== undefined && asciiLowerCase(f).includes(text.needle))) return true;
  return allMacs(m).some(
    (x) =>
      x.includes(text.needle) ||
      (text.colonMac !== undefined && x.includes(text.colonMac)) ||
      (text.hexMac !== undefined && x.replaceAll(':', '').includes(text.hexMac)),
  );
}

export class MemoryStore implements Store {
  private closed = false;

  constructor(
    private readonly t: Tables = emptyTables(),
    private readonly now: () => Date = () => new Date(),
  ) {}

  /** Another handle on the same tables. */
  share(): MemoryStore {
    return new MemoryStore(this.t, this.now);
  }

  async getMachine(mac: Mac): Promise<Machine | undefined> {
    return this.read(mac)?.machine;
  }

  async readMachine(mac: Mac): Promise<VersionedMachine | undefined> {
    return this.read(mac);
  }

  async findMachine(key: { macs: readonly Mac[]; uuid?: Uuid }): Promise<Machine | undefined> {
    for (const mac of key.macs) {
      const m = this.read(mac);
      if (m) return m.machine;
    }
    const byUuid = key.uuid === undefined ? [] : [...this.t.machines.values()].filter((v) => v.machine.uuid === key.uuid);
    return byUuid.length === 1 && byUuid[0] ? copy(byUuid[0].machine) : undefined;
  }

  async listMachines(filter: MachineFilter = {}, page?: MachinePage): Promise<Machine[]> {
    const matches = [...this.t.machines.values()]
      .map((v) => v.machine)
      .filter((m) => filter.state === undefined || m.state === filter.state)
      .filter((m) => filter.profile === undefined || m.profile === filter.profile)
      .filter((m) => Object.entries(filter.labels ?? {}).every(([k, v]) => m.labels[k] === v))
      .filter((m) => page?.after === undefined || m.mac > page.after)
      .sort((a, b) => (a.mac < b.mac ? -1 : 1));
    return copy(page ? matches.slice(0, page.limit) : matches);
  }

  async searchMachines(search: MachineSearch): Promise<MachineSearchPage> {
    checkSearchWindow(search);
    const text = searchText(search.text);
    const values = sortValues[search.sort ?? 'mac'];
    const direction = search.descending ? -1 : 1;
    const matches = [...this.t.machines.values()]
      .map((v) => v.machine)
      .filter((m) => search.state === undefined || m.state === search.state)
      .filter((m) => search.profile === undefined || m.profile === search.profile)
      .filter((m) => Object.entries(search.labels ?? {}).every(([k, v]) => m.labels[k] === v))
      .filter((m) => text === undefined || matchesText(m, text))
      .sort((a, b) => direction * (compareSortValues(values(a), values(b)) || (a.mac < b.mac ? -1 : 1)));
    return { machines: copy(matches.slice(search.offset, search.offset + search.limit)), total: matches.length };
  }

  async countMachinesByState(): Promise<Partial<Record<MachineState, number>>> {
    const counts: Partial<Record<MachineState, number>> = {};
    for (const { machine } of this.t.machines.values()) counts[machine.state] = (counts[machine.state] ?? 0) + 1;
    return counts;
  }

  async pruneDiscovered(max: number, keep = max): Promise<Mac[]> {
    const discovered = [...this.t.machines.values()].filter((v) => v.machine.state === 'discovered');
    if (discovered.length <= max) return [];
    const seen = (m: Machine) => m.observed.lastSeenAt ?? m.updatedAt;
    const newestFirst = discovered
      .map((v) => v.machine)
      .filter(unreserved)
      .sort((a, b) => (seen(a) !== seen(b) ? (seen(a) < seen(b) ? 1 : -1) : a.mac < b.mac ? 1 : -1));
    const doomed = newestFirst.slice(keep).map((m) => m.mac);
    for (const mac of doomed) this.remove(mac);
    return doomed;
  }

  async saveMachine(machine: Machine, expected: number | undefined): Promise<number> {
    return this.save(machine, expected);
  }

  async mutateMachine(mac: Mac, change: (current: Machine | undefined) => MachineChange): Promise<MutationResult> {
    const { machine, events } = mutateWithRetry(this.steps, mac, (current) => ({ change: change(current), result: undefined }));
    return { machine, events };
  }

  async updateMachine<R>(mac: Mac, change: (current: Machine | undefined) => { change: MachineChange; result: R }): Promise<MutationResult & { result: R }> {
    return mutateWithRetry(this.steps, mac, change);
  }

  async appendEvents(mac: Mac, events: readonly NewEvent[]): Promise<MachineEvent[]> {
    const m = this.read(mac);
    return m ? this.insertEvents(m.machine.mac, events) : [];
  }

  async listEvents(mac: Mac, opts: { afterId?: number; limit?: number; newest?: boolean } = {}): Promise<MachineEvent[]> {
    const m = this.read(mac);
    if (!m) return [];
    const after = opts.afterId ?? 0;
    const limit = opts.limit ?? 1000;
    const events = (this.t.events.get(m.machine.mac) ?? []).filter((e) => e.id > after);
    return copy(opts.newest === true ? events.slice(Math.max(0, events.length - limit)) : events.slice(0, limit));
  }

  async listLeases(): Promise<Lease[]> {
    return copy([...this.t.leases.values()]);
  }

  async writeLeases(save: readonly Lease[], remove: readonly string[]): Promise<void> {
    for (const ip of remove) this.t.leases.delete(ip);
    for (const l of save) this.putLease(l);
  }

  async claimLease(lease: Lease, now: number): Promise<boolean> {
    const held = this.t.leases.get(lease.ip);
    if (held && held.mac !== lease.mac && held.expiresAt > now) return false;
    this.putLease(lease);
    return true;
  }

  async getCacheEntry(key: string): Promise<CacheEntry | undefined> {
    return copy(this.t.cache.get(key));
  }

  async putCacheEntry(entry: CacheEntry): Promise<void> {
    this.t.cache.set(entry.key, copy(entry));
  }

  async touchCacheEntries(touches: readonly { key: string; time: string }[]): Promise<void> {
    for (const { key, time } of touches) {
      const e = this.t.cache.get(key);
      if (e) e.lastUsedAt = time;
    }
  }

  async deleteCacheEntry(key: string): Promise<void> {
    this.t.cache.delete(key);
  }

  async listCacheEntries(): Promise<CacheEntry[]> {
    const order = (a: CacheEntry, b: CacheEntry) => (a.lastUsedAt !== b.lastUsedAt ? (a.lastUsedAt < b.lastUsedAt ? -1 : 1) : a.key < b.key ? -1 : 1);
    return copy([...this.t.cache.values()].sort(order));
  }

  async putHubArtifact(id: string, request: string, time: string, keepSince: string): Promise<void> {
    this.t.hub.set(id, { request, time });
    for (const [k, v] of this.t.hub) if (v.time < keepSince) this.t.hub.delete(k);
  }

  async getHubArtifact(id: string): Promise<string | undefined> {
    return this.t.hub.get(id)?.request;
  }

  async putRegistryManifest(m: RegistryManifest): Promise<void> {
    if (!this.t.manifests.has(m.digest)) this.t.manifests.set(m.digest, copy(m));
  }

  async getRegistryManifest(digest: string): Promise<RegistryManifest | undefined> {
    return copy(this.t.manifests.get(digest));
  }

  async putRegistryTag(upstream: string, repository: string, tag: string, digest: string): Promise<void> {
    this.t.tags.set(repoKey(upstream, repository, tag), digest);
  }

  async getRegistryTag(upstream: string, repository: string, tag: string): Promise<string | undefined> {
    return this.t.tags.get(repoKey(upstream, repository, tag));
  }

  async putRegistryTagList(upstream: string, repository: string, list: RegistryTagList): Promise<void> {
    this.t.tagLists.set(repoKey(upstream, repository), copy(list));
  }

  async getRegistryTagList(upstream: string, repository: string): Promise<RegistryTagList | undefined> {
    return copy(this.t.tagLists.get(repoKey(upstream, repository)));
  }

  async getSetting(key: string): Promise<string | undefined> {
    return this.t.settings.get(key);
  }

  async initSetting(key: string, value: string): Promise<string> {
    if (!this.t.settings.has(key)) this.t.settings.set(key, value);
    return this.t.settings.get(key) ?? value;
  }

  async putSetting(key: string, value: string): Promise<void> {
    this.t.settings.set(key, value);
  }

  async ping(): Promise<void> {
    if (this.closed) throw new Error('memory store: closed');
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  private readonly steps: MutationSteps = {
    read: (mac) => this.read(mac),
    commit: (lookup, current, c) => this.commit(lookup, current, c),
  };

  private read(mac: Mac): VersionedMachine | undefined {
    const primary = this.t.macs.get(mac);
    const found = primary && this.t.machines.get(primary);
    return found && copy(found);
  }

  private commit(lookup: Mac, current: VersionedMachine | undefined, c: MachineChange): MutationResult {
    if (current) checkVersion(current.machine.mac, this.t.machines.get(current.machine.mac)?.version, current.version);
    else if (c.kind === 'save' && this.t.macs.has(lookup)) throw new StaleMachineError(lookup, undefined);
    switch (c.kind) {
      case 'keep':
        return { machine: current?.machine, events: current && c.events ? this.insertEvents(current.machine.mac, c.events) : [] };
      case 'delete':
        if (current) this.remove(current.machine.mac);
        return { machine: undefined, events: [] };
      case 'save':
        this.save(c.machine, current?.version);
        return { machine: c.machine, events: c.events ? this.insertEvents(c.machine.mac, c.events) : [] };
    }
  }

  private save(m: Machine, expected: number | undefined): number {
    checkVersion(m.mac, this.t.machines.get(m.mac)?.version, expected);
    const macs = allMacs(m);
    for (const x of macs) {
      const owner = this.t.macs.get(x);
      if (owner !== undefined && owner !== m.mac) throw new StoreConflictError(`MAC ${x} already belongs to machine ${owner}`, owner, x);
    }
    for (const [x, owner] of this.t.macs) if (owner === m.mac) this.t.macs.delete(x);
    for (const x of macs) this.t.macs.set(x, m.mac);
    const version = (expected ?? 0) + 1;
    this.t.machines.set(m.mac, { machine: copy(m), version });
    return version;
  }

  private remove(mac: Mac): void {
    this.t.machines.delete(mac);
    this.t.events.delete(mac);
    for (const [x, owner] of this.t.macs) if (owner === mac) this.t.macs.delete(x);
  }

  private insertEvents(machine: Mac, events: readonly NewEvent[]): MachineEvent[] {
    const time = this.now().toISOString();
    const timeline = this.t.events.get(machine) ?? [];
    const out = events.map((e): MachineEvent => ({ ...copy(e), id: this.t.nextEventId++, mac: machine, time }));
    timeline.push(...out);
    this.t.events.set(machine, timeline.slice(-EVENTS_KEPT_PER_MACHINE));
    return copy(out);
  }

  private putLease(l: Lease): void {
    // One address per client: a new binding ends the client's older ones.
    if (l.mac) for (const [ip, held] of this.t.leases) if (held.mac === l.mac && ip !== l.ip) this.t.leases.delete(ip);
    this.t.leases.set(l.ip, copy(l));
  }
}

function emptyTables(): Tables {
  return {
    machines: new Map(),
    macs: new Map(),
    events: new Map(),
    nextEventId: 1,
    leases: new Map(),
    cache: new Map(),
    hub: new Map(),
    manifests: new Map(),
    tags: new Map(),
    tagLists: new Map(),
    settings: new Map(),
  };
}

/** A fresh in-memory store. */
export function openMemoryStore(opts: { now?: () => Date } = {}): MemoryStore {
  return new MemoryStore(emptyTables(), opts.now);
}
