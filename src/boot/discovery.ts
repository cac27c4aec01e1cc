/**
 * Bounds on the `discovered` records that boots of unknown MACs leave. Anyone on the
 * provisioning network can ask `/ipxe?mac=<anything>`, so without bounds every random MAC
 * would be a row: per source address, only `boot.discoverPerMinute` new records a minute over
 * HTTP (a token bucket; beyond it the script is served and no row is made), and overall at
 * most `boot.maxDiscovered` of them, the least recently seen pruned first.
 */
import type { Logger } from 'pino';
import type { Machine } from '../machines/model.js';
import type { MachineChange, Store } from '../store/store.js';

export interface DiscoveryOptions {
  /** New records one source address may make a minute over HTTP; 0: no limit. */
  perMinute: number;
  /** Unreserved `discovered` records kept; 0: no cap. */
  maxDiscovered: number;
  /** Milliseconds, as Date.now(). */
  now?: () => number;
  /** Addresses whose buckets are remembered; beyond, the least recently used is forgotten. */
  maxSources?: number;
}

export interface DiscoveryStats {
  /** Records deleted to stay within boot.maxDiscovered. */
  pruned: number;
  /** New records not made, by why (`rate_limit`: the source's boot.discoverPerMinute). */
  refused: Record<string, number>;
}

interface Bucket {
  tokens: number;
  at: number;
}

export class DiscoveryLimiter {
  readonly stats: DiscoveryStats = { pruned: 0, refused: {} };
  private readonly buckets = new Map<string, Bucket>();
  private readonly now: () => number;
  private readonly maxSources: number;

  constructor(private readonly opts: DiscoveryOptions) {
    this.now = opts.now ?? Date.now;
    this.maxSources = opts.maxSources ?? 10_000;
  }

  /**
   * Takes one new record from `source`'s allowance: a bucket of `perMinute` that refills
   * continuously, so a burst of a whole minute's worth passes and then one every 60/perMinute s.
   */
  allowNew(source: string): boolean {
    const { perMinute } = this.opts;
    if (perMinute === 0) return true;
    const now = this.now();
    const b = this.buckets.get(source);
    const tokens = b ? Math.min(perMinute, b.tokens + ((now - b.at) * perMinute) / 60_000) : perMinute;
    // Re-inserted so that Map order is least recently used first.
    this.buckets.delete(source);
    if (tokens < 1) {
      this.buckets.set(source, { tokens, at: now });
      this.stats.refused.rate_limit = (this.stats.refused.rate_limit ?? 0) + 1;
      return false;
    }
    this.buckets.set(source, { tokens: tokens - 1, at: now });
    // Forgetting a source gives it a full bucket again: only ever the least recently seen.
    for (const oldest of this.buckets.keys()) {
      if (this.buckets.size <= this.maxSources) break;
      this.buckets.delete(oldest);
    }
    return true;
  }

  /** A gate for one store change: its creation of a record goes through `allow` (see CreationGate). */
  gate(allow: () => boolean = () => true): CreationGate {
    return new CreationGate(allow);
  }

  /**
   * After a record was made: beyond boot.maxDiscovered, the least recently seen go, down to
   * 15/16 of it, so that a stream of new MACs prunes (a sort of every record) once in
   * max/16 records rather than at each; logged once per batch.
   */
  async cap(store: Pick<Store, 'pruneDiscovered'>, log: Logger): Promise<void> {
    const max = this.opts.maxDiscovered;
    if (max === 0) return;
    const pruned = await store.pruneDiscovered(max, max - Math.floor(max / 16));
    if (pruned.length === 0) return;
    this.stats.pruned += pruned.length;
    log.info({ pruned: pruned.length, macs: pruned.slice(0, 16), maxDiscovered: max }, 'least recently seen discovered machines pruned (boot.maxDiscovered)');
  }
}

/** What a gated change did about a record for a MAC nobody has: nothing to make, made, or refused. */
export type Creation = 'none' | 'made' | 'refused';

/**
 * Admits a store change of one machine (store.mutateMachine, store.updateMachine): a save
 * that would create a record, where there was none, happens only if `allow()` says so;
 * otherwise nothing is written, and the caller serves from the machine it meant to save. The
 * store may run a change again on a fresh row (optimistic concurrency): `allow` is asked once
 * per gate, so a retry spends no second token.
 */
export class CreationGate {
  private allowed: boolean | undefined;

  constructor(private readonly allow: () => boolean) {}

  admit(cur: Machine | undefined, change: MachineChange): { change: MachineChange; creation: Creation } {
    if (cur !== undefined || change.kind !== 'save') return { change, creation: 'none' };
    this.allowed ??= this.allow();
    return this.allowed ? { change, creation: 'made' } : { change: { kind: 'keep' }, creation: 'refused' };
  }
}
