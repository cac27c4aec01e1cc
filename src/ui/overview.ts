/** The overview's figures: machines per state, what is booting, DHCP pool use, the cache's disk, builds and pulls, alerts. */
import { statfs } from 'node:fs/promises';
import type { Machine } from '../machines/model.js';
import { MACHINE_STATES } from '../machines/state.js';
import { ipToInt } from '../net/ipv4.js';
import type { Lease, Store } from '../store/store.js';
import type { Alerting } from './alerts.js';

export interface PoolUse {
  cidr: string;
  first: string;
  last: string;
  size: number;
  used: number;
}

export interface OverviewSources {
  store: Store;
  leases: () => readonly Lease[];
  subnets: readonly { cidr: string; pool?: [string, string] }[];
  /** dhcp.mode is proxy and boot.unknownMachines answers machines nobody registered. */
  proxyAnswersUnknown: boolean;
  cacheDir: string | undefined;
  alerts: () => Alerting;
  now: () => Date;
}

/** The share of the cache's file system in use at which the overview warns. */
const DISK_WARN = 0.9;

export function poolUse(subnets: OverviewSources['subnets'], leases: readonly Lease[], now: number): PoolUse[] {
  return subnets.flatMap((s) => {
    if (!s.pool) return [];
    const [first, last] = s.pool;
    const lo = ipToInt(first);
    const hi = ipToInt(last);
    // Offered, bound or declined (quarantined): an address not free to hand out until it expires.
    const used = leases.filter((l) => l.expiresAt > now && ipToInt(l.ip) >= lo && ipToInt(l.ip) <= hi).length;
    return [{ cidr: s.cidr, first, last, size: hi - lo + 1, used }];
  });
}

async function disk(dir: string | undefined): Promise<{ total: number; free: number } | undefined> {
  if (dir === undefined) return undefined;
  const s = await statfs(dir).catch(() => undefined);
  return s && { total: s.blocks * s.bsize, free: s.bavail * s.bsize };
}

export async function overviewData(o: OverviewSources) {
  const now = o.now();
  const counts = await o.store.countMachinesByState();
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  const booting: Machine[] = [];
  for (const state of ['precaching', 'installing'] as const) {
    booting.push(...(await o.store.searchMachines({ state, sort: 'lastSeen', descending: true, offset: 0, limit: 10 })).machines);
  }
  const day = now.getTime() - 24 * 3600_000;
  const failed = (await o.store.searchMachines({ state: 'failed', sort: 'lastSeen', descending: true, offset: 0, limit: 200 })).machines.filter(
    (m) => Date.parse(m.updatedAt) >= day,
  );
  const discovered = counts.discovered ?? 0;
  const fs = await disk(o.cacheDir);
  const alerts = o.alerts();
  return {
    total,
    states: MACHINE_STATES.map((s) => ({ state: s, count: counts[s] ?? 0 })),
    booting,
    pools: poolUse(o.subnets, o.leases(), now.getTime()),
    disk: fs,
    alerts: {
      failed,
      bmcUnreachable: alerts.bmcUnreachable,
      upstreamFailures: alerts.upstreamFailures,
      diskFull: fs !== undefined && fs.total > 0 && (fs.total - fs.free) / fs.total >= DISK_WARN,
      proxyUnknown: o.proxyAnswersUnknown && discovered > 0 ? discovered : 0,
    },
  };
}
