/**
 * Zero-touch provisioning of MACHINES machines through their BMCs: MACHINES emulated Redfish BMCs
 * (test/helpers/redfish/emulator.ts, timers only, no VM) on 127.0.0.1, each answering after
 * LATENCY_MS as a real BMC's slowness, all counting their sessions in one SessionCounter.
 *
 *   node --import tsx bench/bmc-provision.ts                          # 500 machines, parallel 16, 20 ms, 3 runs
 *   MACHINES=20 RUNS=1 node --import tsx bench/bmc-provision.ts       # the smoke run
 *   MACHINES=500 PARALLEL=32 LATENCY_MS=50 RUNS=5 node --import tsx bench/bmc-provision.ts
 *   SIDES=edgeboot EDGEBOOT_NODE_FLAGS=--max-old-space-size=96 node --import tsx bench/bmc-provision.ts   # one side; node flags for edgeboot
 *   SIDES=edgeboot RUNS=1 EDGEBOOT_NODE_FLAGS=--trace-gc KEEP_LOG=/tmp/eb.log node --import tsx bench/bmc-provision.ts   # keep edgeboot's log
 *
 * Side by side, in rotation, RUNS times each, on the same emulators (reset between runs: the
 * override cleared, the power Off):
 * - edgeboot: a fresh `node --max-semi-space-size=8 --heap-growing-percent=100 dist/main.js serve` as its launchers run it
 *   (EDGEBOOT_NODE_FLAGS replaces the flags), DHCP and TFTP off, a temp data dir, bmc.parallel
 *   PARALLEL, with the machines registered by PUT with their BMC; once the registration's
 *   inventory reads have settled, `POST /api/v1/machines/provision {"allRegistered":true}`.
 * - redfishtool, the way an operator scripts it today: `Systems -1 setBootOverride Once Pxe`, then
 *   `Systems -1 reset On`, one machine per shell, MACHINES of them through `xargs -P PARALLEL`.
 * Each is timed from its start until EVERY emulator has started a boot that consumed its one-time
 * Pxe override and reads power On (TRANSITION_MS after its reset, default 200). Reported: seconds
 * (medians; also when the last override PATCH and the last reset were answered), the most sessions
 * open at once across the BMCs (edgeboot's must stay ≤ PARALLEL), edgeboot's peak RSS (VmHWM of
 * start and registration, then reset and read again for the provisioning; goal < 200 MB), requests
 * per machine and one machine's in order, a machine's time with its BMC, CPU seconds of each side,
 * and the bound the rate allows: ceil(MACHINES / PARALLEL) × requests per machine × LATENCY_MS.
 * The load average (`uptime`) is printed with every run. Exit 1 when a goal is missed.
 *
 * Needs a built dist/ (`npx tsc -p tsconfig.json`) and redfishtool. Only 127.0.0.1; every wait is
 * bounded, and the whole bench gives up after BENCH_TIMEOUT_S (default 3600) seconds.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { SessionCounter, startRedfishEmulator, type RedfishEmulator } from '../test/helpers/redfish/emulator.js';

const env = (name: string, fallback: number): number => {
  const value = Number(process.env[name] ?? fallback);
  if (!Number.isFinite(value) || value < 0) throw new Error(`${name} must be a number ≥ 0`);
  return value;
};
const MACHINES = env('MACHINES', 500);
const PARALLEL = env('PARALLEL', 16);
const LATENCY_MS = env('LATENCY_MS', 20);
const RUNS = env('RUNS', 3);
const TRANSITION_MS = env('TRANSITION_MS', 200);
/** The issue's goal, 200 MB, in MiB. */
const RSS_GOAL_MIB = 200e6 / 2 ** 20;
/** Which sides run: both by default; one alone to look at it (no ratio then). */
const SIDES = (process.env.SIDES ?? 'edgeboot redfishtool').split(/[\s,]+/).filter((s): s is Side => s === 'edgeboot' || s === 'redfishtool');
const USER = 'root';
/** The node flags of `npm start` (the other launchers pass the same: test/unit/deploy/launchers.test.ts). */
const LAUNCHER_FLAGS = (JSON.parse(readFileSync('package.json', 'utf8')) as { scripts: { start: string } }).scripts.start.replace(
  /^node (.*) dist\/main\.js serve$/,
  '$1',
);
const PASSWORD = 'bench-calvin';

