import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ServerResponse } from 'node:http';
import { open, type FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { CacheFullError, IntegrityError, UpstreamError, type ArtifactCache, type ArtifactRequest, type DownloadView } from '../cache/artifacts.js';
import { availableAt, openDownload, readDownload } from '../cache/readers.js';
import { ApiError } from './errors.js';
import { answerFileRequest, fileEtag, type FileInProgress, type FileValidators } from './conditional.js';
import { redactSecrets } from '../secrets/redact.js';
import { beginBody, sendfileBody, sendfileSpan, socketFd, type SendfileOptions } from './sendfile.js';

/**
 * Boot-storm admission: at most `maxTransfers` concurrent transfers of artifacts of
 * `largeBytes` or more (0: no limit); beyond, 503 with Retry-After, which iPXE honours.
 * `clientRate`: bytes per second for all of one client's transfers from disk together (0 or
 * absent: no cap).
 */
export interface AssetLimits {
  maxTransfers: number;
  largeBytes: number;
  retryAfterSeconds: number;
  clientRate?: number;
}

/**
 * Read size of a file body streamed through Node (a request with no TCP socket of its own, as
 * `inject` makes): 1 MiB reads were 25 ms faster per 8 MiB kernel than the default 64 KiB
 * before bodies went to sendfile (bench/qemu-boot.sh captures).
 */
const READ_CHUNK = 1 << 20;
/**
 * A transfer whose client takes no byte for this long is ended and its connection closed. Long:
 * a machine's firmware may pause reading while it writes what it got.
 */
const STALL_MS = 120_000;

/**
 * Answers for complete files and cached (or downloading) artifacts, shared by /assets and the
 * registry mirror's blobs: validators and ranges (conditional.ts), the body by sendfile, an
 * artifact still downloading streamed as its bytes arrive, admission control, and the cache's
 * served-bytes counter (`countServed`, from an onResponse hook).
 */
export class ArtifactResponder {
  private active = 0;
  private readonly remote = new WeakSet<FastifyRequest>();

  constructor(
    private readonly cache: ArtifactCache | undefined,
    private readonly admission: AssetLimits | undefined,
  ) {}

  /** For an onResponse hook: adds a cache-served response's length to the cache's counter. */
  countServed(req: FastifyRequest, reply: FastifyReply): void {
    if (this.cache && this.remote.has(req) && req.method === 'GET' && reply.statusCode < 300)
      this.cache.stats.servedBytes += Number(reply.getHeader('content-length') ?? 0);
  }

  /** Counts a large transfer until its connection closes; false when the server is full. */
  private admit(req: FastifyRequest, reply: FastifyReply, size: number): boolean {
    const { admission, cache } = this;
    if (!admission || admission.maxTransfers === 0 || size < admission.largeBytes || req.method === 'HEAD') return true;
    if (this.active >= admission.maxTransfers) {
      if (cache) cache.stats.busy++;
      req.log.warn(
        { active: this.active, max: admission.maxTransfers, url: redactSecrets(req.url) },
        'artifact transfer refused: server busy (503, Retry-After)',
      );
      return false;
    }
    this.active++;
    if (cache) cache.stats.activeTransfers = this.active;
    reply.raw.once('close', () => {
      this.active--;
      if (cache) cache.stats.activeTransfers = this.active;
    });
    return true;
  }
  private busy(reply: FastifyReply) {
    const { admission } = this;
    return reply
      .code(503)
      .header('retry-after', String(admission?.retryAfterSeconds ?? 10))
      .send({
        error: 'busy',
        message: `this server is already sending ${admission?.maxTransfers} large artifacts: retry after ${admission?.retryAfterSeconds} s`,
      });
  }

  /**
   * A complete file: validators and range answered here (conditional.ts), the body sent by the
   * kernel from the file (sendfile.ts) when the request came on a TCP socket, else streamed.
   * The file is opened first, so a blob evicted meanwhile is still read whole.
   */
  readonly sendLocal: SendFile<string> = async (req, reply, path, digest, extraHeaders = {}) =>
    this.sendOpenFile(req, reply, await open(path, 'r'), digest, extraHeaders);

  /** As `sendLocal`, from a file already open (and checked) by the caller; closes `file`. */
  readonly sendOpenFile: SendFile<FileHandle> = async (req, reply, file, digest, extraHeaders = {}) => {
    const sent = await this.sendFromFile(req, reply, file, digest, extraHeaders).catch(async (err: unknown) => {
      await file.close();
      throw err;
    });
    // A streamed body closes the file when it ends.
    if (!sent.streamed) await file.close();
    return sent.reply;
  };

  /** The answer from an open file; `streamed` when a stream of it now owns the descriptor. (A reply is a thenable: wrapped.) */
  private async sendFromFile(
    req: FastifyRequest,
    reply: FastifyReply,
    file: FileHandle,
    digest: string | undefined,
    extraHeaders: Record<string, string>,
  ): Promise<{ reply: FastifyReply; streamed: boolean }> {
    const st = await file.stat();
    const etag = digest ? `"sha256:${digest}"` : fileEtag(st.mtime, st.size);
    const body = this.head(req, reply, { size: st.size, etag, lastModified: st.mtime }, extraHeaders);
    if ('sent' in body) return { reply: body.sent, streamed: false };
    if (!this.admit(req, reply, st.size)) return { reply: this.busy(reply), streamed: false };
    // A pipelined request's response has no socket until the ones before it are done: it streams, in order.
    if (socketFd(reply.raw.socket) === undefined) {
      const stream = file.createReadStream({ start: body.start, end: body.end, highWaterMark: READ_CHUNK });
      return { reply: reply.code(body.status).headers(body.headers).send(stream), streamed: true };
    }
    const res = takeOver(reply, body.status, body.headers);
    try {
      await sendfileBody(res, file.fd, body.start, body.end - body.start + 1, this.sendOptions(req));
    } catch (err) {
      endedEarly(req, err, 'artifact transfer ended early');
    }
    return { reply, streamed: false };
  }

  /**
   * The one conditional-GET path of every file route (conditional.ts): validators, 304, 412,
   * 416 and HEAD answered here (`sent`), or the status, headers and byte span of the body to send.
   */
  private head(
    req: FastifyRequest,
    reply: FastifyReply,
    file: FileValidators | FileInProgress,
    extraHeaders: Record<string, string>,
  ): BodyToSend | { sent: FastifyReply } {
    const h = req.headers;
    const answer = answerFileRequest(
      {
        method: req.method,
        range: h.range,
        ifMatch: h['if-match'],
        ifNoneMatch: h['if-none-match'],
        ifModifiedSince: h['if-modified-since'],
        ifUnmodifiedSince: h['if-unmodified-since'],
        ifRange: firstValue(h['if-range']),
      },
      file,
    );
    const headers: Record<string, string | number> = { ...extraHeaders, 'accept-ranges': 'bytes' };
    if ('etag' in file) {
      headers.etag = file.etag;
      headers['last-modified'] = file.lastModified.toUTCString();
    }
    if (answer.status === 412)
      throw new ApiError(
        'precondition_failed',
        `the artifact is not the one If-Match or If-Unmodified-Since names: it is ${headers.etag}, modified ${headers['last-modified']}`,
        412,
      );
    if (answer.status === 304) return { sent: reply.code(304).headers(headers).send() };
    headers['content-type'] = 'application/octet-stream';
    if (answer.status === 416)
      return {
        sent: reply
          .code(416)
          .headers({ ...headers, 'content-range': `bytes */${file.size}` })
          .send(),
      };
    const length = answer.end - answer.start + 1;
    headers['content-length'] = length;
    if (answer.status === 206) headers['content-range'] = `bytes ${answer.start}-${answer.end}/${file.size}`;
    // An (empty) stream keeps the Content-Length set above: Fastify's HEAD route would set 0 for no payload.
    if (req.method === 'HEAD' || length === 0) return { sent: reply.code(answer.status).headers(headers).send(Readable.from([])) };
    return { status: answer.status, start: answer.start, end: answer.end, headers };
  }

  /**
   * A cached artifact from its blob; one being fetched, as its bytes arrive (Range included).
   * Throws the cache's errors as they are (UpstreamError, IntegrityError, CacheFullError): see `cacheError`.
   */
  readonly serveRemote = async (
    req: FastifyRequest,
    reply: FastifyReply,
    c: ArtifactCache,
    want: ArtifactRequest,
    extraHeaders: Record<string, string> = {},
  ): Promise<FastifyReply> => {
    this.remote.add(req);
    const opened = await c.open(want);
    if (opened.kind === 'cached') return this.sendLocal(req, reply, opened.cached.path, opened.cached.entry.digest, extraHeaders);
    const d = opened.download;
    const gone = clientGone(reply);
    while (d.total === undefined && !d.finished && !d.failure) await d.changed(gone);
    if (d.failure) throw d.failure;
    if (d.finished || d.total === undefined) {
      const done = await d.done;
      return this.sendLocal(req, reply, done.path, done.entry.digest, extraHeaders);
    }
    const body = this.head(req, reply, { size: d.total, inProgress: true }, extraHeaders);
    if ('sent' in body) return body.sent;
    if (!this.admit(req, reply, d.total)) return this.busy(reply);
    if (socketFd(reply.raw.socket) === undefined)
      return reply
        .code(body.status)
        .headers(body.headers)
        .send(readDownload(d, body.start, body.end, gone));
    return this.sendDownloading(req, reply, d, body, gone);
  };

  /** How the addon sends to this client: its rate cap, and the stall time. */
  private sendOptions(req: FastifyRequest): SendfileOptions {
    return { rate: this.admission?.clientRate ?? 0, rateKey: clientAddress(req), stallMs: STALL_MS };
  }

  /**
   * A download's bytes as they are written, sent by the kernel from the temporary file span by
   * span (waiting for more at the written mark, the last byte held for the verdict): with
   * several machines on one uncached rootfs, no byte passes through JavaScript for them. A
   * client that leaves while the span waits for bytes ends the wait (`gone`).
   */
  private async sendDownloading(req: FastifyRequest, reply: FastifyReply, d: DownloadView, body: BodyToSend, gone: AbortSignal): Promise<FastifyReply> {
    const generation = d.generation;
    const fh = await openDownload(d);
    const res = takeOver(reply, body.status, body.headers);
    try {
      const socket = await beginBody(res);
      const opts = this.sendOptions(req);
      for (let pos = body.start; pos <= body.end;) {
        const n = await availableAt(d, generation, pos, body.end, gone);
        pos += await sendfileSpan(socket, fh.fd, pos, n, opts);
      }
      res.end();
    } catch (err) {
      endedEarly(req, err, 'artifact transfer ended early (download in progress)');
      res.destroy();
    } finally {
      await fh.close();
    }
    return reply;
  }
}

/** Answers a GET or HEAD from a file (a path, or an open descriptor), its sha256 naming its ETag when known. */
type SendFile<F> = (req: FastifyRequest, reply: FastifyReply, file: F, digest?: string, extraHeaders?: Record<string, string>) => Promise<FastifyReply>;

/** What follows the headers: the status, and bytes [start, end] of the file. */
interface BodyToSend {
  status: 200 | 206;
  start: number;
  end: number;
  headers: Record<string, string | number>;
}

/** Aborts when the client's connection closes before the response is complete. */
function clientGone(reply: FastifyReply): AbortSignal {
  const gone = new AbortController();
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) gone.abort(Object.assign(new Error('the client closed the connection'), { code: 'ECONNRESET' }));
  });
  return gone.signal;
}

