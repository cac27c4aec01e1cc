import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { networkInterfaces } from 'node:os';
import { join, resolve } from 'node:path';
import type { Logger } from 'pino';
import { fetchHubScript } from './boot/hub.js';
import { BootService } from './boot/service.js';
import { pxeAnswer, type PxeAnswer } from './boot/planner.js';
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
import type { Lease } from './dhcp/leases.js';
import { BindError, PRIVILEGED_PORT_FIX } from './net/bind-error.js';
import { createMetricsRegistry } from './http/routes/metrics.js';
import { interfaceAddresses } from './net/pktinfo-socket.js';
import { MachineService } from './machines/service.js';
import { machinesOutsideSubnets } from './machines/addresses.js';
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
  /** Servers left off because their port was not allowed (see StartOptions.offWhenDenied). */
  denied: { server: string; error: BindError }[];
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

export interface StartOptions {
  /**
   * Servers that stay off, with a warning, when binding their port is not allowed (EACCES):
   * `serve` names those that run on the embedded defaults, so that a first `npm start` as a
   * normal user serves HTTP. A port the configuration names still fails the start.
   */
  offWhenDenied?: ReadonlySet<string>;
}

/**
 * The MAC at an address: a bound, unexpired DHCP lease of ours (full mode), else the kernel's
 * neighbour table (proxy mode). It says whose address a request comes from.
 */
export function macAtAddress(
  leases: () => readonly Lease[],
  neighbour: (ip: string) => Mac | undefined = neighborMac,
  now: () => number = Date.now,
): (ip: string) => Mac | undefined {
  return (ip) => parseMac(leases().find((l) => l.ip === ip && l.state === 'bound' && l.expiresAt > now())?.mac ?? '') ?? neighbour(ip);
}

