/**
 * The artifact cache on a disk that fills up, for real: `edgeboot serve` runs in a private
 * mount namespace of its own (`unshare --mount`) whose cache.dir is an 8 MiB tmpfs, while its
 * SQLite store and data dir stay on the ordinary disk; the stand-in upstream
 * (test/helpers/upstream.ts) serves a 3 MiB artifact, a 12 MiB one and three 2 MiB ones on
 * loopback. With curl and Node's fetch as the clients:
 * - the 3 MiB artifact is fetched, verified and served byte for byte;
 * - the 12 MiB one, bigger than what is free, answers 507 `cache_full` with a message naming
 *   the cache directory, to every client asking at once, with not one byte of it stored (the
 *   upstream's announced length is checked against the free space before a client is
 *   answered), and again on a later request: no hang, no crash;
 * - afterwards no temporary file is left, no blob of the big artifact exists, GET /api/v1/cache
 *   does not list it, /metrics answers, and the small artifact still serves identically;
 * - three 2 MiB artifacts at once in 5 MiB, each fitting alone: the space the running downloads
 *   still need counts as taken, so one of them is a 507 up front; should the disk still run
 *   out mid-body (another writer), every client gets either the complete, verified body or a
 *   transfer cut short of its Content-Length, never a complete body with wrong bytes, and every blob left
 *   on the disk holds exactly the bytes its sha256 names. (A write the full disk took only part
 *   of, counted whole, left a hole of zeros in a blob committed under the right sha256 once
 *   another download's discarded file freed space: this part caught that in 7 runs of 8.)
 * The namespace's view of the cache is read through /proc/<server pid>/root. Needs root,
 * `unshare` and `mount` (CI runs as root): without them the test fails and says so.
 */
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, statfsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Agent, setGlobalDispatcher } from 'undici';
import t, { type Test } from 'tap';
import { rootSkip } from '../helpers/privileges.js';
import { cleanEnv, MAIN_JS, tempDir, type LogLine } from '../helpers/process.js';
import { startUpstream, type Upstream } from '../helpers/upstream.js';

// The test's fetch closes its connections at once: a kept-alive one would hold app.close()
// for Fastify's 72 s keep-alive when a socket is still counted busy (seen with Node 20).
setGlobalDispatcher(new Agent({ keepAliveTimeout: 10, keepAliveMaxTimeout: 10 }));

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const MiB = 1024 * 1024;
const TMPFS_BYTES = 8 * MiB;
/** The artifacts that fill the disk together, and the pace of their upstream's 64 KiB pieces. */
const MIDS = ['a', 'b', 'c'] as const;
const PACE_MS = 4;

interface Server {
  child: ChildProcess;
  pid: number;
  base: string;
  token: string;
  logs: LogLine[];
  stderr(): string;
  /** A path of the server's mount namespace (where cache.dir is the tmpfs), seen from here. */
  inNs(path: string): string;
}

/** Fails at once, with the reason, where a private tmpfs cannot be mounted. */
function requireMountNamespaces(): void {
  if (process.getuid?.() !== 0) throw new Error('this test mounts a tmpfs in a private mount namespace: it must run as root');
  for (const tool of ['unshare', 'mount']) {
    const r = spawnSync(tool, ['--version'], { encoding: 'utf8' });
    if (r.error || r.status !== 0) throw new Error(`this test needs \`${tool}\` (util-linux): ${r.error?.message ?? r.stderr}`);
  }
  const probe = spawnSync('unshare', ['--mount', '--propagation', 'private', 'true'], { encoding: 'utf8' });
  if (probe.status !== 0) throw new Error(`unshare --mount does not work here (needs CAP_SYS_ADMIN): ${probe.stderr || probe.error?.message}`);
}

/**
 * `edgeboot serve` on 127.0.0.1:0 in a mount namespace of its own where `cacheDir` is a tmpfs of
 * TMPFS_BYTES. `unshare` and `sh` exec, so the child's pid is the server's.
 */
