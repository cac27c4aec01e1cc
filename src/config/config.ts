/** The validated, normalised configuration every layer below `main.ts` receives. */
export interface Listen {
  host: string;
  port: number;
}

export interface SubnetConfig {
  cidr: string;
  pool?: [string, string];
  router?: string;
  dns?: string[];
  domain?: string;
  leaseSeconds: number;
}

export type UnknownMachinePolicy = 'exit' | 'wait' | { profile: string };

export interface Config {
  server: { advertiseAddress: 'auto' | string; dataDir: string };
  http: { listen: Listen };
  tftp: {
    enabled: boolean;
    listen: Listen;
    roots: string[];
    maxBlockSize: number;
    maxWindowSize: number;
    timeoutSeconds: number;
    retries: number;
    maxTransfers: number;
    maxTransfersPerClient: number;
  };
  dhcp: {
    mode: 'off' | 'proxy' | 'full';
    interfaces: string[];
    proxyPort: number;
    listenPort: number;
    pxeLeaseSeconds: number;
    declineSeconds: number;
    efiBinary: 'ipxe.efi' | 'snponly.efi';
    subnets: SubnetConfig[];
  };
  store: { url: string };
  cache: { dir: string; maxBytes: number; maxTransfers: number; largeBytes: number; retryAfterSeconds: number; clientRate: number };
  registry: { pullSecret: string; insecureRegistries: string[]; pullThrough: boolean; readTokens: string[]; upstreams: Record<string, string>; allowedUpstreams: string[] };
  auth: { adminTokens: string[] };
  profiles: { dirs: string[] };
  boot: { unknownMachines: UnknownMachinePolicy; recheckSeconds: number; assistedChain: 'rewrite' | 'chain'; verifyClient: 'source' | 'off'; maxDiscovered: number; discoverPerMinute: number };
  precache: PrecacheConfig;
  log: { level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent' };
}

/** How the precache live environment's job runs and when edgeboot gives up on it. */
export interface PrecacheConfig {
  /** What the machine does once its partition is written. */
  after: 'reboot' | 'poweroff';
  /** A precaching machine silent this long has failed. */
  heartbeatSeconds: number;
  /** Precache boots without a result before the machine is failed as a boot loop. */
  maxBoots: number;
  /** Room the install disk keeps in front of the data partition for the OS itself. */
  installReserveGiB: number;
  /** How often the job reports progress while it downloads. */
  progressSeconds: number;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[], source?: string) {
    super(`invalid configuration${source ? ` (${source})` : ''}:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}
