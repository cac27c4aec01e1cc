/**
 * The address pools of full mode, in memory: the DHCP server is the only writer of leases, so
 * memory is authoritative and the store is its journal (every bound lease is persisted before
 * the ACK leaves). No I/O here: every change is returned for the caller to persist.
 */
export type LeaseState = 'offered' | 'bound' | 'declined';

export interface Lease {
  ip: string;
  /** Empty for a declined (quarantined) address. */
  mac: string;
  state: LeaseState;
  /** Milliseconds since the epoch. */
  expiresAt: number;
  hostname?: string;
}

export const ipToInt = (ip: string): number => ip.split('.').reduce((n, p) => n * 256 + (Number(p) & 255), 0) >>> 0;
export const intToIp = (n: number): string => [24, 16, 8, 0].map((s) => (n >>> s) & 255).join('.');

export interface Subnet {
  cidr: string;
  network: number;
  mask: number;
  pool?: { first: number; last: number };
  router?: string;
  dns?: string[];
  domain?: string;
  leaseSeconds: number;
}

export function parseSubnet(s: { cidr: string; pool?: [string, string]; router?: string; dns?: string[]; domain?: string; leaseSeconds: number }): Subnet {
  const [net, bits] = s.cidr.split('/');
  const prefix = Number(bits);
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  return {
    cidr: s.cidr,
    network: (ipToInt(net ?? '0.0.0.0') & mask) >>> 0,
    mask,
    ...(s.pool && { pool: { first: ipToInt(s.pool[0]), last: ipToInt(s.pool[1]) } }),
    ...(s.router && { router: s.router }),
    ...(s.dns && { dns: s.dns }),
    ...(s.domain && { domain: s.domain }),
    leaseSeconds: s.leaseSeconds,
  };
}

export const inSubnet = (s: Subnet, ip: string): boolean => ((ipToInt(ip) & s.mask) >>> 0) === s.network;
export const maskText = (s: Subnet): string => intToIp(s.mask);

/** How long an offered address stays held for the client that was offered it. */
export const OFFER_HOLD_MS = 60_000;

export class LeasePool {
  private readonly byIp = new Map<string, Lease>();
  private readonly byMac = new Map<string, Lease>();
  /** Next address to try per subnet: allocation is a bounded scan from here, never a loop. */
  private readonly cursor = new Map<string, number>();

  constructor(leases: Iterable<Lease> = []) {
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
    if (displaced && displaced.mac && displaced.mac !== lease.mac) this.byMac.delete(displaced.mac);
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
