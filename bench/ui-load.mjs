#!/usr/bin/env node
// The Node half of bench/ui.sh (run that; this is not a benchmark on its own).
//
//   node bench/ui-load.mjs seed DB        # MACHINES, EVENTS, MAX_EVENTS: fills the store, prints key=value lines
//   node bench/ui-load.mjs sse            # BASE, SESSION, TOKEN, PID, STREAMS, RATE, SSE_SECONDS, MACHINES
//
// seed: MACHINES detailed machines (seed-store.mjs) and EVENTS events over them, 40–160 a
// machine (100 on average), one machine (node-5, installed) with MAX_EVENTS (the most the store
// keeps: 5000) and one (node-5003, installed) with exactly 100.
//
// sse: STREAMS dashboards' `GET /ui/events` held open at once (node:http, one socket each, the
// session cookie SESSION), then a writer posting RATE events a second for SSE_SECONDS seconds
// (`POST /api/v1/machines/<mac>/events`, Bearer TOKEN, awaited one after the other on the
// schedule) over 100 machines in rotation. Every stream must get change messages naming every
// machine posted to. The server's VmRSS (/proc/PID/status) is sampled every 250 ms and VmHWM
// is reset (clear_refs 5) when the phase begins; its CPU time (utime + stime) is read at each
// step. Prints key=value lines. Bounded: the writer stops at RATE × SSE_SECONDS events or
// SSE_SECONDS + 30 s, whichever comes first; every wait has a deadline.
import { readFileSync, writeFileSync } from 'node:fs';
import { Agent, get } from 'node:http';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { benchMachine, macOf, seedStore } from './seed-store.mjs';

const num = (name, fallback) => {
  const v = Number(process.env[name] ?? fallback);
  if (!Number.isFinite(v) || v < 0) throw new Error(`${name} must be a number ≥ 0`);
  return v;
};
const [command, arg] = process.argv.slice(2);
const out = (key, value) => console.log(`${key}=${value}`);

if (command === 'seed') {
  const machines = num('MACHINES', 10_000);
  const events = num('EVENTS', 1_000_000);
  const maxEvents = num('MAX_EVENTS', 5000);
  const [most, typical] = [5, 5003].map((i) => Math.min(i, machines - 1));
  const rest = Math.max(1, machines - 2);
  const average = Math.max(0, events - maxEvents - 100) / rest;
  // 0.4 to 1.6 times the average, spread by a fixed hash of i; then ±1 in rotation until the sum is EVENTS.
  const counts = Array.from({ length: machines }, (_, i) => Math.round(average * (0.4 + (1.2 * ((i * 7919) % 1000)) / 999)));
  counts[most] = maxEvents;
  counts[typical] = 100;
  let diff = events - counts.reduce((a, b) => a + b, 0);
  for (let i = 0; diff !== 0 && i < machines * 200; i++) {
    const j = i % machines;
    if (j === most || j === typical) continue;
    const d = Math.sign(diff);
    if (counts[j] + d < 1 || counts[j] + d > maxEvents) continue;
    counts[j] += d;
    diff -= d;
  }
  const now = Date.now();
  const r = seedStore(arg, { machines, machine: (i) => benchMachine(i, { detailed: true, now }), events: counts, now });
  out('seeded_machines', r.machines);
  out('seeded_events', r.events);
  out('seed_seconds', r.seconds.toFixed(1));
  out('mac_most', macOf(most));
  out('mac_most_events', counts[most]);
  out('mac_typical', macOf(typical));
  out('mac_typical_events', counts[typical]);
} else if (command === 'sse') {
  await sse();
} else {
  console.error('usage: ui-load.mjs seed DB | sse');
  process.exit(2);
}

