/**
 * IPv4 addresses and CIDR prefixes as 32-bit unsigned integers: the one parser, formatter and
 * prefix arithmetic for DHCP pools, config checks and kernel arguments.
 */

/** A prefix: its text, the network address (host bits cleared) and the mask. */
export interface Cidr {
  cidr: string;
  network: number;
  mask: number;
}

const DIGIT_0 = 48;
const DIGIT_9 = 57;

/** Dotted-quad text to its integer; undefined unless it is exactly four decimal parts of 0-255. */
export function parseIpv4(text: string): number | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  let n = 0;
  for (const p of parts) {
    if (p.length < 1 || p.length > 3) return undefined;
    let v = 0;
    for (let i = 0; i < p.length; i++) {
      const c = p.charCodeAt(i);
      if (c < DIGIT_0 || c > DIGIT_9) return undefined;
      v = v * 10 + (c - DIGIT_0);
    }
    if (v > 255) return undefined;
    n = n * 256 + v;
  }
  return n;
}

/** `parseIpv4` for text already validated (configuration, decoded packets); throws on anything else. */
export function ipToInt(ip: string): number {
  const n = parseIpv4(ip);
  if (n === undefined) throw new RangeError(`not an IPv4 address: ${JSON.stringify(ip)}`);
  return n;
}

export const intToIp = (n: number): string => [24, 16, 8, 0].map((s) => (n >>> s) & 255).join('.');

/** The mask of a prefix length 0-32. */
export const prefixMask = (prefix: number): number => (prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0);

/** `a.b.c.d/n` to its network and mask (host bits masked off); undefined when malformed. */
export function parseCidr(cidr: string): Cidr | undefined {
  const slash = cidr.indexOf('/');
  const address = parseIpv4(cidr.slice(0, slash));
  const bits = cidr.slice(slash + 1);
  if (slash < 0 || address === undefined || !/^[0-9]{1,2}$/.test(bits) || Number(bits) > 32) return undefined;
  const mask = prefixMask(Number(bits));
  return { cidr, network: (address & mask) >>> 0, mask };
}

/** `parseCidr` for a validated prefix; throws when malformed. */
export function cidrOf(cidr: string): Cidr {
  const c = parseCidr(cidr);
  if (!c) throw new RangeError(`not an IPv4 prefix: ${JSON.stringify(cidr)}`);
  return c;
}

/** Whether the address is inside the prefix; false for text that is no address. */
export function inCidr(c: Pick<Cidr, 'network' | 'mask'>, ip: string): boolean {
  const n = parseIpv4(ip);
  return n !== undefined && (n & c.mask) >>> 0 === c.network;
}

export const broadcastOf = (c: Pick<Cidr, 'network' | 'mask'>): number => (c.network | ~c.mask) >>> 0;
export const maskText = (c: Pick<Cidr, 'mask'>): string => intToIp(c.mask);
/** The prefix length of a mask (its leading one bits). */
export const prefixLength = (c: Pick<Cidr, 'mask'>): number => (c.mask === 0 ? 0 : 32 - Math.log2((~c.mask >>> 0) + 1));
