import { createHmac } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { join, resolve } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { fetchHubScript, type HubAnswer } from './boot/hub.js';
import { HubArtifacts } from './boot/hub-artifacts.js';
import { BmcService } from './bmc/service.js';
import { BootService } from './boot/service.js';
import { tftpEntryHandlers } from './boot/tftp-entry.js';
import { newSecret } from './boot/tokens.js';
import { ArtifactCache, type ArtifactCacheOptions } from './cache/artifacts.js';
import { BlobStore } from './cache/blobs.js';
import { pinnedKeys } from './cache/pinned.js';
import { CachePins } from './cache/pins.js';
import { ConfigError, type Config } from './config/config.js';
import { createLogger } from './log.js';
import { LeasePool } from './dhcp/leases.js';
import { macAtAddress } from './dhcp/mac-at.js';
import { createDhcpServer, type DhcpServer, type NetInterface } from './dhcp/server.js';
import { buildApp, type AppDeps } from './http/app.js';
import { addServerMetrics, createMetricsRegistry } from './http/routes/metrics.js';
import { createHttpServer } from './http/server.js';
import { machinesOutsideSubnets } from './machines/addresses.js';
import type { Mac } from './machines/mac.js';
import type { NewEvent } from './machines/model.js';
import { MachineService } from './machines/service.js';
import { feedingStore, TimelineFeed } from './machines/timeline-feed.js';
import { machineStateCounts } from './machines/state-counts.js';
import { interfaceAddresses, type OpenDatagramSocket } from './net/pktinfo-socket.js';
import { BundleBuilder } from './precache/bundles.js';
import { loadPrecacheJob } from './precache/job.js';
import { PrecacheService } from './precache/service.js';
import { ProfileHolder, reportProfiles } from './profiles/holder.js';
import type { ProtocolServer } from './protocol.js';
import { buildRegistryMirrors, type Mirrors } from './registry/build.js';
import { ImagePuller } from './registry/puller.js';
import { adminTokens } from './secrets/admin-token.js';
import { readSecretKey, SealedBox } from './secrets/sealed-box.js';
import { openStore } from './store/open.js';
import type { Store } from './store/store.js';
import { createTftpServer, type TftpServer } from './tftp/server.js';
import { transferEvent } from './tftp/transfer-event.js';
import { injectedApi } from './ui/api.js';
import { uiPlugin } from './ui/plugin.js';

/**
 * What a test puts in place of the real thing (production passes none). Everything else is
 * built from the config, the same way for `edgeboot serve` and for the tests.
 */
export interface Overrides {
  store?: Store;
  /** Else a logger at config.log.level. */
  log?: Logger;
  /** The clock of machines, boot and precache. */
  now?: () => Date;
  /** The machine-token secret; else the store's, made at first start. */
  secret?: string;
  /** Else from config, or the token file under the data dir (made at first start). */
  adminTokens?: readonly string[];
  /** Fetches a machine's assisted script from its hub. */
  hub?: (url: string, mac: Mac) => Promise<HubAnswer>;
  /** The kernel's neighbour table (proxy mode's source of whose address a request comes from). */
  neighbour?: (ip: string) => Mac | undefined;
  /** Receives the timeline events the app records by client address, instead of the store. */
  recordAt?: (address: string, event: NewEvent) => void;
  /** Upstream download knobs of the artifact cache (retries, timeouts, undici dispatcher...). */
  cacheOptions?: Pick<ArtifactCacheOptions, 'retries' | 'headersTimeoutMs' | 'bodyTimeoutMs' | 'failureHoldMs' | 'beforeWrite' | 'dispatcher'>;
  dhcpSocket?: OpenDatagramSocket;
  tftpSocket?: OpenDatagramSocket;
  /** The host's IPv4 interfaces, as DHCP sees them. */
  interfaces?: () => NetInterface[];
  /** Parts `edgeboot serve` always has that a test of the HTTP app may leave out. */
  leaveOut?: { cache?: boolean; metrics?: boolean; ipxeBin?: boolean };
}

