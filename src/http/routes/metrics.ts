import type { FastifyPluginAsync } from 'fastify';
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import type { DhcpStats } from '../../dhcp/server.js';

export interface MetricsSources {
  /** The DHCP server's counters; undefined when DHCP is off. */
  dhcp: () => DhcpStats | undefined;
  dhcpLeases: () => number;
}

/**
 * Prometheus metrics. Protocol servers keep plain counters on their hot paths; they are read
 * into prom-client here, at scrape time, so a packet costs an object increment and no more.
 */
export function createMetricsRegistry(src: MetricsSources): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'edgeboot_' });
  const fromStats = (name: string, help: string, label: string, pick: (s: DhcpStats) => Record<string, number | undefined>) =>
    new Counter({
      name,
      help,
      labelNames: [label],
      registers: [registry],
      collect() {
        const s = src.dhcp();
        this.reset();
        if (!s) return;
        for (const [k, v] of Object.entries(pick(s))) if (v) this.inc({ [label]: k }, v);
      },
    });
  fromStats('edgeboot_dhcp_received_total', 'DHCP requests received, by message type', 'type', (s) => s.received);
  fromStats('edgeboot_dhcp_sent_total', 'DHCP replies sent, by message type', 'type', (s) => s.sent);
  fromStats('edgeboot_dhcp_dropped_total', 'DHCP packets dropped, by reason', 'reason', (s) => s.dropped);
  new Counter({
    name: 'edgeboot_dhcp_ignored_total',
    help: 'DHCP requests deliberately not answered (proxy mode, other server chosen, ...)',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(src.dhcp()?.ignored ?? 0);
    },
  });
  new Gauge({
    name: 'edgeboot_dhcp_leases',
    help: 'DHCP leases held in memory (offered, bound, declined)',
    registers: [registry],
    collect() {
      this.set(src.dhcpLeases());
    },
  });
  return registry;
}

export const metricsRoutes: FastifyPluginAsync<{ registry: Registry }> = async (app, { registry }) => {
  app.get('/metrics', { schema: { summary: 'Prometheus metrics', tags: ['health'], produces: ['text/plain'] } }, async (_req, reply) => {
    reply.type(registry.contentType);
    return registry.metrics();
  });
};
