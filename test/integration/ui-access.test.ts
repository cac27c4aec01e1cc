/**
 * Who may use the dashboard and how: the login exchanges a token for a signed, HttpOnly,
 * SameSite=Strict, expiring session cookie; pages need it; forms need the CSRF token; a viewer
 * reads and never acts; the login is rate-limited; every page has the CSP and no inline script.
 */
import t, { type Test } from 'tap';
import type { Mac } from '../../src/machines/mac.js';
import { ADMIN_TOKEN, testApp } from '../helpers/app.js';
import { loggedIn, UiClient, VIEWER_TOKEN } from '../helpers/ui.js';

const MAC = '52:54:00:12:34:56' as Mac;
const PAGES = [
  '/ui/',
  '/ui/machines',
  '/ui/machines/new',
  `/ui/machines/${MAC.replaceAll(':', '-')}`,
  '/ui/discovered',
  '/ui/leases',
  '/ui/profiles',
  '/ui/login',
];

async function app(t: Test) {
  const ta = await testApp(t, { config: { auth: { viewerTokens: [VIEWER_TOKEN] } } });
  const put = await ta.app.inject({ method: 'PUT', url: `/api/v1/machines/${MAC}`, headers: ta.auth, payload: { hostname: 'node-1', profile: 'rhcos-live' } });
  t.equal(put.statusCode, 201);
  return ta;
}

t.test('without a session: pages redirect to the login, htmx is told where, the stream is refused', async (t) => {
  const { app: a } = await app(t);
  const page = await a.inject({ url: '/ui/machines?state=failed' });
  t.equal(page.statusCode, 303);
  t.equal(page.headers.location, '/ui/login?next=%2Fui%2Fmachines%3Fstate%3Dfailed');
  const hx = await a.inject({ url: '/ui/machines', headers: { 'hx-request': 'true' } });
  t.equal(hx.statusCode, 401);
  t.match(String(hx.headers['hx-redirect']), /^\/ui\/login\?next=/);
  t.equal((await a.inject({ url: '/ui/events' })).statusCode, 401);
  t.equal((await a.inject({ method: 'POST', url: '/ui/machines/new', payload: 'mac=52:54:00:00:00:09' })).statusCode, 401);
  t.equal((await a.inject({ url: '/ui' })).headers.location, '/ui/', '/ui goes to /ui/');
  const login = await a.inject({ url: '/ui/login' });
  t.equal(login.statusCode, 200, 'the login page needs no session');
  t.equal((await a.inject({ url: '/ui/static/htmx.min.js' })).statusCode, 200, 'nor do the static files');
});

t.test('the login: a wrong token is refused, a right one gets a signed HttpOnly SameSite=Strict cookie that expires', async (t) => {
  const { app: a } = await app(t);
  const c = new UiClient(a);
  const wrong = await c.login('not-a-token-of-this-server');
  t.equal(wrong.status, 401);
  t.match(wrong.html, /not an admin or viewer token/);
  t.notOk(c.cookies.has('edgeboot_ui'));
  const ok = await c.login(ADMIN_TOKEN, '/ui/machines');
  t.equal(ok.status, 303);
  t.equal(ok.headers.location, '/ui/machines', 'back where the login was asked for');
  const cookie = [ok.headers['set-cookie']].flat().find((s) => String(s).startsWith('edgeboot_ui='));
  t.match(String(cookie), /HttpOnly/);
  t.match(String(cookie), /SameSite=Strict/);
  t.match(String(cookie), /Path=\/ui/);
  t.match(String(cookie), /Expires=/);
  t.notMatch(String(cookie), new RegExp(ADMIN_TOKEN), 'the token itself is not the cookie');
  t.equal((await c.get('/ui/machines')).status, 200);

  const tampered = new UiClient(a);
  const value = c.cookies.get('edgeboot_ui') ?? '';
  tampered.cookies.set(
    'edgeboot_ui',
    value.replace(/^./, (ch) => (ch === 'A' ? 'B' : 'A')),
  );
  t.equal((await tampered.get('/ui/machines')).status, 303, 'a cookie whose signature fails is no session');
});

t.test('next= never leaves the dashboard', async (t) => {
  const { app: a } = await app(t);
  for (const next of ['//evil.example/', 'https://evil.example/', '/ui//evil.example', '/api/v1/machines', '/ui/\\evil']) {
    const r = await new UiClient(a).login(ADMIN_TOKEN, next);
    t.equal(r.headers.location, '/ui/', `next=${next}`);
  }
});

t.test('logout ends the session on the server, not only in the browser', async (t) => {
  const { app: a } = await app(t);
  const c = await loggedIn(a, ADMIN_TOKEN);
  const kept = c.cookies.get('edgeboot_ui') ?? '';
  await c.get('/ui/');
  const out = await c.post('/ui/logout', {});
  t.equal(out.status, 303);
  t.equal(out.headers.location, '/ui/login');
  const replay = new UiClient(a);
  replay.cookies.set('edgeboot_ui', kept);
  t.equal((await replay.get('/ui/')).status, 303, 'the old cookie no longer opens a page');
});