/** Fastify steps aside; the raw response gets `status` and `headers`, written with the body. */
function takeOver(reply: FastifyReply, status: number, headers: Record<string, string | number | string[] | undefined>): ServerResponse {
  reply.hijack();
  const res = reply.raw;
  res.statusCode = status;
  for (const [name, value] of Object.entries(headers)) if (value !== undefined) res.setHeader(name, value);
  return res;
}

/** A client that left or stalled mid-body is the client's business: a line at info. */
function endedEarly(req: FastifyRequest, err: unknown, what: string): void {
  const e = err as NodeJS.ErrnoException & { sent?: number };
  req.log.info({ url: redactSecrets(req.url), sent: e.sent, reason: e.code ?? e.message }, what);
}

/** A cache failure as the API error a machine (and its admin) can act on. */
export function cacheError(err: unknown): unknown {
  if (err instanceof UpstreamError)
    return new ApiError(err.timeout ? 'upstream_timeout' : 'upstream_failed', `the artifact's upstream failed: ${err.message}`, err.timeout ? 504 : 502);
  if (err instanceof IntegrityError) return new ApiError('integrity_failed', `the artifact's upstream sent other bytes: ${err.message}`, 502);
  if (err instanceof CacheFullError) return new ApiError('cache_full', err.message, 507);
  return err;
}

/** The client's IPv4 address as the lease and neighbour tables know it (no `::ffff:`). */
export function clientAddress(req: FastifyRequest): string {
  return req.ip.startsWith('::ffff:') ? req.ip.slice(7) : req.ip;
}

function firstValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}
