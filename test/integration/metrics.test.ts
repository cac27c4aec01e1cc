import Fastify from 'fastify';
import t from 'tap';
import type { DhcpStats } from '../../src/dhcp/server.js';
import { createMetricsRegistry, metricsRoutes } from '../../src/http/routes/metrics.js';

t.test('/metrics exposes the DHCP counters per message type and drop reason, read at scrape time', async (t) => {
  const stats: DhcpStats = { received: { discover: 3, request: 2 }, sent: { offer: 3, ack: 2 }, dropped: { bad_magic: 5, short: 1 }, ignored: 4 };
  let leases = 7;
  const registry = createMetricsRegistry({ dhcp: () => stats, dhcpLeases: () => leases });
  const app = Fastify();
  await app.register(metricsRoutes, { registry });
  t.teardown(() => app.close());

  let res = await app.inject({ url: '/metrics' });
  t.equal(res.statusCode, 200);
  t.match(res.headers['content-type'], /^text\/plain/);
  t.match(res.body, /edgeboot_dhcp_received_total\{type="discover"\} 3/);
  t.match(res.body, /edgeboot_dhcp_sent_total\{type="ack"\} 2/);
  t.match(res.body, /edgeboot_dhcp_dropped_total\{reason="bad_magic"\} 5/);
  t.match(res.body, /edgeboot_dhcp_ignored_total 4/);
  t.match(res.body, /edgeboot_dhcp_leases 7/);
  t.match(res.body, /# TYPE edgeboot_dhcp_received_total counter/);
  t.match(res.body, /edgeboot_process_resident_memory_bytes/);

  stats.received.discover = 10;
  stats.dropped.option_overrun = 2;
  leases = 8;
  res = await app.inject({ url: '/metrics' });
  t.match(res.body, /edgeboot_dhcp_received_total\{type="discover"\} 10/, 'a later scrape sees the new counts');
  t.match(res.body, /edgeboot_dhcp_dropped_total\{reason="option_overrun"\} 2/);
  t.match(res.body, /edgeboot_dhcp_leases 8/);
});

t.test('/metrics with DHCP off has no DHCP series values', async (t) => {
  const registry = createMetricsRegistry({ dhcp: () => undefined, dhcpLeases: () => 0 });
  const app = Fastify();
  await app.register(metricsRoutes, { registry });
  t.teardown(() => app.close());
  const res = await app.inject({ url: '/metrics' });
  t.equal(res.statusCode, 200);
  t.notMatch(res.body, /edgeboot_dhcp_received_total\{/);
  t.match(res.body, /edgeboot_dhcp_ignored_total 0/);
});

t.test('/metrics counts how precache runs ended and the machines in each state', async (t) => {
  const precache = { ended: { precached: 2, 'job-failed': 1 } as Record<string, number>, plans: 3 };
  let states: Record<string, number> = { registered: 1, precaching: 2, failed: 0 };
  const registry = createMetricsRegistry({ dhcp: () => undefined, dhcpLeases: () => 0, precache: () => precache, machineStates: async () => states });
  const app = Fastify();
  await app.register(metricsRoutes, { registry });
  t.teardown(() => app.close());
  let res = await app.inject({ url: '/metrics' });
  t.match(res.body, /edgeboot_precache_runs_ended_total\{end="precached"\} 2/);
  t.match(res.body, /edgeboot_precache_runs_ended_total\{end="job-failed"\} 1/);
  t.match(res.body, /edgeboot_precache_plans_total 3/);
  t.match(res.body, /edgeboot_machines\{state="precaching"\} 2/);
  t.match(res.body, /edgeboot_machines\{state="failed"\} 0/, 'a state with no machine reads 0');
  precache.ended['heartbeat-lost'] = 1;
  states = { registered: 0, precaching: 1, failed: 1 };
  res = await app.inject({ url: '/metrics' });
  t.match(res.body, /edgeboot_precache_runs_ended_total\{end="heartbeat-lost"\} 1/, 'a later scrape sees the new ends');
  t.match(res.body, /edgeboot_machines\{state="failed"\} 1/, 'and the states as they are now');
});