/** The cache and what stands on it: the registry mirror, the image puller, bundles. */
export interface CacheGraph {
  blobs: BlobStore;
  artifacts: ArtifactCache;
  /** The ids rewritten hub scripts name for their artifacts, fetched through `artifacts`. */
  hubArtifacts: HubArtifacts;
  /** The entries an admin pinned by hand. */
  pins: CachePins;
  mirrors: Mirrors;
  puller: ImagePuller;
  bundles: BundleBuilder;
}

/** The whole object graph, nothing started. */
export interface Composed {
  /** The store, publishing every committed change on `feed`. */
  store: Store;
  feed: TimelineFeed;
  profiles: ProfileHolder;
  machines: MachineService;
  boot: BootService;
  /** Seals and opens the secrets the store keeps (BMC passwords) under auth.secretKeyFile. */
  box: SealedBox;
  /** Provisioning, power, the poller and the runs through machines' BMCs (start()/stop() by server.ts). */
  bmc: BmcService;
  cache: CacheGraph | undefined;
  precache: PrecacheService | undefined;
  metrics: Registry | undefined;
  app: FastifyInstance;
  http: ProtocolServer;
  tftp: TftpServer | undefined;
  dhcp: DhcpServer;
  /** In the order they start: HTTP first, as DHCP and TFTP hand out the port it bound. */
  servers: ProtocolServer[];
  adminTokenFile: string | undefined;
}

/**
 * Builds edgeboot from its config: store, then the domain services, then the HTTP app, then the
 * protocol servers, each from what is built before it. The store is closed again if a later
 * step fails.
 */
export async function compose(config: Config, overrides: Overrides = {}): Promise<Composed> {
  mkdirSync(config.server.dataDir, { recursive: true });
  const store = overrides.store ?? openStore(config.store.url);
  try {
    return await composeOn(store, config, overrides);
  } catch (err) {
    await store.close();
    throw err;
  }
}

