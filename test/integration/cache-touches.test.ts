/**
 * Cache hits are recorded for the LRU in batches, not one fsync'ed transaction per hit: the
 * store learns of them at the flush (timer, eviction, listing, close), with the last time.
 */
import { createHash, randomBytes } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { ArtifactCache } from '../../src/cache/artifacts.js';
import { BlobStore } from '../../src/cache/blobs.js';
import { createLogger } from '../../src/log.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import { tempDir } from '../helpers/app.js';

t.test('hits reach the store at the flush, not one transaction each', async (t) => {
  const dir = tempDir();
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const store = openSqliteStore({ path: join(dir, 'edgeboot.db') });
  t.teardown(() => store.close());
  const blobs = new BlobStore(join(dir, 'cache'));
  let now = new Date('2026-12-01T10:00:00Z');
  const cache = new ArtifactCache({ store, blobs, log: createLogger('silent'), now: () => now });
  const body = randomBytes(1000);
  const hex = createHash('sha256').update(body).digest('hex');
  const tmp = blobs.tmpPath();
  writeFileSync(tmp, body);
  await blobs.commit(tmp, hex);
  const created = '2026-12-01T09:00:00.000Z';
  await store.putCacheEntry({ key: 'http://up.example/kernel', digest: hex, size: body.length, createdAt: created, lastUsedAt: created });

  const req = { url: 'http://up.example/kernel', sha256: hex };
  t.ok(await cache.lookup(req), 'a hit');
  now = new Date('2026-12-01T10:00:07Z');
  t.ok(await cache.lookup(req), 'another');
  t.equal((await store.getCacheEntry(req.url))?.lastUsedAt, created, 'not written yet');
  const listed = await cache.list();
  t.equal(listed.entries[0]?.lastUsedAt, '2026-12-01T10:00:07.000Z', 'listing flushes first: the last use');
  now = new Date('2026-12-01T11:00:00Z');
  await cache.lookup(req);
  await cache.close();
  t.equal((await store.getCacheEntry(req.url))?.lastUsedAt, '2026-12-01T11:00:00.000Z', 'close writes what is pending');
});