async function startInTmpfs(t: Test, o: { dataDir: string; cacheDir: string; profiles: string; cwd: string }): Promise<Server> {
  if (!existsSync(MAIN_JS)) throw new Error(`${MAIN_JS} is missing: build first (npx tsc -p tsconfig.json)`);
  const env = cleanEnv({
    EDGEBOOT_SERVER_DATA_DIR: o.dataDir,
    EDGEBOOT_STORE_URL: `sqlite:${join(o.dataDir, 'edgeboot.db')}`,
    EDGEBOOT_CACHE_DIR: o.cacheDir,
    EDGEBOOT_PROFILES_DIRS: o.profiles,
    EDGEBOOT_TFTP_ENABLED: 'false',
    EDGEBOOT_LOG_LEVEL: 'info',
    EB_CACHE: o.cacheDir,
    EB_NODE: process.execPath,
    EB_MAIN: MAIN_JS,
    EB_TMPFS_SIZE: String(TMPFS_BYTES),
  });
  const script = 'mount -t tmpfs -o "size=$EB_TMPFS_SIZE" edgeboot-test-cache "$EB_CACHE" && exec "$EB_NODE" "$EB_MAIN" serve --set http.listen=127.0.0.1:0';
  const child = spawn('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script], { cwd: o.cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  // Registered before anything can fail: the namespace (and its tmpfs) goes with the process.
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5_000).unref())]);
  });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d: string) => (stderr += d));
  const logs: LogLine[] = [];
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`edgeboot serve did not log "edgeboot serving" within 20 s; stderr: ${stderr}`)), 20_000);
    child.once('error', (err) => reject(new Error(`unshare could not be spawned: ${err.message}`)));
    void exited.then(() =>
      setTimeout(() => reject(new Error(`edgeboot serve (or the tmpfs mount) exited before serving: code ${child.exitCode}; stderr: ${stderr}`)), 50),
    );
    createInterface({ input: child.stdout }).on('line', (line) => {
      let parsed: LogLine;
      try {
        parsed = JSON.parse(line) as LogLine;
      } catch {
        return;
      }
      logs.push(parsed);
      const m = /^127\.0\.0\.1:(\d+)$/.exec(String(parsed.http));
      if (parsed.msg === 'edgeboot serving' && m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error('no pid for the server');
  return {
    child,
    pid,
    base: `http://127.0.0.1:${port}`,
    token: readFileSync(join(o.dataDir, 'admin-token'), 'utf8').trim(),
    logs,
    stderr: () => stderr,
    inNs: (path) => `/proc/${pid}/root${path}`,
  };
}

interface CurlResult {
  code: number | null;
  status: number;
  downloaded: number;
  stderr: string;
  body: Buffer;
}

/** curl to completion (curl's --max-time 10 s; killed at 15 s): exit code, status, body bytes. */
function curl(url: string, out: string, args: string[] = []): Promise<CurlResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      'curl',
      ['-sS', '--max-time', '10', '-o', out, '-w', '%{http_code} %{size_download}', ...args, url],
      { encoding: 'utf8' },
      (err, stdout, stderr) => {
        clearTimeout(timer);
        const [status, downloaded] = stdout.trim().split(' ').map(Number);
        const code = err ? (typeof err.code === 'number' ? err.code : null) : 0;
        if (err && code === null) return reject(new Error(`curl ${url}: ${err.message}`));
        resolve({ code, status: status ?? 0, downloaded: downloaded ?? 0, stderr, body: existsSync(out) ? readFileSync(out) : Buffer.alloc(0) });
      },
    );
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`curl ${url} did not finish within 15 s`));
    }, 15_000);
  });
}

interface FetchResult {
  status: number;
  contentLength: number | undefined;
  body?: Buffer;
  /** Why the body could not be read to its end. */
  cut?: string;
}

async function get(url: string, headers: Record<string, string> = {}): Promise<FetchResult> {
  const res = await fetch(url, { headers, signal: AbortSignal.timeout(10_000) });
  const length = res.headers.get('content-length');
  const r: FetchResult = { status: res.status, contentLength: length === null ? undefined : Number(length) };
  try {
    r.body = Buffer.from(await res.arrayBuffer());
  } catch (err) {
    r.cut = String((err as Error).cause ?? err);
  }
  return r;
}

/** Every blob in the namespace's cache, and whether its bytes hash to its name. */
function blobs(srv: Server, cacheDir: string): { name: string; intact: boolean }[] {
  const dir = srv.inNs(join(cacheDir, 'blobs', 'sha256'));
  return readdirSync(dir).map((name) => ({ name, intact: sha256(readFileSync(join(dir, name))) === name }));
}

const cacheFull = (srv: Server) => srv.logs.filter((l) => l.msg === 'artifact download failed' && String(l.err).includes('is full'));