async function composeOn(plainStore: Store, config: Config, overrides: Overrides): Promise<Composed> {
  const log = overrides.log ?? createLogger(config.log.level);
  // Every committed machine change and timeline event, told to the dashboard's live stream.
  const feed = new TimelineFeed();
  const store = feedingStore(plainStore, feed, (err) => log.error({ err }, 'a timeline listener failed'));
  const now = overrides.now && { now: overrides.now };
  const leaveOut = overrides.leaveOut ?? {};
  const profiles = new ProfileHolder(config.profiles.dirs);
  await checkBeforeStart(config, store, profiles, log);
  const admin = overrides.adminTokens ? { tokens: overrides.adminTokens, file: undefined } : adminTokens(config);
  const secret = overrides.secret ?? (await store.initSetting('machine-token-secret', newSecret()));

  const machines = new MachineService(store, profiles.current, { ...now, dhcp: config.dhcp });
  const secretKey = readSecretKey(config.auth.secretKeyFile);
  if (secretKey.warning !== undefined) log.warn(secretKey.warning);
  const box = new SealedBox(secretKey.key);
  const bmc = new BmcService({
    store,
    machines,
    box,
    config: config.bmc,
    log: log.child({ component: 'bmc' }),
    ...now,
    // Read when a run sets UEFI HTTP Boot, after HTTP has bound its port.
    bootBaseUrl: () => bootBaseUrl(config.server.advertiseAddress, httpPort()),
    efiBinary: config.dhcp.efiBinary,
  });
  const cache = leaveOut.cache ? undefined : cacheGraph(config, store, profiles, await CachePins.load(store), log, overrides);
  const precacheLog = log.child({ component: 'precache' });
  const precache = cache && new PrecacheService({ store, machines, bundles: cache.bundles, config: config.precache, log: precacheLog, ...now });
  // Whose address a request comes from: DHCP's leases (full mode), else the neighbour table. It goes on
  // timeline events and log lines, and says whether a request gets a machine's secrets (boot.verifyClient).
  const leases = new LeasePool();
  const macAt = macAtAddress(() => leases.all(), overrides.neighbour);
  const boot = new BootService({
    store,
    machines,
    profiles: profiles.current,
    config,
    secret,
    log,
    ...now,
    // With a cache, assisted chains are fetched and rewritten server-side.
    ...(cache && { artifacts: cache.hubArtifacts, hub: overrides.hub ?? ((url: string, mac: Mac) => fetchHubScript(url, mac)) }),
    precacheJob: loadPrecacheJob(),
    onBootLoop: () => precache?.countEnd('boot-loop'),
    macAt,
    onScript: (served) => bmc.onScript(served),
  });
  const recordOn = (mac: Mac | undefined, event: NewEvent): void => {
    if (!mac) return;
    store.appendEvents(mac, [event]).catch((err: unknown) => log.warn({ mac, err, type: event.type }, 'could not record an event on its machine'));
  };

  const metrics = leaveOut.metrics
    ? undefined
    : createMetricsRegistry({
        ...(cache && { cache: () => cache.artifacts.stats }),
        ...(precache && { precache: () => precache.stats }),
        discovery: () => boot.discovery.stats,
        machineStates: () => machineStateCounts(store),
      });
  const app = await buildApp({
    ...(metrics && { metrics }),
    recordAt: overrides.recordAt ?? ((address, event) => recordOn(macAt(address), event)),
    ...(cache && {
      artifacts: cache.artifacts,
      cachePins: cache.pins,
      hubArtifacts: cache.hubArtifacts,
      cacheMaxBytes: config.cache.maxBytes,
      registry: { mirrors: cache.mirrors, puller: cache.puller, bundles: cache.bundles, readTokens: config.registry.readTokens },
    }),
    ...(precache && { precache }),
    bmc,
    admission: admission(config.cache),
    ...(!leaveOut.ipxeBin && { ipxeRoots: config.tftp.roots }),
    store,
    machines,
    boot,
    profiles: profiles.current,
    adminTokens: admin.tokens,
    sealBmcPassword: (plain) => box.seal(plain),
    advertiseAddress: config.server.advertiseAddress,
    httpPort: config.http.listen.port,
    // A logger of its own: the HTTP shell silences it while Fastify binds (src/http/server.ts).
    log: log.child({}),
  });

  await app.register(uiPlugin, {
    store,
    feed,
    api: injectedApi(app, admin.tokens[0] ?? ''),
    adminTokens: admin.tokens,
    viewerTokens: config.auth.viewerTokens,
    sessionHours: config.auth.sessionHours,
    cookieSecret: createHmac('sha256', secret).update('edgeboot ui cookies').digest('base64url'),
    profiles: profiles.current,
    leases: () => leases.all(),
    subnets: config.dhcp.mode === 'full' ? config.dhcp.subnets : [],
    proxyAnswersUnknown: config.dhcp.mode === 'proxy' && config.boot.unknownMachines !== 'exit',
    cacheDir: cache ? resolve(config.cache.dir) : undefined,
    now: overrides.now ?? (() => new Date()),
    ...(cache && { pulls: () => cache.puller.list(), bundles: () => cache.bundles.buildsRunning() }),
  });

  const http = createHttpServer(app, config.http.listen);
  const httpPort = (): number => http.addresses[0]?.port ?? config.http.listen.port;
  const dhcp = createDhcpServer(config.dhcp, {
    boot,
    store,
    leases,
    log: log.child({ server: 'dhcp' }),
    ...(overrides.dhcpSocket && { openSocket: overrides.dhcpSocket }),
    interfaces: overrides.interfaces ?? (() => [...interfaceAddresses()].map(([ifindex, i]) => ({ ifindex, name: i.name, address: i.address }))),
    httpPort,
    advertiseAddress: config.server.advertiseAddress,
  });
  const tftp = config.tftp.enabled
    ? createTftpServer(config.tftp, {
        log: log.child({ server: 'tftp' }),
        handlers: tftpEntryHandlers(config.server.advertiseAddress, httpPort),
        macAt,
        ...(overrides.tftpSocket && { openSocket: overrides.tftpSocket }),
        onTransfer: (r, mac) => {
          const e = transferEvent(r, mac);
          if (e) recordOn(e.mac, e.event);
        },
      })
    : undefined;
  if (metrics) addServerMetrics(metrics, { dhcp: () => dhcp.stats(), dhcpLeases: () => leases.all().length, ...(tftp && { tftp: () => tftp.stats() }) });

  return {
    store,
    feed,
    profiles,
    machines,
    boot,
    box,
    bmc,
    cache,
    precache,
    metrics,
    app,
    http,
    tftp,
    dhcp,
    servers: [http, ...(tftp ? [tftp] : []), dhcp],
    adminTokenFile: admin.file,
  };
}

