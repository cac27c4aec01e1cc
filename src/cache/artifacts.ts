import type { Logger } from 'pino';
import type { Dispatcher } from 'undici';
import { upstreamDispatcher } from '../net/upstream-agent.js';
import { redactSecrets } from '../secrets/redact.js';
import type { CacheEntry } from '../store/store.js';
import type { BlobStore } from './blobs.js';
import { Download, type DownloadView } from './download.js';
import { Downloader } from './downloader.js';
import { asError, DownloadCancelledError, IntegrityError } from './errors.js';
import { CacheIndex, type CacheIndexStore, type Removal } from './lru-index.js';
import { emptyStats, requestKey, type ArtifactRequest, type Cached, type CacheStats } from './model.js';
import { stillCurrent } from './upstream.js';

// The cache's face: what its users import from here.
export { CacheFullError, DownloadCancelledError, IntegrityError, UpstreamError } from './errors.js';
export { requestKey, type ArtifactRequest, type Cached, type CacheStats } from './model.js';
export type { DownloadView } from './download.js';
export { USER_AGENT } from './upstream.js';

export interface ArtifactCacheOptions {
  store: CacheIndexStore;
  blobs: BlobStore;
  log: Logger;
  /** The clock of the index's use times, the failure hold and the download times. */
  now: () => Date;
  /** Resumes of one download after its connection dropped (default 5). */
  retries?: number;
  /** Upstream response headers within this (default 30 s). */
  headersTimeoutMs?: number;
  /** No body bytes for this long fails the attempt (default 60 s). */
  bodyTimeoutMs?: number;
  /**
   * After an upstream sent bytes that do not verify, answer with that error for this long
   * instead of pulling the same wrong file over the WAN again (default 60 s).
   */
  failureHoldMs?: number;
  dispatcher?: Dispatcher;
  /** Evict least recently used, unpinned entries beyond this many bytes (cache.maxBytes). */
  maxBytes?: number;
  /** Source keys that are never evicted: the artifacts profiles name. */
  pinned?: () => ReadonlySet<string>;
  /** Test seam (a slow disk): awaited before each body chunk is written to its temporary file. */
  beforeWrite?: () => Promise<void>;
}

/**
 * The verified artifact cache: each upstream URL is fetched once (single flight per source
 * key) by the downloader (downloader.ts: streamed to a temporary file while it is hashed,
 * resumed with Range, verified, committed), served while it downloads (readers.ts), and indexed
 * by its source key (lru-index.ts). Nothing partial or unverified is ever returned as complete.
 */
export class ArtifactCache {
  readonly stats: CacheStats = emptyStats();
  private readonly inflight = new Map<string, Download>();
  private readonly held = new Map<string, { error: IntegrityError; until: number }>();
  private readonly now: () => Date;
  private readonly dispatcher: Dispatcher;
  private readonly index: CacheIndex;
  private readonly downloader: Downloader;

  constructor(private readonly o: ArtifactCacheOptions) {
    this.now = o.now;
    this.dispatcher = o.dispatcher ?? upstreamDispatcher({ headersTimeoutMs: o.headersTimeoutMs ?? 30_000, bodyTimeoutMs: o.bodyTimeoutMs ?? 60_000 });
    const { store, blobs, log, maxBytes, pinned, beforeWrite } = o;
    this.index = new CacheIndex({ store, blobs, log, now: this.now, maxBytes, pinned, onEvicted: () => this.stats.evictions++ });
    this.downloader = new Downloader({
      blobs,
      log,
      now: this.now,
      dispatcher: this.dispatcher,
      stats: this.stats,
      retries: o.retries ?? 5,
      beforeWrite,
      record: (entry) => this.index.put(entry),
      pendingBytes: (except) => this.pendingBytes(except),
    });
  }

  flushTouches(): Promise<void> {
    return this.index.flushTouches();
  }

  /**
   * Shutdown: cancels the downloads running (their `signal` aborts: the upstream request stops,
   * the temporary file is discarded, readers see `DownloadCancelledError`), waits for them to
   * settle, and writes the pending uses. A download started afterwards runs as usual.
   */
  async close(): Promise<void> {
    const running = [...this.inflight.values()];
    for (const d of running) d.cancel(new DownloadCancelledError(d.key, 'the cache is closing'));
    await Promise.allSettled(running.map((d) => d.done));
    await this.index.flushTouches();
  }

