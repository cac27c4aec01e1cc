import fastifyStatic from '@fastify/static';
import type { FastifyPluginAsync } from 'fastify';
import { realpathSync } from 'node:fs';
import { join, resolve, sep } from 'node:path';

/** Where UEFI HTTP Boot clients fetch the iPXE binaries DHCP points them at (`dhcp/pxe.ts`). */
export const IPXE_BIN_PREFIX = '/ipxe-bin';

/**
 * The iPXE binaries of the TFTP roots, over HTTP, for UEFI HTTP Boot (arch 15/16/19): the same
 * files TFTP serves, read-only, with Range, ETag and HEAD from @fastify/static, which also
 * refuses paths that leave the roots.
 */
export const ipxeBinRoutes: FastifyPluginAsync<{ roots: readonly string[] }> = async (app, { roots }) => {
  const absolute = [...new Set(roots.map((r) => resolve(r)))];
  if (absolute.length === 0) return;
  await app.register(fastifyStatic, {
    root: absolute.length === 1 ? (absolute[0] as string) : absolute,
    prefix: `${IPXE_BIN_PREFIX}/`,
    decorateReply: false,
    index: false,
    list: false,
    dotfiles: 'deny',
    serveDotFiles: false,
    schemaHide: false,
    // A symlink inside a root that points outside it is refused (404), like `..`.
    allowedPath: (pathName, root) => insideRoot(root, pathName),
  });
};

function insideRoot(root: string, pathName: string): boolean {
  let real: string;
  let realRoot: string;
  try {
    realRoot = realpathSync(root);
    real = realpathSync(join(root, pathName));
  } catch (err) {
    // Missing: let the static handler answer 404. Anything else: refuse.
    return (err as NodeJS.ErrnoException).code === 'ENOENT';
  }
  return real === realRoot || real.startsWith(realRoot + sep);
}