/** What the profiles and the machines on record say about the config, before anything is built on them. */
async function checkBeforeStart(config: Config, store: Store, profiles: ProfileHolder, log: Logger): Promise<void> {
  reportProfiles(profiles.current(), log);
  const policy = config.boot.unknownMachines;
  if (typeof policy === 'object' && !profiles.current().get(policy.profile)) {
    throw new ConfigError([`boot.unknownMachines: got ${JSON.stringify(policy.profile)}, expected exit, wait or the name of a loaded profile`]);
  }
  for (const m of await machinesOutsideSubnets(store, config.dhcp)) log.warn({ mac: m.mac, ip: m.ip }, `${m.problem}: full-mode DHCP will not lease it`);
}

function cacheGraph(config: Config, store: Store, profiles: ProfileHolder, pins: CachePins, log: Logger, overrides: Overrides): CacheGraph {
  const dir = resolve(config.cache.dir);
  const blobs = new BlobStore(dir);
  const cacheLog = log.child({ component: 'cache' });
  // The system clock, as before: a test's fixed `overrides.now` would hold an integrity failure forever.
  const now = (): Date => new Date();
  const artifacts = new ArtifactCache({
    store,
    blobs,
    log: cacheLog,
    now,
    maxBytes: config.cache.maxBytes,
    pinned: () => new Set([...pinnedKeys(profiles.current()), ...pins.all]),
    ...overrides.cacheOptions,
  });
  const registryLog = log.child({ component: 'registry' });
  const mirrors = buildRegistryMirrors(config.registry, { blobs, store, log: registryLog });
  const puller = new ImagePuller({ cache: artifacts, log: registryLog });
  const bundlesLog = log.child({ component: 'bundles' });
  const bundles = new BundleBuilder({ dir: join(dir, 'bundles'), puller, cache: artifacts, log: bundlesLog, mirror: () => mirrors.mirror });
  const hubArtifacts = new HubArtifacts({ store, log: cacheLog, now });
  return { blobs, artifacts, hubArtifacts, pins, mirrors, puller, bundles };
}

/**
 * edgeboot's URL as machines reach it without a request to take it from (a BMC's HttpBootUri):
 * the advertised address, else this host's first non-loopback IPv4 address.
 */
function bootBaseUrl(advertise: string, port: number): string {
  const host =
    advertise !== 'auto'
      ? advertise
      : (Object.values(networkInterfaces())
          .flat()
          .find((i) => i?.family === 'IPv4' && !i.internal)?.address ?? '127.0.0.1');
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/** Boot-storm admission for large artifacts and the per-client rate cap. */
function admission(c: Config['cache']): NonNullable<AppDeps['admission']> {
  return { maxTransfers: c.maxTransfers, largeBytes: c.largeBytes, retryAfterSeconds: c.retryAfterSeconds, clientRate: c.clientRate };
}
