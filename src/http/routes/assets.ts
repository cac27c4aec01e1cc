import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { once } from 'node:events';
import { open, stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { ArtifactCache, CacheFullError, IntegrityError, readDownload, UpstreamError, type ArtifactRequest } from '../../cache/artifacts.js';
import { ApiError } from '../../errors.js';
import type { ProfileSet } from '../../profiles/profile.js';
import { answerFileRequest, fileEtag } from '../conditional.js';
import { parseRange } from '../range.js';
import { redactUrl } from '../redact.js';
import { sendfileBody, socketFd } from '../sendfile.js';
import { errors } from '../schemas.js';

/** One artifact response, as the timeline records it. */
export interface AssetServed {
  profile: string;
  artifact: string;
  method: string;
  status: number;
  /** Body bytes the response announced (the range's length for a 206); 0 for HEAD. */
  bytes: number;
  /** The Range header the client sent, if any. */
  range?: string;
  client: string;
  durationMs: number;
}

export interface AssetRoutesOptions {
  profiles: () => ProfileSet;
  /** Remote artifacts come through this cache; without one they answer 501. */
  cache?: ArtifactCache;
  /**
   * Boot-storm admission: at most `maxTransfers` concurrent transfers of artifacts of
   * `largeBytes` or more (0: no limit); beyond, 503 with Retry-After, which iPXE honours.
   * `clientRate`: bytes per second for all of one client's transfers from disk together (0 or
   * absent: no cap).
   */
  admission?: AssetLimits;
  onServed?: (served: AssetServed) => void;
}

export interface AssetLimits {
  maxTransfers: number;
  largeBytes: number;
  retryAfterSeconds: number;
  clientRate?: number;
}

interface AssetParams {
  profile: string;
  artifact: string;
}

const NAME = { type: 'string', maxLength: 63 } as const;

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
 * `GET`/`HEAD /assets/{profile}/{artifact}` and `/assets/hub/{id}/{name}`: the kernels, initrds
 * and rootfs images the boot scripts name (`render.ts` and the assisted rewrite build these
 * URLs). Complete files — a profile's `file://` artifacts and cached blobs — are answered by
 * `sendLocal` (validators and ranges by conditional.ts, the body by sendfile.ts); an artifact still
 * downloading into the cache is streamed as its bytes arrive. Without a cache (an app built
 * without one) a remote artifact answers 501 rather than being pulled per machine.
 */
export const assetRoutes: FastifyPluginAsync<AssetRoutesOptions> = async (app, { profiles, cache, admission, onServed }) => {
  const schema = { summary: 'A boot artifact of a profile (Range, ETag, HEAD)', tags: ['boot'], params: { type: 'object', properties: { profile: NAME, artifact: NAME } }, response: errors(404, 412, 501, 502, 503, 504, 507) };

  // Requests answered from the cache, for its served-bytes counter.
  const remote = new WeakSet<FastifyRequest>();
  if (cache) {
    app.addHook('onResponse', async (req, reply) => {
      if (remote.has(req) && req.method === 'GET' && reply.statusCode < 300) cache.stats.servedBytes += Number(reply.getHeader('content-length') ?? 0);
    });
  }

  const serve = async (req: FastifyRequest<{ Params: AssetParams }>, reply: FastifyReply) => {
    const { profile: name, artifact: key } = req.params;
    const profile = profiles().get(name);
    const artifact = profile?.artifacts[key];
    if (!profile || !artifact) throw new ApiError('not_found', `no artifact ${key} in a profile ${name}`, 404);
    if (!artifact.url.startsWith('file:')) {
      if (!cache) {
        throw new ApiError(
          'not_cached',
          `artifact ${key} of profile ${name} comes from ${redactUrl(artifact.url)}; remote artifacts are served through the artifact cache, and this server has none: give the profile a file:// URL`,
          501,
        );
      }
      return serveRemote(req, reply, cache, { url: artifact.url, ...(artifact.sha256 && { sha256: artifact.sha256 }), ...(artifact.size !== undefined && { size: artifact.size }) });
    }
    const path = fileURLToPath(artifact.url);
    const st = await stat(path).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT' || err.code === 'ENOTDIR') return undefined;
      throw err;
    });
    if (!st?.isFile()) {
      req.log.error({ profile: name, artifact: key, path }, 'a profile names an artifact file that is not there');
      throw new ApiError('artifact_missing', `artifact ${key} of profile ${name} is missing on the server: see its log`, 404);
    }
    return sendLocal(req, reply, path);
  };

  let active = 0;
  /** Counts a large transfer until its connection closes; false when the server is full. */
  const admit = (req: FastifyRequest, reply: FastifyReply, size: number): boolean => {
    if (!admission || admission.maxTransfers === 0 || size < admission.largeBytes || req.method === 'HEAD') return true;
    if (active >= admission.maxTransfers) {
      if (cache) cache.stats.busy++;
      req.log.warn({ active, max: admission.maxTransfers, url: redactUrl(req.url) }, 'artifact transfer refused: server busy (503, Retry-After)');
      return false;
    }
    active++;
    if (cache) cache.stats.activeTransfers = active;
    reply.raw.once('close', () => {
      active--;
      if (cache) cache.stats.activeTransfers = active;
    });
    return true;
  };
  const busy = (reply: FastifyReply) =>
    reply
      .code(503)
      .header('retry-after', String(admission?.retryAfterSeconds ?? 10))
      .send({ error: 'busy', message: `this server is already sending ${admission?.maxTransfers} large artifacts: retry after ${admission?.retryAfterSeconds} s` });

  /**
   * A complete file: validators and range answered here (conditional.ts), the body sent by the
   * kernel from the file (sendfile.ts) when the request came on a TCP socket, else streamed.
   * The file is opened first, so a blob evicted meanwhile is still read whole.
   */
  const sendLocal = async (req: FastifyRequest, reply: FastifyReply, path: string, digest?: string) => {
    const file = await open(path, 'r');
    let handedOff = false;
    try {
      const st = await file.stat();
      const etag = digest ? `"sha256:${digest}"` : fileEtag(st.mtime, st.size);
      const h = req.headers;
      const answer = answerFileRequest(
        { method: req.method, range: h.range, ifMatch: h['if-match'], ifNoneMatch: h['if-none-match'], ifModifiedSince: h['if-modified-since'], ifUnmodifiedSince: h['if-unmodified-since'], ifRange: firstValue(h['if-range']) },
        { size: st.size, etag, lastModified: st.mtime },
      );
      const headers: Record<string, string | number> = { 'accept-ranges': 'bytes', etag, 'last-modified': st.mtime.toUTCString() };
      if (answer.status === 412) throw new ApiError('precondition_failed', `the artifact is not the one If-Match or If-Unmodified-Since names: it is ${etag}, modified ${headers['last-modified']}`, 412);
      if (answer.status === 304) return reply.code(304).headers(headers).send();
      headers['content-type'] = 'application/octet-stream';
      if (answer.status === 416) return reply.code(416).headers({ ...headers, 'content-range': `bytes */${st.size}` }).send();
      const length = answer.end - answer.start + 1;
      headers['content-length'] = length;
      if (answer.status === 206) headers['content-range'] = `bytes ${answer.start}-${answer.end}/${st.size}`;
      if (req.method === 'HEAD' || length === 0) return reply.code(answer.status).headers(headers).send(Readable.from([]));
      if (!admit(req, reply, st.size)) return busy(reply);
      // A pipelined request's response has no socket until the ones before it are done: it streams, in order.
      if (socketFd(reply.raw.socket) === undefined) {
        handedOff = true;
        return reply.code(answer.status).headers(headers).send(file.createReadStream({ start: answer.start, end: answer.end, highWaterMark: READ_CHUNK }));
      }
      reply.hijack();
      const res = reply.raw;
      res.statusCode = answer.status;
      for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
      try {
        await sendfileBody(res, file.fd, answer.start, length, { rate: admission?.clientRate ?? 0, rateKey: clientAddress(req), stallMs: STALL_MS });
      } catch (err) {
        const e = err as NodeJS.ErrnoException & { sent?: number };
        req.log.info({ url: redactUrl(req.url), sent: e.sent, reason: e.code ?? e.message }, 'artifact transfer ended early');
      }
      return reply;
    } finally {
      if (!handedOff) await file.close();
    }
  };

  /** A cached artifact from its blob; one being fetched, as its bytes arrive (Range included). */
  const serveRemote = async (req: FastifyRequest, reply: FastifyReply, c: ArtifactCache, want: ArtifactRequest) => {
    remote.add(req);
    try {
      const opened = await c.open(want);
      if (opened.kind === 'cached') return sendLocal(req, reply, opened.cached.path, opened.cached.entry.digest);
      const d = opened.download;
      while (d.total === undefined && !d.finished && !d.failure) await once(d, 'progress');
      if (d.failure) throw d.failure;
      if (d.finished || d.total === undefined) {
        const done = await d.done;
        return sendLocal(req, reply, done.path, done.entry.digest);
      }
      const total = d.total;
      if (!admit(req, reply, total)) return busy(reply);
      const range = parseRange(req.headers.range, total);
      reply.type('application/octet-stream').header('accept-ranges', 'bytes');
      if (range.kind === 'unsatisfiable') return reply.code(416).header('content-range', `bytes */${total}`).send();
      const [start, end] = range.kind === 'range' ? [range.start, range.end] : [0, total - 1];
      if (range.kind === 'range') reply.code(206).header('content-range', `bytes ${start}-${end}/${total}`);
      reply.header('content-length', end - start + 1);
      // An (empty) stream keeps the Content-Length set above: Fastify's HEAD route would set 0 for no payload.
      if (req.method === 'HEAD' || total === 0) return reply.send(Readable.from([]));
      return reply.send(readDownload(d, start, end));
    } catch (err) {
      throw cacheError(err);
    }
  };
  // Fastify answers HEAD from these routes too (exposeHeadRoutes): the headers without the body.
  app.get<{ Params: AssetParams }>('/assets/:profile/:artifact', { schema }, serve);

  // The artifacts of a hub's (assisted) script, by the id the rewritten script names.
  app.get<{ Params: { id: string; name: string } }>(
    '/assets/hub/:id/:name',
    { schema: { summary: "An artifact of a hub's iPXE script, through the cache", tags: ['boot'], params: { type: 'object', properties: { id: { type: 'string', pattern: '^[0-9a-f]{16}$' }, name: NAME } }, response: errors(404, 502, 503, 504, 507) } },
    async (req, reply) => {
      const want = await cache?.registered(req.params.id);
      if (!cache || !want) throw new ApiError('not_found', 'no such hub artifact on this server (it restarted since the script was served?): boot the machine again', 404);
      return serveRemote(req, reply, cache, want);
    },
  );

  if (onServed) {
    app.addHook('onResponse', async (req, reply) => {
      const params = req.params as Partial<AssetParams & { id: string; name: string }>;
      const profile = params.profile ?? 'hub';
      const artifact = params.artifact ?? params.name ?? '';
      const range = req.headers.range;
      onServed({
        profile,
        artifact,
        method: req.method,
        status: reply.statusCode,
        bytes: req.method === 'HEAD' ? 0 : Number(reply.getHeader('content-length') ?? 0),
        ...(range !== undefined && { range }),
        client: clientAddress(req),
        durationMs: Math.round(reply.elapsedTime),
      });
    });
  }
};

/** A cache failure as the API error a machine (and its admin) can act on. */
export function cacheError(err: unknown): unknown {
  if (err instanceof UpstreamError) return new ApiError(err.timeout ? 'upstream_timeout' : 'upstream_failed', `the artifact's upstream failed: ${err.message}`, err.timeout ? 504 : 502);
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