setTimeout(
  () => {
    console.error(`bmc-provision: gave up after ${env('BENCH_TIMEOUT_S', 3600)} s`);
    process.exit(1);
  },
  env('BENCH_TIMEOUT_S', 3600) * 1000,
).unref();
if (!existsSync('dist/main.js')) throw new Error('run from the repository root after `npx tsc -p tsconfig.json`');

type Side = 'edgeboot' | 'redfishtool';

interface Machine {
  mac: string;
  bmc: RedfishEmulator;
}
/** Where each emulator's request and boot logs stood when a phase started. */
type Marks = { requests: number; boots: number }[];

interface Phase {
  seconds: number;
  /** Seconds until the last override PATCH was answered 2xx, and the last ComputerSystem.Reset. */
  overridesSeconds: number;
  resetsSeconds: number;
  /** What the first machine was sent, in order (`GET /redfish/v1`, …). */
  sequence: string[];
  /** A machine's time with its BMC, first request in to last answer out (median, ms), and the share of the PARALLEL slots those spans fill. */
  spanMs: number;
  slotsBusy: number;
  requestsPerMachine: number;
  maxSessions: number;
  /** Answers ≥ 400 the BMCs gave during the phase (409 while powering on, 412 on a stale ETag, …). */
  errors: number;
  /** edgeboot's peak RSS while the machines were registered (PUTs and inventory reads), then while they were provisioned (VmHWM reset in between). */
  registrationRssMiB?: number;
  rssMiB?: number;
  /** Where edgeboot's memory was at the end (prom-client's nodejs_ gauges): V8 heap used and total, external (Buffers, undici). */
  heapMiB?: { used: number; total: number; external: number };
  /** VmRSS every 250 ms during the provisioning: at the POST, the highest, at the end (MiB). */
  rssCurve?: { start: number; max: number; maxAtSeconds: number; end: number };
  /** CPU seconds (user + system) during the phase: edgeboot's, or every redfishtool's; and this process's (the emulators and the polling). */
  cpuSeconds?: number;
  emulatorCpuSeconds: number;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] ?? NaN) : ((s[mid - 1] ?? NaN) + (s[mid] ?? NaN)) / 2;
};
const uptime = (): string => execFileSync('uptime', { encoding: 'utf8' }).trim();

