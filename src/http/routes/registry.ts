import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { Readable } from 'node:stream';
import { CacheFullError, IntegrityError, UpstreamError, type ArtifactCache } from '../../cache/artifacts.js';
import { RegistryError } from '../../registry/client.js';
import { UpstreamDeniedError } from '../../registry/allow.js';
import { ManifestUnknownError, RegistryMirror, RepositoryUnknownError } from '../../registry/mirror.js';
import { parseMirrorPath, parseTagsPath } from '../../registry/reference.js';
import { nextPageLink, pageTags, parseTagQuery } from '../../registry/tags.js';
import { ArtifactResponder, type AssetLimits } from '../artifact-responder.js';
import { matchesAny } from '../../secrets/compare.js';
import { redactSecrets } from '../../secrets/redact.js';

export interface RegistryRoutesOptions {
  mirror: RegistryMirror;
  cache: ArtifactCache;
  admission?: AssetLimits;
  /** Tokens a client must present (Basic password or Bearer); empty: anonymous reads. */
  readTokens: readonly string[];
}

/** The distribution API's error body (distribution-spec "Error Codes"). */
function distributionError(reply: FastifyReply, status: number, code: string, message: string, detail?: unknown): FastifyReply {
  return reply
    .code(status)
    .type('application/json')
    .send({ errors: [{ code, message, ...(detail !== undefined && { detail }) }] });
}

/**
 * The read-only registry mirror, `GET`/`HEAD /v2/…` (distribution-spec end-1, end-2, end-3):
 * `/v2/` answers 200 (or 401 with a Basic challenge when `registry.readTokens` is set);
 * manifests by tag or digest with their own media type, `Docker-Content-Digest` and length;
 * blobs by digest through the artifact cache (Range, HEAD, sent by the kernel); tag lists with
 * `n`/`last` paging and a `Link` to the next page (end-8a/8b). The first path component is the
 * upstream: `/v2/quay.io/openshift-release-dev/ocp-release/manifests/4.14.0`; a name outside
 * `registry.allowedUpstreams` is 403 DENIED, with no upstream asked.
 * Every error is in the distribution format, so skopeo, podman and CRI-O can say what it was.
 */
export const registryRoutes: FastifyPluginAsync<RegistryRoutesOptions> = async (app, { mirror, cache, admission, readTokens }) => {
  const responder = new ArtifactResponder(cache, admission);
  app.addHook('onResponse', async (req, reply) => responder.countServed(req, reply));
  app.addHook('onRequest', async (req, reply) => {
    void reply.header('docker-distribution-api-version', 'registry/2.0');
    if (readTokens.length > 0 && !authorised(req.headers.authorization, readTokens)) {
      return distributionError(
        reply.header('www-authenticate', 'Basic realm="edgeboot"'),
        401,
        'UNAUTHORIZED',
        'this mirror needs a read token: Basic credentials with the token as password, or Bearer',
      );
    }
    return undefined;
  });
  const doc = { tags: ['registry'], hide: true };
  app.get('/v2/', { schema: { ...doc, summary: 'The distribution API version check' } }, async (_req, reply) => reply.type('application/json').send({}));

  app.get('/v2/*', { schema: { ...doc, summary: 'Manifests, blobs and tag lists of the read-only registry mirror' } }, async (req, reply) => {
    const rest = req.url.slice('/v2/'.length).split('?')[0] ?? '';
    const tagsPath = parseTagsPath(rest);
    if (tagsPath !== undefined) return tagList(req, reply, tagsPath);
    const p = parseMirrorPath(rest);
    if (p === undefined)
      return distributionError(
        reply,
        404,
        'NAME_UNKNOWN',
        `${rest}: this mirror serves <upstream>/<repository>/manifests/<reference>, …/blobs/<digest> and …/tags/list, read-only`,
      );
    if ('error' in p) return distributionError(reply, 400, p.error, p.message);
    try {
      if (p.what === 'manifests') {
        const m = await mirror.manifest(p);
        const bytes = await RegistryMirror.read(m);
        reply
          .type(m.manifest.mediaType)
          .header('docker-content-digest', m.manifest.digest)
          .header('etag', `"${m.manifest.digest}"`)
          .header('content-length', bytes.length);
        // An (empty) stream keeps the Content-Length: Fastify's HEAD route would set 0 for no payload.
        return req.method === 'HEAD' ? Readable.from([]) : bytes;
      }
      const digest = p.reference.kind === 'digest' ? p.reference.digest : '';
      const want = mirror.blobRequest(p);
      return await responder.serveRemote(req, reply, cache, want, { 'docker-content-digest': digest });
    } catch (err) {
      return answerError(req, reply, err, p.what);
    }
  });

  async function tagList(req: FastifyRequest, reply: FastifyReply, path: NonNullable<ReturnType<typeof parseTagsPath>>): Promise<FastifyReply> {
    if ('error' in path) return distributionError(reply, 400, path.error, path.message);
    const q = parseTagQuery(req.query as { n?: unknown; last?: unknown });
    if ('error' in q) return distributionError(reply, 400, 'PAGINATION_NUMBER_INVALID', q.error);
    const name = `${path.upstream}/${path.repository}`;
    let all: string[];
    try {
      all = await mirror.tags(path);
    } catch (err) {
      return answerError(req, reply, err, 'tags');
    }
    const page = pageTags(all, q.n, q.last);
    if (page.next !== undefined && q.n !== undefined) void reply.header('link', nextPageLink(name, q.n, page.next));
    return reply.type('application/json').send({ name, tags: page.tags });
  }
};

