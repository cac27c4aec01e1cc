import { createHash, type Hash } from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';
import { Readable, Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { request, type Dispatcher } from 'undici';
import { UpstreamOutpacedError } from '../net/upstream-agent.js';
import { redactSecrets } from '../secrets/redact.js';
import type { CacheEntry } from '../store/store.js';
import type { BlobStore } from './blobs.js';
import type { Download, DownloadView } from './download.js';
import { asError, CacheFullError, IntegrityError, UpstreamError } from './errors.js';
import type { ArtifactRequest, Cached, CacheStats } from './model.js';
import { contentRangeStart, CutShort, describeNetworkError, isTimeout, numberHeader, textHeader, USER_AGENT } from './upstream.js';

export interface DownloaderOptions {
  blobs: BlobStore;
  log: Logger;
  now: () => Date;
  dispatcher: Dispatcher;
  stats: CacheStats;
  /** Resumes of one download after its connection dropped. */
  retries: number;
  /** Test seam (a slow disk): awaited before each body chunk is written to its temporary file. */
  beforeWrite?: (() => Promise<void>) | undefined;
  /** Indexes a verified artifact. */
  record: (entry: CacheEntry) => Promise<void>;
  /** Bytes the running downloads other than `except` have announced and not yet written. */
  pendingBytes: (except: DownloadView) => number;
}

const RETRY_BASE_MS = 200;

/** What one download has learnt of its upstream's file so far; the hash covers the bytes written. */
interface Transfer {
  hash: Hash;
  etag?: string | undefined;
  lastModified?: string | undefined;
  mediaType?: string | undefined;
}

/**
 * The resumable, verifying fetch: the body streams to the download's temporary file while it
 * is hashed, a dropped connection resumes with Range and If-Range, the file is checked against
 * the expected sha256 and size, committed into the blob store and indexed. Only it moves a
 * `Download` on; `d.signal` (the cache closing) stops the request, a retry's wait and the file.
 */
export class Downloader {
  constructor(private readonly o: DownloaderOptions) {}

  async run(req: ArtifactRequest, d: Download): Promise<Cached> {
    const upstream = redactSecrets(req.url);
    const started = this.o.now().getTime();
    const fh = await open(d.tmp, 'w+');
    const t: Transfer = { hash: createHash('sha256') };
    let failures = 0;
    /** The furthest the file got: a cut that moved past it made progress. */
    let furthest = 0;
    try {
      for (;;) {
        try {
          await this.attempt(req, d, fh, t, upstream);
          break;
        } catch (err) {
          if (d.cancelled) throw d.cancelled;
          if (err instanceof IntegrityError || err instanceof CacheFullError || (err instanceof UpstreamError && err.status !== undefined)) throw err;
          const reason = describeNetworkError(err);
          if (err instanceof UpstreamOutpacedError && d.written > furthest) {
            // The disk is slower than the upstream, and the file grew: not a failure of the
            // upstream, and bounded (each such resume starts further on). An upstream that
            // cannot resume (200 to a Range) makes no headway, and counts below.
            furthest = d.written;
            this.o.stats.outpacedResumes++;
            this.o.log.warn({ upstream, written: d.written, reason }, 'the cache disk is slower than the upstream: resuming');
            continue;
          }
          furthest = Math.max(furthest, d.written);
          failures++;
          if (failures > this.o.retries || d.written === 0) throw new UpstreamError(upstream, reason, isTimeout(err));
          this.o.log.warn({ upstream, written: d.written, attempt: failures, reason }, 'artifact download interrupted: resuming');
          await sleep(RETRY_BASE_MS * 2 ** (failures - 1), undefined, { signal: d.signal }).catch((sleepErr: unknown) => {
            throw d.cancelled ?? sleepErr;
          });
        }
      }
      const digest = t.hash.digest('hex');
      if (req.sha256 !== undefined && digest !== req.sha256) throw new IntegrityError(upstream, `sha256 is ${digest}, expected ${req.sha256}`);
      if (req.size !== undefined && d.written !== req.size) throw new IntegrityError(upstream, `${d.written} bytes, expected ${req.size}`);
      await fh.close();
      const path = await this.o.blobs.commit(d.tmp, digest);
      const time = this.o.now().toISOString();
      const { etag, lastModified, mediaType } = t;
      const entry: CacheEntry = {
        key: d.key,
        digest,
        size: d.written,
        ...(mediaType && { mediaType }),
        ...(etag && { etag }),
        ...(lastModified && { lastModified }),
        createdAt: time,
        lastUsedAt: time,
      };
      await this.o.record(entry);
      this.o.log.info({ upstream, digest, bytes: d.written, ms: this.o.now().getTime() - started, resumes: failures }, 'artifact cached');
      return { entry, path, fetched: true };
    } catch (err) {
      await fh.close().catch(() => undefined);
      await this.o.blobs.discard(d.tmp);
      if (d.cancelled) this.o.log.info({ upstream, reason: d.cancelled.message }, 'artifact download cancelled');
      else this.o.log.error({ upstream, err: (err as Error).message }, 'artifact download failed');
      throw err;
    }
  }

  /** One request: the body from where the file ends (Range) or, when the upstream starts over, from byte 0. */
  private async attempt(req: ArtifactRequest, d: Download, fh: FileHandle, t: Transfer, upstream: string): Promise<void> {
    const resumed = d.written > 0;
    const headers: Record<string, string> = { 'user-agent': USER_AGENT, ...(await req.headers?.()) };
    if (resumed) {
      headers.range = `bytes=${d.written}-`;
      if (t.etag !== undefined) headers['if-range'] = t.etag;
      else if (t.lastModified !== undefined) headers['if-range'] = t.lastModified;
    }
    const res = await request(req.url, { method: 'GET', headers, dispatcher: this.o.dispatcher, signal: d.signal });
    // The body is piped into the file before anything else is awaited: bytes left unread in
    // undici's stream pause its parser, and an upstream that closes the connection then takes
    // the process down (see BodyFile).
    let admitted: Promise<void>;
    if (resumed && res.statusCode === 206 && contentRangeStart(res.headers['content-range']) === d.written) {
      // Go on where the dropped connection left off.
      admitted = Promise.resolve();
    } else if (res.statusCode === 200) {
      if (resumed) {
        // The upstream ignored the range (or the file changed): start over.
        this.o.log.warn({ upstream }, 'upstream did not resume the download: starting over');
        t.hash = createHash('sha256');
        d.restart();
      }
      t.etag = textHeader(res.headers.etag);
      t.lastModified = textHeader(res.headers['last-modified']);
      t.mediaType = textHeader(res.headers['content-type']);
      admitted = this.admit(req, d, fh, numberHeader(res.headers['content-length']), resumed, upstream);
    } else {
      const status = res.statusCode;
      await res.body.dump();
      throw new UpstreamError(upstream, `answered HTTP ${status}`, false, status);
    }
    const file = new BodyFile({
      fh,
      hash: t.hash,
      download: d,
      admitted,
      upstream,
      dir: this.o.blobs.dir,
      stats: this.o.stats,
      beforeWrite: this.o.beforeWrite,
    });
    // A refusal stops the transfer at once, not at the next chunk; `finally` rethrows it.
    admitted.catch((err: unknown) => file.destroy(asError(err)));
    try {
      await pour(res.body, file);
    } finally {
      // Settled before the next attempt or the cleanup touches the file; its error, if any, is
      // the one that counts (an empty body never waits for it in `_write`).
      await admitted;
    }
    if (d.total !== undefined && d.written < d.total) throw new CutShort(`the body ended after ${d.written} of ${d.total} bytes`);
  }

  /**
   * A body that cannot fit fails now, as a 507 to every client, instead of a 200 that each of
   * them would see cut short when the disk runs out. Checked before `total` is announced: a
   * client that joins meanwhile must not be answered 200 either. What the other downloads still
   * have to write counts as taken.
   */
  private async admit(req: ArtifactRequest, d: Download, fh: FileHandle, total: number | undefined, restart: boolean, upstream: string): Promise<void> {
    if (restart) await fh.truncate(0);
    const free = total === undefined ? Infinity : (await this.o.blobs.free()) - this.o.pendingBytes(d);
    if (total !== undefined && total > free) throw new CacheFullError(upstream, this.o.blobs.dir, `${total} bytes to store, ${free} free`);
    if (req.size !== undefined && total !== undefined && total !== req.size) {
      throw new IntegrityError(upstream, `the upstream announces ${total} bytes, the profile expects ${req.size}`);
    }
    d.announce(total);
  }
}

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
  beforeWrite?: (() => Promise<void>) | undefined;
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
      for (let off = 0; off < chunk.length;) {
        const { bytesWritten } = await fh.write(chunk, off, chunk.length - off, d.written + off);
        if (bytesWritten === 0) throw new Error(`no byte of ${chunk.length - off} could be written`);
        off += bytesWritten;
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOSPC') throw new CacheFullError(this.o.upstream, this.o.dir);
      throw err;
    }
    this.o.hash.update(chunk);
    this.o.stats.upstreamBytes += chunk.length;
    d.wrote(chunk.length);
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
  let failure: Error | undefined;
  try {
    await finished(body);
  } catch (err) {
    failure = asError(err);
  }
  if (!file.destroyed) file.end();
  await finished(file);
  if (failure !== undefined) throw failure;
}
