/** The validated, normalised configuration every layer below `main.ts` receives, typed from the schema (schema.ts). */
import type { ConfigFile } from './schema.js';

export type { ConfigFile } from './schema.js';

export interface Listen {
  host: string;
  port: number;
}

export type SubnetConfig = ConfigFile['dhcp']['subnets'][number];

export type UnknownMachinePolicy = 'exit' | 'wait' | { profile: string };

/** How the precache live environment's job runs and when edgeboot gives up on it. */
export type PrecacheConfig = ConfigFile['precache'];

/**
 * The file's form after load.ts: paths absolute, listen addresses parsed, sizes in bytes, the
 * unknown-machine policy as a word or a profile, auth.secretKeyFile always a path; every other key as the schema types it.
 */
export type Config = Omit<ConfigFile, 'http' | 'tftp' | 'cache' | 'boot' | 'bmc'> & {
  http: { listen: Listen };
  tftp: Omit<ConfigFile['tftp'], 'listen'> & { listen: Listen };
  cache: Omit<ConfigFile['cache'], 'maxBytes' | 'largeBytes' | 'clientRate'> & { maxBytes: number; largeBytes: number; clientRate: number };
  boot: Omit<ConfigFile['boot'], 'unknownMachines'> & { unknownMachines: UnknownMachinePolicy };
  /** caFile absolute, absent when empty. */
  bmc: BmcConfig;
};

/** Machines' BMCs: the poller and the provisioning runs (schema-bmc.ts). */
export type BmcConfig = Omit<ConfigFile['bmc'], 'caFile'> & { caFile?: string };

export class ConfigError extends Error {
  constructor(
    readonly problems: string[],
    source?: string,
  ) {
    super(`invalid configuration${source ? ` (${source})` : ''}:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}
