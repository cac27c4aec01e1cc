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
  registry: { pullSecret: string; insecureRegistries: string[]; pullThrough: boolean; readTokens: string[]; upstreams: Record<string, string> };
  auth: { adminTokens: string[] };
  profiles: { dirs: string[] };
  boot: { unknownMachines: UnknownMachinePolicy; recheckSeconds: number; assistedChain: 'rewrite' | 'chain' };
  log: { level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent' };
}

export class ConfigError extends Error {
  constructor(readonly problems: string[], source?: string) {
    super(`invalid configuration${source ? ` (${source})` : ''}:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}
