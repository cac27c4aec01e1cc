/**
 * Records of unknown MACs are bounded: per client address over HTTP (boot.discoverPerMinute:
 * beyond it the script is still served, and no row is made) and overall (boot.maxDiscovered:
 * the least recently seen unreserved `discovered` machines are deleted first; registered ones,
 * and ones an admin gave fields to, never). Over the real app with inject, and over a real
 * `edgeboot serve` with curl, its log and /metrics.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import t from 'tap';
import type { Mac } from '../../src/machines/mac.js';
import { testApp, type TestApp } from '../helpers/app.js';
import { startServer } from '../helpers/process.js';

const run = promisify(execFile);

/** A seeded xorshift: the same "random" MACs every run. */
function randomMacs(n: number, seed: number): Mac[] {
  let x = seed;
  const next = () => ((x ^= x << 13), (x ^= x >>> 17), (x ^= x << 5), x >>> 0);
  return Array.from({ length: n }, () => {
    const bytes = [next() & 0xff, next() & 0xff, next() & 0xff, next() & 0xff, next() & 0xff, next() & 0xff];
    bytes[0] = ((bytes[0] ?? 0) & 0xfe) | 0x02; // unicast, locally administered
    return bytes.map((b) => b.toString(16).padStart(2, '0')).join(':') as Mac;
  });
}

const hyphen = (mac: string) => mac.replaceAll(':', '-');

async function ipxe(ta: TestApp, mac: string, from: string) {
  return ta.app.inject({ method: 'GET', url: `/ipxe?mac=${hyphen(mac)}`, remoteAddress: from });
}

async function discovered(ta: TestApp): Promise<string[]> {
  return (await ta.store.listMachines({ state: 'discovered' })).map((m) => m.mac);
}

