import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { stat } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { HubArtifacts } from '../../boot/hub-artifacts.js';
import type { ArtifactCache } from '../../cache/artifacts.js';
import { ApiError } from '../errors.js';
import { artifactOf, type ProfileSet } from '../../profiles/profile.js';
import { ArtifactResponder, cacheError, type AssetLimits } from '../artifact-responder.js';
import { servedHook, type AssetServed } from '../served.js';
import { redactSecrets } from '../../secrets/redact.js';
import { errors } from '../schemas.js';

export interface AssetRoutesOptions {
  profiles: () => ProfileSet;
  /** Remote artifacts come through this cache; without one they answer 501. */
  cache?: ArtifactCache;
  /** The ids of `/assets/hub/{id}/{name}` (boot/hub-artifacts.ts); without them (or a cache) those URLs answer 404. */
  hubArtifacts?: Pick<HubArtifacts, 'registered'>;
  /** Boot-storm admission and the per-client rate cap (artifact-responder.ts). */
  admission?: AssetLimits;
  onServed?: (served: AssetServed) => void;
}

interface AssetParams {
  profile: string;
  artifact: string;
}

const NAME = { type: 'string', maxLength: 63 } as const;

/**
 * `GET`/`HEAD /assets/{profile}/{artifact}` and `/assets/hub/{id}/{name}`: the kernels, initrds
 * and rootfs images the boot scripts name (`render.ts` and the assisted rewrite build these
 * URLs). Complete files — a profile's `file://` artifacts and cached blobs — are answered by
 * `sendLocal` (validators and ranges by conditional.ts, the body by sendfile.ts); an artifact still
 * downloading into the cache is streamed as its bytes arrive. Without a cache (an app built
 * without one) a remote artifact answers 501 rather than being pulled per machine.
 */
export const assetRoutes: FastifyPluginAsync<AssetRoutesOptions> = async (app, { profiles, cache, hubArtifacts, admission, onServed }) => {
  const schema = {
    summary: 'A boot artifact of a profile (Range, ETag, HEAD)',
    tags: ['boot'],
    params: { type: 'object', properties: { profile: NAME, artifact: NAME } },
    response: errors(404, 412, 501, 502, 503, 504, 507),
  };

  const serve = async (req: FastifyRequest<{ Params: AssetParams }>, reply: FastifyReply) => {
    const { profile: name, artifact: key } = req.params;
    const profile = profiles().get(name);
    const artifact = profile && artifactOf(profile, key);
    if (!profile || !artifact) throw new ApiError('not_found', `no artifact ${key} in a profile ${name}`, 404);
    if (!artifact.url.startsWith('file:')) {
      if (!cache) {
        throw new ApiError(
          'not_cached',
          `artifact ${key} of profile ${name} comes from ${redactSecrets(artifact.url)}; remote artifacts are served through the artifact cache, and this server has none: give the profile a file:// URL`,
          501,
        );
      }
      return serveRemote(req, reply, cache, {
        url: artifact.url,
        ...(artifact.sha256 && { sha256: artifact.sha256 }),
        ...(artifact.size !== undefined && { size: artifact.size }),
      }).catch((err: unknown) => {
        throw cacheError(err);
      });
    }
    const path = fileURLToPath(artifact.url);
    const st = await stat(path).catch((err: unknown) => {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
      throw err;
    });
    if (!st?.isFile()) {
      req.log.error({ profile: name, artifact: key, path }, 'a profile names an artifact file that is not there');
      throw new ApiError('artifact_missing', `artifact ${key} of profile ${name} is missing on the server: see its log`, 404);
    }
    return sendLocal(req, reply, path);
  };

  const responder = new ArtifactResponder(cache, admission);
  const { sendLocal, serveRemote } = responder;
  app.addHook('onResponse', async (req, reply) => responder.countServed(req, reply));

  // Fastify answers HEAD from these routes too (exposeHeadRoutes): the headers without the body.
  app.get<{ Params: AssetParams }>('/assets/:profile/:artifact', { schema }, serve);

  // The artifacts of a hub's (assisted) script, by the id the rewritten script names.
  app.get<{ Params: { id: string; name: string } }>(
    '/assets/hub/:id/:name',
    {
      schema: {
        summary: "An artifact of a hub's iPXE script, through the cache",
        tags: ['boot'],
        params: { type: 'object', properties: { id: { type: 'string', pattern: '^[0-9a-f]{16}$' }, name: NAME } },
        response: errors(404, 502, 503, 504, 507),
      },
    },
    async (req, reply) => {
      const want = await hubArtifacts?.registered(req.params.id);
      if (!cache || !want)
        throw new ApiError('not_found', 'no such hub artifact on this server (it restarted since the script was served?): boot the machine again', 404);
      return serveRemote(req, reply, cache, want).catch((err: unknown) => {
        throw cacheError(err);
      });
    },
  );

  if (onServed) {
    app.addHook(
      'onResponse',
      servedHook(onServed, (req) => {
        const params = req.params as Partial<AssetParams & { id: string; name: string }>;
        return { profile: params.profile ?? 'hub', artifact: params.artifact ?? params.name ?? '' };
      }),
    );
  }
};