async function sse() {
  const base = process.env.BASE ?? 'http://127.0.0.1:18292';
  const session = process.env.SESSION ?? '';
  const token = process.env.TOKEN ?? '';
  const pid = num('PID', 0);
  const streams = num('STREAMS', 200);
  const rate = num('RATE', 50);
  const seconds = num('SSE_SECONDS', 20);
  const machines = num('MACHINES', 10_000);
  if (!session || !token || !pid) throw new Error('SESSION, TOKEN and PID are needed');
  setTimeout(
    () => {
      console.error('ui-load sse: gave up');
      process.exit(1);
    },
    (seconds + 120) * 1000,
  ).unref();

  const status = () => {
    try {
      return readFileSync(`/proc/${pid}/status`, 'utf8');
    } catch {
      console.error(`ui-load sse: the server (pid ${pid}) is gone`);
      process.exit(1);
    }
  };
  const kib = (field) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status())?.[1] ?? NaN);
  const mib = (k) => (k / 1024).toFixed(1);
  /** The server's CPU ms so far (utime + stime at 100 ticks a second). */
  const cpuMs = () => {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(f[11]) + Number(f[12])) * 10;
  };
  let peak = 0;
  const sampler = setInterval(() => (peak = Math.max(peak, kib('VmRSS'))), 250);

  const rssBefore = kib('VmRSS');
  writeFileSync(`/proc/${pid}/clear_refs`, '5');
  const cpu0 = cpuMs();
  const t0 = performance.now();

  // The dashboards: one socket each, as separate browsers would hold them.
  const agent = new Agent({ keepAlive: false, maxSockets: Infinity });
  const posted = new Map(); // event id -> ms when its POST was sent
  const lastSent = new Map(); // mac -> ms when its last POST was sent (a message can beat the POST's answer)
  const macsPosted = new Set();
  const dashboards = [];
  const opened = [];
  for (let s = 0; s < streams; s++) {
    const d = { messages: 0, bytes: 0, macs: new Set(), latencies: [], buffer: '', res: undefined, req: undefined };
    dashboards.push(d);
    opened.push(
      new Promise((resolve, reject) => {
        d.req = get(`${base}/ui/events`, { agent, headers: { cookie: `edgeboot_ui=${session}`, accept: 'text/event-stream' } }, (res) => {
          if (res.statusCode !== 200) return reject(new Error(`stream ${s}: HTTP ${res.statusCode}`));
          d.res = res;
          res.setEncoding('utf8');
          res.on('data', (chunk) => {
            d.bytes += chunk.length;
            d.buffer += chunk;
            let end;
            while ((end = d.buffer.indexOf('\n\n')) >= 0) {
              const message = d.buffer.slice(0, end);
              d.buffer = d.buffer.slice(end + 2);
              if (message.startsWith('retry:')) resolve();
              if (!message.startsWith('event: change\n')) continue;
              d.messages++;
              const at = performance.now();
              const batch = JSON.parse(message.slice(message.indexOf('data: ') + 6));
              for (const [mac, m] of Object.entries(batch.machines)) {
                d.macs.add(mac);
                const sent = posted.get(m.lastEventId) ?? lastSent.get(mac);
                if (sent !== undefined) d.latencies.push(at - sent);
              }
            }
          });
          res.on('error', () => {});
        });
        d.req.on('error', reject);
      }),
    );
  }
  await Promise.race([
    Promise.all(opened),
    sleep(30_000, undefined, { ref: false }).then(() => Promise.reject(new Error('the streams did not all open in 30 s'))),
  ]);
  const openMs = performance.now() - t0;
  await sleep(1000);
  const rssOpen = kib('VmRSS');
  const cpuOpen = cpuMs();

  // The writer: RATE events a second on a fixed schedule, each POST awaited.
  const total = Math.round(rate * seconds);
  const w0 = performance.now();
  const deadline = w0 + (seconds + 30) * 1000;
  const postMs = [];
  let failed = 0;
  let n = 0;
  for (; n < total && performance.now() < deadline; n++) {
    const wait = w0 + (n * 1000) / rate - performance.now();
    if (wait > 0) await sleep(wait);
    const i = (n * 97) % Math.min(100, machines);
    const mac = macOf(Math.floor((i * machines) / Math.min(100, machines)));
    const sent = performance.now();
    lastSent.set(mac, sent);
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), 10_000);
    try {
      const res = await fetch(`${base}/api/v1/machines/${mac}/events`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          type: 'precache-progress',
          message: `bench ${n}`,
          data: { step: 'images', bytesDone: n * 1_048_576, bytesTotal: 64 * 2 ** 30 },
        }),
        signal: abort.signal,
      });
      const body = await res.json();
      if (res.status !== 201) throw new Error(`HTTP ${res.status}`);
      for (const e of body.events) posted.set(e.id, sent);
      macsPosted.add(mac);
    } catch {
      failed++;
    } finally {
      clearTimeout(timer);
    }
    postMs.push(performance.now() - sent);
  }
  const writeSeconds = (performance.now() - w0) / 1000;
  // The last batch goes out within one flush interval (500 ms).
  await sleep(1500);
  const cpuWrite = cpuMs();
  const rssPeak = Math.max(peak, kib('VmRSS'));
  const hwm = kib('VmHWM');

  for (const d of dashboards) d.req.destroy();
  await sleep(2000);
  clearInterval(sampler);
  const rssAfter = kib('VmRSS');
  const cpuEnd = cpuMs();

  const sorted = (xs) => [...xs].sort((a, b) => a - b);
  const pick = (xs, q) => (xs.length ? xs[Math.min(xs.length - 1, Math.ceil(q * xs.length) - 1)] : NaN);
  const latencies = sorted(dashboards.flatMap((d) => d.latencies));
  const complete = dashboards.filter((d) => d.messages > 0 && [...macsPosted].every((m) => d.macs.has(m))).length;
  const messages = sorted(dashboards.map((d) => d.messages));
  out('streams', streams);
  out('streams_open_ms', openMs.toFixed(0));
  out('streams_complete', complete);
  out('messages_min', messages[0]);
  out('messages_median', pick(messages, 0.5));
  out('messages_max', messages.at(-1));
  out('stream_kib_median', (pick(sorted(dashboards.map((d) => d.bytes)), 0.5) / 1024).toFixed(1));
  out('posted', n - failed);
  out('post_failed', failed);
  out('post_machines', macsPosted.size);
  out('write_seconds', writeSeconds.toFixed(1));
  out('post_ms_median', pick(sorted(postMs), 0.5).toFixed(1));
  out('post_ms_p95', pick(sorted(postMs), 0.95).toFixed(1));
  out('delivery_ms_median', pick(latencies, 0.5).toFixed(0));
  out('delivery_ms_p95', pick(latencies, 0.95).toFixed(0));
  out('delivery_ms_max', (latencies.at(-1) ?? NaN).toFixed(0));
  out('rss_before_mib', mib(rssBefore));
  out('rss_open_mib', mib(rssOpen));
  out('rss_peak_mib', mib(rssPeak));
  out('hwm_mib', mib(hwm));
  out('rss_after_mib', mib(rssAfter));
  out('cpu_open_ms', cpuOpen - cpu0);
  out('cpu_write_ms', cpuWrite - cpuOpen);
  out('cpu_total_ms', cpuEnd - cpu0);
  const client = process.cpuUsage();
  out('client_cpu_ms', ((client.user + client.system) / 1000).toFixed(0));
  agent.destroy();
}
