import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';

/** The dashboard's templates and static files: `web/` beside `src/` and `dist/`, shipped with the package. */
export const WEB_DIR = fileURLToPath(new URL('../../web/', import.meta.url));

interface Asset {
  body: Buffer;
  type: string;
  etag: string;
}

function asset(path: string, type: string): Asset {
  const body = readFileSync(path);
  return { body, type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` };
}

/**
 * Every asset a page loads, served by edgeboot itself (no CDN): htmx from its npm package, the
 * dashboard's own script and style sheet. Read once at start; named by content in the ETag.
 */
export function assetRoutes(app: FastifyInstance): void {
  const require = createRequire(import.meta.url);
  const assets = new Map<string, Asset>([
    ['htmx.min.js', asset(require.resolve('htmx.org/dist/htmx.min.js'), 'text/javascript; charset=utf-8')],
    ['app.js', asset(`${WEB_DIR}static/app.js`, 'text/javascript; charset=utf-8')],
    ['app.css', asset(`${WEB_DIR}static/app.css`, 'text/css; charset=utf-8')],
    ['favicon.svg', asset(`${WEB_DIR}static/favicon.svg`, 'image/svg+xml')],
  ]);
  app.get<{ Params: { name: string } }>('/ui/static/:name', async (req, reply) => {
    const a = assets.get(req.params.name);
    if (!a) return reply.code(404).type('text/plain').send('no such file');
    void reply.header('etag', a.etag).header('cache-control', 'public, max-age=300');
    if (req.headers['if-none-match'] === a.etag) return reply.code(304).send();
    return reply.type(a.type).send(a.body);
  });
}
