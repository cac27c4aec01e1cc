/**
 * Pinning and evicting by hand (`POST /api/v1/cache/pin`, `POST /api/v1/cache/evict`, and the
 * dashboard's buttons over them): a pinned entry is never evicted, an evicted one is gone with
 * its blob unless another entry names the same bytes, and pins outlive a restart.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { CachePins } from '../../src/cache/pins.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import { ADMIN_TOKEN, tempDir, testApp } from '../helpers/app.js';
import { loggedIn } from '../helpers/ui.js';
import { startUpstream } from '../helpers/upstream.js';

t.test('pin, refuse to evict, unpin, evict; the blob stays while another entry names it', async (t) => {
  const upstream = await startUpstream(t);
  upstream.files.set('/a', Buffer.from('artifact a'));
  upstream.files.set('/b', Buffer.from('artifact b'));
  upstream.files.set('/b-again', Buffer.from('artifact b'));
  const ta = await testApp(t, { cache: {} });
  const call = async (url: string, payload: Record<string, unknown>) => {
    const r = await ta.app.inject({ method: 'POST', url, headers: ta.auth, payload });
    return { status: r.statusCode, body: r.body ? r.json<{ error?: string; entry?: { key: string; digest: string } }>() : {} };
  };
  const a = (await call('/api/v1/cache/prefetch?wait=true', { url: upstream.url('/a') })).body.entry;
  const b = (await call('/api/v1/cache/prefetch?wait=true', { url: upstream.url('/b') })).body.entry;
  const b2 = (await call('/api/v1/cache/prefetch?wait=true', { url: upstream.url('/b-again') })).body.entry;
  if (!a || !b || !b2) throw new Error('prefetch failed');
  t.equal(b.digest, b2.digest, 'two keys, one blob');
  const blob = (digest: string): boolean => existsSync(join(ta.dir, 'cache', 'blobs', 'sha256', digest));
  t.ok(blob(a.digest), `blob layout as expected (${join('cache', 'blobs', 'sha256')})`);

  t.equal((await call('/api/v1/cache/prefetch?wait=true', { url: upstream.url('/a') })).status, 200, 'a second time: from the cache');
  t.equal((await call('/api/v1/cache/pin', { key: a.key, pinned: true })).status, 200);
  const list = (await ta.app.inject({ url: '/api/v1/cache', headers: ta.auth })).json<{
    entries: { key: string; pinned: boolean; pinnedByAdmin: boolean; hits: number }[];
  }>();
  t.same(
    list.entries.filter((e) => e.key === a.key).map((e) => [e.pinned, e.pinnedByAdmin, e.hits]),
    [[true, true, 1]],
    'pinned by the admin, served once from the cache',
  );
  const refused = await call('/api/v1/cache/evict', { key: a.key });
  t.equal(refused.status, 409);
  t.equal(refused.body.error, 'pinned');
  t.equal((await call('/api/v1/cache/pin', { key: a.key, pinned: false })).status, 200);
  t.equal((await call('/api/v1/cache/evict', { key: a.key })).status, 204);
  t.notOk(blob(a.digest), 'the blob went with its only entry');
  t.equal((await call('/api/v1/cache/evict', { key: a.key })).status, 404);
  t.equal((await call('/api/v1/cache/pin', { key: a.key, pinned: true })).status, 404, 'no pin for what is not cached');

  t.equal((await call('/api/v1/cache/evict', { key: b.key })).status, 204);
  t.ok(blob(b.digest), 'the blob stays: another entry names it');
  t.equal((await call('/api/v1/cache/evict', { key: b2.key })).status, 204);
  t.notOk(blob(b.digest));
  t.equal((await call('/api/v1/cache/evict', { key: 'x', extra: 1 })).status, 400);
});

t.test('the dashboard: pin and evict buttons for an admin, the API refusal said on the page', async (t) => {
  const upstream = await startUpstream(t);
  upstream.files.set('/k', Buffer.from('kernel'));
  const ta = await testApp(t, { cache: {} });
  const r = await ta.app.inject({ method: 'POST', url: '/api/v1/cache/prefetch?wait=true', headers: ta.auth, payload: { url: upstream.url('/k') } });
  const key = r.json<{ entry: { key: string } }>().entry.key;
  const c = await loggedIn(ta.app, ADMIN_TOKEN);
  const page = await c.get('/ui/cache');
  t.match(page.html, /<button type="submit" class="small">Pin<\/button>/);
  t.equal((await c.post('/ui/cache/pin', { key, pinned: 'true' })).status, 303);
  t.match((await c.get('/ui/cache')).html, /pinned by an admin/);
  const refused = await c.post('/ui/cache/evict', { key });
  t.equal(refused.status, 409);
  t.match(refused.html, /pinned/);
  await c.get('/ui/cache');
  t.equal((await c.post('/ui/cache/pin', { key, pinned: 'false' })).status, 303);
  t.equal((await c.post('/ui/cache/evict', { key })).status, 303);
  t.match((await c.get('/ui/cache')).html, /The cache is empty/);
});

t.test('pins are kept in the store: a restart reads them back', async (t) => {
  const dir = tempDir();
  const store = openSqliteStore({ path: join(dir, 'edgeboot.db') });
  const pins = await CachePins.load(store);
  await pins.set('https://x.example/k', true);
  await pins.set('https://x.example/j', true);
  await pins.set('https://x.example/j', false);
  await store.close();
  const again = openSqliteStore({ path: join(dir, 'edgeboot.db') });
  t.teardown(() => again.close());
  t.same([...(await CachePins.load(again)).all], ['https://x.example/k']);
});