/** A free TCP port on 127.0.0.1 (the kernel's pick, released for the server to take). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

/** Runs `work` over `items`, at most `limit` at once. */
async function pool<T>(items: T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++];
      if (item !== undefined) await work(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

async function startBmcs(counter: SessionCounter): Promise<Machine[]> {
  const machines: Machine[] = [];
  for (let i = 0; i < MACHINES; i += 50) {
    const batch = Array.from({ length: Math.min(50, MACHINES - i) }, async (_, j) => {
      const n = i + j;
      const mac = `52:54:00:eb:${((n >> 8) & 0xff).toString(16).padStart(2, '0')}:${(n & 0xff).toString(16).padStart(2, '0')}`;
      const bmc = await startRedfishEmulator({
        username: USER,
        password: PASSWORD,
        macs: [mac],
        serial: `BENCH${String(n).padStart(5, '0')}`,
        latencyMs: LATENCY_MS,
        transitionMs: TRANSITION_MS,
        counter,
      });
      return { mac, bmc };
    });
    machines.push(...(await Promise.all(batch)));
  }
  return machines;
}

const mark = (machines: Machine[]): Marks => machines.map(({ bmc }) => ({ requests: bmc.requests.length, boots: bmc.boots.length }));

/** Whether the BMC started a boot since its mark that consumed a one-time Pxe override, and reads On. */
function provisioned(bmc: RedfishEmulator, since: { boots: number }): boolean {
  const booted = bmc.boots.slice(since.boots).some((b) => b.networkFirst && (b.target === undefined || b.target === 'Pxe'));
  return booted && bmc.system().powerState === 'On';
}

/** Polls every 10 ms until every machine is provisioned; the seconds since `t0` (performance.now()) it took. */
async function untilProvisioned(machines: Machine[], marks: Marks, t0: number, limitMs: number, failed: () => string | undefined): Promise<number> {
  for (;;) {
    if (machines.every((m, i) => provisioned(m.bmc, marks[i] ?? { boots: 0 }))) return (performance.now() - t0) / 1000;
    const why = failed();
    if (why !== undefined) throw new Error(why);
    if (performance.now() - t0 > limitMs) {
      const left = machines.filter((m, i) => !provisioned(m.bmc, marks[i] ?? { boots: 0 }));
      throw new Error(`${left.length} of ${MACHINES} machines not provisioned after ${limitMs / 1000} s (first: ${left[0]?.mac ?? '?'})`);
    }
    await sleep(10);
  }
}

/** The phase's figures from the BMCs' own logs. */
function measure(machines: Machine[], marks: Marks, counter: SessionCounter, seconds: number, t0Wall: number, cpu0: NodeJS.CpuUsage): Phase {
  const cpu = process.cpuUsage(cpu0);
  let requests = 0;
  let errors = 0;
  let lastPatch = t0Wall;
  let lastReset = t0Wall;
  const spans: number[] = [];
  machines.forEach(({ bmc }, i) => {
    const since = bmc.requests.slice(marks[i]?.requests ?? 0);
    requests += since.length;
    spans.push((since.at(-1)?.at ?? 0) + LATENCY_MS - (since[0]?.at ?? 0));
    for (const r of since) {
      if (r.status >= 400) errors++;
      if (r.status >= 300) continue;
      if (r.method === 'PATCH') lastPatch = Math.max(lastPatch, r.at);
      if (r.path.endsWith('/Actions/ComputerSystem.Reset')) lastReset = Math.max(lastReset, r.at);
    }
  });
  const first = machines[0]?.bmc.requests.slice(marks[0]?.requests ?? 0) ?? [];
  // A request's `at` is its arrival; its answer left LATENCY_MS later.
  const answered = (at: number): number => (at + LATENCY_MS - t0Wall) / 1000;
  return {
    seconds,
    overridesSeconds: answered(lastPatch),
    resetsSeconds: answered(lastReset),
    sequence: first.map((r) => `${r.method} ${r.path.replace('/redfish/v1', '') || '/'} ${r.status}`),
    spanMs: median(spans),
    slotsBusy: spans.reduce((a, b) => a + b, 0) / (PARALLEL * seconds * 1000),
    requestsPerMachine: requests / MACHINES,
    maxSessions: counter.maxOpen,
    errors,
    emulatorCpuSeconds: (cpu.user + cpu.system) / 1e6,
  };
}

/** Back to the start for the next run: every override cleared (a PATCH with the ETag), every machine Off. */
async function resetBmcs(machines: Machine[]): Promise<void> {
  const basic = `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`;
  await pool(machines, 64, async ({ bmc }) => {
    const system = bmc.system();
    if (system.boot.enabled !== 'Disabled') {
      const res = await fetch(`${bmc.url}/redfish/v1/Systems/1`, {
        method: 'PATCH',
        headers: { authorization: basic, 'content-type': 'application/json', 'if-match': system.etag },
        body: JSON.stringify({ Boot: { BootSourceOverrideEnabled: 'Disabled', BootSourceOverrideTarget: 'None' } }),
        signal: AbortSignal.timeout(10_000),
      });
      if (!res.ok) throw new Error(`clearing the override of ${bmc.url}: ${res.status}`);
    }
    if (system.powerState !== 'Off') bmc.guestPowerOff();
  });
  const deadline = performance.now() + 10_000 + TRANSITION_MS * 5;
  while (!machines.every(({ bmc }) => bmc.system().powerState === 'Off')) {
    if (performance.now() > deadline) throw new Error('the BMCs did not all power off');
    await sleep(20);
  }
}

/** A fresh edgeboot serving on 127.0.0.1: the process, its API and the paths to clean. */
interface Edgeboot {
  proc: ChildProcess;
  api: (method: string, path: string, body?: unknown) => Promise<{ status: number; body: unknown }>;
  /** The Prometheus text of /metrics (no token needed). */
  metrics: () => Promise<string>;
  dir: string;
  exited: () => string | undefined;
}

async function startEdgeboot(): Promise<Edgeboot> {
  const dir = mkdtempSync(join(tmpdir(), 'eb-bench-bmc-'));
  const port = await freePort();
  const config = join(dir, 'edgeboot.yaml');
  writeFileSync(
    config,
    [
      `server: { dataDir: ${dir} }`,
      `http: { listen: "127.0.0.1:${port}" }`,
      'dhcp: { mode: "off" }',
      'tftp: { enabled: false }',
      'log: { level: warn }',
      // No poll during the measure: the figures are provisioning's requests only.
      `bmc: { parallel: ${PARALLEL}, pollSeconds: 3600 }`,
      '',
    ].join('\n'),
  );
  const log = createWriteStream(join(dir, 'edgeboot.log'));
  const profile = process.env.CPU_PROF === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${process.env.CPU_PROF}`];
  const flags = (process.env.EDGEBOOT_NODE_FLAGS ?? LAUNCHER_FLAGS).split(' ').filter((f) => f !== '');
  const proc = spawn(process.execPath, [...profile, ...flags, 'dist/main.js', 'serve', '--config', config], { stdio: ['ignore', 'pipe', 'pipe'] });
  proc.stdout.pipe(log);
  proc.stderr.pipe(log);
  let exit: string | undefined;
  proc.on('exit', (code, signal) => (exit = `edgeboot exited (${code ?? signal ?? '?'})`));
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    if (exit !== undefined) throw new Error(exit);
    if (i === 200) throw new Error('edgeboot not ready after 20 s');
    const ready = await fetch(`${base}/readyz`, { signal: AbortSignal.timeout(1000) }).then(
      (r) => r.ok,
      () => false, // not listening yet
    );
    if (ready) break;
    await sleep(100);
  }
  const token = readFileSync(join(dir, 'admin-token'), 'utf8').trim();
  const api = async (method: string, path: string, body?: unknown): Promise<{ status: number; body: unknown }> => {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body !== undefined && { 'content-type': 'application/json' }) },
      ...(body !== undefined && { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(30_000),
    });
    const text = await res.text();
    return { status: res.status, body: text === '' ? undefined : (JSON.parse(text) as unknown) };
  };
  const metrics = async (): Promise<string> => (await fetch(`${base}/metrics`, { signal: AbortSignal.timeout(10_000) })).text();
  return { proc, api, metrics, dir, exited: () => exit };
}

async function stopEdgeboot(eb: Edgeboot, failed: boolean): Promise<void> {
  if (eb.exited() === undefined) {
    const gone = new Promise((resolve) => eb.proc.once('exit', resolve));
    eb.proc.kill('SIGTERM');
    const killer = setTimeout(() => eb.proc.kill('SIGKILL'), 10_000);
    await gone;
    clearTimeout(killer);
  }
  if (failed) console.error(`edgeboot's log, the end:\n${readFileSync(join(eb.dir, 'edgeboot.log'), 'utf8').split('\n').slice(-30).join('\n')}`);
  if (process.env.KEEP_LOG !== undefined) writeFileSync(process.env.KEEP_LOG, readFileSync(join(eb.dir, 'edgeboot.log')));
  rmSync(eb.dir, { recursive: true, force: true });
}

/** The machines the API lists, each with its BMC view (absent until H4's view shows it). */
async function listed(eb: Edgeboot): Promise<{ mac: string; bmc?: { checkedAt?: string } }[]> {
  const out: { mac: string; bmc?: { checkedAt?: string } }[] = [];
  let cursor: string | undefined;
  for (let page = 0; page <= MACHINES / 1000 + 1; page++) {
    const { status, body } = await eb.api('GET', `/api/v1/machines?limit=1000${cursor === undefined ? '' : `&cursor=${cursor}`}`);
    if (status !== 200) throw new Error(`GET /api/v1/machines: ${status}`);
    const list = body as { machines: { mac: string; bmc?: { checkedAt?: string } }[]; nextCursor?: string };
    out.push(...list.machines);
    cursor = list.nextCursor;
    if (cursor === undefined) break;
  }
  return out;
}

/** Registers every machine with its BMC, then waits (bounded) for the inventory reads: every view checked, the BMCs quiet for 1 s. */
async function register(eb: Edgeboot, machines: Machine[], counter: SessionCounter): Promise<void> {
  await pool(machines, 8, async ({ mac, bmc }) => {
    const { status, body } = await eb.api('PUT', `/api/v1/machines/${mac}`, {
      profile: 'precache-assisted',
      assisted: { ipxeScriptUrl: 'http://127.0.0.1:9/assisted.ipxe' },
      bmc: { address: bmc.address, username: USER, password: PASSWORD },
    });
    if (status !== 200 && status !== 201) throw new Error(`PUT ${mac}: ${status} ${JSON.stringify(body)}`);
  });
  const count = (): number => machines.reduce((n, { bmc }) => n + bmc.requests.length, 0);
  const deadline = performance.now() + 180_000;
  let seen = count();
  let quietSince = performance.now();
  for (;;) {
    await sleep(250);
    if (performance.now() > deadline) throw new Error('the registration inventory reads did not settle in 180 s');
    const now = count();
    if (now !== seen || counter.open > 0) {
      seen = now;
      quietSince = performance.now();
      continue;
    }
    if (performance.now() - quietSince < 1000) continue;
    const views = await listed(eb);
    if (views.length !== MACHINES) throw new Error(`listed ${views.length} of ${MACHINES} machines`);
    // No view shows a BMC: the quiet BMCs are the only sign there is.
    if (views.every((v) => v.bmc?.checkedAt !== undefined) || views.every((v) => v.bmc === undefined)) return;
  }
}

/** The children's user and system time from bash's `times` (its second line, e.g. `5m1.234s 0m20.500s`). */
function childCpuSeconds(times: string): number {
  const line = times.trim().split('\n').at(-1) ?? '';
  const seconds = [...line.matchAll(/(\d+)m([\d.]+)s/g)].map((m) => Number(m[1]) * 60 + Number(m[2]));
  return seconds.length === 2 ? (seconds[0] ?? NaN) + (seconds[1] ?? NaN) : NaN;
}

/** CPU seconds a process has used (utime + stime of /proc/<pid>/stat, 100 ticks a second). */
function cpuSecondsOf(pid: number): number {
  const fields = (readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1] ?? '').split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** A gauge of edgeboot's /metrics, in MiB. */
function gaugeMiB(text: string, name: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`edgeboot_${name} `));
  return Number(line?.split(' ')[1] ?? NaN) / 2 ** 20;
}

