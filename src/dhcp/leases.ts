/**
 * The address pools of full mode, in memory: the DHCP server is the only writer of leases, so
 * memory is authoritative and the store is its journal (every bound lease is persisted before
 * the ACK leaves). No I/O here: every change is returned for the caller to persist.
 */
import { cidrOf, inCidr, intToIp, ipToInt, type Cidr } from '../net/ipv4.js';
import type { Lease } from '../store/lease.js';

export type { Lease, LeaseState } from '../store/lease.js';
/** The subnet mask as text; responder.ts takes it from here. */
export { maskText } from '../net/ipv4.js';

/** A subnet of full mode: its prefix, pool and the options handed out on it. */
export interface Subnet extends Cidr {
  pool?: { first: number; last: number };
  router?: string;
  dns?: string[];
  domain?: string;
  leaseSeconds: number;
}

export function parseSubnet(s: { cidr: string; pool?: [string, string]; router?: string; dns?: string[]; domain?: string; leaseSeconds: number }): Subnet {
  return {
    ...cidrOf(s.cidr),
    ...(s.pool && { pool: { first: ipToInt(s.pool[0]), last: ipToInt(s.pool[1]) } }),
    ...(s.router && { router: s.router }),
    ...(s.dns && { dns: s.dns }),
    ...(s.domain && { domain: s.domain }),
    leaseSeconds: s.leaseSeconds,
  };
}

export const inSubnet: (s: Subnet, ip: string) => boolean = inCidr;

/** How long an offered address stays held for the client that was offered it. */
export const OFFER_HOLD_MS = 60_000;

export class LeasePool {
  private readonly byIp = new Map<string, Lease>();
  private readonly byMac = new Map<string, Lease>();
  /** Next address to try per subnet: allocation is a bounded scan from here, never a loop. */
  private readonly cursor = new Map<string, number>();

  constructor(leases: Iterable<Lease> = []) {
    this.reset(leases);
  }

  /** Holds these leases and no others (the journal's, when the DHCP server starts). */
  reset(leases: Iterable<Lease>): void {
    this.byIp.clear();
    this.byMac.clear();
    this.cursor.clear();
    for (const l of leases) this.set(l);
  }

  get(ip: string): Lease | undefined {
    return this.byIp.get(ip);
  }

  ofMac(mac: string): Lease | undefined {
    return this.byMac.get(mac);
  }

  all(): Lease[] {
    return [...this.byIp.values()];
  }

  /** Free for `mac` now: unused, expired, or already this client's. */
  isFreeFor(ip: string, mac: string, now: number): boolean {
    const l = this.byIp.get(ip);
    return !l || l.mac === mac || l.expiresAt <= now;
  }

  /**
   * The address to offer: the reservation's fixed address; else this client's current
   * address in the subnet; else the address it asked for if free and in the pool; else the
   * next free pool address. Undefined when the pool is exhausted.
   */
  choose(s: Subnet, mac: string, now: number, fixed?: string, requested?: string): string | undefined {
    if (fixed !== undefined) return inSubnet(s, fixed) && this.isFreeFor(fixed, mac, now) ? fixed : undefined;
    const own = this.byMac.get(mac);
    if (own && own.state !== 'declined' && inSubnet(s, own.ip) && this.inPool(s, own.ip)) return own.ip;
    if (requested !== undefined && this.inPool(s, requested) && this.isFreeFor(requested, mac, now)) return requested;
    if (!s.pool) return undefined;
    const size = s.pool.last - s.pool.first + 1;
    const start = this.cursor.get(s.cidr) ?? s.pool.first;
    for (let i = 0; i < size; i++) {
      const n = s.pool.first + ((start - s.pool.first + i) % size);
      const ip = intToIp(n);
      if (this.isFreeFor(ip, mac, now)) {
        this.cursor.set(s.cidr, n + 1 > s.pool.last ? s.pool.first : n + 1);
        return ip;
      }
    }
    return undefined;
  }

  inPool(s: Subnet, ip: string): boolean {
    if (!s.pool) return false;
    const n = ipToInt(ip);
    return n >= s.pool.first && n <= s.pool.last;
  }

  /** Records a lease; returns it together with any older lease of the same client it replaced. */
  put(lease: Lease): { saved: Lease; removed?: Lease } {
    const old = lease.mac ? this.byMac.get(lease.mac) : undefined;
    let removed: Lease | undefined;
    if (old && old.ip !== lease.ip) {
      this.byIp.delete(old.ip);
      removed = old;
    }
    const displaced = this.byIp.get(lease.ip);
    if (displaced?.mac && displaced.mac !== lease.mac) this.byMac.delete(displaced.mac);
    this.set(lease);
    return { saved: lease, ...(removed && { removed }) };
  }

  remove(ip: string): Lease | undefined {
    const l = this.byIp.get(ip);
    if (!l) return undefined;
    this.byIp.delete(ip);
    if (l.mac && this.byMac.get(l.mac) === l) this.byMac.delete(l.mac);
    return l;
  }

  private set(l: Lease): void {
    this.byIp.set(l.ip, l);
    if (l.mac) this.byMac.set(l.mac, l);
  }
}
