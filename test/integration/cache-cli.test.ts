/**
 * Pre-warming and watching the cache of a real `edgeboot serve` process on loopback, with the
 * real CLI (`edgeboot cache pull`, `edgeboot cache ls`), against the stand-in upstream:
 * a pull verifies and stores once, a second pull is a hit, a wrong sha256 fails with the
 * reason and exit 1; GET /api/v1/cache and `cache ls` list entries with their pins; beyond
 * cache.maxBytes the least recently used unpinned entry is evicted, never a pinned one (an
 * artifact a profile names); /metrics counts hits, misses, upstream and served bytes.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Agent, setGlobalDispatcher } from 'undici';
import t from 'tap';
import { runCli, startServer, tempDir } from '../helpers/process.js';
import { startUpstream } from '../helpers/upstream.js';

// The test's fetch closes its connections at once: a kept-alive one would hold app.close()
// for Fastify's 72 s keep-alive when a socket is still counted busy (seen with Node 20).
setGlobalDispatcher(new Agent({ keepAliveTimeout: 10, keepAliveMaxTimeout: 10 }));

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const MiB = 1024 * 1024;

t.test('cache pull, ls, eviction with pins, metrics', async (t) => {
  const up = await startUpstream(t);
  const files = { a: randomBytes(2 * MiB), b: randomBytes(2 * MiB), pinned: randomBytes(1 * MiB) };
  for (const [name, b] of Object.entries(files)) up.files.set(`/${name}.img`, b);
  const dir = tempDir(t);
  const profiles = join(dir, 'profiles');
  mkdirSync(profiles);
  writeFileSync(
    join(profiles, 'site.yaml'),
    `name: site\ndescription: pins its kernel\nartifacts:\n  kernel: { url: "${up.url('/pinned.img')}" }\nboot:\n  kernel: kernel\n  initrds: []\n  args: console=ttyS0\n`,
  );
  const srv = await startServer(t, { cwd: dir, env: { EDGEBOOT_PROFILES_DIRS: profiles, EDGEBOOT_CACHE_MAX_BYTES: '4MiB' } });
  const conn = ['--server', srv.url, '--token', srv.token];
  const cli = (args: string[]) => runCli(t, [...args, ...conn], { cwd: dir, timeoutMs: 30_000 });

  const pinned = await cli(['cache', 'pull', up.url('/pinned.img')]);
  t.equal(pinned.code, 0, pinned.stderr);
  t.match(
    pinned.stdout,
    new RegExp(`^cached ${up.url('/pinned.img').replace(/[./]/g, '\\$&')}: 1\\.0 MiB, sha256 ${sha256(files.pinned)}`),
    'the key, the size and the sha256',
  );

  const a = await cli(['cache', 'pull', up.url('/a.img'), '--sha256', sha256(files.a)]);
  t.equal(a.code, 0, a.stderr);
  const again = await cli(['cache', 'pull', up.url('/a.img'), '--sha256', sha256(files.a)]);
  t.equal(again.code, 0);
  t.equal(up.gets('/a.img').length, 1, 'the second pull is a hit: no upstream request');

  const wrong = await cli(['cache', 'pull', up.url('/b.img'), '--sha256', sha256(files.a)]);
  t.equal(wrong.code, 1, 'a wrong sha256 fails the pull');
  t.match(wrong.stderr, /sha256 is [0-9a-f]{64}, expected [0-9a-f]{64}; nothing was stored \[integrity_failed\]/);

  // Use a, then pull b: 1 + 2 + 2 MiB is over 4 MiB, and a is the least recently used unpinned one…
  const b = await cli(['cache', 'pull', up.url('/b.img')]);
  t.equal(b.code, 0, b.stderr);
  const ls = await cli(['cache', 'ls']);
  t.equal(ls.code, 0, ls.stderr);
  t.match(ls.stdout, /pinned\.img/);
  t.match(ls.stdout, /b\.img/);
  t.notMatch(ls.stdout, /a\.img/, 'a was evicted');
  t.match(ls.stdout, /2 artifacts, 3\.0 MiB of 4\.0 MiB/);
  t.match(ls.stdout, /profile\s+http:\/\/127\.0\.0\.1:\d+\/pinned\.img/, 'the profile artifact is pinned');

  const listing = (await (await fetch(`${srv.url}/api/v1/cache`, { headers: { authorization: `Bearer ${srv.token}` } })).json()) as {
    entries: { key: string; pinned: boolean }[];
  };
  t.same(
    listing.entries.map((e) => [e.key.replace(/^.*\//, ''), e.pinned]),
    [
      ['pinned.img', true],
      ['b.img', false],
    ],
    'least recently used first',
  );
  t.equal((await fetch(`${srv.url}/api/v1/cache`)).status, 401, 'the listing needs the admin token');

  const served = await fetch(`${srv.url}/assets/site/kernel`);
  t.equal(sha256(Buffer.from(await served.arrayBuffer())), sha256(files.pinned), 'the pulled artifact serves machines');
  t.equal(up.gets('/pinned.img').length, 1, 'from the cache');

  const metrics = await (await fetch(`${srv.url}/metrics`)).text();
  const value = (name: string) => Number(new RegExp(`^${name} (\\d+)`, 'm').exec(metrics)?.[1]);
  t.ok(value('edgeboot_cache_hits_total') >= 2, 'hits counted');
  t.ok(value('edgeboot_cache_misses_total') >= 4, 'misses counted');
  t.equal(
    value('edgeboot_cache_upstream_bytes_total'),
    files.pinned.length + 2 * files.a.length + files.b.length,
    'upstream bytes: each file once, and the wrong one',
  );
  t.equal(value('edgeboot_cache_served_bytes_total'), files.pinned.length, 'served bytes');
  t.equal(value('edgeboot_cache_evictions_total'), 1);

  // By hand: pin b, so evict refuses it; unpin and evict it; a profile's pin cannot be evicted.
  const bKey = up.url('/b.img');
  t.match((await cli(['cache', 'pin', bKey])).stdout, /^pinned http/);
  t.match((await cli(['cache', 'ls'])).stdout, new RegExp(`admin\\s+${bKey.replace(/[./]/g, '\\$&')}`), 'ls says who pinned it');
  const refused = await cli(['cache', 'evict', bKey]);
  t.not(refused.code, 0);
  t.match(refused.stderr, /pinned/);
  t.equal((await cli(['cache', 'unpin', bKey])).code, 0);
  const evicted = await cli(['cache', 'evict', bKey]);
  t.equal(evicted.code, 0, evicted.stderr);
  t.notMatch((await cli(['cache', 'ls'])).stdout, /b\.img/);
  t.match((await cli(['cache', 'evict', up.url('/pinned.img')])).stderr, /pinned \(by a profile/);
});
