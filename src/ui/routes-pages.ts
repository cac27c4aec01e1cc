/** The overview, the discovered machines, the leases, the cache with its images and bundles, the profiles. */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { parseMac } from '../machines/mac.js';
import type { BundleStatus } from '../precache/bundles.js';
import type { PullJob } from '../registry/puller.js';
import type { ProfileSet } from '../profiles/profile.js';
import type { Lease, Store } from '../store/store.js';
import { isOk, type ApiCall } from './api.js';
import { csrfCheck, mustBeAdmin } from './access.js';
import { overviewData, type OverviewSources } from './overview.js';
import { bootLines } from './profile-lines.js';
import { fragmentOf, page, refusedPage } from './render.js';

export interface PageRoutesDeps extends OverviewSources {
  store: Store;
  api: ApiCall;
  profiles: () => ProfileSet;
  pulls?: () => PullJob[];
  bundles?: () => BundleStatus[];
}

interface CacheList {
  entries: { key: string; digest: string; size: number; lastUsedAt: string; createdAt: string; pinned: boolean; pinnedByAdmin: boolean; hits: number }[];
  downloads: { key: string; bytes: number; total?: number }[];
  bytes: number;
  maxBytes: number;
}

/** Entries the cache page lists at most (the most recently used). */
const CACHE_SHOWN = 500;

export function pageRoutes(app: FastifyInstance, d: PageRoutesDeps): void {
  const cacheList = async (): Promise<CacheList | undefined> => {
    const answer = await d.api('GET', '/api/v1/cache');
    return isOk(answer) ? (answer.body as CacheList) : undefined;
  };

  app.get('/ui/', async (req, reply) => {
    const [data, cache] = await Promise.all([overviewData(d), cacheList()]);
    const top = cache ? [...cache.entries].sort((a, b) => b.size - a.size).slice(0, 5) : [];
    const view = {
      title: 'Overview',
      nav: 'overview',
      ...data,
      cache,
      top,
      building: d.bundles?.() ?? [],
      pulls: (d.pulls?.() ?? []).filter((j) => j.state === 'running'),
    };
    return page(req, reply, fragmentOf(req) === 'live' ? 'partials/overview-live' : 'overview', view);
  });

  app.get('/ui/discovered', async (req, reply) => {
    const q = req.query as { page?: string };
    const n = Math.max(1, Math.min(10_000, Number(q.page) || 1));
    const result = await d.store.searchMachines({ state: 'discovered', sort: 'lastSeen', descending: true, offset: (n - 1) * 100, limit: 100 });
    return page(req, reply, 'discovered', { title: 'Discovered', nav: 'discovered', result, pageNo: n, pages: Math.max(1, Math.ceil(result.total / 100)) });
  });

  app.get('/ui/leases', async (req, reply) => {
    const now = d.now().getTime();
    const leases = [...d.leases()].sort((a: Lease, b: Lease) => a.ip.localeCompare(b.ip, 'en', { numeric: true }));
    const owners = new Map<string, string>();
    for (const l of leases.slice(0, 2000)) {
      const mac = parseMac(l.mac);
      const m = mac && (await d.store.getMachine(mac));
      if (m) owners.set(l.ip, m.ip === l.ip ? 'reservation' : 'pool');
    }
    return page(req, reply, 'leases', { title: 'Leases', nav: 'leases', leases: leases.slice(0, 2000), total: leases.length, owners, nowMs: now });
  });

  app.get('/ui/cache', async (req, reply) => {
    const cache = await cacheList();
    const entries = cache ? [...cache.entries].reverse().slice(0, CACHE_SHOWN) : [];
    const view = {
      title: 'Cache, images and bundles',
      nav: 'cache',
      cache,
      entries,
      pulls: d.pulls?.() ?? [],
      building: d.bundles?.() ?? [],
      message: undefined,
    };
    return page(req, reply, fragmentOf(req) === 'live' ? 'partials/cache-live' : 'cache', view);
  });

  /** A cache page form: one API call made of the posted fields, then back to the cache page (or its refusal). */
  const cacheForm = (url: string, bodyOf: (fields: Record<string, unknown>) => Record<string, unknown>) => ({
    preHandler: csrfCheck(app),
    handler: async (req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
      mustBeAdmin(req);
      const answer = await d.api('POST', url, bodyOf((req.body ?? {}) as Record<string, unknown>));
      return isOk(answer) ? reply.redirect('/ui/cache', 303) : refusedPage(req, reply, answer, '/ui/cache');
    },
  });
  const text = (v: unknown): string => (typeof v === 'string' ? v.trim() : '');
  app.post(
    '/ui/cache/prefetch',
    cacheForm('/api/v1/cache/prefetch', (f) => ({ url: text(f.url) })),
  );
  app.post(
    '/ui/cache/pull',
    cacheForm('/api/v1/images/jobs', (f) => {
      const images = text(f.images).split(/\s+/).filter(Boolean);
      return { ...(text(f.release) && { release: text(f.release) }), ...(images.length > 0 && { images }) };
    }),
  );
  app.post(
    '/ui/cache/pin',
    cacheForm('/api/v1/cache/pin', (f) => ({ key: f.key, pinned: f.pinned === 'true' })),
  );
  app.post(
    '/ui/cache/evict',
    cacheForm('/api/v1/cache/evict', (f) => ({ key: f.key })),
  );

  app.get('/ui/profiles', async (req, reply) => {
    const set = d.profiles();
    return page(req, reply, 'profiles', {
      title: 'Profiles',
      nav: 'profiles',
      profiles: set.list().map((p) => ({ ...p, lines: bootLines(p) })),
      problems: set.problems,
    });
  });
}
