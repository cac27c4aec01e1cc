import { createHash, type Hash } from 'node:crypto';
import { EventEmitter, once } from 'node:events';
import { open, type FileHandle } from 'node:fs/promises';
import { Readable, Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import type { Logger } from 'pino';
import { request, type Dispatcher } from 'undici';
import { upstreamDispatcher, UpstreamOutpacedError } from '../net/upstream-agent.js';
import { redactSecrets } from '../secrets/redact.js';
import type { CacheEntry, Store } from '../store/store.js';
import type { BlobStore, Hex } from './blobs.js';
import { sourceKey } from './source-key.js';

/** What a profile (or an operator) asks the cache for. */
export interface ArtifactRequest {
  url: string;
  sha256?: Hex;
  size?: number;
  /**
   * Ask the upstream (HEAD) whether a cached copy is still current before serving it: for
   * artifacts that may change under the same URL, such as an InfraEnv's pxe-initrd. An
   * unreachable upstream keeps the cached copy serving.
   */
  revalidate?: boolean;
  /**
   * The index key, when it is not the URL's source key: a registry blob is one entry per
   * digest (`oci-blob:sha256:<hex>`), whichever repository and URL it is fetched through.
   */
  key?: string;
  /** Request headers for each attempt, such as a registry's bearer token (never stored or logged). */
  headers?: () => Promise<Record<string, string>>;
}

/** The index key of a request. */
export function requestKey(req: ArtifactRequest): string {
  return req.key ?? sourceKey(req.url);
}

/** The upstream failed: unreachable, an error status, a timeout, or a body cut short too often. */
export class UpstreamError extends Error {
  constructor(
    /** The URL with its secrets cut. */
    readonly upstream: string,
    readonly reason: string,
    readonly timeout: boolean,
    readonly status?: number,
  ) {
    super(`${upstream}: ${reason}`);
    this.name = 'UpstreamError';
  }
}

/** The bytes are not the ones the profile or request named. Nothing was stored. */
export class IntegrityError extends Error {
  constructor(readonly upstream: string, message: string) {
    super(`${upstream}: ${message}; nothing was stored`);
    this.name = 'IntegrityError';
  }
}

/** The cache's disk is full. Nothing partial was kept. */
export class CacheFullError extends Error {
  constructor(readonly upstream: string, dir: string, detail?: string) {
    super(`the cache disk (${dir}) is full while storing ${upstream}${detail ? ` (${detail})` : ''}; nothing partial was kept: free space or lower cache.maxBytes`);
    this.name = 'CacheFullError';
  }
}

export interface ArtifactCacheOptions {
  store: Store;
  blobs: BlobStore;
  log: Logger;
  now?: () => Date;
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

/** Counters for /metrics, read at scrape time. */
export interface CacheStats {
  hits: number;
  misses: number;
  /** Body bytes received from upstreams (resumes included). */
  upstreamBytes: number;
  /** Body bytes sent to clients from the cache (counted by the route). */
  servedBytes: number;
  evictions: number;
  downloads: number;
  /** Large transfers refused with 503 (cache.maxTransfers), and those running now. */
  busy: number;
  activeTransfers: number;
  /**
   * Downloads cut because the disk fell too far behind an upstream that closes its connection
   * (see UpstreamOutpacedError), then resumed with Range.
   */
  outpacedResumes: number;
}

/** Where a complete artifact is. */
export interface Cached {
  entry: CacheEntry;
  path: string;
  /** false: it was already cached. */
  fetched: boolean;
}

/**
 * A download in progress, readable while it runs: `written` bytes of `tmp` are final, and
 * `progress` fires as more arrive. `total` is known once the upstream answered with a length.
 */
export class Download extends EventEmitter {
  written = 0;
  total: number | undefined;
  /** Bumped when the download restarts from byte 0: readers past 0 must give up. */
  generation = 0;
  failure: Error | undefined;
  finished = false;
  readonly done: Promise<Cached>;

  constructor(readonly key: string, readonly tmp: string, run: (d: Download) => Promise<Cached>) {
    super();
    this.setMaxListeners(0);
    this.done = run(this).then(
      (c) => {
        this.finished = true;
        this.emit('progress');
        return c;
      },
      (err: Error) => {
        this.failure = err;
        this.emit('progress');
        throw err;
      },
    );
    // Readers see the failure through `failure`; an unobserved rejection is not a crash.
    this.done.catch(() => undefined);
  }
}

const RETRY_BASE_MS = 200;
/** What edgeboot calls itself to upstreams (their logs then say who fetched). */
export const USER_AGENT = 'edgeboot/0.1';
/** How long uses of cached entries wait before they are written to the store together. */
const TOUCH_FLUSH_MS = 5_000;
/** How long a hub artifact id outlives the last script that named it. */
const HUB_ARTIFACT_DAYS = 7;

/**
 * The verified artifact cache: each upstream URL is fetched once (single flight per source
 * key), streamed to a temporary file while it is hashed, resumed with Range after a dropped
 * connection, checked against the expected sha256 and size, fsynced and renamed into the
 * content store, and indexed by its source key. Nothing partial or unverified is ever
 * returned as complete.
 */
export class ArtifactCache {
  private readonly inflight = new Map<string, Download>();
  private readonly held = new Map<string, { error: IntegrityError; until: number }>();
  /** Upstream URLs (secrets included) of artifacts named by hub scripts, by edgeboot's id. */
  private readonly sources = new Map<string, ArtifactRequest>();
  readonly stats: CacheStats = { hits: 0, misses: 0, upstreamBytes: 0, servedBytes: 0, evictions: 0, downloads: 0, busy: 0, activeTransfers: 0, outpacedResumes: 0 };
  private readonly now: () => Date;
  private readonly dispatcher: Dispatcher;
  private readonly touched = new Map<string, string>();
  private touchTimer: NodeJS.Timeout | undefined;

  constructor(private readonly o: ArtifactCacheOptions) {
    this.now = o.now ?? (() => new Date());
    this.dispatcher = o.dispatcher ?? upstreamDispatcher({ headersTimeoutMs: o.headersTimeoutMs ?? 30_000, bodyTimeoutMs: o.bodyTimeoutMs ?? 60_000 });
  }

  /**
   * An id for an upstream URL that edgeboot's own URLs can carry instead of it (and its
   * api_key): the first 16 hex digits of the sha256 of its source key, so the same file under
   * another key gets the same id. Kept in the store too, for HUB_ARTIFACT_DAYS: the RHCOS
   * initramfs fetches its rootfs minutes after the script was served, across a restart of
   * edgeboot perhaps. A failed write is logged; the id still works until the next restart.
   */
  register(req: ArtifactRequest): string {
    const id = createHash('sha256').update(sourceKey(req.url)).digest('hex').slice(0, 16);
    this.sources.set(id, req);
    const now = this.now();
    const keepSince = new Date(now.getTime() - HUB_ARTIFACT_DAYS * 86_400_000).toISOString();
    this.o.store.putHubArtifact(id, JSON.stringify(req), now.toISOString(), keepSince).catch((err: unknown) => {
      this.o.log.error({ err, id, url: redactSecrets(req.url) }, 'could not keep a hub artifact id in the store: it is good until edgeboot restarts');
    });
    return id;
  }

  async registered(id: string): Promise<ArtifactRequest | undefined> {
    const known = this.sources.get(id);
    if (known) return known;
    const stored = await this.o.store.getHubArtifact(id);
    if (stored === undefined) return undefined;
    const req = JSON.parse(stored) as ArtifactRequest;
    this.sources.set(id, req);
    return req;
  }

  /**
   * Uses are written to the store in batches (every TOUCH_FLUSH_MS, before eviction and
   * listing, and at close): one fsync'ed transaction per hit stalled the event loop for
   * hundreds of milliseconds on a busy disk (bench/registry-pull.sh, warm).
   */
  private touch(key: string): void {
    this.touched.set(key, this.now().toISOString());
    this.touchTimer ??= setTimeout(() => {
      void this.flushTouches().catch((err: Error) => this.o.log.error({ err: err.message }, 'could not record cache uses: the LRU order may lag'));
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

  /** Writes what is pending; the cache is still usable afterwards. */
  async close(): Promise<void> {
    await this.flushTouches();
  }

  /** Bytes the downloads other than `except` have announced and not yet written. */
  private pendingBytes(except: Download): number {
    let pending = 0;
    for (const d of this.inflight.values()) if (d !== except && d.total !== undefined) pending += Math.max(0, d.total - d.written);
    return pending;
  }

  /** The complete artifact when cached (and still matching the request), else undefined. */
  async lookup(req: ArtifactRequest): Promise<Cached | undefined> {
    const entry = await this.o.store.getCacheEntry(requestKey(req));
    if (!entry) return undefined;
    if (req.sha256 !== undefined && entry.digest !== req.sha256) return undefined;
    const size = await this.o.blobs.size(entry.digest);
    if (size !== entry.size) return undefined;
    if (req.revalidate && !(await this.stillCurrent(req.url, entry))) return undefined;
    this.touch(entry.key);
    return { entry, path: this.o.blobs.path(entry.digest), fetched: false };
  }

  /** The cached artifact, or the download that is (or now starts) fetching it. */
  async open(req: ArtifactRequest): Promise<{ kind: 'cached'; cached: Cached } | { kind: 'download'; download: Download }> {
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
    if (held && held.until > Date.now()) throw held.error;
    this.held.delete(expectation);
    let d = this.inflight.get(key);
    if (!d) {
      d = new Download(key, this.o.blobs.tmpPath(), (dl) => this.download(req, dl));
      this.inflight.set(key, d);
      void d.done.then(
        () => this.inflight.delete(key),
        (err: unknown) => {
          this.inflight.delete(key);
          if (err instanceof IntegrityError) this.held.set(expectation, { error: err, until: Date.now() + (this.o.failureHoldMs ?? 60_000) });
        },
      );
      this.stats.downloads++;
      this.o.log.info({ upstream: redactSecrets(req.url), key }, 'artifact download started');
    }
    return { kind: 'download', download: d };
  }

  /** The artifact, complete: cached, or fetched now (or joined, when a fetch is running). */
  async get(req: ArtifactRequest): Promise<Cached> {
    const r = await this.open(req);
    return r.kind === 'cached' ? r.cached : r.download.done;
  }

  /** Every entry (least recently used first) and every download running now. */
  async list(): Promise<{ entries: (CacheEntry & { pinned: boolean })[]; downloads: { key: string; bytes: number; total?: number }[]; bytes: number }> {
    await this.flushTouches();
    const pinned = this.o.pinned?.() ?? new Set<string>();
    const entries = (await this.o.store.listCacheEntries()).map((e) => ({ ...e, pinned: pinned.has(e.key) }));
    const downloads = [...this.inflight.values()].map((d) => ({ key: d.key, bytes: d.written, ...(d.total !== undefined && { total: d.total }) }));
    return { entries, downloads, bytes: sumDistinct(entries) };
  }

  /**
   * Least recently used first, drops unpinned entries (and their blobs, once no entry names
   * them) until the cache holds at most maxBytes. Pinned entries stay even beyond it.
   */
  async evict(): Promise<void> {
    if (this.o.maxBytes === undefined) return;
    await this.flushTouches();
    const pinned = this.o.pinned?.() ?? new Set<string>();
    const entries = await this.o.store.listCacheEntries();
    let bytes = sumDistinct(entries);
    const names = new Map<string, number>();
    for (const e of entries) names.set(e.digest, (names.get(e.digest) ?? 0) + 1);
    for (const e of entries) {
      if (bytes <= this.o.maxBytes) break;
      if (pinned.has(e.key) || this.inflight.has(e.key)) continue;
      await this.o.store.deleteCacheEntry(e.key);
      const left = (names.get(e.digest) ?? 1) - 1;
      names.set(e.digest, left);
      if (left === 0) {
        await this.o.blobs.remove(e.digest);
        bytes -= e.size;
      }
      this.stats.evictions++;
      this.o.log.info({ key: e.key, digest: e.digest, size: e.size }, 'artifact evicted (least recently used)');
    }
  }

  /** HEAD: the same validators and length as the cached copy (or the upstream is unreachable). */
  private async stillCurrent(url: string, entry: CacheEntry): Promise<boolean> {
    try {
      const res = await request(url, { method: 'HEAD', headers: { 'user-agent': USER_AGENT }, dispatcher: this.dispatcher });
      await res.body.dump();
      if (res.statusCode !== 200) return false;
      const etag = textHeader(res.headers.etag);
      const lastModified = textHeader(res.headers['last-modified']);
      const length = numberHeader(res.headers['content-length']);
      if (length !== undefined && length !== entry.size) return false;
      if (etag !== undefined || entry.etag !== undefined) return etag === entry.etag;
      if (lastModified !== undefined || entry.lastModified !== undefined) return lastModified === entry.lastModified;
      return false;
    } catch (err) {
      this.o.log.warn({ upstream: redactSecrets(url), err: describeNetworkError(err) }, 'cannot revalidate a cached artifact: serving the cached copy');
      return true;
    }
  }

  private async download(req: ArtifactRequest, d: Download): Promise<Cached> {
    const upstream = redactSecrets(req.url);
    const started = Date.now();
    const fh = await open(d.tmp, 'w+');
    let hash = createHash('sha256');
    let etag: string | undefined;
    let lastModified: string | undefined;
    let mediaType: string | undefined;
    let failures = 0;
    /** The furthest the file got: a cut that moved past it made progress. */
    let furthest = 0;
    const retries = this.o.retries ?? 5;
    try {
      for (;;) {
        try {
          const resumed = d.written > 0;
          const headers: Record<string, string> = { 'user-agent': USER_AGENT, ...(await req.headers?.()) };
          if (resumed) {
            headers.range = `bytes=${d.written}-`;
            if (etag !== undefined) headers['if-range'] = etag;
            else if (lastModified !== undefined) headers['if-range'] = lastModified;
          }
          const res = await request(req.url, { method: 'GET', headers, dispatcher: this.dispatcher });
          // The body is piped into the file before anything else is awaited: bytes left unread
          // in undici's stream pause its parser, and an upstream that closes the connection
          // then takes the process down (see BodyFile).
          let admitted: Promise<void>;
          if (resumed && res.statusCode === 206 && contentRangeStart(res.headers['content-range']) === d.written) {
            // Go on where the dropped connection left off.
            admitted = Promise.resolve();
          } else if (res.statusCode === 200) {
            const restart = resumed;
            if (restart) {
              // The upstream ignored the range (or the file changed): start over.
              this.o.log.warn({ upstream }, 'upstream did not resume the download: starting over');
              hash = createHash('sha256');
              d.written = 0;
              d.generation++;
            }
            const total = numberHeader(res.headers['content-length']);
            etag = textHeader(res.headers.etag);
            lastModified = textHeader(res.headers['last-modified']);
            mediaType = textHeader(res.headers['content-type']);
            admitted = (async () => {
              if (restart) await fh.truncate(0);
              // A body that cannot fit fails now, as a 507 to every client, instead of a 200 that
              // each of them would see cut short when the disk runs out. Checked before `total`
              // is published: a client that joins meanwhile must not be answered 200 either.
              // What the other downloads still have to write counts as taken.
              const free = total === undefined ? Infinity : (await this.o.blobs.free()) - this.pendingBytes(d);
              if (total !== undefined && total > free) throw new CacheFullError(upstream, this.o.blobs.dir, `${total} bytes to store, ${free} free`);
              d.total = total;
              if (req.size !== undefined && total !== undefined && total !== req.size) {
                throw new IntegrityError(upstream, `the upstream announces ${total} bytes, the profile expects ${req.size}`);
              }
              d.emit('progress');
            })();
          } else {
            const status = res.statusCode;
            await res.body.dump();
            throw new UpstreamError(upstream, `answered HTTP ${status}`, false, status);
          }
          const file = new BodyFile({ fh, hash, download: d, admitted, upstream, dir: this.o.blobs.dir, stats: this.stats, ...(this.o.beforeWrite && { beforeWrite: this.o.beforeWrite }) });
          // A refusal stops the transfer at once, not at the next chunk; `finally` rethrows it.
          admitted.catch((err: Error) => file.destroy(err));
          try {
            await pour(res.body, file);
          } finally {
            // Settled before the next attempt or the cleanup touches the file; its error, if
            // any, is the one that counts (an empty body never waits for it in `_write`).
            await admitted;
          }
          if (d.total !== undefined && d.written < d.total) throw new CutShort(`the body ended after ${d.written} of ${d.total} bytes`);
          break;
        } catch (err) {
          if (err instanceof IntegrityError || err instanceof CacheFullError || (err instanceof UpstreamError && err.status !== undefined)) throw err;
          const reason = describeNetworkError(err);
          if (err instanceof UpstreamOutpacedError && d.written > furthest) {
            // The disk is slower than the upstream, and the file grew: not a failure of the
            // upstream, and bounded (each such resume starts further on). An upstream that
            // cannot resume (200 to a Range) makes no headway, and counts below.
            furthest = d.written;
            this.stats.outpacedResumes++;
            this.o.log.warn({ upstream, written: d.written, reason }, 'the cache disk is slower than the upstream: resuming');
            continue;
          }
          furthest = Math.max(furthest, d.written);
          failures++;
          if (failures > retries || d.written === 0) throw new UpstreamError(upstream, reason, isTimeout(err));
          this.o.log.warn({ upstream, written: d.written, attempt: failures, reason }, 'artifact download interrupted: resuming');
          await new Promise((r) => setTimeout(r, RETRY_BASE_MS * 2 ** (failures - 1)));
        }
      }
      const digest = hash.digest('hex');
      if (req.sha256 !== undefined && digest !== req.sha256) throw new IntegrityError(upstream, `sha256 is ${digest}, expected ${req.sha256}`);
      if (req.size !== undefined && d.written !== req.size) throw new IntegrityError(upstream, `${d.written} bytes, expected ${req.size}`);
      await fh.close();
      const path = await this.o.blobs.commit(d.tmp, digest);
      const time = this.now().toISOString();
      const entry: CacheEntry = { key: d.key, digest, size: d.written, ...(mediaType && { mediaType }), ...(etag && { etag }), ...(lastModified && { lastModified }), createdAt: time, lastUsedAt: time };
      await this.o.store.putCacheEntry(entry);
      this.o.log.info({ upstream, digest, bytes: d.written, ms: Date.now() - started, resumes: failures }, 'artifact cached');
      await this.evict().catch((err: Error) => this.o.log.error({ err: err.message }, 'cache eviction failed'));
      return { entry, path, fetched: true };
    } catch (err) {
      await fh.close().catch(() => undefined);
      await this.o.blobs.discard(d.tmp);
      this.o.log.error({ upstream, err: (err as Error).message }, 'artifact download failed');
      throw err;
    }
  }
}

/** Bytes on disk: entries that share a blob count it once. */
function sumDistinct(entries: readonly CacheEntry[]): number {
  const seen = new Map<string, number>();
  for (const e of entries) seen.set(e.digest, e.size);
  let n = 0;
  for (const v of seen.values()) n += v;
  return n;
}

/** A body that ended before its announced length: retried like a dropped connection. */
class CutShort extends Error {}

/**
 * How far the disk may lag behind an upstream before the body is held back. undici 7 ends the
 * process when an upstream closes the connection while the parser is paused by back-pressure
 * (`assert(!this.paused)` in Parser.finish, nodejs/undici#5360; fixed in undici 8, which needs
 * Node 22). One `await` per chunk inside `for await` paused it at every chunk. A write buffer
 * this deep keeps most bodies flowing; for a response that closes its connection, the
 * upstream dispatcher (net/upstream-agent.ts) never lets the parser pause at all, and cuts the
 * transfer (UpstreamOutpacedError, resumed with Range) when the disk falls further behind.
 */
const BODY_BUFFER_BYTES = 8 * 1024 * 1024;

interface BodyFileOptions {
  fh: FileHandle;
  hash: Hash;
  download: Download;
  /** Settles once the body may be written (the free-space and length checks); no write before. */
  admitted: Promise<void>;
  upstream: string;
  dir: string;
  stats: CacheStats;
  beforeWrite?: () => Promise<void>;
}

/**
 * Where an upstream body goes (see `pour`): each chunk written at the download's offset of the
 * temporary file, then hashed and counted, in order. Back-pressure is the Writable's own.
 */
class BodyFile extends Writable {
  /** The write in progress, if any. */
  private writing: Promise<void> = Promise.resolve();

  constructor(private readonly o: BodyFileOptions) {
    super({ highWaterMark: BODY_BUFFER_BYTES });
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (err?: Error | null) => void): void {
    this.writing = this.o.admitted.then(() => this.put(chunk));
    this.writing.then(() => done(), done);
  }

  /**
   * Destroyed (the download was refused) while a chunk is being written: this settles only
   * after that write, or it would move `written` and the hash under the next attempt. The
   * refusal is the failure reported, not what that write did.
   */
  override _destroy(err: Error | null, done: (err?: Error | null) => void): void {
    const settled = (): void => done(err);
    this.writing.then(settled, settled);
  }

  private async put(chunk: Buffer): Promise<void> {
    const { fh, download: d } = this.o;
    await this.o.beforeWrite?.();
    try {
      // A nearly full disk takes part of a chunk (a short write, no error); the rest is
      // written after it, or fails with ENOSPC. Counting the whole chunk as written would
      // leave a hole that reads as zeros once space comes free (a failed download elsewhere
      // discards its file), and a blob that is not the bytes its sha256 names.
      for (let off = 0; off < chunk.length; ) {
        const { bytesWritten } = await fh.write(chunk, off, chunk.length - off, d.written + off);
        if (bytesWritten === 0) throw new Error(`no byte of ${chunk.length - off} could be written`);
        off += bytesWritten;
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOSPC') throw new CacheFullError(this.o.upstream, this.o.dir);
      throw err;
    }
    this.o.hash.update(chunk);
    d.written += chunk.length;
    this.o.stats.upstreamBytes += chunk.length;
    d.emit('progress');
  }
}

/**
 * Pipes an upstream body into its file, with back-pressure. Unlike `pipeline`, a connection
 * that drops mid-body does not throw away what already arrived: the file writes every byte it
 * was handed, then the failure is thrown, and the next attempt resumes after the last byte
 * received. A write that fails stops the body.
 */
async function pour(body: Readable, file: BodyFile): Promise<void> {
  file.once('error', (err) => body.destroy(err));
  body.pipe(file, { end: false });
  let failure: unknown;
  try {
    await finished(body);
  } catch (err) {
    failure = err;
  }
  if (!file.destroyed) file.end();
  await finished(file);
  if (failure !== undefined) throw failure;
}

function contentRangeStart(v: string | string[] | undefined): number | undefined {
  const m = /^bytes (\d+)-\d+\/(\d+|\*)$/.exec(textHeader(v) ?? '');
  return m ? Number(m[1]) : undefined;
}

function textHeader(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

function numberHeader(v: string | string[] | undefined): number | undefined {
  const t = textHeader(v);
  return t !== undefined && /^\d+$/.test(t) ? Number(t) : undefined;
}

function isTimeout(err: unknown): boolean {
  const code = (err as { code?: string }).code ?? '';
  return /TIMEOUT/i.test(code) || code === 'ETIMEDOUT';
}

function describeNetworkError(err: unknown): string {
  if (err instanceof CutShort) return err.message;
  const e = err as { code?: string; message?: string; cause?: { code?: string; message?: string } };
  const code = e.code ?? e.cause?.code;
  const message = e.cause?.message ?? e.message ?? String(err);
  return code ? `${code}: ${message}` : message;
}

const READ_CHUNK = 1 << 20;

/**
 * Bytes `start`..`end` (inclusive) of a download that may still be running, as they arrive:
 * a machine that asks for an artifact mid-download is served at once, not after the whole
 * file. Fails when the download fails, or restarts from byte 0 under a reader that is past it.
 */
/**
 * How many bytes from `pos` (up to `end`, inclusive) a reader may have now, waiting for the
 * download to write at least one. The last byte waits for the verdict: a client never
 * completes a body that turns out not to verify; it sees the transfer cut short instead.
 * Throws when the download fails, restarts from byte 0 (`generation` is the reader's), or ends
 * before `pos`.
 */
export async function availableAt(d: Download, generation: number, pos: number, end: number): Promise<number> {
  for (;;) {
    if (d.generation !== generation) throw new Error('the upstream restarted the download: ask again');
    if (d.failure) throw d.failure;
    const final = d.finished ? d.written : d.total === undefined ? d.written : Math.min(d.written, d.total - 1);
    const available = Math.min(final, end + 1);
    if (pos < available) return available - pos;
    if (d.finished) throw new Error(`the artifact is shorter than the range asked (${d.written} bytes)`);
    await once(d, 'progress');
  }
}

/** Bytes [start, end] of a running download as a stream, as they arrive. */
export function readDownload(d: Download, start: number, end: number): Readable {
  const generation = d.generation;
  async function* bytes(): AsyncGenerator<Buffer> {
    const fh = await openDownload(d);
    try {
      let pos = start;
      while (pos <= end) {
        const n = Math.min(await availableAt(d, generation, pos, end), READ_CHUNK);
        const buf = Buffer.allocUnsafe(n);
        const { bytesRead } = await fh.read(buf, 0, n, pos);
        if (bytesRead === 0) throw new Error('the download file shrank under a reader');
        pos += bytesRead;
        yield buf.subarray(0, bytesRead);
      }
    } finally {
      await fh.close();
    }
  }
  return Readable.from(bytes(), { objectMode: false });
}

/** The temporary file; if the download was committed meanwhile, the blob it became. */
export async function openDownload(d: Download): Promise<FileHandle> {
  try {
    return await open(d.tmp, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    return open((await d.done).path, 'r');
  }
}
