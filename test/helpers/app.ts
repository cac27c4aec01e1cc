import type { FastifyInstance } from 'fastify';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fetchHubScript } from '../../src/boot/hub.js';
import { BootService } from '../../src/boot/service.js';
import type { Config } from '../../src/config/config.js';
import { checkConfig } from '../../src/config/load.js';
import { ArtifactCache, type ArtifactCacheOptions } from '../../src/cache/artifacts.js';
import { BlobStore } from '../../src/cache/blobs.js';
import { buildApp, type AppDeps } from '../../src/http/app.js';
import { createMetricsRegistry } from '../../src/http/routes/metrics.js';
import { createLogger } from '../../src/log.js';
import { MachineService } from '../../src/machines/service.js';
import { ProfileHolder } from '../../src/server.js';
import { openSqliteStore, type SqliteStore } from '../../src/store/sqlite.js';
import { BundleBuilder } from '../../src/precache/bundles.js';
import { loadPrecacheJob } from '../../src/precache/job.js';
import { PrecacheService } from '../../src/precache/service.js';
import { buildRegistryMirrors } from '../../src/registry/build.js';
import { ImagePuller } from '../../src/registry/puller.js';
import type { Teardown } from './process.js';

export const ADMIN_TOKEN = 'test-admin-token-0123456789';
export const SECRET = 'test-secret';

/** An event as `GET /api/v1/machines/{mac}/events` returns it. */
export interface EventBody {
  id: number;
  mac: string;
  time: string;
  source: string;
  type: string;
  from?: string;
  to?: string;
  message?: string;
  data?: Record<string, unknown>;
}

/** The body of every API error: `{ error, message, details? }`. */
export interface ErrorBody {
  error: string;
  message: string;
  details?: unknown;
}

export interface TestAppOptions {
  config?: Record<string, unknown>;
  profileDirs?: string[];
  now?: () => Date;
  /** Receives what the app would put on the timeline of the machine at a client address. */
  recordAt?: AppDeps['recordAt'];
  /** An artifact cache under `<dir>/cache` on the test store, with these options. */
  cache?: Pick<ArtifactCacheOptions, 'retries' | 'headersTimeoutMs' | 'bodyTimeoutMs' | 'failureHoldMs' | 'beforeWrite' | 'dispatcher'>;
  /** /metrics, over the app's cache and precache (no DHCP or TFTP server). */
  metrics?: boolean;
  /** /ipxe-bin/ over these folders. */
  ipxeRoots?: string[];
}

export interface TestApp {
  app: FastifyInstance;
  store: SqliteStore;
  /** Present when `cache` was asked for. */
  artifacts?: ArtifactCache;
  blobs?: BlobStore;
  machines: MachineService;
  boot: BootService;
  /** With a cache: the precache job's endpoints, over bundles under `<dir>/cache/bundles`. */
  precache?: PrecacheService;
  bundles?: BundleBuilder;
  profiles: ProfileHolder;
  config: Config;
  dir: string;
  /** Headers of an authorised admin request. */
  auth: { authorization: string };
  close(): Promise<void>;
}

const madeDirs = new Set<string>();

/** A fresh temp dir, removed when the test process exits (tests that need it gone sooner remove it themselves). */
export function tempDir(prefix = 'edgeboot-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  if (madeDirs.size === 0) process.on('exit', () => madeDirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
  madeDirs.add(dir);
  return dir;
}

/** Parses a config document the way `edgeboot serve` does (defaults filled in). */
export function testConfig(doc: Record<string, unknown> = {}): Config {
  return checkConfig(structuredClone(doc) as Parameters<typeof checkConfig>[0]);
}

/**
 * The whole HTTP app on a real SQLite store in a temp dir, ready for `app.inject()`.
 * `profileDirs` adds user profile folders; `config` is merged into the defaults.
 */
export async function startTestApp(opts: TestAppOptions = {}): Promise<TestApp> {
  const dir = tempDir();
  const config = testConfig({ ...opts.config, server: { dataDir: dir } });
  const store = openSqliteStore({ path: join(dir, 'edgeboot.db'), ...(opts.now && { now: opts.now }) });
  const profiles = new ProfileHolder(opts.profileDirs ?? []);
  const log = createLogger('silent');
  const machines = new MachineService(store, profiles.current, { ...(opts.now && { now: opts.now }), dhcp: config.dhcp });
  const blobs = opts.cache ? new BlobStore(join(dir, 'cache')) : undefined;
  const artifacts = blobs ? new ArtifactCache({ store, blobs, log, ...opts.cache }) : undefined;
  const boot = new BootService({
    store,
    machines,
    profiles: profiles.current,
    config,
    secret: SECRET,
    log,
    ...(opts.now && { now: opts.now }),
    // With a cache, assisted chains are fetched and rewritten as `edgeboot serve` does.
    ...(artifacts && { artifacts, hub: (url: string, mac: string) => fetchHubScript(url, mac) }),
    precacheJob: loadPrecacheJob(),
    onBootLoop: () => precache?.countEnd('boot-loop'),
  });
  let bundles: BundleBuilder | undefined;
  let precache: PrecacheService | undefined;
  let registry: AppDeps['registry'];
  if (artifacts && blobs) {
    const mirrors = buildRegistryMirrors(config.registry, { blobs, store, log });
    const puller = new ImagePuller({ cache: artifacts, log });
    bundles = new BundleBuilder({ dir: join(dir, 'cache', 'bundles'), puller, cache: artifacts, log, mirror: () => mirrors.mirror });
    precache = new PrecacheService({ store, machines, bundles, config: config.precache, log, ...(opts.now && { now: opts.now }) });
    registry = { mirrors, puller, bundles, readTokens: config.registry.readTokens };
  }
  const app = await buildApp({
    ...(artifacts && { artifacts }),
    store,
    machines,
    boot,
    profiles: profiles.current,
    adminTokens: [ADMIN_TOKEN],
    advertiseAddress: 'auto',
    httpPort: 8080,
    log,
    admission: { maxTransfers: config.cache.maxTransfers, largeBytes: config.cache.largeBytes, retryAfterSeconds: config.cache.retryAfterSeconds, clientRate: config.cache.clientRate },
    ...(opts.recordAt && { recordAt: opts.recordAt }),
    ...(opts.ipxeRoots && { ipxeRoots: opts.ipxeRoots }),
    ...(opts.metrics && { metrics: createMetricsRegistry({ dhcp: () => undefined, dhcpLeases: () => 0, ...(artifacts && { cache: () => artifacts.stats }), ...(precache && { precache: () => precache?.stats }) }) }),
    ...(registry && { registry }),
    ...(precache && { precache }),
  });
  await app.ready();
  return {
    app,
    store,
    ...(artifacts && { artifacts }),
    ...(blobs && { blobs }),
    machines,
    boot,
    ...(precache && { precache }),
    ...(bundles && { bundles }),
    profiles,
    config,
    dir,
    auth: { authorization: `Bearer ${ADMIN_TOKEN}` },
    async close() {
      await app.close();
      await artifacts?.close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** `startTestApp`, closed in `tt`'s teardown. */
export async function testApp(tt: Teardown, opts: TestAppOptions = {}): Promise<TestApp> {
  const ta = await startTestApp(opts);
  tt.teardown(() => ta.close());
  return ta;
}
