import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BmcService } from '../../src/bmc/service.js';
import type { BootService } from '../../src/boot/service.js';
import type { SealedBox } from '../../src/secrets/sealed-box.js';
import type { HubArtifacts } from '../../src/boot/hub-artifacts.js';
import type { ArtifactCache } from '../../src/cache/artifacts.js';
import type { BlobStore } from '../../src/cache/blobs.js';
import { compose, type Overrides } from '../../src/compose.js';
import type { Config } from '../../src/config/config.js';
import { checkConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/log.js';
import type { MachineService } from '../../src/machines/service.js';
import type { TimelineFeed } from '../../src/machines/timeline-feed.js';
import type { BundleBuilder } from '../../src/precache/bundles.js';
import type { PrecacheService } from '../../src/precache/service.js';
import type { ProfileHolder } from '../../src/profiles/holder.js';
import { openSqliteStore, type SqliteStore } from '../../src/store/sqlite.js';
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
  recordAt?: Overrides['recordAt'];
  /** An artifact cache under `<dir>/cache` on the test store, with these options. */
  cache?: Overrides['cacheOptions'];
  /** /metrics, as `edgeboot serve` has it (DHCP and TFTP counters from servers built, not started). */
  metrics?: boolean;
  /** /ipxe-bin/ over these folders. */
  ipxeRoots?: string[];
  /** Where the app logs (default: nowhere); a test that greps the log passes a capturing logger. */
  log?: Logger;
  /** Start the BMC service's timers (the run sweep, the poller), as `edgeboot serve` does after HTTP. */
  bmc?: boolean;
}

export interface TestApp {
  app: FastifyInstance;
  store: SqliteStore;
  /** Every change the store commits, as the dashboard's /ui/events stream hears it. */
  feed: TimelineFeed;
  /** Present when `cache` was asked for. */
  artifacts?: ArtifactCache;
  /** With a cache: the ids of `/assets/hub/<id>/<name>`. */
  hubArtifacts?: HubArtifacts;
  blobs?: BlobStore;
  machines: MachineService;
  boot: BootService;
  /** The BMC service; its timers run only with the `bmc` option, close() always stops it. */
  bmc: BmcService;
  /** The sealed box of the app's secret key (BMC passwords). */
  box: SealedBox;
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
 * The whole HTTP app on a real SQLite store in a temp dir, ready for `app.inject()`: built by
 * `compose`, as `edgeboot serve` builds it, with the test's fakes as overrides (no server started).
 * `profileDirs` adds user profile folders; `config` is merged into the defaults.
 */
export async function startTestApp(opts: TestAppOptions = {}): Promise<TestApp> {
  const dir = tempDir();
  const config = testConfig({
    ...opts.config,
    server: { dataDir: dir },
    profiles: { dirs: opts.profileDirs ?? [] },
    ...(opts.ipxeRoots && { tftp: { roots: opts.ipxeRoots } }),
  });
  const store = openSqliteStore({ path: join(dir, 'edgeboot.db'), ...(opts.now && { now: opts.now }) });
  const built = await compose(config, {
    store,
    log: opts.log ?? createLogger('silent'),
    secret: SECRET,
    adminTokens: [ADMIN_TOKEN],
    neighbour: () => undefined,
    ...(opts.now && { now: opts.now }),
    ...(opts.recordAt && { recordAt: opts.recordAt }),
    ...(opts.cache && { cacheOptions: opts.cache }),
    leaveOut: { cache: !opts.cache, metrics: !opts.metrics, ipxeBin: !opts.ipxeRoots },
  });
  const { app, cache, precache } = built;
  await app.ready();
  if (opts.bmc) await built.bmc.start();
  return {
    app,
    // The composed store: what the app writes through, publishing on the dashboard's feed.
    store: built.store,
    feed: built.feed,
    ...(cache && { artifacts: cache.artifacts, hubArtifacts: cache.hubArtifacts, blobs: cache.blobs, bundles: cache.bundles }),
    machines: built.machines,
    boot: built.boot,
    bmc: built.bmc,
    box: built.box,
    ...(precache && { precache }),
    profiles: built.profiles,
    config,
    dir,
    auth: { authorization: `Bearer ${ADMIN_TOKEN}` },
    async close() {
      await built.bmc.stop();
      await app.close();
      await cache?.artifacts.close();
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