export async function startServer(config: Config, log: Logger, opts: StartOptions = {}): Promise<Running> {
  mkdirSync(config.server.dataDir, { recursive: true });
  const store = openStore(config.store.url);
  const profiles = new ProfileHolder(config.profiles.dirs);
  reportProfiles(profiles.current(), log);
  const policy = config.boot.unknownMachines;
  if (typeof policy === 'object' && !profiles.current().get(policy.profile)) {
    await store.close();
    throw new ConfigError([`boot.unknownMachines: got ${JSON.stringify(policy.profile)}, expected exit, wait or the name of a loaded profile`]);
  }
  for (const m of await machinesOutsideSubnets(store, config.dhcp)) log.warn({ mac: m.mac, ip: m.ip }, `${m.problem}: full-mode DHCP will not lease it`);
  const { tokens, file } = adminTokens(config);
  const secret = await store.initSetting('machine-token-secret', newSecret());
  const machines = new MachineService(store, profiles.current, { dhcp: config.dhcp });
  const blobs = new BlobStore(resolve(config.cache.dir));
  const artifacts = new ArtifactCache({
    store,
    blobs,
    log: log.child({ component: 'cache' }),
    maxBytes: config.cache.maxBytes,
    pinned: () => pinnedKeys(profiles.current()),
  });
  let dhcpRef: DhcpServer | undefined;
  // DHCP is built below. The MAC at an address goes on timeline events and log lines, and says
  // whether a request gets a machine's secrets (boot.verifyClient).
  const macAt = macAtAddress(() => dhcpRef?.leases() ?? []);
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
  const recordOn = (mac: Mac | undefined, event: NewEvent): void => {
    if (!mac) return;
    store.appendEvents(mac, [event]).catch((err: unknown) => log.warn({ mac, err, type: event.type }, 'could not record an event on its machine'));
  };
  const recordAt = (address: string, event: NewEvent): void => recordOn(macAt(address), event);
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
    // A logger of its own: the HTTP shell silences it while Fastify binds (src/http/server.ts).
    log: log.child({}),
  });
  const http = createHttpServer(app, config.http.listen);
  const dhcp = createDhcpServer(config.dhcp, {
    boot,
    store,
    log: log.child({ server: 'dhcp' }),
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
        macAt,
        onTransfer: (r, mac) => {
          const e = transferEvent(r, mac);
          if (e) recordOn(e.mac, e.event);
        },
      })
    : undefined;
  tftpRef = tftp;
  const servers: ProtocolServer[] = [];
  const denied: Running['denied'] = [];
  try {
    // Nothing half-starts: a server that fails to bind stops the ones already running, unless
    // it may stay off (its port on the embedded defaults, and not allowed to this user).
    for (const s of [http, ...(tftp ? [tftp] : []), dhcp]) {
      try {
        await s.start();
      } catch (err) {
        if (!(err instanceof BindError && err.code === 'EACCES' && opts.offWhenDenied?.has(s.name))) throw err;
        denied.push({ server: s.name, error: err });
        continue;
      }
      servers.push(s);
    }
  } catch (err) {
    for (const s of servers.reverse()) {
      const listen = s.addresses.map(hostPort);
      await s.stop();
      log.info({ server: s.name, listen }, 'stopped: another server could not start');
    }
    await store.close();
    throw err;
  }
  precache.start();
  let stopped: Promise<void> | undefined;
  return {
    servers,
    denied,
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

/**
 * The timeline event of a TFTP transfer of the machine with that MAC; none for size probes and
 * transfers the server stopped, nor when no lease or neighbour entry named the client.
 */
export function transferEvent(r: TransferRecord, mac: Mac | undefined): { mac: Mac; event: NewEvent } | undefined {
  if (!mac || r.outcome === 'probe' || r.outcome === 'stopped') return undefined;
  const data = {
    mac,
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
  return { mac, event: { type: r.outcome === 'complete' ? 'tftp-transfer' : 'tftp-failed', source: 'tftp', ...(r.error && { message: r.error }), data } };
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

/** `0.0.0.0:8080`, `[::]:8080`. */
export function hostPort(a: Pick<AddressInfo, 'address' | 'port'>): string {
  return a.address.includes(':') ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
}

/** Who can reach a bound address: every interface, loopback alone, or the interface that has it. */
export function reachOf(address: string, interfaces: ReturnType<typeof networkInterfaces> = networkInterfaces()): string {
  if (address === '0.0.0.0' || address === '::') return 'all interfaces';
  if (address.startsWith('127.') || address === '::1') return 'loopback only';
  const name = Object.entries(interfaces).find(([, list]) => list?.some((i) => i.address === address))?.[0];
  return name ? `${name} only` : 'this address only';
}

/**
 * What DHCP answers, where, and how to change it. `strangers` is the boot planner's answer for a
 * machine nobody registered (pxeAnswer with no machine): proxy DHCP is silent to those when
 * their plan is the local disk, so it answers registered machines only.
 */
export function dhcpAnswers(dhcp: Pick<Config['dhcp'], 'mode' | 'interfaces' | 'subnets'>, policy: Config['boot']['unknownMachines'], strangers: PxeAnswer): string {
  const named = `${dhcp.interfaces.length === 1 ? 'interface' : 'interfaces'} ${dhcp.interfaces.join(', ')}`;
  const where = dhcp.interfaces.length === 0 ? 'all interfaces' : named;
  const policyText = typeof policy === 'object' ? policy.profile : policy;
  const unknown = !strangers.answer
    ? 'unknown machines boot their own disk'
    : policy === 'wait'
      ? 'an unknown machine waits in iPXE until it is registered'
      : `an unknown machine boots profile ${policyText}`;
  const change = !strangers.answer
    ? 'Register a machine (npx edgeboot machines add MAC --profile NAME) or set boot.unknownMachines: wait'
    : 'To boot registered machines only, set boot.unknownMachines: exit';
  if (dhcp.mode === 'proxy') {
    const answers = strangers.answer ? 'every PXE client' : 'registered machines only';
    return `proxy DHCP on ${where} answers ${answers} (boot.unknownMachines: ${policyText}); ${unknown}. ${change}`;
  }
  const subnets = dhcp.subnets.map((n) => n.cidr).join(', ');
  const leases = `leases addresses in ${subnets} to every client that asks and chains PXE clients to iPXE`;
  return `full DHCP on ${where} ${leases} (boot.unknownMachines: ${policyText}); ${unknown}. ${change}`;
}

/** The start-up lines: one per server with what it bound (or why it is off), then `edgeboot serving`. */
export function describeStart(config: Config, r: Running, log: Logger): void {
  const deniedLine = (name: string, label: string): boolean => {
    const d = r.denied.find((x) => x.server === name);
    if (!d) return false;
    log.warn(
      { server: name, bind: d.error.where, fix: PRIVILEGED_PORT_FIX },
      `${label} off: this user may not bind ${d.error.where} (permission denied); HTTP still serves. To serve ${label}, ${PRIVILEGED_PORT_FIX}`,
    );
    return true;
  };
  const http = r.servers.find((s) => s.name === 'http')?.addresses[0];
  const bound = http ? hostPort(http) : `${config.http.listen.host}:${config.http.listen.port}`;
  if (http) log.info({ listen: bound, reach: reachOf(http.address) }, 'HTTP serving');
  const tftp = r.servers.find((s) => s.name === 'tftp')?.addresses[0];
  if (tftp) log.info({ listen: hostPort(tftp), reach: reachOf(tftp.address), roots: config.tftp.roots }, 'TFTP serving');
  else if (!deniedLine('tftp', 'TFTP')) log.info('TFTP off (tftp.enabled: false)');
  const dhcp = r.servers.find((s) => s.name === 'dhcp');
  if (dhcp && dhcp.addresses.length > 0) {
    log.info(
      {
        mode: config.dhcp.mode,
        ports: dhcp.addresses.map((a) => a.port),
        listen: dhcp.addresses.map(hostPort),
        interfaces: config.dhcp.interfaces.length ? config.dhcp.interfaces : 'all',
        answers: dhcpAnswers(config.dhcp, config.boot.unknownMachines, pxeAnswer({ machine: undefined, profiles: r.profiles.current(), unknownMachines: config.boot.unknownMachines })),
      },
      'DHCP serving',
    );
  } else if (!deniedLine('dhcp', 'DHCP')) {
    log.info('DHCP off (dhcp.mode: off): the site DHCP server must hand iPXE clients the entry script');
  }
  const port = http?.port ?? config.http.listen.port;
  const host = config.server.advertiseAddress === 'auto' ? '<this host>' : config.server.advertiseAddress;
  log.info(
    {
      http: bound,
      entryScript: `http://${host}:${port}/boot.ipxe`,
      api: `http://${host}:${port}/api/v1`,
      docs: `http://${host}:${port}/docs`,
      dataDir: resolve(config.server.dataDir),
      store: config.store.url,
      ...(r.adminTokenFile ? { adminTokenFile: r.adminTokenFile } : { adminTokens: 'from config' }),
    },
    'edgeboot serving',
  );
}
