import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { ArtifactCache } from '../../cache/artifacts.js';
import { SAFE_URL_PATTERN } from '../../boot/safe.js';
import { requireAdmin } from '../auth.js';
import { redactSecrets } from '../../secrets/redact.js';
import { errors, noContent } from '../schemas.js';
import { ApiError } from '../errors.js';
import type { CachePins } from '../../cache/pins.js';
import { cacheError } from '../artifact-responder.js';

const entry = {
  type: 'object',
  properties: {
    key: { type: 'string' },
    digest: { type: 'string' },
    size: { type: 'integer' },
    mediaType: { type: 'string' },
    createdAt: { type: 'string' },
    lastUsedAt: { type: 'string' },
    pinned: { type: 'boolean', description: 'never evicted: a profile names it, or an admin pinned it' },
    pinnedByAdmin: { type: 'boolean' },
    hits: { type: 'integer', description: 'times it was served from the cache since the server started' },
  },
} as const;
const download = { type: 'object', properties: { key: { type: 'string' }, bytes: { type: 'integer' }, total: { type: 'integer' } } } as const;

/**
 * The cache for operators: what it holds and what it is fetching (`GET /api/v1/cache`), and
 * pre-warming before the machines arrive (`POST /api/v1/cache/prefetch`, which the CLI's
 * `edgeboot cache pull` drives). Keys and messages never carry a URL's secrets.
 */
export const cacheRoutes: FastifyPluginAsyncTypebox<{ cache: ArtifactCache; pins: CachePins; adminTokens: readonly string[]; maxBytes: number }> = async (
  app,
  { cache, pins, adminTokens, maxBytes },
) => {
  const onRequest = requireAdmin(adminTokens);
  const security = [{ bearer: [] }];
  const tags = ['cache'];
  app.get(
    '/api/v1/cache',
    {
      onRequest,
      schema: {
        summary: 'Cached artifacts (least recently used first), downloads running now, and totals',
        tags,
        security,
        response: {
          200: {
            type: 'object',
            properties: {
              entries: { type: 'array', items: entry },
              downloads: { type: 'array', items: download },
              bytes: { type: 'integer' },
              maxBytes: { type: 'integer' },
            },
          },
          ...errors(401),
        },
      },
    },
    async () => {
      const listed = await cache.list();
      return { ...listed, entries: listed.entries.map((e) => ({ ...e, pinnedByAdmin: pins.has(e.key) })), maxBytes };
    },
  );

  app.post(
    '/api/v1/cache/prefetch',
    {
      onRequest,
      schema: {
        summary: 'Fetch an artifact into the cache now (wait=true: answer when it is complete and verified)',
        tags,
        security,
        querystring: Type.Object({ wait: Type.Optional(Type.Boolean()) }, { additionalProperties: false }),
        body: Type.Object(
          {
            url: Type.String({ maxLength: 4096, pattern: SAFE_URL_PATTERN, description: 'an http(s) URL' }),
            sha256: Type.Optional(Type.String({ pattern: '^[0-9a-f]{64}$' })),
            size: Type.Optional(Type.Integer({ minimum: 0 })),
          },
          { additionalProperties: false },
        ),
        response: {
          200: { type: 'object', properties: { state: { type: 'string' }, entry } },
          202: { type: 'object', properties: { state: { type: 'string' }, download } },
          ...errors(400, 401, 502, 504, 507),
        },
      },
    },
    async (req, reply) => {
      const want = { url: req.body.url, ...(req.body.sha256 && { sha256: req.body.sha256 }), ...(req.body.size !== undefined && { size: req.body.size }) };
      try {
        const opened = await cache.open(want);
        if (opened.kind === 'cached') return { state: 'cached', entry: opened.cached.entry };
        const d = opened.download;
        req.log.info({ upstream: redactSecrets(want.url), key: d.key }, 'prefetch');
        if (req.query.wait) return { state: 'cached', entry: (await d.done).entry };
        reply.code(202);
        return { state: 'downloading', download: { key: d.key, bytes: d.written, ...(d.total !== undefined && { total: d.total }) } };
      } catch (err) {
        throw cacheError(err);
      }
    },
  );

  const keyBody = { key: Type.String({ minLength: 1, maxLength: 4096, description: 'the key of an entry, as GET /api/v1/cache lists it' }) };
  app.post(
    '/api/v1/cache/pin',
    {
      onRequest,
      schema: {
        summary: 'Pin an entry (never evicted) or unpin it; a profile that names an artifact pins it whatever this says',
        tags,
        security,
        body: Type.Object({ ...keyBody, pinned: Type.Boolean() }, { additionalProperties: false }),
        response: { 200: Type.Object({ key: Type.String(), pinnedByAdmin: Type.Boolean() }), ...errors(400, 401, 404) },
      },
    },
    async (req) => {
      const { key, pinned } = req.body;
      if (pinned && !(await cache.entry(key))) throw new ApiError('not_found', 'no cache entry has that key', 404);
      await pins.set(key, pinned);
      req.log.info({ key, pinned }, pinned ? 'cache entry pinned' : 'cache entry unpinned');
      return { key, pinnedByAdmin: pinned };
    },
  );
  app.post(
    '/api/v1/cache/evict',
    {
      onRequest,
      schema: {
        summary: 'Evict one entry now (its blob too, once no other entry names it); not a pinned one, nor one downloading',
        tags,
        security,
        body: Type.Object(keyBody, { additionalProperties: false }),
        response: { 204: noContent, ...errors(400, 401, 404, 409) },
      },
    },
    async (req, reply) => {
      const outcome = await cache.remove(req.body.key);
      if (outcome === 'absent') throw new ApiError('not_found', 'no cache entry has that key', 404);
      if (outcome === 'pinned') throw new ApiError('pinned', 'the entry is pinned (by a profile that names it, or by an admin): unpin it first', 409);
      if (outcome === 'busy') throw new ApiError('busy', 'a download is running under that key', 409);
      return reply.code(204).send();
    },
  );
};
