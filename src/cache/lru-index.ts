import type { Logger } from 'pino';
import type { CacheEntry, Store } from '../store/store.js';
import type { BlobStore } from './blobs.js';
import { asError } from './errors.js';

/** The store's cache index rows: what this index reads and writes. */
export type CacheIndexStore = Pick<Store, 'getCacheEntry' | 'putCacheEntry' | 'touchCacheEntries' | 'deleteCacheEntry' | 'listCacheEntries'>;

export interface CacheIndexOptions {
  store: CacheIndexStore;
  blobs: Pick<BlobStore, 'remove'>;
  log: Logger;
  now: () => Date;
  /** Evict least recently used, unpinned entries beyond this many bytes (cache.maxBytes). */
  maxBytes?: number | undefined;
  /** Source keys that are never evicted: the artifacts profiles name. */
  pinned?: (() => ReadonlySet<string>) | undefined;
  /** Called once for each entry evicted (the /metrics counter). */
  onEvicted: () => void;
}

/** How long uses of cached entries wait before they are written to the store together. */
const TOUCH_FLUSH_MS = 5_000;

/**
 * The cache index: source key -> blob, least recently used first. Uses are recorded in batches,
 * eviction keeps the bytes within maxBytes, and pinned entries stay.
 */
export class CacheIndex {
  private readonly touched = new Map<string, string>();
  /** Uses of each entry since this process started (kept in memory only: a count, not an order). */
  private readonly hits = new Map<string, number>();
  private touchTimer: NodeJS.Timeout | undefined;

  constructor(private readonly o: CacheIndexOptions) {}

  get(key: string): Promise<CacheEntry | undefined> {
    return this.o.store.getCacheEntry(key);
  }

  put(entry: CacheEntry): Promise<void> {
    return this.o.store.putCacheEntry(entry);
  }

  /**
   * Uses are written to the store in batches (every TOUCH_FLUSH_MS, before eviction and
   * listing, and at close): one fsync'ed transaction per hit stalled the event loop for
   * hundreds of milliseconds on a busy disk (bench/registry-pull.sh, warm).
   */
  touch(key: string): void {
    this.touched.set(key, this.o.now().toISOString());
    this.hits.set(key, (this.hits.get(key) ?? 0) + 1);
    this.touchTimer ??= setTimeout(() => {
      void this.flushTouches().catch((err: unknown) => this.o.log.error({ err: asError(err).message }, 'could not record cache uses: the LRU order may lag'));
    }, TOUCH_FLUSH_MS).unref();
  }

  async flushTouches(): Promise<void> {
    clearTimeout(this.touchTimer);
    this.touchTimer = undefined;
    if (this.touched.size === 0) return;
    const touches = [...this.touched].map(([key, time]) => ({ key, time }));
    this.touched.clear();
    await this.o.store.touchCacheEntries(touches);
  }

  /** Every entry, least recently used first, with its pin and its hits since start, and the bytes on disk. */
  async list(): Promise<{ entries: (CacheEntry & { pinned: boolean; hits: number })[]; bytes: number }> {
    await this.flushTouches();
    const pinned = this.o.pinned?.() ?? new Set<string>();
    const entries = (await this.o.store.listCacheEntries()).map((e) => ({ ...e, pinned: pinned.has(e.key), hits: this.hits.get(e.key) ?? 0 }));
    return { entries, bytes: sumDistinct(entries) };
  }

  /**
   * Least recently used first, drops unpinned entries (and their blobs, once no entry names
   * them) until the cache holds at most maxBytes. Pinned entries stay even beyond it, and so do
   * the keys `busy` names (a download running under them). A reader of a blob dropped here has
   * it open and reads it whole: unlinking does not cut it.
   */
  /**
   * Removes one entry by hand (an admin's evict), and its blob once no other entry names it;
   * never a pinned entry nor one with a download running. A reader of the blob reads it whole.
   */
  async remove(key: string, busy: (key: string) => boolean): Promise<Removal> {
    await this.flushTouches();
    const entries = await this.o.store.listCacheEntries();
    const entry = entries.find((e) => e.key === key);
    if (!entry) return 'absent';
    if (this.o.pinned?.().has(key) === true) return 'pinned';
    if (busy(key)) return 'busy';
    await this.o.store.deleteCacheEntry(key);
    this.hits.delete(key);
    if (!entries.some((e) => e.key !== key && e.digest === entry.digest)) await this.o.blobs.remove(entry.digest);
    this.o.log.info({ key, digest: entry.digest, size: entry.size }, 'artifact evicted (by an admin)');
    return 'removed';
  }

  async evict(busy: (key: string) => boolean): Promise<void> {
    const { maxBytes } = this.o;
    if (maxBytes === undefined) return;
    await this.flushTouches();
    const pinned = this.o.pinned?.() ?? new Set<string>();
    const entries = await this.o.store.listCacheEntries();
    let bytes = sumDistinct(entries);
    const names = new Map<string, number>();
    for (const e of entries) names.set(e.digest, (names.get(e.digest) ?? 0) + 1);
    for (const e of entries) {
      if (bytes <= maxBytes) break;
      if (pinned.has(e.key) || busy(e.key)) continue;
      await this.o.store.deleteCacheEntry(e.key);
      this.hits.delete(e.key);
      const left = (names.get(e.digest) ?? 1) - 1;
      names.set(e.digest, left);
      if (left === 0) {
        await this.o.blobs.remove(e.digest);
        bytes -= e.size;
      }
      this.o.onEvicted();
      this.o.log.info({ key: e.key, digest: e.digest, size: e.size }, 'artifact evicted (least recently used)');
    }
  }
}

/** Why an entry cannot be removed by hand, or that it was. */
export type Removal = 'removed' | 'absent' | 'pinned' | 'busy';

/** Bytes on disk: entries that share a blob count it once. */
function sumDistinct(entries: readonly CacheEntry[]): number {
  const seen = new Map<string, number>();
  for (const e of entries) seen.set(e.digest, e.size);
  let n = 0;
  for (const v of seen.values()) n += v;
  return n;
}
