import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join, resolve } from 'node:path';
import type { Logger } from 'pino';
import { fetchHubScript } from './boot/hub.js';
import { BootService } from './boot/service.js';
import { ArtifactCache } from './cache/artifacts.js';
import { BlobStore } from './cache/blobs.js';
import { sourceKey } from './cache/source-key.js';
import { newSecret } from './boot/tokens.js';
import { ConfigError, type Config } from './config/config.js';
import { buildApp } from './http/app.js';
import { buildRegistryMirrors } from './registry/build.js';
import { ImagePuller } from './registry/puller.js';
import { BundleBuilder } from './precache/bundles.js';
import { loadPrecacheJob } from './precache/job.js';
import { PrecacheService } from './precache/service.js';
import { createHttpServer } from './http/server.js';
import { createDhcpServer, type DhcpServer } from './dhcp/server.js';
import { createMetricsRegistry } from './http/routes/metrics.js';
import { interfaceAddresses, openPktinfoSocket } from './net/pktinfo-socket.js';
import { MachineService } from './machines/service.js';
import { parseMac, type Mac } from './machines/mac.js';
import { MACHINE_STATES } from './machines/state.js';
import { neighborMac } from './net/neighbors.js';
import { renderEntryScript } from './boot/render.js';
import { createTftpServer, type TftpHandler, type TftpServer, type TransferRecord } from './tftp/server.js';
import { BUILTIN_PROFILES_DIR, loadProfiles } from './profiles/load.js';
import type { ProfileSet } from './profiles/profile.js';
import type { ProtocolServer } from './protocol.js';
import type { NewEvent } from './machines/model.js';
import { openSqliteStore } from './store/sqlite.js';
import type { Store } from './store/store.js';

export interface Running {
  servers: ProtocolServer[];
  store: Store;
  profiles: ProfileHolder;
  adminTokenFile: string | undefined;
  stop(): Promise<void>;
}

export function openStore(url: string): Store {
  if (url.startsWith('sqlite:')) return openSqliteStore({ path: url.slice('sqlite:'.length) });
  throw new ConfigError([`store.url: got ${JSON.stringify(url.replace(/\/\/[^@/]*@/, '//<credentials>@'))}, expected sqlite:<path>; the PostgreSQL store is not available in this version`]);
}

/** The loaded profiles, replaced whole on reload (SIGHUP) so readers never see half a set. */
export class ProfileHolder {
  private set: ProfileSet;
  constructor(private readonly dirs: string[]) {
    this.set = this.load();
  }
  readonly current = (): ProfileSet => this.set;
  reload(): ProfileSet {
    this.set = this.load();
    return this.set;
  }
  private load(): ProfileSet {
    return loadProfiles([{ dir: BUILTIN_PROFILES_DIR, builtin: true }, ...this.dirs.map((dir) => ({ dir, builtin: false }))]);
  }
}

/** Tokens from config, else the one in `<dataDir>/admin-token`, made at first start (0600). */
export function adminTokens(config: Config): { tokens: string[]; file?: string } {
  if (config.auth.adminTokens.length > 0) return { tokens: config.auth.adminTokens };
  const file = resolve(config.server.dataDir, 'admin-token');
  if (!existsSync(file)) {
    mkdirSync(config.server.dataDir, { recursive: true });
    writeFileSync(file, `${randomBytes(24).toString('base64url')}\n`, { mode: 0o600, flag: 'wx' });
  }
  chmodSync(file, 0o600);
  const token = readFileSync(file, 'utf8').trim();
  if (token.length < 16) throw new Error(`${file} holds no usable token (16 characters at least); delete it to have a new one made`);
  return { tokens: [token], file };
}