t.test(
  'a full cache disk: a clear 507, no corrupt entry, and the server keeps serving',
  { skip: rootSkip('mounts a tmpfs in a private mount namespace') },
  async (t) => {
    requireMountNamespaces();
    const up: Upstream = await startUpstream(t);
    const files = {
      small: randomBytes(3 * MiB + 11),
      big: randomBytes(12 * MiB + 7),
      a: randomBytes(2 * MiB + 5),
      b: randomBytes(2 * MiB + 9),
      c: randomBytes(2 * MiB + 13),
    };
    for (const [name, bytes] of Object.entries(files)) up.files.set(`/${name}.img`, bytes);
    // Three at once that each fit in what is left after `small`, but not together: they fill the
    // disk in the middle of their bodies. Paced, so that they take turns writing.
    for (const name of MIDS) up.misbehave.set(`/${name}.img`, { slow: { chunk: 64 * 1024, delayMs: PACE_MS } });

    const dir = tempDir(t, 'edgeboot-diskfull-');
    const dataDir = join(dir, 'data');
    const cacheDir = join(dir, 'cache');
    const profiles = join(dir, 'profiles');
    const out = join(dir, 'out');
    for (const d of [dataDir, cacheDir, profiles, out]) mkdirSync(d);
    const artifact = (name: keyof typeof files) => `  ${name}: { url: "${up.url(`/${name}.img`)}", sha256: ${sha256(files[name])} }`;
    writeFileSync(
      join(profiles, 'full.yaml'),
      [
        'name: full',
        'description: artifacts bigger than the cache disk',
        'artifacts:',
        artifact('small'),
        artifact('big'),
        ...MIDS.map(artifact),
        'boot:',
        '  kernel: small',
        `  initrds: [big, ${MIDS.join(', ')}]`,
        '  args: console=ttyS0',
        '',
      ].join('\n'),
    );

    const srv = await startInTmpfs(t, { dataDir, cacheDir, profiles, cwd: dir });
    const assets = `${srv.base}/assets/full`;
    const upstreamBytes = async (): Promise<number> => {
      const text = await (await fetch(`${srv.base}/metrics`)).text();
      const m = /^edgeboot_cache_upstream_bytes_total (\d+)$/m.exec(text);
      if (!m) throw new Error(`no edgeboot_cache_upstream_bytes_total in /metrics:\n${text}`);
      return Number(m[1]);
    };
    let outs = 0;
    const outFile = () => join(out, `body-${++outs}`);

    await t.test('the cache dir is an 8 MiB tmpfs of the server alone; the store is not on it', async (t) => {
      const mounts = readFileSync(`/proc/${srv.pid}/mountinfo`, 'utf8')
        .split('\n')
        .map((l) => l.split(' '));
      const mount = mounts.find((f) => f[4] === cacheDir);
      t.ok(mount, `the server's namespace mounts ${cacheDir}`);
      t.equal(mount?.[mount.indexOf('-') + 1], 'tmpfs', 'as a tmpfs');
      const fs = statfsSync(srv.inNs(cacheDir));
      t.equal(fs.blocks * fs.bsize, TMPFS_BYTES, 'of 8 MiB');
      t.ok(existsSync(srv.inNs(join(cacheDir, 'tmp'))) && existsSync(srv.inNs(join(cacheDir, 'blobs', 'sha256'))), 'the server made its tmp/ and blobs/ on it');
      t.same(readdirSync(cacheDir), [], "the test's own view of the directory stays empty: the tmpfs is private");
      t.ok(existsSync(join(dataDir, 'edgeboot.db')), 'the SQLite store is on the ordinary disk');
    });

    await t.test('the 3 MiB artifact is fetched, verified and served', async (t) => {
      const r = await curl(`${assets}/small`, outFile(), ['-f']);
      t.equal(r.code, 0, `curl -f succeeds (${r.stderr})`);
      t.equal(r.status, 200, 'curl: 200');
      t.equal(sha256(r.body), sha256(files.small), "the body is the upstream's bytes");
      const f = await get(`${assets}/small`);
      t.equal(f.status, 200, 'fetch: 200');
      t.equal(f.body && sha256(f.body), sha256(files.small), 'fetch too, now from the cache');
      t.same(blobs(srv, cacheDir), [{ name: sha256(files.small), intact: true }], 'one blob, under its sha256');
      t.equal(up.gets('/small.img').length, 1, 'fetched from the upstream once');
    });

    const bigBlob = srv.inNs(join(cacheDir, 'blobs', 'sha256', sha256(files.big)));
    const expectCacheFull = (t: Test, status: number, body: Buffer | undefined, who: string, name: keyof typeof files = 'big') => {
      t.equal(status, 507, `${who}: 507 Insufficient Storage`);
      let parsed: { error?: string; message?: string } = {};
      try {
        parsed = JSON.parse(body?.toString('utf8') ?? '') as typeof parsed;
      } catch {
        t.fail(`${who}: the body is JSON: ${body?.toString('utf8').slice(0, 200)}`);
      }
      t.equal(parsed.error, 'cache_full', `${who}: error cache_full`);
      t.match(parsed.message ?? '', `the cache disk (${cacheDir}) is full`, `${who}: the message names the cache directory and says it is full`);
      t.match(parsed.message ?? '', up.url(`/${name}.img`), `${who}: and the artifact`);
    };

    await t.test('the 12 MiB artifact, bigger than the free space: 507 cache_full to every client at once', async (t) => {
      const upstreamBefore = await upstreamBytes();
      t.equal(upstreamBefore, files.small.length, 'so far the cache took in the small artifact');
      const [c1, c2, f1, f2] = await Promise.all([
        curl(`${assets}/big`, outFile()),
        curl(`${assets}/big`, outFile(), ['-H', 'range: bytes=0-1023']),
        get(`${assets}/big`),
        get(`${assets}/big`),
      ]);
      for (const [who, c] of [
        ['curl', c1],
        ['curl with a range', c2],
      ] as const) {
        t.equal(c.code, 0, `${who}: the exchange completes (${c.stderr})`);
        expectCacheFull(t, c.status, c.body, who);
      }
      for (const [who, f] of [
        ['fetch 1', f1],
        ['fetch 2', f2],
      ] as const) {
        t.equal(f.cut, undefined, `${who}: the answer is read to its end`);
        expectCacheFull(t, f.status, f.body, who);
      }
      const gets = up.gets('/big.img');
      t.ok(gets.length >= 1, 'the upstream was asked');
      t.equal(
        await upstreamBytes(),
        upstreamBefore,
        'not one body byte of it was taken in (edgeboot_cache_upstream_bytes_total unchanged): the length was refused up front',
      );
      t.ok(cacheFull(srv).length >= 1, 'the server logged the failed download with the reason');
    });

    await t.test('afterwards: no partial file, no entry, the server still serves', async (t) => {
      t.same(readdirSync(srv.inNs(join(cacheDir, 'tmp'))), [], 'no file left in <cache>/tmp/');
      t.notOk(existsSync(bigBlob), 'no blob for the big artifact');
      t.same(blobs(srv, cacheDir), [{ name: sha256(files.small), intact: true }], 'only the small blob, intact');
      const listing = await fetch(`${srv.base}/api/v1/cache`, { headers: { authorization: `Bearer ${srv.token}` } });
      t.equal(listing.status, 200, 'GET /api/v1/cache with the admin token');
      const l = (await listing.json()) as { entries: { key: string; digest: string; size: number }[]; downloads: unknown[] };
      t.same(
        l.entries.map((e) => [e.key, e.digest, e.size]),
        [[up.url('/small.img'), sha256(files.small), files.small.length]],
        'GET /api/v1/cache lists the small artifact only',
      );
      t.same(l.downloads, [], 'and no download running');
      const metrics = await fetch(`${srv.base}/metrics`);
      t.equal(metrics.status, 200, '/metrics answers');
      const text = await metrics.text();
      t.match(text, /^edgeboot_cache_downloads_total [1-9]\d*$/m, 'with the download counter');
      t.match(text, /^edgeboot_cache_hits_total [1-9]\d*$/m, 'and the hits of the small artifact');
      const again = await curl(`${assets}/small`, outFile(), ['-f']);
      t.equal(again.code, 0, `curl -f succeeds (${again.stderr})`);
      t.equal(sha256(again.body), sha256(files.small), 'the small artifact serves identically');
      const part = await get(`${assets}/small`, { range: 'bytes=1000-1999' });
      t.equal(part.status, 206, 'a range: 206');
      t.same(part.body, files.small.subarray(1000, 2000), 'ranges too');
      t.equal(srv.child.exitCode, null, 'the server process is still running');
    });

    await t.test('a second request for the big artifact: 507 again, not a hang, not a crash', async (t) => {
      const r = await curl(`${assets}/big`, outFile());
      t.equal(r.code, 0, `curl: the exchange completes (${r.stderr})`);
      expectCacheFull(t, r.status, r.body, 'curl');
      const head = await fetch(`${assets}/big`, { method: 'HEAD' });
      t.equal(head.status, 507, 'HEAD too');
      t.same(readdirSync(srv.inNs(join(cacheDir, 'tmp'))), [], 'still no temporary file');
      t.notOk(existsSync(bigBlob), 'still no blob');
      t.equal(srv.child.exitCode, null, 'the server is still running');
    });

    await t.test('the disk fills in the middle of three downloads: a complete verified body or a cut one, never wrong bytes', async (t) => {
      const free = statfsSync(srv.inNs(cacheDir));
      const freeBytes = free.bavail * free.bsize;
      const sizes = MIDS.map((name) => files[name].length);
      t.ok(
        sizes.every((n) => n < freeBytes) && sizes.reduce((x, y) => x + y) > freeBytes,
        `${MIDS.join(', ')} each fit in the ${freeBytes} bytes left, not together`,
      );
      const clients = await Promise.all(
        MIDS.flatMap((name) => [
          curl(`${assets}/${name}`, outFile()).then((r) => ({
            name,
            via: 'curl',
            status: r.status,
            body: r.body,
            cut: r.code === 0 ? undefined : r.stderr.trim(),
            announced: files[name].length,
          })),
          get(`${assets}/${name}`).then((r) => ({ name, via: 'fetch', status: r.status, body: r.body, cut: r.cut, announced: r.contentLength })),
        ]),
      );
      for (const c of clients) {
        const who = `${c.via} ${c.name}`;
        const want = files[c.name];
        if (c.status === 200 && c.cut === undefined) {
          t.equal(c.body && sha256(c.body), sha256(want), `${who}: a complete body is the right bytes`);
        } else if (c.status === 200) {
          t.equal(c.announced, want.length, `${who}: 200 announcing the whole length`);
          t.ok((c.body?.length ?? 0) < want.length, `${who}: then cut short (${c.cut})`);
          if (c.via === 'curl') t.match(c.cut, /curl: \(18\)/, `${who}: curl reports a partial transfer`);
        } else {
          expectCacheFull(t, c.status, c.body, who, c.name);
        }
      }
      t.ok(
        clients.some((c) => c.status !== 200 || c.cut !== undefined),
        `the disk was full for at least one of them (${clients.map((c) => `${c.via} ${c.name}: ${c.status}${c.cut ? ' cut' : ''}`).join(', ')})`,
      );
      t.ok(
        cacheFull(srv).some((l) => /\/[abc]\.img/.test(String(l.err))),
        'the server logged which download the full disk failed',
      );

      // The cache as the failures left it: no partial file, every blob exactly the bytes it names,
      // every entry backed by its blob.
      t.same(readdirSync(srv.inNs(join(cacheDir, 'tmp'))), [], 'no file left in <cache>/tmp/');
      const left = blobs(srv, cacheDir);
      t.same(
        left.filter((b) => !b.intact),
        [],
        'every blob on the disk hashes to its name',
      );
      const listing = (await (await fetch(`${srv.base}/api/v1/cache`, { headers: { authorization: `Bearer ${srv.token}` } })).json()) as {
        entries: { digest: string; size: number }[];
      };
      for (const e of listing.entries)
        t.ok(
          left.some((b) => b.name === e.digest),
          `the entry ${e.digest.slice(0, 12)}… has its blob`,
        );
      t.notOk(
        listing.entries.some((e) => e.digest === sha256(files.big)),
        'the big artifact is still not listed',
      );

      // Asked again one after the other: served right from the cache or the upstream, or 507.
      for (const name of MIDS) {
        const r = await get(`${assets}/${name}`);
        if (r.status === 200) t.equal(r.body && sha256(r.body), sha256(files[name]), `${name} again: the right bytes`);
        else expectCacheFull(t, r.status, r.body, `${name} again`, name);
      }
      t.same(readdirSync(srv.inNs(join(cacheDir, 'tmp'))), [], 'no file left in <cache>/tmp/');
      t.same(
        blobs(srv, cacheDir).filter((b) => !b.intact),
        [],
        'every blob still hashes to its name',
      );
      const small = await get(`${assets}/small`);
      t.equal(small.body && sha256(small.body), sha256(files.small), 'the small artifact still serves identically');
      t.equal(srv.child.exitCode, null, 'the server is still running');
      t.equal(srv.stderr(), '', 'and wrote nothing to stderr');
    });
  },
);
