/**
 * The cache index (src/cache/lru-index.ts) over an in-memory store: eviction drops the least
 * recently used entries beyond maxBytes, never a pinned one or one a download runs under, and a
 * blob only once no entry names it; uses reach the store in one batch at the flush.
 */
import t from 'tap';
import { CacheIndex, type CacheIndexStore } from '../../../src/cache/lru-index.js';
import { createLogger } from '../../../src/log.js';
import type { CacheEntry } from '../../../src/store/store.js';

function memoryStore(entries: CacheEntry[]): CacheIndexStore & { touchBatches: number } {
  const rows = new Map(entries.map((e) => [e.key, e]));
  return {
    touchBatches: 0,
    getCacheEntry: async (key) => rows.get(key),
    putCacheEntry: async (e) => void rows.set(e.key, e),
    async touchCacheEntries(touches) {
      this.touchBatches++;
      for (const { key, time } of touches) {
        const e = rows.get(key);
        if (e) rows.set(key, { ...e, lastUsedAt: time });
      }
    },
    deleteCacheEntry: async (key) => void rows.delete(key),
    listCacheEntries: async () => [...rows.values()].sort((a, b) => a.lastUsedAt.localeCompare(b.lastUsedAt)),
  };
}

const entry = (key: string, digest: string, size: number, lastUsedAt: string): CacheEntry => ({ key, digest, size, createdAt: lastUsedAt, lastUsedAt });

t.test('eviction: least recently used first, pinned and busy keys stay, shared blobs go with their last entry', async (t) => {
  const store = memoryStore([
    entry('pinned', 'a'.repeat(64), 100, '2026-12-01T00:00:01Z'),
    entry('busy', 'b'.repeat(64), 100, '2026-12-01T00:00:02Z'),
    entry('old-1', 'c'.repeat(64), 100, '2026-12-01T00:00:03Z'),
    entry('old-2', 'c'.repeat(64), 100, '2026-12-01T00:00:04Z'),
    entry('new', 'd'.repeat(64), 100, '2026-12-01T00:00:05Z'),
  ]);
  const removed: string[] = [];
  let evictions = 0;
  const index = new CacheIndex({
    store,
    blobs: { remove: async (hex) => void removed.push(hex[0] ?? '') },
    log: createLogger('silent'),
    now: () => new Date('2026-12-01T01:00:00Z'),
    maxBytes: 300,
    pinned: () => new Set(['pinned']),
    onEvicted: () => evictions++,
  });
  await index.evict((key) => key === 'busy');
  t.same(
    (await index.list()).entries.map((e) => e.key),
    ['pinned', 'busy', 'new'],
    'both entries of the shared blob went',
  );
  t.same(removed, ['c'], 'its blob once, with its last entry');
  t.equal(evictions, 2);
  t.equal((await index.list()).bytes, 300);
});

t.test('uses are written in one batch, at the flush, with the clock given', async (t) => {
  const store = memoryStore([entry('k', 'a'.repeat(64), 1, '2026-12-01T00:00:00Z')]);
  let now = new Date('2026-12-01T10:00:00Z');
  const index = new CacheIndex({ store, blobs: { remove: async () => undefined }, log: createLogger('silent'), now: () => now, onEvicted: () => undefined });
  index.touch('k');
  now = new Date('2026-12-01T10:00:05Z');
  index.touch('k');
  t.equal((await index.get('k'))?.lastUsedAt, '2026-12-01T00:00:00Z', 'nothing written yet');
  await index.flushTouches();
  t.equal(store.touchBatches, 1);
  t.equal((await index.get('k'))?.lastUsedAt, '2026-12-01T10:00:05.000Z', 'the last use');
});
