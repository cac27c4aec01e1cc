import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { ApiError } from '../errors.js';
import { parsePullSecret, type PullSecret } from '../../registry/auth.js';
import type { Mirrors } from '../../registry/build.js';
import { parseFilter, type ImageFilter } from '../../registry/filter.js';
import type { ImagePuller } from '../../registry/puller.js';
import { requireAdmin } from '../auth.js';
import { refuseDenied } from '../checks.js';
import { errors, imageSetProperties } from '../schemas.js';

const counts = (...names: string[]) => ({ type: 'object', properties: Object.fromEntries(names.map((n) => [n, { type: 'number' }])) });
const job = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    state: { type: 'string', enum: ['running', 'done', 'failed'] },
    release: {
      type: 'object',
      properties: { ref: { type: 'string' }, digest: { type: 'string' }, version: { type: 'string' }, architecture: { type: 'string' } },
    },
    images: counts('total', 'fetched', 'cached', 'failed', 'pending'),
    blobs: counts('total', 'fetched', 'cached'),
    bytes: counts('total', 'upstream', 'deduplicated'),
    excluded: { type: 'array', items: { type: 'object', properties: { name: { type: 'string' }, ref: { type: 'string' }, pattern: { type: 'string' } } } },
    failures: { type: 'array', items: { type: 'object', properties: { ref: { type: 'string' }, error: { type: 'string' } } } },
    error: { type: 'string' },
    startedAt: { type: 'string' },
    finishedAt: { type: 'string' },
    seconds: { type: 'number' },
  },
} as const;

/**
 * Pre-warming images (`edgeboot images pull` drives these): `POST /api/v1/images/jobs` starts
 * a job — a release resolved to its component images, extra images, a filter, N at a time,
 * optionally with a pull secret of its own that is kept in memory for the job only — and `GET
 * /api/v1/images/jobs/{id}` reports its progress and, once done, its summary.
 */
export const imageRoutes: FastifyPluginAsyncTypebox<{ puller: ImagePuller; mirrors: Mirrors; adminTokens: readonly string[] }> = async (
  app,
  { puller, mirrors, adminTokens },
) => {
  const onRequest = requireAdmin(adminTokens);
  const security = [{ bearer: [] }];
  const tags = ['images'];
  app.post(
    '/api/v1/images/jobs',
    {
      onRequest,
      schema: {
        summary: 'Pull a release and images into the mirror (a job; poll its progress)',
        tags,
        security,
        body: Type.Object(
          {
            ...imageSetProperties,
            pullSecret: Type.Optional(
              Type.String({ maxLength: 1048576, description: 'a pull secret (auths JSON) for this job, tried before registry.pullSecret' }),
            ),
          },
          { additionalProperties: false },
        ),
        response: { 202: job, ...errors(400, 401, 403) },
      },
    },
    async (req, reply) => {
      const b = req.body;
      if (b.release === undefined && (b.images ?? []).length === 0) throw new ApiError('invalid_request', 'name a release, images, or both', 400);
      let filter: ImageFilter | undefined;
      let secret: PullSecret | undefined;
      try {
        if (b.filter !== undefined) filter = parseFilter(b.filter);
        if (b.pullSecret !== undefined) secret = parsePullSecret(b.pullSecret);
      } catch (err) {
        throw new ApiError('invalid_request', (err as Error).message, 400);
      }
      refuseDenied(mirrors.denied([...(b.release !== undefined ? [b.release] : []), ...(b.images ?? [])]));
      try {
        const started = puller.start(
          {
            ...(b.release !== undefined && { release: b.release }),
            images: b.images ?? [],
            ...(filter && { filter }),
            parallel: b.parallel ?? 4,
            architecture: b.architecture ?? 'amd64',
          },
          () => (secret ? mirrors.withSecret(secret) : mirrors.mirror),
        );
        reply.code(202).header('location', `/api/v1/images/jobs/${started.id}`);
        return started;
      } catch (err) {
        throw new ApiError('invalid_request', (err as Error).message, 400);
      }
    },
  );

  app.get(
    '/api/v1/images/jobs/:id',
    {
      onRequest,
      schema: {
        summary: 'An image pull job: progress, then its summary',
        tags,
        security,
        params: Type.Object({ id: Type.String({ pattern: '^[0-9a-f]{16}$' }) }),
        response: { 200: job, ...errors(401, 404) },
      },
    },
    async (req) => {
      const found = puller.get(req.params.id);
      if (!found) throw new ApiError('not_found', `no image job ${req.params.id} (jobs are kept until the server restarts)`, 404);
      return found;
    },
  );
};
