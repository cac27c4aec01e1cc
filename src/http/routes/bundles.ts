import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { join } from 'node:path';
import type { ArtifactCache } from '../../cache/artifacts.js';
import { ApiError } from '../errors.js';
import { BundleBuilder } from '../../precache/bundles.js';
import { parseFilter, type ImageFilter } from '../../registry/filter.js';
import { ArtifactResponder, type AssetLimits } from '../artifact-responder.js';
import { requireAdmin } from '../auth.js';
import { errors, imageRef, imageSetProperties } from '../schemas.js';
import { refuseDenied } from '../checks.js';
import { servedHook, type AssetServed } from '../served.js';

const ID = Type.String({ pattern: '^[0-9a-f]{16}$' });

/**
 * Precache bundles: `POST /api/v1/bundles` builds one for a spec (once: the same spec is the
 * same bundle), `GET /api/v1/bundles/{id}` says how far it is and, once ready, lists its files
 * with sizes and sha256; `GET`/`HEAD /bundles/{id}/{file}` serves them (Range, ETag from the
 * sha256, sent by the kernel) to the live environment, which needs no token for them.
 */
export interface BundleRoutesOptions {
  bundles: BundleBuilder;
  cache: ArtifactCache;
  admission?: AssetLimits;
  adminTokens: readonly string[];
  /** The images among these that `registry.allowedUpstreams` refuses. */
  denied: (refs: readonly string[]) => string[];
  /** Each bundle file response, for the timeline of the machine that fetched it. */
  onServed?: (served: AssetServed) => void;
}

export const bundleRoutes: FastifyPluginAsyncTypebox<BundleRoutesOptions> = async (app, { bundles, cache, admission, adminTokens, denied, onServed }) => {
  const onRequest = requireAdmin(adminTokens);
  const security = [{ bearer: [] }];
  const tags = ['bundles'];
  const responder = new ArtifactResponder(cache, admission);

  app.post(
    '/api/v1/bundles',
    {
      onRequest,
      schema: {
        summary: 'Build the precache bundle of a release and images (once per spec)',
        tags,
        security,
        body: Type.Object(
          {
            ...imageSetProperties,
            aiImages: Type.Optional(Type.Array(imageRef, { maxItems: 1000, description: 'images the discovery stage loads (ai-images.txt)' })),
          },
          { additionalProperties: false },
        ),
        response: errors(400, 401, 403),
      },
    },
    async (req, reply) => {
      const b = req.body;
      if (b.release === undefined && (b.images ?? []).length === 0 && (b.aiImages ?? []).length === 0)
        throw new ApiError('invalid_request', 'name a release, images, or both', 400);
      let filter: ImageFilter | undefined;
      try {
        if (b.filter !== undefined) filter = parseFilter(b.filter);
      } catch (err) {
        throw new ApiError('invalid_request', (err as Error).message, 400);
      }
      refuseDenied(denied([...(b.release !== undefined ? [b.release] : []), ...(b.aiImages ?? []), ...(b.images ?? [])]));
      const spec = {
        ...(b.release !== undefined && { release: b.release }),
        aiImages: b.aiImages ?? [],
        images: b.images ?? [],
        ...(b.filter !== undefined && { filter: b.filter }),
        architecture: b.architecture ?? 'amd64',
      };
      try {
        const status = await bundles.build(spec, filter, b.parallel ?? 4);
        reply.code(status.state === 'ready' ? 200 : 202).header('location', `/api/v1/bundles/${status.id}`);
        return status;
      } catch (err) {
        throw new ApiError('invalid_request', (err as Error).message, 400);
      }
    },
  );

  app.get(
    '/api/v1/bundles/:id',
    { onRequest, schema: { summary: 'A bundle: its build, then its files', tags, security, params: Type.Object({ id: ID }), response: errors(401, 404) } },
    async (req) => {
      const status = await bundles.status(req.params.id);
      if (!status) throw new ApiError('not_found', `no bundle ${req.params.id}`, 404);
      return status;
    },
  );

  if (onServed) {
    app.addHook(
      'onResponse',
      servedHook(onServed, (req) => {
        const p = req.params as { id?: string; file?: string };
        return p.id !== undefined && p.file !== undefined ? { profile: `bundles/${p.id}`, artifact: p.file } : undefined;
      }),
    );
  }

  app.get(
    '/bundles/:id/:file',
    {
      schema: {
        summary: 'A file of a ready bundle (Range, ETag, HEAD)',
        tags,
        params: Type.Object({ id: ID, file: Type.String({ maxLength: 255, pattern: '^[A-Za-z0-9._@-]+$' }) }),
        response: errors(404),
      },
    },
    async (req, reply) => {
      const status = await bundles.status(req.params.id);
      const file = status?.manifest?.files.find((f) => f.name === req.params.file);
      if (!status?.manifest) throw new ApiError('not_found', `no ready bundle ${req.params.id}`, 404);
      if (req.params.file === 'bundle.json') return responder.sendLocal(req, reply, join(bundles.dirOf(req.params.id), 'bundle.json'));
      if (!file) throw new ApiError('not_found', `bundle ${req.params.id} has no file ${req.params.file}`, 404);
      return responder.sendLocal(req, reply, join(bundles.dirOf(req.params.id), file.name), file.sha256);
    },
  );
};