export async function startServer(config: Config, log: Logger): Promise<Running> {
  mkdirSync(config.server.dataDir, { recursive: true });
  const store = openStore(config.store.url);
  const profiles = new ProfileHolder(config.profiles.dirs);
  reportProfiles(profiles.current(), log);
  const policy = config.boot.unknownMachines;
  if (typeof policy === 'object' && !profiles.current().get(policy.profile)) {
    await store.close();
    throw new ConfigError([`boot.unknownMachines: got ${JSON.stringify(policy.profile)}, expected exit, wait or the name of a loaded profile`]);
  }
  const { tokens, file } = adminTokens(config);
  const secret = await store.initSetting('machine-token-secret', newSecret());
  const machines = new MachineService(store, profiles.current);
  const blobs = new BlobStore(resolve(config.cache.dir));
  const artifacts = new ArtifactCache({
    store,
    blobs,
    log: log.child({ component: 'cache' }),
    maxBytes: config.cache.maxBytes,
    pinned: () => pinnedKeys(profiles.current()),
  });
  let dhcpRef: DhcpServer | undefined;
  // Built with DHCP below; a bound, unexpired lease answers for full mode, the neighbour table
  // for proxy mode. It says whose address a request comes from: timeline events, and whether a
  // request gets a machine's secrets (boot.verifyClient).
  const macAt = (ip: string): Mac | undefined =>
    parseMac(dhcpRef?.leases().find((l) => l.ip === ip && l.state === 'bound' && l.expiresAt > Date.now())?.mac ?? '') ?? neighborMac(ip);
  const boot = new BootService({ store, machines, profiles: profiles.current, config, secret, log, artifacts, hub: (url, mac) => fetchHubScript(url, mac), precacheJob: loadPrecacheJob(), onBootLoop: () => precache.countEnd('boot-loop'), macAt });
  const registryLog = log.child({ component: 'registry' });
  const mirrors = buildRegistryMirrors(config.registry, { blobs, store, log: registryLog });
  const puller = new ImagePuller({ cache: artifacts, log: registryLog });
  const bundles = new BundleBuilder({ dir: join(resolve(config.cache.dir), 'bundles'), puller, cache: artifacts, log: log.child({ component: 'bundles' }), mirror: () => mirrors.mirror });
  const precache = new PrecacheService({ store, machines, bundles, config: config.precache, log: log.child({ component: 'precache' }) });
  // DHCP is built after the app (it needs the HTTP port); metrics read it when scraped.
  let tftpRef: TftpServer | undefined;
  const metrics = createMetricsRegistry({
    dhcp: () => dhcpRef?.stats(),
    dhcpLeases: () => dhcpRef?.leases().length ?? 0,
    tftp: () => tftpRef?.stats(),
    cache: () => artifacts.stats,
    precache: () => precache.stats,
    discovery: () => boot.discovery.stats,
    machineStates: () => machineStates(store),
  });
  const recordAt = (address: string, event: NewEvent): void => {
    const mac = macAt(address);
    if (!mac) return;
    store.appendEvents(mac, [event]).catch((err: unknown) => log.warn({ mac, err, type: event.type }, 'could not record an event on its machine'));
  };
  const app = await buildApp({
    metrics,
    recordAt,
    artifacts,
    cacheMaxBytes: config.cache.maxBytes,
    registry: { mirrors, puller, bundles, readTokens: config.registry.readTokens },
    precache,
    admission: { maxTransfers: config.cache.maxTransfers, largeBytes: config.cache.largeBytes, retryAfterSeconds: config.cache.retryAfterSeconds, clientRate: config.cache.clientRate },
    ipxeRoots: config.tftp.roots,
    store,
    machines,
    boot,
    profiles: profiles.current,
    adminTokens: tokens,
    advertiseAddress: config.server.advertiseAddress,
    httpPort: config.http.listen.port,
    log,
  });
  const http = createHttpServer(app, config.http.listen);
  const dhcp = createDhcpServer(config.dhcp, {
    boot,
    store,
    log: log.child({ server: 'dhcp' }),
    openSocket: (port, onMessage) => openPktinfoSocket({ address: '0.0.0.0', port }, onMessage),
    interfaces: () => [...interfaceAddresses()].map(([ifindex, i]) => ({ ifindex, name: i.name, address: i.address })),
    httpPort: () => http.addresses[0]?.port ?? config.http.listen.port,
    advertiseAddress: config.server.advertiseAddress,
  });
  dhcpRef = dhcp;
  const httpPort = (): number => http.addresses[0]?.port ?? config.http.listen.port;
  const tftp = config.tftp.enabled
    ? createTftpServer(config.tftp, {
        log: log.child({ server: 'tftp' }),
        handlers: tftpHandlers(config.server.advertiseAddress, httpPort),
        onTransfer: (r) => recordTransfer(recordAt, r),
      })
    : undefined;
  tftpRef = tftp;
  const servers: ProtocolServer[] = [];
  try {
    // Nothing half-starts: a server that fails to bind stops the ones already running.
    for (const s of [http, ...(tftp ? [tftp] : []), dhcp]) {
      await s.start();
      servers.push(s);
    }
  } catch (err) {
    for (const s of servers.reverse()) await s.stop();
    await store.close();
    throw err;
  }
  precache.start();
  let stopped: Promise<void> | undefined;
  return {
    servers,
    store,
    profiles,
    adminTokenFile: file,
    stop() {
      stopped ??= (async () => {
        precache.stop();
        for (const s of [...servers].reverse()) await s.stop();
        await artifacts.close();
        await store.close();
      })();
      return stopped;
    },
  };
}

