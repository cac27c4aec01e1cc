import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import { resolve } from 'node:path';
import { normaliseName, openInRoots } from '../../tftp/roots.js';
import { ArtifactResponder } from '../artifact-responder.js';
import { IPXE_BIN_PREFIX } from '../../urls.js';
import { errors } from '../schemas.js';

/**
 * The iPXE binaries of the TFTP roots, over HTTP, for UEFI HTTP Boot (arch 15/16/19): the same
 * files TFTP serves. The name is resolved and the file opened by the code TFTP uses
 * (`openInRoots` in src/tftp/roots.ts, symlink rule included), and the answer is sent from that
 * one descriptor — never from a path looked up again — with Range, ETag and HEAD
 * (ArtifactResponder). Read-only; dotfiles stay hidden over HTTP.
 */
export const ipxeBinRoutes: FastifyPluginAsync<{ roots: readonly string[] }> = async (app, { roots }) => {
  const absolute = [...new Set(roots.map((r) => resolve(r)))];
  if (absolute.length === 0) return;
  const responder = new ArtifactResponder(undefined, undefined);
  const notFound = (reply: FastifyReply) => reply.code(404).send({ error: 'not_found', message: 'no such file in the served directories' });
  // Fastify answers HEAD from this route too (exposeHeadRoutes).
  app.get(
    `${IPXE_BIN_PREFIX}/*`,
    { schema: { summary: 'An iPXE binary of the TFTP roots, for UEFI HTTP Boot (Range, ETag, HEAD)', tags: ['boot'], response: errors(404, 412) } },
    async (req, reply) => {
      const path = decodeURIComponentSafe(req.url.split('?')[0]?.slice(IPXE_BIN_PREFIX.length + 1) ?? '');
      const name = path === undefined ? undefined : normaliseName(path, absolute);
      if (!name?.ok || name.relative.split('/').some((seg) => seg.startsWith('.'))) return notFound(reply);
      const opened = await openInRoots(absolute, name.relative).catch((err: unknown) => {
        req.log.info({ file: name.relative, code: (err as NodeJS.ErrnoException).code }, 'ipxe-bin file could not be opened');
        return undefined;
      });
      if (!opened?.ok) {
        if (opened) req.log.debug({ file: name.relative, reason: opened.reason }, 'ipxe-bin file refused');
        return notFound(reply);
      }
      return responder.sendOpenFile(req, reply, opened.file);
    },
  );
};

function decodeURIComponentSafe(s: string): string | undefined {
  try {
    return decodeURIComponent(s);
  } catch (err) {
    if (err instanceof URIError) return undefined;
    throw err;
  }
}
