import type Database from 'better-sqlite3';
import type { CacheEntry, CacheIndexRepository, RegistryIndexRepository, SettingsRepository } from './store.js';

interface CacheRow {
  key: string;
  digest: string;
  size: number;
  media_type: string | null;
  etag: string | null;
  last_modified: string | null;
  created_at: string;
  last_used_at: string;
}

function cacheEntryOf(r: CacheRow): CacheEntry {
  return {
    key: r.key,
    digest: r.digest,
    size: r.size,
    ...(r.media_type !== null && { mediaType: r.media_type }),
    ...(r.etag !== null && { etag: r.etag }),
    ...(r.last_modified !== null && { lastModified: r.last_modified }),
    createdAt: r.created_at,
    lastUsedAt: r.last_used_at,
  };
}

/** The HTTP cache's index and the hub's artifact requests. */
export function sqliteCacheIndex(db: Database.Database): CacheIndexRepository {
  const q = {
    get: db.prepare<[string], CacheRow>('SELECT * FROM cache_entries WHERE key = ?'),
    all: db.prepare<[], CacheRow>('SELECT * FROM cache_entries ORDER BY last_used_at, key'),
    put: db.prepare(
      `INSERT INTO cache_entries (key, digest, size, media_type, etag, last_modified, created_at, last_used_at)
       VALUES (@key, @digest, @size, @mediaType, @etag, @lastModified, @createdAt, @lastUsedAt)
       ON CONFLICT (key) DO UPDATE SET digest = excluded.digest, size = excluded.size, media_type = excluded.media_type,
         etag = excluded.etag, last_modified = excluded.last_modified, created_at = excluded.created_at, last_used_at = excluded.last_used_at`,
    ),
    touch: db.prepare<[string, string]>('UPDATE cache_entries SET last_used_at = ? WHERE key = ?'),
    delete: db.prepare<[string]>('DELETE FROM cache_entries WHERE key = ?'),
    putHubArtifact: db.prepare<[string, string, string]>(
      `INSERT INTO hub_artifacts (id, request, registered_at) VALUES (?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET request = excluded.request, registered_at = excluded.registered_at`,
    ),
    pruneHubArtifacts: db.prepare<[string]>('DELETE FROM hub_artifacts WHERE registered_at < ?'),
    getHubArtifact: db.prepare<[string], { request: string }>('SELECT request FROM hub_artifacts WHERE id = ?'),
  };
  return {
    async getCacheEntry(key) {
      const row = q.get.get(key);
      return row && cacheEntryOf(row);
    },
    async putCacheEntry(e) {
      q.put.run({ mediaType: null, etag: null, lastModified: null, ...e });
    },
    async touchCacheEntries(touches) {
      db.transaction(() => {
        for (const t of touches) q.touch.run(t.time, t.key);
      }).immediate();
    },
    async deleteCacheEntry(key) {
      q.delete.run(key);
    },
    listCacheEntries: async () => q.all.all().map(cacheEntryOf),
    async putHubArtifact(id, request, time, keepSince) {
      db.transaction(() => {
        q.putHubArtifact.run(id, request, time);
        q.pruneHubArtifacts.run(keepSince);
      }).immediate();
    },
    getHubArtifact: async (id) => q.getHubArtifact.get(id)?.request,
  };
}

/** The registry mirror's manifests and tags. */
export function sqliteRegistryIndex(db: Database.Database): RegistryIndexRepository {
  const q = {
    putManifest: db.prepare(
      'INSERT INTO registry_manifests (digest, media_type, size, created_at) VALUES (@digest, @mediaType, @size, @createdAt) ON CONFLICT (digest) DO NOTHING',
    ),
    getManifest: db.prepare<[string], { digest: string; media_type: string; size: number; created_at: string }>(
      'SELECT * FROM registry_manifests WHERE digest = ?',
    ),
    putTag: db.prepare<[string, string, string, string, string]>(
      `INSERT INTO registry_tags (upstream, repository, tag, digest, updated_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (upstream, repository, tag) DO UPDATE SET digest = excluded.digest, updated_at = excluded.updated_at`,
    ),
    getTag: db.prepare<[string, string, string], { digest: string }>('SELECT digest FROM registry_tags WHERE upstream = ? AND repository = ? AND tag = ?'),
    putTagList: db.prepare<[string, string, string, string]>(
      `INSERT INTO registry_tag_lists (upstream, repository, tags, updated_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (upstream, repository) DO UPDATE SET tags = excluded.tags, updated_at = excluded.updated_at`,
    ),
    getTagList: db.prepare<[string, string], { tags: string; updated_at: string }>(
      'SELECT tags, updated_at FROM registry_tag_lists WHERE upstream = ? AND repository = ?',
    ),
  };
  return {
    async putRegistryManifest(m) {
      q.putManifest.run(m);
    },
    async getRegistryManifest(digest) {
      const r = q.getManifest.get(digest);
      return r && { digest: r.digest, mediaType: r.media_type, size: r.size, createdAt: r.created_at };
    },
    async putRegistryTag(upstream, repository, tag, digest, time) {
      q.putTag.run(upstream, repository, tag, digest, time);
    },
    getRegistryTag: async (upstream, repository, tag) => q.getTag.get(upstream, repository, tag)?.digest,
    async putRegistryTagList(upstream, repository, list) {
      q.putTagList.run(upstream, repository, JSON.stringify(list.tags), list.updatedAt);
    },
    async getRegistryTagList(upstream, repository) {
      const r = q.getTagList.get(upstream, repository);
      return r && { tags: JSON.parse(r.tags) as string[], updatedAt: r.updated_at };
    },
  };
}

export function sqliteSettings(db: Database.Database): SettingsRepository {
  const q = {
    get: db.prepare<[string], { value: string }>('SELECT value FROM settings WHERE key = ?'),
    init: db.prepare<[string, string]>('INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT DO NOTHING'),
    put: db.prepare<[string, string]>('INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value'),
  };
  return {
    getSetting: async (key) => q.get.get(key)?.value,
    async initSetting(key, value) {
      q.init.run(key, value);
      const stored = q.get.get(key);
      if (!stored) throw new Error(`store: setting ${key} vanished after insert`);
      return stored.value;
    },
    async putSetting(key, value) {
      q.put.run(key, value);
    },
  };
}
