import fastifyStatic from '@fastify/static';
import type { FastifyPluginAsync } from 'fastify';
import { resolve } from 'node:path';
import { normaliseName, resolveInRoots } from '../../tftp/roots.js';

/** Where UEFI HTTP Boot clients fetch the iPXE binaries DHCP points them at (`dhcp/pxe.ts`). */
export const IPXE_BIN_PREFIX = '/ipxe-bin';

/**
 * The iPXE binaries of the TFTP roots, over HTTP, for UEFI HTTP Boot (arch 15/16/19): the same
 * files TFTP serves — the name is checked by the same rules as a TFTP request (src/tftp/roots.ts,
 * symlinks included) — read-only, with Range, ETag and HEAD from @fastify/static.
 */
export const ipxeBinRoutes: FastifyPluginAsync<{ roots: readonly string[] }> = async (app, { roots }) => {
  const absolute = [...new Set(roots.map((r) => resolve(r)))];
  if (absolute.length === 0) return;
  app.addHook('onRequest', async (req, reply) => {
    const path = decodeURIComponentSafe(req.url.split('?')[0]?.slice(IPXE_BIN_PREFIX.length + 1) ?? '');
    const name = path === undefined ? undefined : normaliseName(path, absolute);
    const found = name?.ok ? await resolveInRoots(absolute, name.relative) : undefined;
    if (!found?.ok) await reply.code(404).send({ error: 'not_found', message: 'no such file in the served directories' });
  });
  await app.register(fastifyStatic, {
    root: absolute.length === 1 ? (absolute[0] as string) : absolute,
    prefix: `${IPXE_BIN_PREFIX}/`,
    decorateReply: false,
    index: false,
    list: false,
    dotfiles: 'deny',
    serveDotFiles: false,
    schemaHide: false,
  });
};

function decodeURIComponentSafe(s: string): string | undefined {
  try {
    return decodeURIComponent(s);
  } catch (err) {
    if (err instanceof URIError) return undefined;
    throw err;
  }
}
