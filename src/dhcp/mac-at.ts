import { parseMac, type Mac } from '../machines/mac.js';
import { neighborMac } from '../net/neighbors.js';
import type { Lease } from './leases.js';

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