  /** Bytes the downloads other than `except` have announced and not yet written. */
  private pendingBytes(except: DownloadView): number {
    let pending = 0;
    for (const d of this.inflight.values()) if (d !== except && d.total !== undefined) pending += Math.max(0, d.total - d.written);
    return pending;
  }

  /** The complete artifact when cached (and still matching the request), else undefined. */
  async lookup(req: ArtifactRequest): Promise<Cached | undefined> {
    const entry = await this.index.get(requestKey(req));
    if (!entry) return undefined;
    if (req.sha256 !== undefined && entry.digest !== req.sha256) return undefined;
    const size = await this.o.blobs.size(entry.digest);
    if (size !== entry.size) return undefined;
    if (req.revalidate && !(await stillCurrent(req.url, entry, this.dispatcher, this.o.log))) return undefined;
    this.index.touch(entry.key);
    return { entry, path: this.o.blobs.path(entry.digest), fetched: false };
  }

  /** The cached artifact, or the download that is (or now starts) fetching it. */
  async open(req: ArtifactRequest): Promise<{ kind: 'cached'; cached: Cached } | { kind: 'download'; download: DownloadView }> {
    const hit = await this.lookup(req);
    if (hit) {
      this.stats.hits++;
      return { kind: 'cached', cached: hit };
    }
    this.stats.misses++;
    const key = requestKey(req);
    // Held per expectation: the same URL asked with another sha256 (or none) is tried afresh.
    const expectation = `${key}\n${req.sha256 ?? ''}\n${req.size ?? ''}`;
    const held = this.held.get(expectation);
    if (held && held.until > this.now().getTime()) throw held.error;
    this.held.delete(expectation);
    let d = this.inflight.get(key);
    if (!d) {
      d = new Download(key, this.o.blobs.tmpPath(), (dl) => this.fetch(req, dl));
      this.inflight.set(key, d);
      void d.done.then(
        () => this.inflight.delete(key),
        (err: unknown) => {
          this.inflight.delete(key);
          if (err instanceof IntegrityError) this.held.set(expectation, { error: err, until: this.now().getTime() + (this.o.failureHoldMs ?? 60_000) });
        },
      );
      this.stats.downloads++;
      this.o.log.info({ upstream: redactSecrets(req.url), key }, 'artifact download started');
    }
    return { kind: 'download', download: d };
  }

  /**
   * Downloads, then evicts while the download still counts as running, so the entry it just
   * indexed is not the one evicted.
   */
  private async fetch(req: ArtifactRequest, d: Download): Promise<Cached> {
    const cached = await this.downloader.run(req, d);
    await this.evict().catch((err: unknown) => this.o.log.error({ err: asError(err).message }, 'cache eviction failed'));
    return cached;
  }

  /** The artifact, complete: cached, or fetched now (or joined, when a fetch is running). */
  async get(req: ArtifactRequest): Promise<Cached> {
    const r = await this.open(req);
    return r.kind === 'cached' ? r.cached : r.download.done;
  }

  /** Every entry (least recently used first) and every download running now. */
  async list(): Promise<{
    entries: (CacheEntry & { pinned: boolean; hits: number })[];
    downloads: { key: string; bytes: number; total?: number }[];
    bytes: number;
  }> {
    const { entries, bytes } = await this.index.list();
    const downloads = [...this.inflight.values()].map((d) => ({ key: d.key, bytes: d.written, ...(d.total !== undefined && { total: d.total }) }));
    return { entries, downloads, bytes };
  }

  /** The entry of a source key, if the cache holds it. */
  entry(key: string): Promise<CacheEntry | undefined> {
    return this.index.get(key);
  }

  /** Evicts one entry by hand (lru-index.ts `remove`): never a pinned one, nor one downloading. */
  remove(key: string): Promise<Removal> {
    return this.index.remove(key, (k) => this.inflight.has(k));
  }

  /** Evicts beyond maxBytes (lru-index.ts); a key with a download running is never evicted. */
  evict(): Promise<void> {
    return this.index.evict((key) => this.inflight.has(key));
  }
}
