/**
 * Runs the HTTP route fuzz against the whole app (real SQLite store, artifact cache, registry
 * mirror, precache and bundle routes) with `app.inject()`, then asks /healthz. Run inside a
 * network namespace of its own (http-fuzz.test.ts and bench/http-fuzz.sh start it under
 * `unshare --net`): the built-in profiles name internet URLs and fuzzed bodies name any host,
 * so the only way to be sure nothing leaves the machine is to have no way out.
 *
 * Env: FUZZ_SEED (default: random, printed), FUZZ_REQUESTS (default 200000), FUZZ_SECONDS
 * (a time bound, default 600), FUZZ_CONCURRENCY (default 16). The run also stops at 50
 * failures. The last stdout line is `FUZZ-RESULT <json>`.
 */
import { randomInt } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { ADMIN_TOKEN, startTestApp, tempDir } from './app.js';
import { prng } from './dhcp-mutate.js';
import { nextRequest, routesFromTree, type FuzzRequest, type FuzzVocabulary } from './http-fuzz.js';

/** 5xx answers that are meant: the upstream of these routes is a closed port, or the server is at capacity. */
export const INTENDED_5XX: readonly { route: RegExp; codes: readonly number[]; why: string }[] = [
  { route: /^\/assets\//, codes: [502, 503, 504], why: 'artifact upstream unreachable (502/504) or boot-storm admission (503 + Retry-After)' },
  { route: /^\/v2\//, codes: [502, 503, 504], why: 'registry upstream unreachable, or admission' },
  { route: /^\/bundles\//, codes: [503], why: 'bundle file admission' },
  { route: /^\/api\/v1\/cache\/prefetch/, codes: [502, 504], why: 'prefetch of an unreachable URL' },
  { route: /^\/api\/v1\/machines\/[^/]+\/plan/, codes: [503], why: 'the bundle of the plan is not built (its upstream is unreachable)' },
  { route: /^\/readyz/, codes: [503], why: 'not ready' },
];

/**
 * The path as the router matches it, for telling intended 5xx from the rest: escapes of
 * unreserved characters decoded (`/%61ssets/` is `/assets/`), dot segments resolved.
 */
export function routedPath(url: string): string {
  const unescaped = (url.split('?')[0] ?? '/').replace(/%([0-9A-Fa-f]{2})/g, (escape, hex: string) => {
    const c = String.fromCharCode(parseInt(hex, 16));
    return /[A-Za-z0-9._~-]/.test(c) ? c : escape;
  });
  return new URL(unescaped, 'http://fuzz').pathname;
}

export interface FuzzFailure {
  index: number;
  status: number;
  body: string;
  request: FuzzRequest | { method: string; url: string; headers: Record<string, string>; payload: string };
}

export interface FuzzResult {
  seed: number;
  requests: number;
  seconds: number;
  perSecond: number;
  byStatus: Record<string, number>;
  intended5xx: number;
  failures: FuzzFailure[];
  healthz: number;
  routes: number;
}

async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

function printable(req: FuzzRequest): FuzzFailure['request'] {
  if (req.payload === undefined) return req;
  const text = typeof req.payload === 'string' ? req.payload : `hex:${req.payload.toString('hex')}`;
  return { ...req, payload: text.length > 2000 ? `${text.slice(0, 2000)}…(${text.length} chars)` : text };
}

export async function runFuzz(seed: number, total: number, seconds: number, concurrency: number): Promise<FuzzResult> {
  const dead = `127.0.0.1:${await closedPort()}`;
  const dir = tempDir('edgeboot-fuzz-');
  const files = join(dir, 'files');
  const profiles = join(dir, 'profiles');
  mkdirSync(files);
  mkdirSync(profiles);
  writeFileSync(join(files, 'vmlinuz'), Buffer.alloc(64 * 1024, 7));
  writeFileSync(
    join(profiles, 'fuzz.yaml'),
    [
      'name: fuzz',
      'artifacts:',
      `  kernel: { url: "file://${join(files, 'vmlinuz')}" }`,
      `  remote: { url: "http://${dead}/initrd?token=SECRET" }`,
      `  gone: { url: "file://${join(files, 'gone')}" }`,
      'boot:',
      '  kernel: kernel',
      '  initrds: [remote, gone]',
      '  args: console=ttyS0 {{ kargs.staticIp }}',
      '',
    ].join('\n'),
  );
  const ipxe = join(dir, 'ipxe');
  mkdirSync(join(ipxe, 'sub'), { recursive: true });
  writeFileSync(join(ipxe, 'undionly.kpxe'), Buffer.alloc(4096, 1));
  writeFileSync(join(ipxe, 'sub', 'ipxe.efi'), Buffer.alloc(4096, 2));
  const ta = await startTestApp({
    profileDirs: [profiles],
    metrics: true,
    ipxeRoots: [ipxe],
    cache: { retries: 0, headersTimeoutMs: 2000, bodyTimeoutMs: 2000 },
    config: { registry: { insecureRegistries: [dead], upstreams: { release: dead } } },
  });
  const { app } = ta;
  const routes = routesFromTree(app.printRoutes({ commonPrefix: false }));
  const macs = ['52:54:00:00:00:01', '52-54-00-00-00-02', '525400000003', '52:54:00:00:00:04'];
  for (const [i, mac] of macs.entries()) {
    const res = await app.inject({
      method: 'PUT',
      url: `/api/v1/machines/${mac}`,
      headers: ta.auth,
      payload: { profile: i === 0 ? 'fuzz' : 'rhcos-live', hostname: `n${i}`, labels: { site: 'f1' } },
    });
    if (res.statusCode >= 300) throw new Error(`setup: PUT ${mac} answered ${res.statusCode} ${res.body}`);
  }
  const vocab: FuzzVocabulary = {
    macs,
    profiles: ['fuzz', 'rhcos-live', 'precache-assisted', 'nope'],
    artifacts: ['kernel', 'remote', 'gone', 'initramfs', 'rootfs', 'constructor', '__proto__', 'toString'],
    deadUpstream: dead,
    adminToken: ADMIN_TOKEN,
  };

  const r = prng(seed);
  const byStatus: Record<string, number> = {};
  const failures: FuzzFailure[] = [];
  let intended5xx = 0;
  let sent = 0;
  const started = Date.now();
  const deadline = started + seconds * 1000;
  const worker = async () => {
    while (sent < total && Date.now() < deadline && failures.length < 50) {
      const index = sent++;
      const req = nextRequest(r, routes, vocab);
      const res = await app.inject({
        method: req.method as 'GET',
        url: req.url,
        headers: req.headers,
        ...(req.payload !== undefined && { payload: req.payload }),
      });
      byStatus[res.statusCode] = (byStatus[res.statusCode] ?? 0) + 1;
      if (res.statusCode < 500) continue;
      const path = routedPath(req.url);
      const intended = res.statusCode !== 500 && INTENDED_5XX.some((a) => a.route.test(path) && a.codes.includes(res.statusCode));
      if (intended) intended5xx++;
      else failures.push({ index, status: res.statusCode, body: res.body.slice(0, 500), request: printable(req) });
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const secondsTaken = (Date.now() - started) / 1000;
  const healthz = (await app.inject({ url: '/healthz' })).statusCode;
  await ta.close();
  rmSync(dir, { recursive: true, force: true });
  return {
    seed,
    requests: sent,
    seconds: secondsTaken,
    perSecond: Math.round(sent / secondsTaken),
    byStatus,
    intended5xx,
    failures,
    healthz,
    routes: routes.length,
  };
}

if (process.env.EB_FUZZ_CHILD === '1') {
  const seed = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : randomInt(2 ** 31);
  process.stdout.write(`FUZZ-SEED ${seed}\n`);
  const result = await runFuzz(
    seed,
    Number(process.env.FUZZ_REQUESTS ?? 200_000),
    Number(process.env.FUZZ_SECONDS ?? 600),
    Number(process.env.FUZZ_CONCURRENCY ?? 16),
  );
  process.stdout.write(`FUZZ-RESULT ${JSON.stringify(result)}\n`);
}
