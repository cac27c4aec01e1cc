/**
 * The dashboard at /ui/: server-rendered pages (Eta through @fastify/view), htmx for the parts
 * that change, one SSE stream for live changes. Its own encapsulated scope: the cookie, form,
 * CSRF and rate-limit plugins and the HTML error pages stay inside it, the API is untouched.
 */
import cookie from '@fastify/cookie';
import csrf from '@fastify/csrf-protection';
import formbody from '@fastify/formbody';
import rateLimit from '@fastify/rate-limit';
import view from '@fastify/view';
import { Eta } from 'eta';
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import type { TimelineFeed } from '../machines/timeline-feed.js';
import { redactSecrets } from '../secrets/redact.js';
import { loginRoutes, requireSession } from './access.js';
import { AlertWatch } from './alerts.js';
import { assetRoutes, WEB_DIR } from './assets.js';
import { eventStreamRoute } from './events-stream.js';
import { page } from './render.js';
import { machineRoutes } from './routes-machines.js';
import { pageRoutes, type PageRoutesDeps } from './routes-pages.js';
import { UiSessions } from './sessions.js';

export interface UiOptions extends Omit<PageRoutesDeps, 'alerts'> {
  feed: TimelineFeed;
  adminTokens: readonly string[];
  viewerTokens: readonly string[];
  sessionHours: number;
  /** Signs the session and CSRF cookies; a restart with another one logs everybody out. */
  cookieSecret: string;
  loginPerMinute?: number;
  maxStreams?: number;
}

/** No inline script or style anywhere: htmx is told not to add its indicator style (layout.eta). */
const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

export const uiPlugin: FastifyPluginAsync<UiOptions> = async (app: FastifyInstance, o) => {
  const sessions = new UiSessions({ adminTokens: o.adminTokens, viewerTokens: o.viewerTokens, ttlMs: o.sessionHours * 3600_000 });
  await app.register(cookie, { secret: o.cookieSecret });
  await app.register(formbody, { bodyLimit: 64 * 1024 });
  await app.register(csrf, { cookieOpts: { signed: true, httpOnly: true, sameSite: 'strict', path: '/ui' } });
  await app.register(rateLimit, { global: false });
  await app.register(view, {
    engine: { eta: new Eta({ views: `${WEB_DIR}views`, cache: true, autoTrim: false }) },
    root: `${WEB_DIR}views`,
    viewExt: 'eta',
    defaultContext: {},
  });
  app.decorateRequest('uiSession', null);

  app.addHook('onSend', async (req, reply, payload) => {
    void reply.header('content-security-policy', CSP).header('x-content-type-options', 'nosniff').header('referrer-policy', 'no-referrer');
    void reply.header('x-frame-options', 'DENY');
    const type = String(reply.getHeader('content-type') ?? '');
    if (!type.startsWith('text/html')) return payload;
    void reply.header('cache-control', 'no-store');
    // The last net under the templates' own care: no page leaves with a secret in a URL.
    return typeof payload === 'string' ? redactSecrets(payload) : payload;
  });

  app.setErrorHandler(async (err: Error & { statusCode?: number }, req, reply) => {
    const status = err.statusCode ?? 500;
    if (status >= 500) req.log.error({ err, url: redactSecrets(req.url) }, 'dashboard page failed');
    const message =
      status === 429
        ? 'Too many login attempts from this address: wait a minute.'
        : status >= 500
          ? `Something went wrong (request ${req.id}); the log has it.`
          : err.message;
    if (status === 429) return reply.code(429).view('login', { title: 'Log in', next: '/ui/', csrf: reply.generateCsrf(), error: message });
    return page(req, reply.code(status), 'error', { title: status === 403 ? 'Not allowed' : 'Error', status, message });
  });

  assetRoutes(app);
  loginRoutes(app, sessions, { loginPerMinute: o.loginPerMinute ?? 10 });
  const alerts = new AlertWatch(o.feed, o.now);
  await app.register(async (pages) => {
    pages.addHook('onRequest', requireSession(sessions));
    eventStreamRoute(pages, { feed: o.feed, maxStreams: o.maxStreams ?? 1000, flushMs: 500, heartbeatMs: 25_000 });
    machineRoutes(pages, { store: o.store, api: o.api, profiles: o.profiles });
    pageRoutes(pages, { ...o, alerts: () => alerts.current() });
  });
};
