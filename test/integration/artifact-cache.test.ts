/**
 * The artifact cache behind /assets, against a stand-in upstream (test/helpers/upstream.ts)
 * that counts requests and bytes and misbehaves on demand, with real HTTP clients (Node's
 * fetch, curl) on a loopback listener:
 * - 20 concurrent requests for one uncached artifact: one upstream fetch, 20 identical bodies
 *   with the upstream's sha256; afterwards hits, no upstream request;
 * - a connection dropped mid-body is resumed with Range (If-Range), and the bytes are exact;
 * - bytes that do not match the profile's sha256 are refused with a clear 502, nothing is
 *   stored, and the next request tries again;
 * - a machine that asks while the download runs is served the bytes as they arrive, whole
 *   or a range, and HEAD answers the length;
 * - an upstream error status or an unreachable upstream fails fast with a 502 naming it,
 *   while cached artifacts keep serving;
 * - the index key and every answer leave the api_key out.
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Agent, setGlobalDispatcher } from 'undici';
import t, { type Test } from 'tap';
import { activeSendfiles } from '../../src/http/sendfile.js';
import { tempDir, testApp, type ErrorBody, type TestApp } from '../helpers/app.js';
import { startUpstream, type Upstream } from '../helpers/upstream.js';

// The test's fetch closes its connections at once: a kept-alive one would hold app.close()
// for Fastify's 72 s keep-alive when a socket is still counted busy (seen with Node 20).
setGlobalDispatcher(new Agent({ keepAliveTimeout: 10, keepAliveMaxTimeout: 10 }));

const run = promisify(execFile);
const sha256 = (b: Buffer | Uint8Array): string => createHash('sha256').update(b).digest('hex');
const MiB = 1024 * 1024;

interface Lab {
  up: Upstream;
  ta: TestApp;
  base: string;
  files: { rootfs: Buffer; kernel: Buffer; initrd: Buffer; slow: Buffer };
}

async function lab(t: Test): Promise<Lab> {
  const up = await startUpstream(t);
  const files = {
    rootfs: randomBytes(3 * MiB + 17),
    kernel: randomBytes(1 * MiB + 5),
    initrd: randomBytes(2 * MiB + 3),
    slow: randomBytes(2 * MiB),
  };
  for (const [name, b] of Object.entries(files)) up.files.set(`/${name}.img`, b);
  const dir = tempDir();
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const profiles = join(dir, 'profiles');
  mkdirSync(profiles);
  writeFileSync(
    join(profiles, 'remote.yaml'),
    [
      'name: remote',
      'description: artifacts from the stand-in upstream',
      'artifacts:',
      `  rootfs: { url: "${up.url('/rootfs.img')}?arch=x86_64&api_key=SECRETKEY" }`,
      `  kernel: { url: "${up.url('/kernel.img')}", sha256: ${sha256(files.kernel)} }`,
      `  initrd: { url: "${up.url('/initrd.img')}", sha256: ${sha256(files.initrd)}, size: ${files.initrd.length} }`,
      `  slow: { url: "${up.url('/slow.img')}" }`,
      `  missing: { url: "${up.url('/missing.img')}" }`,
      '  offline: { url: "http://127.0.0.1:9/never.img" }',
      'boot:',
      '  kernel: kernel',
      '  initrds: [initrd, rootfs, slow, missing, offline]',
      '  args: console=ttyS0',
      '',
    ].join('\n'),
  );
  const ta = await testApp(t, { profileDirs: [profiles], cache: { retries: 3, headersTimeoutMs: 5_000, bodyTimeoutMs: 5_000, failureHoldMs: 300 } });
  await ta.app.listen({ host: '127.0.0.1', port: 0 });
  const addr = ta.app.server.address();
  if (addr === null || typeof addr === 'string') throw new Error('no port');
  return { up, ta, base: `http://127.0.0.1:${addr.port}/assets/remote`, files };
}

const blobCount = (ta: TestApp): number => readdirSync(join(ta.dir, 'cache', 'blobs', 'sha256')).length;
const tmpCount = (ta: TestApp): number => readdirSync(join(ta.dir, 'cache', 'tmp')).length;

t.test('20 concurrent requests for an uncached artifact: one upstream fetch, 20 identical verified bodies', async (t) => {
  const { up, ta, base, files } = await lab(t);
  up.misbehave.set('/rootfs.img', { slow: { chunk: 256 * 1024, delayMs: 10 } });
  let atOnce = 0;
  const probe = setInterval(() => (atOnce = Math.max(atOnce, activeSendfiles())), 2);
  const bodies = await Promise.all(Array.from({ length: 20 }, async () => Buffer.from(await (await fetch(`${base}/rootfs`)).arrayBuffer())));
  clearInterval(probe);
  t.ok(atOnce > 1, `the running download went to the readers by sendfile, span by span (${atOnce} transfers at once)`);
  t.equal(up.gets('/rootfs.img').length, 1, 'exactly one upstream request');
  t.equal(up.gets('/rootfs.img')[0]?.bytes, files.rootfs.length, 'and it sent the file once');
  t.same(new Set(bodies.map(sha256)), new Set([sha256(files.rootfs)]), "every body is the upstream's file");
  const entries = await ta.store.listCacheEntries();
  t.equal(entries.length, 1);
  t.equal(entries[0]?.digest, sha256(files.rootfs), 'indexed by its sha256');
  t.equal(entries[0]?.key, `${up.url('/rootfs.img')}?arch=x86_64`, 'the index key keeps arch and drops the api_key');
  t.notMatch(JSON.stringify(entries), /SECRETKEY/);

  const again = await Promise.all(Array.from({ length: 5 }, async () => sha256(Buffer.from(await (await fetch(`${base}/rootfs`)).arrayBuffer()))));
  t.same(new Set(again), new Set([sha256(files.rootfs)]));
  t.equal(up.gets('/rootfs.img').length, 1, 'later requests are hits: no upstream request');

  const head = await run('curl', ['-fsS', '--head', `${base}/rootfs`]);
  t.match(head.stdout, /^HTTP\/1\.1 200/m, 'curl --head --fail of a cached artifact');
  t.match(head.stdout, new RegExp(`^content-length: ${files.rootfs.length}\\r?$`, 'mi'));
  const out = join(ta.dir, 'part');
  await run('curl', ['-fsS', '-r', '1000-1999', '-o', out, `${base}/rootfs`]);
  t.same((await import('node:fs')).readFileSync(out), files.rootfs.subarray(1000, 2000), 'curl -r of a cached artifact');
});

t.test('a dropped upstream connection is resumed with Range and the bytes are exact', async (t) => {
  const { up, ta, base, files } = await lab(t);
  up.misbehave.set('/initrd.img', { dropAfter: { bytes: 700_000, times: 2 } });
  const res = await fetch(`${base}/initrd`);
  t.equal(res.status, 200);
  t.equal(sha256(Buffer.from(await res.arrayBuffer())), sha256(files.initrd), 'the whole file, verified against the profile sha256');
  const gets = up.gets('/initrd.img');
  t.equal(gets.length, 3, 'two drops, two resumes');
  // Bytes the upstream wrote just before the reset may be lost on the way: each resume asks
  // from what the cache received, so the starts are at most the upstream's counts.
  const start = (r: string | undefined) => Number(/^bytes=(\d+)-$/.exec(r ?? '')?.[1] ?? NaN);
  const s1 = start(gets[1]?.range);
  const s2 = start(gets[2]?.range);
  t.ok(s1 > 0 && s1 <= 700_000, `the first resume asks from where the body stopped (bytes=${s1}-)`);
  t.ok(s2 > s1 && s2 <= s1 + 700_000, `and the second from further on (bytes=${s2}-)`);
  t.equal(gets[1]?.ifRange, `"v1-${files.initrd.length}"`, 'with If-Range: the same file or all of it');
  t.equal(gets[1]?.status, 206);
  t.equal(gets[2]?.bytes, files.initrd.length - s2, 'the last answer carried only the rest');
  t.equal(blobCount(ta), 1);
  t.equal(tmpCount(ta), 0, 'no temporary file left');
});

t.test('an upstream that ignores Range: the download starts over; no reader gets mixed bytes', async (t) => {
  const { up, base, files } = await lab(t);
  up.misbehave.set('/kernel.img', { dropAfter: { bytes: 300_000 }, noRanges: true });
  const first = await fetch(`${base}/kernel`);
  t.equal(first.status, 200, 'the first machine is served as the bytes arrive');
  await t.rejects(first.arrayBuffer(), 'and its transfer is cut when the download has to start over');
  const second = await fetch(`${base}/kernel`);
  t.equal(second.status, 200);
  t.equal(sha256(Buffer.from(await second.arrayBuffer())), sha256(files.kernel), 'the next request gets the whole, verified file');
  t.equal(up.gets('/kernel.img').length, 2, 'from the restarted download: two upstream requests in all');
});

t.test('wrong bytes are never served as complete or stored, and the error says why', async (t) => {
  const { up, ta, base } = await lab(t);
  up.misbehave.set('/kernel.img', { corrupt: true });
  const first = await fetch(`${base}/kernel`);
  t.equal(first.status, 200, 'served as the bytes arrive…');
  await t.rejects(first.arrayBuffer(), '…but the last byte waits for the sha256, and the transfer is cut when it fails');
  const res = await fetch(`${base}/kernel`);
  t.equal(res.status, 502, 'the next request gets the error at once');
  const body = (await res.json()) as ErrorBody;
  t.equal(body.error, 'integrity_failed');
  t.match(body.message, /sha256 is [0-9a-f]{64}, expected [0-9a-f]{64}; nothing was stored/);
  t.equal(up.gets('/kernel.img').length, 1, 'without pulling the wrong file again');
  t.equal(blobCount(ta), 0, 'no blob');
  t.equal(tmpCount(ta), 0, 'no temporary file');
  t.same(await ta.store.listCacheEntries(), [], 'no index entry');
  up.misbehave.delete('/kernel.img');
  await new Promise((r) => setTimeout(r, 400)); // failureHoldMs: 300
  const retry = await fetch(`${base}/kernel`);
  t.equal(retry.status, 200, 'after the hold the next request fetches again, and this time the bytes are right');
  await retry.arrayBuffer();
  t.equal(up.gets('/kernel.img').length, 2);

  up.files.set('/initrd.img', randomBytes(1000));
  const short = await fetch(`${base}/initrd`);
  t.equal(short.status, 502, 'a length other than the profile names is refused before any byte is served');
  t.match(((await short.json()) as ErrorBody).message, /announces 1000 bytes, the profile expects/);
});

t.test('a machine that asks mid-download gets the bytes as they arrive, ranges and HEAD too', async (t) => {
  const { up, ta, base, files } = await lab(t);
  // 2 MiB in 64 KiB pieces 40 ms apart: about 1.3 s upstream.
  up.misbehave.set('/slow.img', { slow: { chunk: 64 * 1024, delayMs: 40 } });
  const started = Date.now();
  const whole = await fetch(`${base}/slow`);
  const reader: ReadableStreamDefaultReader<Uint8Array> | undefined = whole.body?.getReader();
  if (!reader) throw new Error('no body');
  const first = await reader.read();
  t.ok(first.value && first.value.length > 0, 'the first bytes');
  // Not a time bound (a busy machine makes those fail): the cache records an entry when the download ends.
  t.same(await ta.store.listCacheEntries(), [], 'arrived while the download was still running (no cache entry yet)');
  t.equal(whole.headers.get('content-length'), String(files.slow.length), 'with the full length announced');
  const head = await fetch(`${base}/slow`, { method: 'HEAD' });
  t.equal(head.status, 200, 'HEAD mid-download');
  t.equal(head.headers.get('content-length'), String(files.slow.length));
  const part = await fetch(`${base}/slow`, { headers: { range: 'bytes=1500000-1500999' } });
  t.equal(part.status, 206, 'a range mid-download');
  t.equal(part.headers.get('content-range'), `bytes 1500000-1500999/${files.slow.length}`);
  t.same(Buffer.from(await part.arrayBuffer()), files.slow.subarray(1_500_000, 1_501_000));
  const past = await fetch(`${base}/slow`, { headers: { range: `bytes=${files.slow.length}-` } });
  t.equal(past.status, 416);
  const chunks: Uint8Array[] = [first.value as Uint8Array];
  for (;;) {
    const r = await reader.read();
    if (r.done) break;
    chunks.push(r.value);
  }
  t.equal(sha256(Buffer.concat(chunks)), sha256(files.slow), 'the streamed body is the file');
  t.equal(up.gets('/slow.img').length, 1, 'all of it from one upstream fetch');
  t.ok(Date.now() - started >= 1000, 'the stream lasted as long as the upstream');
  t.equal((await ta.store.listCacheEntries()).length, 1, 'and it is cached now');
});

t.test('upstream errors and an unreachable upstream fail fast and say so; cached artifacts keep serving', async (t) => {
  const { up, base, files } = await lab(t);
  const missing = await fetch(`${base}/missing`);
  t.equal(missing.status, 502);
  const m = (await missing.json()) as ErrorBody;
  t.equal(m.error, 'upstream_failed');
  t.match(m.message, /missing\.img: answered HTTP 404/);
  const offline = await fetch(`${base}/offline`);
  t.equal(offline.status, 502);
  t.match(((await offline.json()) as ErrorBody).message, /ECONNREFUSED/, 'the upstream error is named: the first refusal is the answer, no retry hides it');

  const warm = await fetch(`${base}/kernel`);
  t.equal(warm.status, 200, 'cached while the upstream is up');
  await warm.arrayBuffer();
  await up.close();
  const cached = await fetch(`${base}/kernel`);
  t.equal(cached.status, 200, 'the upstream is gone: the cached artifact still serves');
  t.equal(sha256(Buffer.from(await cached.arrayBuffer())), sha256(files.kernel));
  const uncached = await fetch(`${base}/rootfs`);
  t.equal(uncached.status, 502, 'an uncached one fails');
  t.notMatch(await uncached.text(), /SECRETKEY/, 'and its error leaves the api_key out');
});
