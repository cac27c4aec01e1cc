import type { FastifyInstance } from 'fastify';
import { redactJsonText, redactSecrets } from '../secrets/redact.js';

/**
 * Routes whose answer is a machine's own secrets, for that machine (or the hub acting for it):
 * its Ignition, its precache plan, and the boot URLs with its events token. Every other JSON
 * answer of the API, and /metrics, leaves with its secrets cut.
 */
const HANDS_OUT_SECRETS = new Set(['/api/v1/machines/:mac/ignition', '/api/v1/machines/:mac/plan', '/api/v1/machines/:mac/boot']);

/**
 * The last step before an answer leaves: JSON under /api/ and the /metrics text pass through
 * the secret redaction (src/secrets/redact.ts), whatever route built them, so a URL with an
 * api_key, a presigned S3 URL or userinfo never reaches an operator's screen or a scraper.
 */
export function installReplyRedaction(app: FastifyInstance): void {
  app.addHook('onSend', async (req, reply, payload) => {
    if (typeof payload !== 'string') return payload;
    const route = req.routeOptions.url ?? '';
    if (route === '/metrics') return redactSecrets(payload);
    const type = String(reply.getHeader('content-type') ?? '');
    if (!type.startsWith('application/json') || HANDS_OUT_SECRETS.has(route)) return payload;
    // Errors of every route (an /assets 502 names its upstream), and everything under /api/.
    return route.startsWith('/api/') || reply.statusCode >= 400 ? redactJsonText(payload) : payload;
  });
}