t.test('every form POST needs the CSRF token of the session', async (t) => {
  const { app: a, store } = await app(t);
  const c = await loggedIn(a, ADMIN_TOKEN);
  await c.get('/ui/machines/new');
  const none = await c.post('/ui/machines/new', { _csrf: '', mac: '52:54:00:00:00:10' });
  t.equal(none.status, 403);
  const forged = await c.post('/ui/machines/new', { _csrf: 'AAAAAAAAAAAAAAAAAAAAAAAA-forged', mac: '52:54:00:00:00:10' });
  t.equal(forged.status, 403);
  const other = await loggedIn(a, ADMIN_TOKEN);
  await other.get('/ui/machines/new');
  const theirs = /name="_csrf" value="([^"]+)"/.exec((await other.get('/ui/machines/new')).html)?.[1] ?? '';
  const crossed = await c.post('/ui/machines/new', { _csrf: theirs, mac: '52:54:00:00:00:10' });
  t.equal(crossed.status, 403, "another browser's token is not this one's");
  t.notOk(await store.getMachine('52:54:00:00:00:10' as Mac), 'nothing was registered');
  const good = await c.post('/ui/machines/new', { mac: '52:54:00:00:00:10' });
  t.equal(good.status, 303);
  t.ok(await store.getMachine('52:54:00:00:00:10' as Mac));
});

t.test('a viewer sees every page and cannot act', async (t) => {
  const { app: a, store } = await app(t);
  const v = await loggedIn(a, VIEWER_TOKEN);
  for (const p of PAGES.filter((p) => p !== '/ui/login')) {
    const r = await v.get(p);
    t.equal(r.status, 200, p);
    t.match(r.html, /class="role role-viewer"/, `${p} says viewer`);
  }
  const detail = await v.get(`/ui/machines/${MAC.replaceAll(':', '-')}`);
  t.notMatch(detail.html, /name="action"/, 'no action buttons');
  t.notMatch(detail.html, /class="reservation"/, 'no reservation form');
  t.notMatch((await v.get('/ui/machines')).html, /name="mac" value=/, 'no bulk selection');
  const attempts: [string, Record<string, string>][] = [
    [`/ui/machines/${MAC.replaceAll(':', '-')}/action`, { action: 'reset' }],
    [`/ui/machines/${MAC.replaceAll(':', '-')}`, { hostname: 'changed' }],
    ['/ui/machines/new', { mac: '52:54:00:00:00:11' }],
    ['/ui/machines/bulk', { action: 'delete', mac: MAC, confirm: 'yes' }],
    ['/ui/cache/prefetch', { url: 'http://127.0.0.1:9/x' }],
  ];
  for (const [url, fields] of attempts) {
    await v.get('/ui/machines');
    const r = await v.post(url, fields);
    t.equal(r.status, 403, `POST ${url}`);
    t.match(r.html, /read-only/);
  }
  const m = await store.getMachine(MAC);
  t.equal(m?.hostname, 'node-1', 'unchanged');
  t.notOk(await store.getMachine('52:54:00:00:00:11' as Mac));
});

t.test('the login is rate-limited per address', async (t) => {
  const { app: a } = await app(t);
  const c = new UiClient(a);
  const statuses: number[] = [];
  for (let i = 0; i < 12; i++) statuses.push((await c.login(`wrong-token-${i}-0123456789`)).status);
  t.same(statuses.slice(0, 10), Array(10).fill(401));
  t.equal(statuses[10], 429, 'the 11th attempt in a minute is refused');
  const blocked = await c.login(ADMIN_TOKEN);
  t.equal(blocked.status, 429, 'even with the right token, until the minute is over');
  t.match(blocked.html, /Too many login attempts/);
});

t.test('every page: a Content-Security-Policy without inline script, and no inline script, style or handler in the HTML', async (t) => {
  const { app: a } = await app(t);
  const c = await loggedIn(a, ADMIN_TOKEN);
  for (const p of PAGES) {
    // The login page as a browser without a session sees it (with one, it redirects).
    const r = await (p === '/ui/login' ? new UiClient(a) : c).get(p);
    const csp = String(r.headers['content-security-policy']);
    t.match(csp, /script-src 'self'/, p);
    t.notMatch(csp, /unsafe-inline|unsafe-eval/, p);
    t.match(csp, /frame-ancestors 'none'/, p);
    t.equal(r.headers['cache-control'], 'no-store', p);
    t.notMatch(r.html, /<script(?![^>]*\bsrc=)[^>]*>/, `${p}: every script is a file`);
    t.notMatch(r.html, /\sstyle="/, `${p}: no style attribute`);
    t.notMatch(r.html, /\son[a-z]+="/, `${p}: no event handler attribute`);
    t.notMatch(r.html, /(?:src|href|action)="(?:https?:)?\/\//i, `${p}: nothing loaded or sent elsewhere (no CDN)`);
    t.same(unlabelled(r.html), [], `${p}: every control has a label`);
    t.equal(r.html.match(/<h1[\s>]/g)?.length, 1, `${p}: one h1`);
  }
});

/** Form controls a screen reader could not name: no label for its id, no aria-label, not inside a label. */
function unlabelled(html: string): string[] {
  const missing: string[] = [];
  for (const m of html.matchAll(/<(input|select|textarea)\b([^>]*)>/g)) {
    const attrs = m[2] ?? '';
    if (/type="(hidden|submit)"/.test(attrs) || /aria-label="[^"]+"/.test(attrs)) continue;
    const id = /\bid="([^"]+)"/.exec(attrs)?.[1];
    if (id !== undefined && html.includes(`for="${id}"`)) continue;
    const before = html.slice(0, m.index);
    if (before.lastIndexOf('<label') > before.lastIndexOf('</label>')) continue;
    missing.push(m[0]);
  }
  return missing;
}