t.test('3,000 random MACs from one address make at most a minute of its rate in rows', async (t) => {
  const now = new Date('2026-03-01T00:00:00Z');
  const ta = await testApp(t, { now: () => now });
  const macs = randomMacs(3000, 0x0edb0015);
  t.equal(new Set(macs).size, 3000, '3,000 distinct MACs');
  const statuses = new Map<number, number>();
  const bodies = new Set<string>();
  for (const mac of macs) {
    const res = await ipxe(ta, mac, '10.9.8.7');
    statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
    bodies.add(res.body.replace(new RegExp(mac, 'g'), 'MAC').replace(new RegExp(hyphen(mac), 'g'), 'MAC'));
  }
  t.same([...statuses], [[200, 3000]], 'every request is answered with a script');
  t.equal(bodies.size, 1, 'the same unknown-machine script, recorded or not');
  t.match([...bodies][0] ?? '', /^#!ipxe/);
  const rows = await discovered(ta);
  t.equal(rows.length, 60, 'the default boot.discoverPerMinute, 60, rows; not 3,000');
  t.same(rows.sort(), macs.slice(0, 60).sort(), 'the first 60');
  t.same(ta.boot.discovery.stats.refused, { rate_limit: 2940 }, 'the rest counted');

  const other = await ipxe(ta, '02:00:00:00:00:99', '10.9.8.8');
  t.equal(other.statusCode, 200);
  t.ok((await discovered(ta)).includes('02:00:00:00:00:99'), 'another address has its own allowance');
  const again = await ipxe(ta, macs[5] as Mac, '10.9.8.7');
  t.equal(again.statusCode, 200, 'a recorded machine boots from an address out of allowance');
  t.same(ta.boot.discovery.stats.refused, { rate_limit: 2940 }, 'and spends none: it makes no record');
  now.setTime(now.getTime() + 60_000);
  const later = randomMacs(100, 0x5eed);
  for (const mac of later) await ipxe(ta, mac, '10.9.8.7');
  t.equal((await discovered(ta)).length, 61 + 60, 'a minute later: another minute of it');
});

t.test('beyond boot.maxDiscovered the least recently seen discovered go; registered and reserved ones stay', async (t) => {
  const now = new Date('2026-03-01T00:00:00Z');
  const tick = () => now.setTime(now.getTime() + 1000);
  const ta = await testApp(t, { now: () => now, config: { boot: { maxDiscovered: 5, discoverPerMinute: 0 } } });
  const put = (mac: string, body: Record<string, unknown>) => ta.app.inject({ method: 'PUT', url: `/api/v1/machines/${mac}`, headers: ta.auth, payload: body });
  t.equal((await put('52:54:00:00:00:01', { profile: 'local-disk' })).statusCode, 201, 'a registered machine, older than all');
  t.equal((await put('52:54:00:00:00:02', { hostname: 'kept' })).statusCode, 201, 'a discovered machine an admin named');
  t.equal((await put('52:54:00:00:00:03', { labels: { site: 'f1' } })).statusCode, 201, 'one an admin labelled');
  const u = Array.from({ length: 9 }, (_, i) => `02:00:00:00:01:0${i}`);
  for (const mac of u.slice(0, 8)) {
    tick();
    t.equal((await ipxe(ta, mac, '10.9.8.7')).statusCode, 200);
  }
  t.same(
    (await discovered(ta)).filter((m) => u.includes(m)),
    u.slice(3, 8),
    'U0..U2 pruned, oldest first',
  );
  t.same(await ta.store.listEvents(u[0] as Mac), [], 'their events went with them');
  tick();
  // Seen again (by DHCP: /ipxe from an address that is not the machine's updates nothing): now the most recent.
  await ta.boot.observeDhcp(u[3] as Mac, {}, { type: 'dhcp-offer', source: 'dhcp' });
  tick();
  await ipxe(ta, u[8] as string, '10.9.8.7');
  t.same(
    (await discovered(ta)).filter((m) => u.includes(m)),
    [u[3], u[5], u[6], u[7], u[8]],
    'by last seen: U4 went, U3 stayed',
  );

  // DHCP records unknown clients too (boot.observeDhcp), under the same cap.
  const d = ['02:00:00:00:02:00', '02:00:00:00:02:01', '02:00:00:00:02:02'] as Mac[];
  for (const mac of d) {
    tick();
    await ta.boot.observeDhcp(mac, { arch: 'x86_64' }, { type: 'dhcp-offer', source: 'dhcp' });
  }
  t.same(
    (await discovered(ta)).filter((m) => u.includes(m) || d.includes(m as Mac)),
    [u[3], u[8], ...d],
    'DHCP-made records count and prune the same way',
  );
  t.equal(ta.boot.discovery.stats.pruned, 7, 'every prune counted');
  t.equal((await ta.store.getMachine('52:54:00:00:00:01' as Mac))?.state, 'registered', 'the registered machine is never pruned');
  t.equal((await ta.store.getMachine('52:54:00:00:00:02' as Mac))?.hostname, 'kept', 'nor a discovered one with a host name');
  t.same((await ta.store.getMachine('52:54:00:00:00:03' as Mac))?.labels, { site: 'f1' }, 'nor one with labels');
});

t.test('a stream of new MACs prunes in batches: beyond maxDiscovered, down to 15/16 of it', async (t) => {
  const now = new Date('2026-03-01T00:00:00Z');
  const ta = await testApp(t, { now: () => now, config: { boot: { maxDiscovered: 32 } } });
  const macs = Array.from({ length: 40 }, (_, i) => `02:00:00:00:03:${i.toString(16).padStart(2, '0')}` as Mac);
  const sizes: number[] = [];
  for (const mac of macs) {
    now.setTime(now.getTime() + 1000);
    await ta.boot.observeDhcp(mac, {}, { type: 'dhcp-offer', source: 'dhcp' });
    sizes.push((await discovered(ta)).length);
  }
  t.same(sizes.slice(30), [31, 32, 30, 31, 32, 30, 31, 32, 30, 31], 'the 33rd, 36th and 39th records each prune 3, down to 30');
  t.equal(ta.boot.discovery.stats.pruned, 9);
  t.same(await discovered(ta), macs.slice(9), 'the 9 least recently seen went');
});

t.test('a real server: env settings, curl from 127.0.0.1, one log line per prune batch, /metrics', async (t) => {
  const srv = await startServer(t, { env: { EDGEBOOT_BOOT_DISCOVER_PER_MINUTE: '10', EDGEBOOT_BOOT_MAX_DISCOVERED: '4' } });
  const macs = randomMacs(30, 0xabcdef);
  const codes: string[] = [];
  const started = Date.now();
  for (const mac of macs) {
    const { stdout } = await run('curl', ['-sS', '--max-time', '5', '-o', '/dev/null', '-w', '%{http_code}', `${srv.url}/ipxe?mac=${hyphen(mac)}`]);
    codes.push(stdout);
  }
  const seconds = (Date.now() - started) / 1000;
  t.same([...new Set(codes)], ['200'], 'every boot answered');
  const list = await run('curl', ['-sS', '--max-time', '5', '-H', `authorization: Bearer ${srv.token}`, `${srv.url}/api/v1/machines?state=discovered`]);
  const rows = (JSON.parse(list.stdout) as { machines: { mac: string }[] }).machines;
  t.equal(rows.length, 4, 'boot.maxDiscovered=4 (EDGEBOOT_BOOT_MAX_DISCOVERED) rows left');
  const metrics = (await run('curl', ['-sS', '--max-time', '5', `${srv.url}/metrics`])).stdout;
  const refused = Number(/^edgeboot_discovered_refused_total\{reason="rate_limit"\} (\d+)$/m.exec(metrics)?.[1] ?? 0);
  const pruned = Number(/^edgeboot_discovered_pruned_total (\d+)$/m.exec(metrics)?.[1] ?? -1);
  const created = 30 - refused;
  // EDGEBOOT_BOOT_DISCOVER_PER_MINUTE=10: a burst of 10, then one every 6 s of the loop.
  t.ok(created >= 10 && created <= 10 + Math.ceil(seconds / 6), `${created} records made in ${seconds.toFixed(1)} s, ${refused} refused`);
  t.equal(pruned, created - 4, `${pruned} pruned: all made but the 4 kept`);
  const batches = srv.logLines.filter((l) => l.msg.startsWith('least recently seen discovered machines pruned'));
  t.equal(batches.length, pruned, 'one log line per prune batch (one machine each here)');
  t.ok(
    batches.every((l) => Array.isArray(l.macs) && l.pruned === 1),
    'naming the MACs it deleted',
  );
});
