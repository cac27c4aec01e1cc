#!/usr/bin/env node
// GET /api/v1/machines on 10,000 machines: a real `edgeboot serve` on loopback (DHCP and TFTP
// off), its SQLite store filled before it starts, read with curl a page at a time.
//
//   node bench/machines-list.mjs                   # 10,000 machines, 7 runs
//   MACHINES=50000 RUNS=5 node bench/machines-list.mjs
//
// Each run follows nextCursor with limit=1000 over the whole list, then over a filtered query
// (state=registered&label=site=s1, 1/28 of the machines: the label filter reads the JSON doc)
// and a label-only one (label=site=s1, a quarter: every row's doc is read), then reads one
// default page (limit=100). CPU_PROF=<dir> runs the server with --cpu-prof
// (summarise with bench/cpuprofile-top.mjs). Figures are curl's time_total, medians over the
// runs after one warm-up run, and the server's own CPU time for the whole list (from /proc:
// less sensitive than wall time to other load on the machine). Bounded: RUNS runs, every curl has --max-time 10, and the
// whole script gives up after 10 minutes. Needs a built dist/ and curl.
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { seedStore } from './seed-store.mjs';

const run = promisify(execFile);
const MACHINES = Number(process.env.MACHINES ?? 10_000);
const RUNS = Number(process.env.RUNS ?? 7);
const PORT = Number(process.env.PORT ?? 18291);
const base = `http://127.0.0.1:${PORT}`;

setTimeout(() => {
  console.error('machines-list: gave up after 10 minutes');
  process.exit(1);
}, 600_000).unref();

const dir = mkdtempSync(join(tmpdir(), 'eb-bench-list-'));
const db = join(dir, 'edgeboot.db');
// Machine i as test/helpers/seed-machines.ts makes it: state by i % 7, site s0..s3, rack r0..r4.
seedStore(db, { machines: MACHINES });

const server = spawn(
  process.execPath,
  [
    ...(process.env.CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.CPU_PROF}`] : []),
    'dist/main.js',
    'serve',
    '--set',
    `http.listen=127.0.0.1:${PORT}`,
  ],
  {
    env: {
      ...process.env,
      EDGEBOOT_SERVER_DATA_DIR: dir,
      EDGEBOOT_STORE_URL: `sqlite:${db}`,
      EDGEBOOT_LOG_LEVEL: 'warn',
      EDGEBOOT_DHCP_MODE: 'off',
      EDGEBOOT_TFTP_ENABLED: 'false',
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  },
);
process.on('exit', () => {
  server.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
});

for (let i = 0; i < 100; i++) {
  try {
    await run('curl', ['-fs', '--max-time', '1', `${base}/healthz`]);
    break;
  } catch {
    await new Promise((r) => setTimeout(r, 100));
  }
}
const token = readFileSync(join(dir, 'admin-token'), 'utf8').trim();

/** One GET with curl: its body and time_total in ms. */
async function get(path) {
  const { stdout } = await run(
    'curl',
    ['-sS', '--fail', '--max-time', '10', '-H', `authorization: Bearer ${token}`, '-w', '\n%{time_total}', `${base}${path}`],
    { maxBuffer: 64 << 20 },
  );
  const at = stdout.lastIndexOf('\n');
  return { body: JSON.parse(stdout.slice(0, at)), ms: Number(stdout.slice(at + 1)) * 1000 };
}

/** Every page of a query at limit=1000: the machines seen and each page's ms. */
async function whole(query) {
  const pages = [];
  let n = 0;
  let cursor;
  do {
    const r = await get(`/api/v1/machines?limit=1000${query}${cursor ? `&cursor=${cursor}` : ''}`);
    pages.push(r.ms);
    n += r.body.machines.length;
    cursor = r.body.nextCursor;
  } while (cursor !== undefined && pages.length <= MACHINES);
  return { n, pages };
}

/** CPU ms (user + system) the server process has used so far: /proc/<pid>/stat, at 100 ticks a second. */
function serverCpuMs() {
  const fields = readFileSync(`/proc/${server.pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const sum = (xs) => xs.reduce((a, b) => a + b, 0);

const filter = '&state=registered&label=site=s1';
const expectFiltered = Array.from({ length: MACHINES }, (_, i) => i).filter((i) => i % 7 === 1 && i % 4 === 1).length;
const labelled = Array.from({ length: MACHINES }, (_, i) => i).filter((i) => i % 4 === 1).length;
const results = { page: [], all: [], filtered: [], label: [], first: [], cpu: [] };
for (let r = 0; r <= RUNS; r++) {
  const cpu0 = serverCpuMs();
  const all = await whole('');
  const cpu = serverCpuMs() - cpu0;
  const filtered = await whole(filter);
  const label = await whole('&label=site=s1');
  const first = await get('/api/v1/machines');
  if (all.n !== MACHINES) throw new Error(`listed ${all.n} of ${MACHINES}`);
  if (filtered.n !== expectFiltered) throw new Error(`filtered: ${filtered.n}, expected ${expectFiltered}`);
  if (label.n !== labelled) throw new Error(`label only: ${label.n}, expected ${labelled}`);
  if (first.body.machines.length !== 100) throw new Error('the default page is not 100');
  if (r === 0) continue; // warm-up
  results.page.push(...all.pages);
  results.all.push(sum(all.pages));
  results.cpu.push(cpu);
  results.filtered.push(sum(filtered.pages));
  results.label.push(sum(label.pages));
  results.first.push(first.ms);
}
const ms = (x) => `${x.toFixed(1)} ms`;
console.log(`${MACHINES} machines, ${RUNS} runs (medians; curl time_total)`);
console.log(`  page of 1000 (limit=1000):            ${ms(median(results.page))}`);
console.log(`  whole list, ${Math.ceil(MACHINES / 1000)} pages of 1000:         ${ms(median(results.all))}   (goal < 100 ms)`);
console.log(`  server CPU for the whole list:        ${(sum(results.cpu) / results.cpu.length).toFixed(0)} ms (mean; 10 ms ticks)`);
console.log(`  filtered (${expectFiltered} machines, state+label): ${ms(median(results.filtered))}`);
console.log(`  label only (${labelled} machines, json_extract): ${ms(median(results.label))}`);
console.log(`  default page (100):                   ${ms(median(results.first))}`);
process.exit(0);