/** VmHWM (peak) or VmRSS (now) of a process, in MiB. */
const statusMiB = (pid: number, field: 'VmHWM' | 'VmRSS'): number =>
  Number(new RegExp(`${field}:\\s+(\\d+)`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN) / 1024;
const peakRssMiB = (pid: number): number => statusMiB(pid, 'VmHWM');

/** Samples a process's VmRSS every 250 ms until stopped: where it started, peaked and ended. */
function sampleRss(pid: number): () => NonNullable<Phase['rssCurve']> {
  const t0 = performance.now();
  const curve = { start: statusMiB(pid, 'VmRSS'), max: 0, maxAtSeconds: 0, end: 0 };
  const sample = (): void => {
    curve.end = statusMiB(pid, 'VmRSS');
    if (curve.end > curve.max) Object.assign(curve, { max: curve.end, maxAtSeconds: (performance.now() - t0) / 1000 });
  };
  const timer = setInterval(sample, 250);
  return () => {
    clearInterval(timer);
    sample();
    return curve;
  };
}

async function edgebootPhase(machines: Machine[], counter: SessionCounter, limitMs: number): Promise<Phase> {
  const eb = await startEdgeboot();
  try {
    await register(eb, machines, counter);
    const marks = mark(machines);
    counter.maxOpen = counter.open;
    const pid = eb.proc.pid ?? NaN;
    const registrationRssMiB = peakRssMiB(pid);
    // Linux ≥ 4.0: "5" resets VmHWM, so the figure below is the provisioning's own peak.
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    const ebCpu0 = cpuSecondsOf(pid);
    const cpu0 = process.cpuUsage();
    const t0Wall = Date.now();
    const t0 = performance.now();
    const rssCurve = sampleRss(pid);
    const { status, body } = await eb.api('POST', '/api/v1/machines/provision', { allRegistered: true });
    const accepted = (body as { accepted?: unknown[] } | undefined)?.accepted?.length;
    if (status !== 202 || accepted !== MACHINES) throw new Error(`POST /api/v1/machines/provision: ${status} ${JSON.stringify(body).slice(0, 500)}`);
    const seconds = await untilProvisioned(machines, marks, t0, limitMs, eb.exited);
    const phase = {
      ...measure(machines, marks, counter, seconds, t0Wall, cpu0),
      registrationRssMiB,
      rssMiB: peakRssMiB(pid),
      rssCurve: rssCurve(),
      heapMiB: await eb.metrics().then((text) => ({
        used: gaugeMiB(text, 'nodejs_heap_size_used_bytes'),
        total: gaugeMiB(text, 'nodejs_heap_size_total_bytes'),
        external: gaugeMiB(text, 'nodejs_external_memory_bytes'),
      })),
      cpuSeconds: cpuSecondsOf(pid) - ebCpu0,
    };
    await stopEdgeboot(eb, false);
    return phase;
  } catch (err) {
    await stopEdgeboot(eb, true);
    throw err;
  }
}

async function redfishtoolPhase(machines: Machine[], counter: SessionCounter, limitMs: number): Promise<Phase> {
  const dir = mkdtempSync(join(tmpdir(), 'eb-bench-rft-'));
  const ports = join(dir, 'ports');
  writeFileSync(ports, machines.map(({ bmc }) => `${bmc.port}\n`).join(''));
  const rft = `redfishtool -r "127.0.0.1:$1" -u ${USER} -p ${PASSWORD} -S Never -T 15 Systems -1`;
  const script = `${rft} setBootOverride Once Pxe >/dev/null && ${rft} reset On >/dev/null`;
  const marks = mark(machines);
  counter.maxOpen = counter.open;
  const cpu0 = process.cpuUsage();
  const t0Wall = Date.now();
  const t0 = performance.now();
  // A process group of its own, so that a failed phase stops every redfishtool it started; bash's `times` then prints the
  // CPU time of its children (xargs and every redfishtool under it).
  const xargs = spawn('bash', ['-c', 'xargs -a "$0" -P "$1" -n 1 sh -c "$2" sh; rc=$?; times; exit $rc', ports, String(PARALLEL), script], {
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let stdout = '';
  xargs.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  const exited = new Promise((resolve) => xargs.once('exit', resolve));
  let stderr = '';
  xargs.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-2000)));
  let exit: string | undefined;
  xargs.on('exit', (code) => {
    if (code !== 0) exit = `xargs redfishtool exited ${code ?? '?'}: ${stderr}`;
  });
  try {
    const seconds = await untilProvisioned(machines, marks, t0, limitMs, () => exit);
    const phase = measure(machines, marks, counter, seconds, t0Wall, cpu0);
    // The last redfishtool returned with its reset answered, before the power read On: xargs is done or nearly.
    await Promise.race([exited, sleep(30_000)]);
    return { ...phase, cpuSeconds: childCpuSeconds(stdout) };
  } finally {
    if (xargs.exitCode === null && xargs.pid !== undefined) process.kill(-xargs.pid, 'SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  }
}

const counter = new SessionCounter();
console.log(`bmc-provision: ${MACHINES} machines, parallel ${PARALLEL}, ${LATENCY_MS} ms per BMC answer, transitions ${TRANSITION_MS} ms, ${RUNS} runs`);
console.log(`load at start: ${uptime()}`);
const machines = await startBmcs(counter);
const results: Record<Side, Phase[]> = { edgeboot: [], redfishtool: [] };
// Generous: edgeboot ten times what the plain rate would take at 10 requests a machine, never under two minutes; redfishtool
// starts two Python processes a machine (about 0.3 CPU-s each here), so 3 s a machine, never under ten minutes.
const limitMs = { edgeboot: Math.max(120_000, Math.ceil(MACHINES / PARALLEL) * 10 * LATENCY_MS * 10), redfishtool: Math.max(600_000, MACHINES * 3000) };
const row = (name: string, p: Phase): string =>
  `${name.padEnd(11)} ${p.seconds.toFixed(2).padStart(7)} s  (overrides ${p.overridesSeconds.toFixed(2)} s, resets ${p.resetsSeconds.toFixed(2)} s)  ` +
  `${p.requestsPerMachine.toFixed(1)} req/machine  sessions ≤ ${p.maxSessions}  ${p.errors} errors` +
  (p.rssMiB === undefined ? '' : `  peak RSS ${p.rssMiB.toFixed(0)} MiB (registering: ${p.registrationRssMiB?.toFixed(0) ?? '?'} MiB)`) +
  (p.rssCurve === undefined
    ? ''
    : `  RSS ${p.rssCurve.start.toFixed(0)} → ${p.rssCurve.max.toFixed(0)} (at ${p.rssCurve.maxAtSeconds.toFixed(1)} s) → ${p.rssCurve.end.toFixed(0)} MiB`) +
  (p.heapMiB === undefined
    ? ''
    : `  heap ${p.heapMiB.used.toFixed(0)}/${p.heapMiB.total.toFixed(0)} MiB, external ${p.heapMiB.external.toFixed(0)} MiB at the end`) +
  (p.cpuSeconds === undefined ? '' : `  CPU ${p.cpuSeconds.toFixed(2)} s`) +
  `  bench (emulators) CPU ${p.emulatorCpuSeconds.toFixed(2)} s`;
try {
  for (let run = 1; run <= RUNS; run++) {
    // In rotation: the side that goes first changes every run.
    const order = run % 2 === 1 ? SIDES : [...SIDES].reverse();
    for (const side of order) {
      await resetBmcs(machines);
      const phase =
        side === 'edgeboot' ? await edgebootPhase(machines, counter, limitMs.edgeboot) : await redfishtoolPhase(machines, counter, limitMs.redfishtool);
      results[side].push(phase);
      console.log(`run ${run}  ${row(side, phase)}  | ${uptime()}`);
    }
  }
} finally {
  await Promise.all(machines.map(({ bmc }) => bmc.close()));
}

const summary = (phases: Phase[]): Phase => ({
  seconds: median(phases.map((p) => p.seconds)),
  overridesSeconds: median(phases.map((p) => p.overridesSeconds)),
  resetsSeconds: median(phases.map((p) => p.resetsSeconds)),
  sequence: phases.at(-1)?.sequence ?? [],
  spanMs: median(phases.map((p) => p.spanMs)),
  slotsBusy: median(phases.map((p) => p.slotsBusy)),
  requestsPerMachine: median(phases.map((p) => p.requestsPerMachine)),
  maxSessions: Math.max(...phases.map((p) => p.maxSessions)),
  errors: median(phases.map((p) => p.errors)),
  ...(phases[0]?.rssMiB !== undefined && {
    registrationRssMiB: Math.max(...phases.map((p) => p.registrationRssMiB ?? 0)),
    rssMiB: Math.max(...phases.map((p) => p.rssMiB ?? 0)),
  }),
  ...(phases[0]?.cpuSeconds !== undefined && { cpuSeconds: median(phases.map((p) => p.cpuSeconds ?? 0)) }),
  emulatorCpuSeconds: median(phases.map((p) => p.emulatorCpuSeconds)),
});
const bound = (p: Phase): number => (Math.ceil(MACHINES / PARALLEL) * p.requestsPerMachine * LATENCY_MS) / 1000;
console.log(`\nmedians of ${RUNS} (sessions: the most at once in any run; RSS: the highest peak)`);
const medians = new Map(SIDES.map((side) => [side, summary(results[side])]));
for (const [side, p] of medians) {
  console.log(row(side, p));
  console.log(
    `${''.padEnd(11)} bound ceil(${MACHINES}/${PARALLEL}) × ${p.requestsPerMachine.toFixed(1)} requests × ${LATENCY_MS} ms = ` +
      `${bound(p).toFixed(2)} s; measured ÷ bound ${(p.seconds / bound(p)).toFixed(2)}`,
  );
  console.log(
    `${''.padEnd(11)} a machine's time with its BMC: ${p.spanMs.toFixed(0)} ms (its requests' latency alone ${(p.requestsPerMachine * LATENCY_MS).toFixed(0)} ms); ` +
      `the ${PARALLEL} slots ${(p.slotsBusy * 100).toFixed(0)} % busy`,
  );
  console.log(`${''.padEnd(11)} one machine's requests: ${p.sequence.join(', ')}`);
}
const eb = medians.get('edgeboot');
const ref = medians.get('redfishtool');
if (eb !== undefined && ref !== undefined) console.log(`edgeboot ÷ redfishtool: ${(eb.seconds / ref.seconds).toFixed(2)}`);
const missed = [
  ...(eb !== undefined && eb.maxSessions > PARALLEL ? [`edgeboot held ${eb.maxSessions} sessions at once (> ${PARALLEL})`] : []),
  ...Object.entries({ registering: eb?.registrationRssMiB ?? 0, provisioning: eb?.rssMiB ?? 0 })
    .filter(([, mib]) => mib >= RSS_GOAL_MIB)
    .map(([what, mib]) => `edgeboot's peak RSS ${what}: ${mib.toFixed(0)} MiB (goal: under 200 MB, ${RSS_GOAL_MIB.toFixed(1)} MiB)`),
];
for (const m of missed) console.log(`GOAL MISSED: ${m}`);
console.log(`load at end: ${uptime()}`);
process.exit(missed.length === 0 ? 0 : 1);