function answerError(req: FastifyRequest, reply: FastifyReply, err: unknown, what: 'manifests' | 'blobs' | 'tags'): FastifyReply {
  const unknown = what === 'manifests' ? 'MANIFEST_UNKNOWN' : what === 'blobs' ? 'BLOB_UNKNOWN' : 'NAME_UNKNOWN';
  if (err instanceof UpstreamDeniedError) {
    req.log.debug({ image: err.image }, 'registry mirror: a name outside registry.allowedUpstreams refused');
    return distributionError(reply, 403, 'DENIED', err.message, { name: err.image });
  }
  if (err instanceof ManifestUnknownError || err instanceof RepositoryUnknownError) return distributionError(reply, 404, unknown, err.message);
  if (err instanceof RegistryError || err instanceof UpstreamError) {
    const status = err.status;
    if (status === 404) return distributionError(reply, 404, unknown, err.message);
    if (status === 401 || status === 403)
      return distributionError(reply, 502, 'UNAUTHORIZED', `the upstream refused edgeboot's credentials: ${err.message} (check registry.pullSecret)`);
    req.log.warn({ url: redactSecrets(req.url), err: err.message }, 'registry mirror: upstream failed');
    return distributionError(reply, err instanceof UpstreamError && err.timeout ? 504 : 502, 'UNAVAILABLE', `the upstream failed: ${err.message}`);
  }
  if (err instanceof IntegrityError) {
    req.log.error({ url: redactSecrets(req.url), err: err.message }, 'registry mirror: the upstream sent other bytes than the digest names');
    return distributionError(reply, 502, 'DIGEST_INVALID', err.message);
  }
  if (err instanceof CacheFullError) return distributionError(reply, 507, 'UNAVAILABLE', err.message);
  throw err;
}

function authorised(header: string | undefined, tokens: readonly string[]): boolean {
  if (!header) return false;
  const [scheme, value = ''] = header.split(' ', 2);
  let presented = value;
  if (scheme?.toLowerCase() === 'basic') {
    const plain = Buffer.from(value, 'base64').toString('utf8');
    presented = plain.slice(plain.indexOf(':') + 1);
  } else if (scheme?.toLowerCase() !== 'bearer') return false;
  return matchesAny(presented, tokens);
}
