/**
 * What the overview warns about that no record holds: BMCs that stopped answering and upstreams
 * that failed, as the timeline feed tells them. Kept in memory and bounded: a BMC until it answers
 * again (or its machine is deleted), an upstream failure for an hour. A restart starts clean.
 */
import type { TimelineChange, TimelineFeed } from '../machines/timeline-feed.js';

const FORGET_MS = 60 * 60_000;
const MAX_KEPT = 1000;

export interface Alerting {
  bmcUnreachable: { mac: string; since: string }[];
  upstreamFailures: { at: string; what: string }[];
}

export class AlertWatch {
  private readonly unreachable = new Map<string, string>();
  private readonly upstream: { at: string; what: string }[] = [];

  constructor(
    feed: TimelineFeed,
    private readonly now: () => Date = () => new Date(),
  ) {
    feed.subscribe((c) => this.take(c));
  }

  private take(c: TimelineChange): void {
    for (const e of c.events) {
      if (e.type === 'bmc-unreachable') {
        if (!this.unreachable.has(c.mac) && this.unreachable.size < MAX_KEPT) this.unreachable.set(c.mac, e.time);
      } else if (e.source === 'bmc' && e.type !== 'bmc-error') {
        this.unreachable.delete(c.mac);
      }
      const status = typeof e.data?.status === 'number' ? e.data.status : 0;
      if (e.type === 'asset-failed' && status >= 502) {
        this.upstream.push({ at: e.time, what: e.message ?? `${String(e.data?.profile)}/${String(e.data?.artifact)}` });
        if (this.upstream.length > 100) this.upstream.shift();
      }
    }
    if (c.deleted === true) this.unreachable.delete(c.mac);
  }

  current(): Alerting {
    const since = this.now().getTime() - FORGET_MS;
    while (this.upstream[0] && Date.parse(this.upstream[0].at) < since) this.upstream.shift();
    return {
      bmcUnreachable: [...this.unreachable].map(([mac, at]) => ({ mac, since: at })),
      upstreamFailures: [...this.upstream].reverse(),
    };
  }
}
