import t from 'tap';
import { UiSessions } from '../../../src/ui/sessions.js';

const ADMIN = 'admin-token-0123456789';
const VIEWER = 'viewer-token-0123456789';

t.test('a token logs in as its role; anything else as nobody', async (t) => {
  const s = new UiSessions({ adminTokens: [ADMIN], viewerTokens: [VIEWER], ttlMs: 1000 });
  t.equal(s.roleOf(ADMIN), 'admin');
  t.equal(s.roleOf(VIEWER), 'viewer');
  t.equal(s.roleOf(`${ADMIN} `), undefined);
  t.equal(s.roleOf(''), undefined);
  const both = new UiSessions({ adminTokens: [ADMIN], viewerTokens: [ADMIN], ttlMs: 1000 });
  t.equal(both.roleOf(ADMIN), 'admin', 'a token in both lists is an admin');
});

t.test('sessions expire, end, and are capped', async (t) => {
  let now = 0;
  const s = new UiSessions({ adminTokens: [ADMIN], viewerTokens: [], ttlMs: 1000, now: () => now });
  const a = s.start('admin');
  t.match(a.id, /^[A-Za-z0-9_-]{43}$/, '256 random bits');
  t.equal(s.get(a.id)?.role, 'admin');
  now = 999;
  t.ok(s.get(a.id));
  now = 1000;
  t.equal(s.get(a.id), undefined, 'gone at its expiry');
  const b = s.start('viewer');
  s.end(b.id);
  t.equal(s.get(b.id), undefined, 'ended');
  for (let i = 0; i < 10_005; i++) s.start('viewer');
  t.ok(s.size <= 10_000, `at most 10,000 kept (${s.size})`);
});
