/**
 * Who is at the dashboard: a token is exchanged at the login form for a session cookie (signed,
 * HttpOnly, SameSite=Strict, expiring); every page needs one, every change needs an admin's.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest, preHandlerHookHandler } from 'fastify';
import type { UiSession, UiSessions } from './sessions.js';

export const SESSION_COOKIE = 'edgeboot_ui';

declare module 'fastify' {
  interface FastifyRequest {
    uiSession: UiSession | null;
  }
}

/** Where a login form may send a browser back to: a dashboard path, never another site. */
export function safeNext(next: unknown): string {
  return typeof next === 'string' && /^\/ui\/[^\s\\]*$/.test(next) && !next.startsWith('/ui//') ? next : '/ui/';
}

/** The session the request's cookie names, when its signature holds and it has not ended. */
export function sessionOf(req: FastifyRequest, sessions: UiSessions): UiSession | null {
  const raw = req.cookies[SESSION_COOKIE];
  if (raw === undefined) return null;
  const unsigned = req.unsignCookie(raw);
  if (!unsigned.valid) return null;
  return sessions.get(unsigned.value) ?? null;
}

export function setSessionCookie(reply: FastifyReply, session: UiSession, secure: boolean): void {
  void reply.setCookie(SESSION_COOKIE, session.id, {
    signed: true,
    httpOnly: true,
    sameSite: 'strict',
    secure,
    path: '/ui',
    expires: new Date(session.expiresAt),
  });
}

export function clearSessionCookie(reply: FastifyReply): void {
  void reply.clearCookie(SESSION_COOKIE, { path: '/ui' });
}

/**
 * The onRequest check of every dashboard route but the login and the static files: without a
 * session a page redirects to the login (htmx follows `HX-Redirect`), the event stream gets 401.
 */
export function requireSession(sessions: UiSessions) {
  return async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    req.uiSession = sessionOf(req, sessions);
    if (req.uiSession) return;
    const login = `/ui/login?next=${encodeURIComponent(safeNext(req.url))}`;
    if (req.headers['hx-request'] === 'true') {
      await reply.code(401).header('hx-redirect', login).send();
    } else if (req.method === 'GET' && !req.url.startsWith('/ui/events')) {
      await reply.redirect(login, 303);
    } else {
      await reply.code(401).type('text/plain').send('log in at /ui/login first');
    }
  };
}

/** A viewer's attempt to change something: the dashboard's error handler answers its 403. */
class ReadOnlyLogin extends Error {
  readonly statusCode = 403;
  constructor() {
    super('this login is read-only (a viewer token): it can look but not act');
    this.name = 'ReadOnlyLogin';
  }
}

export function isAdminSession(req: FastifyRequest): boolean {
  return req.uiSession?.role === 'admin';
}

/** Throws unless the request's session is an admin's: the check of every POST that changes something. */
export function mustBeAdmin(req: FastifyRequest): void {
  if (!isAdminSession(req)) throw new ReadOnlyLogin();
}

/** The CSRF check of a form POST (@fastify/csrf-protection: the `_csrf` field against the secret cookie); a preHandler, as the field is in the body. */
export function csrfCheck(app: FastifyInstance): preHandlerHookHandler {
  return (req, reply, done) => {
    app.csrfProtection(req, reply, done);
  };
}

/** Registers the login, the logout and the redirect from /ui to /ui/. */
export function loginRoutes(app: FastifyInstance, sessions: UiSessions, o: { loginPerMinute: number }): void {
  app.get('/ui', async (_req, reply) => reply.redirect('/ui/', 308));
  app.get('/ui/login', async (req, reply) => {
    const next = safeNext((req.query as { next?: unknown }).next);
    if (sessionOf(req, sessions)) return reply.redirect(next, 303);
    return reply.view('login', { title: 'Log in', next, csrf: reply.generateCsrf(), error: undefined });
  });
  app.post('/ui/login', { preHandler: csrfCheck(app), config: { rateLimit: { max: o.loginPerMinute, timeWindow: 60_000 } } }, async (req, reply) => {
    const body = (req.body ?? {}) as { token?: unknown; next?: unknown };
    const next = safeNext(body.next);
    const role = typeof body.token === 'string' ? sessions.roleOf(body.token.trim()) : undefined;
    if (!role) {
      req.log.info({ client: req.ip }, 'dashboard login refused');
      return reply
        .code(401)
        .view('login', { title: 'Log in', next, csrf: reply.generateCsrf(), error: 'That token is not an admin or viewer token of this server.' });
    }
    const session = sessions.start(role);
    setSessionCookie(reply, session, req.protocol === 'https');
    req.log.info({ client: req.ip, role }, 'dashboard login');
    return reply.redirect(next, 303);
  });
  app.post('/ui/logout', { preHandler: csrfCheck(app) }, async (req, reply) => {
    const s = sessionOf(req, sessions);
    if (s) sessions.end(s.id);
    clearSessionCookie(reply);
    return reply.redirect('/ui/login', 303);
  });
}
