import type { FastifyPluginAsync } from 'fastify';
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import type { CacheStats } from '../../cache/artifacts.js';
import type { DhcpStats } from '../../dhcp/server.js';
import type { TftpStats } from '../../tftp/server.js';
import type { PrecacheStats } from '../../precache/service.js';
import type { DiscoveryStats } from '../../boot/discovery.js';

/** The protocol servers' counters. */
export interface ServerSources {
  /** The DHCP server's counters; undefined when DHCP is off. */
  dhcp: () => DhcpStats | undefined;
  dhcpLeases: () => number;
  /** The TFTP server's counters; undefined when TFTP is off. */
  tftp?: () => TftpStats | undefined;
}

export interface MetricsSources extends Partial<ServerSources> {
  cache?: () => CacheStats | undefined;
  precache?: () => PrecacheStats | undefined;
  /** Records of unknown MACs pruned and refused (boot.maxDiscovered, boot.discoverPerMinute). */
  discovery?: () => DiscoveryStats | undefined;
  /** How many machines are in each state, read from the store at scrape time. */
  machineStates?: () => Promise<Record<string, number>>;
}

/**
 * Prometheus metrics. Protocol servers keep plain counters on their hot paths; they are read
 * into prom-client here, at scrape time, so a packet costs an object increment and no more.
 */
export function createMetricsRegistry(src: MetricsSources): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'edgeboot_' });
  if (src.dhcp) addServerMetrics(registry, { dhcp: src.dhcp, dhcpLeases: src.dhcpLeases ?? (() => 0), ...(src.tftp && { tftp: src.tftp }) });

  const cache = countersOf(registry, src.cache ?? (() => undefined));
  cache.plain('edgeboot_cache_hits_total', 'artifact requests answered from the cache', (s) => s.hits);
  cache.plain('edgeboot_cache_misses_total', 'artifact requests that needed the upstream (a new or joined download)', (s) => s.misses);
  cache.plain('edgeboot_cache_downloads_total', 'upstream downloads started', (s) => s.downloads);
  cache.plain('edgeboot_cache_upstream_bytes_total', 'body bytes received from upstreams', (s) => s.upstreamBytes);
  cache.plain('edgeboot_cache_served_bytes_total', 'body bytes of cached artifacts sent to clients', (s) => s.servedBytes);
  cache.plain('edgeboot_cache_evictions_total', 'entries evicted to stay within cache.maxBytes', (s) => s.evictions);
  cache.plain('edgeboot_assets_busy_total', 'large artifact transfers refused with 503 and Retry-After (cache.maxTransfers)', (s) => s.busy);
  cache.gauge('edgeboot_assets_active_large_transfers', 'large artifact transfers running now', (s) => s?.activeTransfers ?? 0);

  const precache = countersOf(registry, src.precache ?? (() => undefined));
  precache.labelled(
    'edgeboot_precache_runs_ended_total',
    'precache runs ended, by how (precached, job-failed, plan-refused, heartbeat-lost, boot-loop)',
    'end',
    (s) => s.ended,
  );
  precache.plain('edgeboot_precache_plans_total', 'precache plans served to live environments', (s) => s.plans);
  const discovery = countersOf(registry, src.discovery ?? (() => undefined));
  discovery.plain(
    'edgeboot_discovered_pruned_total',
    'discovered machines deleted, least recently seen first, to stay within boot.maxDiscovered',
    (s) => s.pruned,
  );
  discovery.labelled(
    'edgeboot_discovered_refused_total',
    'boots of unknown MACs that made no record, by reason (rate_limit: boot.discoverPerMinute of the address)',
    'reason',
    (s) => s.refused,
  );
  const states = src.machineStates;
  if (states) {
    new Gauge({
      name: 'edgeboot_machines',
      help: 'machines, by state',
      labelNames: ['state'],
      registers: [registry],
      async collect() {
        const counts = await states();
        this.reset();
        for (const [state, n] of Object.entries(counts)) this.set({ state }, n);
      },
    });
  }
  return registry;
}

/**
 * The DHCP and TFTP counters, on a registry made before the servers: the app (and its
 * /metrics route) is built before them, as DHCP and TFTP hand out the port HTTP bound.
 */
export function addServerMetrics(registry: Registry, src: ServerSources): void {
  const dhcp = countersOf(registry, src.dhcp);
  dhcp.labelled('edgeboot_dhcp_received_total', 'DHCP requests received, by message type', 'type', (s) => s.received);
  dhcp.labelled('edgeboot_dhcp_sent_total', 'DHCP replies sent, by message type', 'type', (s) => s.sent);
  dhcp.labelled('edgeboot_dhcp_dropped_total', 'DHCP packets dropped, by reason', 'reason', (s) => s.dropped);
  dhcp.plain('edgeboot_dhcp_ignored_total', 'DHCP requests deliberately not answered (proxy mode, other server chosen, ...)', (s) => s.ignored);
  dhcp.gauge('edgeboot_dhcp_leases', 'DHCP leases held in memory (offered, bound, declined)', () => src.dhcpLeases());

  const tftp = countersOf(registry, src.tftp ?? (() => undefined));
  tftp.labelled('edgeboot_tftp_transfers_total', 'TFTP transfers ended, by outcome (complete, probe, timeout, ...)', 'outcome', (s) => s.transfers);
  tftp.labelled('edgeboot_tftp_refused_total', 'TFTP requests refused with an error, by reason', 'reason', (s) => s.refused);
  tftp.labelled('edgeboot_tftp_dropped_total', 'TFTP packets dropped at the listener, by reason', 'reason', (s) => s.dropped);
  tftp.labelled('edgeboot_tftp_ignored_total', 'TFTP packets a transfer ignored (duplicate or stale ACKs, garbage), by reason', 'reason', (s) => s.ignored);
  tftp.plain('edgeboot_tftp_requests_total', 'TFTP read and write requests received', (s) => s.requests);
  tftp.plain('edgeboot_tftp_sent_bytes_total', 'TFTP DATA bytes sent, headers and resends included', (s) => s.bytesSent);
  tftp.plain('edgeboot_tftp_sent_blocks_total', 'TFTP DATA packets sent, resends included', (s) => s.blocksSent);
  tftp.gauge('edgeboot_tftp_active_transfers', 'TFTP transfers running now', (s) => s?.active ?? 0);
}

/** Metrics read from one server's stats object at scrape time (nothing when it is off). */
function countersOf<S>(registry: Registry, stats: () => S | undefined) {
  return {
    labelled(name: string, help: string, label: string, pick: (s: S) => Record<string, number | undefined>): void {
      new Counter({
        name,
        help,
        labelNames: [label],
        registers: [registry],
        collect() {
          const s = stats();
          this.reset();
          if (!s) return;
          for (const [k, v] of Object.entries(pick(s))) if (v) this.inc({ [label]: k }, v);
        },
      });
    },
    plain(name: string, help: string, pick: (s: S) => number): void {
      new Counter({
        name,
        help,
        registers: [registry],
        collect() {
          const s = stats();
          this.reset();
          if (s) this.inc(pick(s));
        },
      });
    },
    gauge(name: string, help: string, read: (s: S | undefined) => number): void {
      new Gauge({
        name,
        help,
        registers: [registry],
        collect() {
          this.set(read(stats()));
        },
      });
    },
  };
}

export const metricsRoutes: FastifyPluginAsync<{ registry: Registry }> = async (app, { registry }) => {
  app.get('/metrics', { schema: { summary: 'Prometheus metrics', tags: ['health'], produces: ['text/plain'] } }, async (_req, reply) => {
    reply.type(registry.contentType);
    return registry.metrics();
  });
};
