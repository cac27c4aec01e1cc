import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { ArtifactCache } from '../../cache/artifacts.js';
import { SAFE_URL_PATTERN } from '../../boot/safe.js';
import { requireAdmin } from '../auth.js';
import { redactSecrets } from '../../secrets/redact.js';
import { errors } from '../schemas.js';
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
    pinned: { type: 'boolean' },
  },
} as const;
const download = { type: 'object', properties: { key: { type: 'string' }, bytes: { type: 'integer' }, total: { type: 'integer' } } } as const;

/**
 * The cache for operators: what it holds and what it is fetching (`GET /api/v1/cache`), and
 * pre-warming before the machines arrive (`POST /api/v1/cache/prefetch`, which the CLI's
 * `edgeboot cache pull` drives). Keys and messages never carry a URL's secrets.
 */
export const cacheRoutes: FastifyPluginAsyncTypebox<{ cache: ArtifactCache; adminTokens: readonly string[]; maxBytes: number }> = async (
  app,
  { cache, adminTokens, maxBytes },
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
    async () => ({ ...(await cache.list()), maxBytes }),
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
};