/** Every state with its number of machines (0 included, so a series never vanishes). */
async function machineStates(store: Store): Promise<Record<string, number>> {
  return { ...Object.fromEntries(MACHINE_STATES.map((st) => [st, 0])), ...(await store.countMachinesByState()) };
}

/**
 * Names TFTP generates: `boot.ipxe`, the entry script, for firmware or a DHCP server that
 * hands out a TFTP file name only; it chains to this server's HTTP port.
 */
export function tftpHandlers(advertise: string, httpPort: () => number): Map<string, TftpHandler> {
  return new Map<string, TftpHandler>([
    ['boot.ipxe', (req) => Buffer.from(renderEntryScript(`http://${advertise === 'auto' ? req.local : advertise}:${httpPort()}`))],
  ]);
}

/** A transfer onto the timeline of the machine at that address (size probes are left out). */
function recordTransfer(recordAt: (address: string, event: NewEvent) => void, r: TransferRecord): void {
  if (r.outcome === 'probe' || r.outcome === 'stopped') return;
  const data = {
    file: r.file,
    outcome: r.outcome,
    bytes: r.bytes,
    size: r.size,
    durationMs: Math.round(r.durationMs),
    client: r.client.address,
    server: r.local,
    blksize: r.blksize,
    windowsize: r.windowsize,
    resent: r.resent,
    options: r.requested,
  };
  recordAt(r.client.address, { type: r.outcome === 'complete' ? 'tftp-transfer' : 'tftp-failed', source: 'tftp', ...(r.error && { message: r.error }), data });
}

/** The source keys of every remote artifact a loaded profile names: pinned in the cache. */
export function pinnedKeys(set: ProfileSet): Set<string> {
  const keys = new Set<string>();
  for (const p of set.list()) for (const a of Object.values(p.artifacts)) if (/^https?:/.test(a.url)) keys.add(sourceKey(a.url));
  return keys;
}

export function reportProfiles(set: ProfileSet, log: Logger): void {
  for (const p of set.problems) log.warn({ file: p.file, problem: p.message }, 'profile not loaded');
  log.info({ profiles: set.list().map((p) => p.name) }, 'profiles loaded');
}

export function describeStart(config: Config, r: Running, log: Logger): void {
  const http = r.servers.find((s) => s.name === 'http')?.addresses[0];
  const port = http?.port ?? config.http.listen.port;
  const host = config.server.advertiseAddress === 'auto' ? '<this host>' : config.server.advertiseAddress;
  log.info(
    {
      http: `${config.http.listen.host}:${port}`,
      entryScript: `http://${host}:${port}/boot.ipxe`,
      api: `http://${host}:${port}/api/v1`,
      docs: `http://${host}:${port}/docs`,
      dataDir: resolve(config.server.dataDir),
      store: config.store.url,
      ...(r.adminTokenFile ? { adminTokenFile: r.adminTokenFile } : { adminTokens: 'from config' }),
    },
    'edgeboot serving',
  );
  const tftp = r.servers.find((s) => s.name === 'tftp')?.addresses[0];
  if (tftp) log.info({ listen: `${tftp.address}:${tftp.port}`, roots: config.tftp.roots }, 'TFTP serving');
  else log.info('TFTP off (tftp.enabled: false)');
  const dhcp = r.servers.find((s) => s.name === 'dhcp');
  if (dhcp && dhcp.addresses.length > 0) {
    log.info({ mode: config.dhcp.mode, ports: dhcp.addresses.map((a) => a.port), interfaces: config.dhcp.interfaces.length ? config.dhcp.interfaces : 'all' }, 'DHCP serving');
  } else {
    log.info('DHCP off (dhcp.mode: off): the site DHCP server must hand iPXE clients the entry script');
  }
}

