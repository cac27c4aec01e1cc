import type { FastifyPluginAsync } from 'fastify';
import type { ProfileSet } from '../../profiles/profile.js';
import type { Store } from '../../store/store.js';

const status = { type: 'object', properties: { status: { type: 'string' }, checks: { type: 'object', additionalProperties: { type: 'string' } } } } as const;

export const healthRoutes: FastifyPluginAsync<{ store: Store; profiles: () => ProfileSet }> = async (app, { store, profiles }) => {
  app.get('/healthz', { schema: { summary: 'The process is up', tags: ['health'], response: { 200: status } } }, async () => ({ status: 'ok' }));
  app.get(
    '/readyz',
    { schema: { summary: 'The store answers and profiles are loaded', tags: ['health'], response: { 200: status, 503: status } } },
    async (req, reply) => {
      const checks: Record<string, string> = {};
      try {
        await store.ping();
        checks.store = 'ok';
      } catch (err) {
        req.log.warn({ err }, 'store not ready');
        checks.store = `failing: ${(err as Error).message}`;
      }
      checks.profiles = profiles().list().length > 0 ? 'ok' : 'none loaded';
      const ready = Object.values(checks).every((v) => v === 'ok');
      return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not ready', checks });
    },
  );
};
