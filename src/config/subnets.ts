/**
 * What the schema cannot say about `dhcp.subnets`: how the addresses of one subnet, and the
 * subnets among themselves, must relate. Pure; the schema has checked every address's form.
 */
import { broadcastOf, cidrOf, inCidr, intToIp, ipToInt, prefixLength, type Cidr } from '../net/ipv4.js';
import type { SubnetConfig } from './config.js';

const itemPath = (i: number) => `dhcp.subnets[${i}]`;

/** A subnet's prefix and pool as numbers, and its router. */
interface Parsed extends Cidr {
  pool?: { first: number; last: number };
  router?: string;
}

const parse = (s: SubnetConfig): Parsed => ({
  ...cidrOf(s.cidr),
  ...(s.pool && { pool: { first: ipToInt(s.pool[0]), last: ipToInt(s.pool[1]) } }),
  ...(s.router !== undefined && { router: s.router }),
});

/** One line per mistake, each naming the key, the value and what was expected. */
export function subnetProblems(subnets: readonly SubnetConfig[]): string[] {
  const problems: string[] = [];
  const parsed = subnets.map(parse);
  parsed.forEach((s, i) => problems.push(...oneSubnetProblems(s, subnets[i]?.cidr ?? s.cidr, itemPath(i))));
  for (let j = 1; j < parsed.length; j++) {
    for (let i = 0; i < j; i++) {
      const [a, b] = [parsed[i], parsed[j]];
      // Two prefixes overlap exactly when one holds the other's network address.
      if (a && b && ((b.network & a.mask) >>> 0 === a.network || (a.network & b.mask) >>> 0 === b.network)) {
        problems.push(`${itemPath(j)}.cidr: ${b.cidr} overlaps ${itemPath(i)}.cidr ${a.cidr}; expected subnets that share no address`);
      }
    }
  }
  return problems;
}

function oneSubnetProblems(s: Parsed, cidr: string, path: string): string[] {
  const problems: string[] = [];
  const network = `${intToIp(s.network)}/${prefixLength(s)}`;
  // Host bits set: refused rather than masked, since 10.77.0.5/24 may as well be a typo for a
  // /32 or for another network as a way of writing 10.77.0.0/24.
  if (ipToInt(cidr.slice(0, cidr.indexOf('/'))) !== s.network) {
    problems.push(`${path}.cidr: got "${cidr}", expected a network address with no host bits set, such as ${network}`);
  }
  if (s.router !== undefined && !inCidr(s, s.router)) {
    problems.push(`${path}.router: got "${s.router}", expected an address inside ${network}`);
  }
  if (s.pool) problems.push(...poolProblems(s, network, `${path}.pool`));
  return problems;
}

function poolProblems(s: Parsed, network: string, path: string): string[] {
  const pool = s.pool;
  if (!pool) return [];
  const [first, last] = [intToIp(pool.first), intToIp(pool.last)];
  const outside = [first, last].filter((ip) => !inCidr(s, ip));
  const got = `${path}: got [${first}, ${last}]`;
  if (outside.length > 0) return [`${got}, expected addresses inside ${network} (${outside.join(' and ')} ${outside.length > 1 ? 'are' : 'is'} not)`];
  if (pool.first > pool.last) return [`${got}, expected the first address of the pool, then the last (the start is after the end)`];
  // A /31 (RFC 3021) and a /32 have no network or broadcast address to keep out of a pool.
  if (s.mask >= 0xfffffffe) return [];
  const reserved = [s.network, broadcastOf(s)].filter((ip) => pool.first <= ip && ip <= pool.last).map(intToIp);
  if (reserved.length === 0) return [];
  return [`${got}, expected a range without the network and broadcast addresses of ${network} (it holds ${reserved.join(' and ')})`];
}
