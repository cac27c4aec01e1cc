/**
 * A dashboard user without a browser, over `app.inject`: keeps the cookies the server sets (as
 * a browser would, by name), reads the CSRF token from the last page's forms and posts forms
 * with it. The browser itself is test/system/ui-browser.test.ts's.
 */
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';

export const VIEWER_TOKEN = 'test-viewer-token-0123456789';

export interface UiPage {
  status: number;
  html: string;
  headers: LightMyRequestResponse['headers'];
}

/** `Set-Cookie` values of a response, as one list. */
function setCookies(r: LightMyRequestResponse): string[] {
  const h = r.headers['set-cookie'];
  return h === undefined ? [] : Array.isArray(h) ? h : [h];
}

export class UiClient {
  readonly cookies = new Map<string, string>();
  private csrf = '';

  constructor(private readonly app: FastifyInstance) {}

  private cookieHeader(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  private take(r: LightMyRequestResponse): UiPage {
    for (const c of setCookies(r)) {
      const [pair = ''] = c.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1);
      if (/expires=Thu, 01 Jan 1970/i.test(c) || value === '') this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    const m = /name="_csrf" value="([^"]+)"/.exec(r.body);
    if (m?.[1]) this.csrf = m[1];
    return { status: r.statusCode, html: r.body, headers: r.headers };
  }

  async get(url: string, headers: Record<string, string> = {}): Promise<UiPage> {
    return this.take(await this.app.inject({ method: 'GET', url, headers: { cookie: this.cookieHeader(), ...headers } }));
  }

  /** Posts a form; `_csrf` is the token of the last page read unless the fields give one. */
  async post(url: string, fields: Record<string, string | string[]>): Promise<UiPage> {
    const body = new URLSearchParams();
    if (!('_csrf' in fields)) body.append('_csrf', this.csrf);
    for (const [k, v] of Object.entries(fields)) for (const one of [v].flat()) body.append(k, one);
    const r = await this.app.inject({
      method: 'POST',
      url,
      headers: { cookie: this.cookieHeader(), 'content-type': 'application/x-www-form-urlencoded' },
      payload: body.toString(),
    });
    return this.take(r);
  }

  /** Logs in through the form; the answer to the POST (303 on success). */
  async login(token: string, next = '/ui/'): Promise<UiPage> {
    await this.get('/ui/login');
    return this.post('/ui/login', { token, next });
  }
}

/** A client logged in with `token`; throws unless the login worked. */
export async function loggedIn(app: FastifyInstance, token: string): Promise<UiClient> {
  const c = new UiClient(app);
  const r = await c.login(token);
  if (r.status !== 303) throw new Error(`login answered ${r.status}: ${r.html.slice(0, 300)}`);
  return c;
}

/** Every dashboard link a page names (same origin, under /ui/, not the event stream or a static file). */
export function uiLinks(html: string): string[] {
  const links = new Set<string>();
  for (const m of html.matchAll(/href="(\/ui\/[^"]*)"/g)) {
    const href = (m[1] ?? '').replaceAll('&amp;', '&');
    if (!href.startsWith('/ui/static/') && !href.startsWith('/ui/events')) links.add(href);
  }
  return [...links];
}
