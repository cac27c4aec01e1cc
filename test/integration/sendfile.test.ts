/**
 * Artifact bodies sent by the kernel (native/http_sendfile.c through src/http/sendfile.ts), with
 * real curl on a loopback listener:
 * - whole files, ranges and many concurrent clients get exact bytes; keep-alive carries the
 *   next request on the same connection; the ETag is the strong nginx-style one;
 * - a client that goes away mid-body ends its transfer, and the server holds no descriptor
 *   for it afterwards;
 * - cache.clientRate caps one client's transfers together, not another client's;
 * - straight on the addon: a client that stops reading is cut after the stall time, and a
 *   file shorter than the range is an error, not a short body passed off as complete.
 */
import { execFile, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, fstatSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import t, { type Test } from 'tap';
import { activeSendfiles, sendfileBody } from '../../src/http/sendfile.js';
import { tempDir, testApp } from '../helpers/app.js';

const run = promisify(execFile);
const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const MiB = 1024 * 1024;
const openFds = () => readdirSync('/proc/self/fd').length;

async function until(what: string, check: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** A profile `lab` with file:// artifacts of the given sizes, served by a listening app. */
async function lab<K extends string>(t: Test, sizes: Record<K, number>, config: Record<string, unknown> = {}) {
  const dir = tempDir();
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, 'files'));
  mkdirSync(join(dir, 'profiles'));
  const files = {} as Record<K, Buffer>;
  const lines = ['name: lab', 'description: sendfile test artifacts', 'artifacts:'];
  for (const [name, size] of Object.entries<number>(sizes) as [K, number][]) {
    files[name] = randomBytes(size);
    writeFileSync(join(dir, 'files', name), files[name]);
    lines.push(`  ${name}: { url: "file://${join(dir, 'files', name)}" }`);
  }
  lines.push('boot:', `  kernel: ${Object.keys(sizes)[0]}`, '  initrds: []', '  args: console=ttyS0', '');
  writeFileSync(join(dir, 'profiles', 'lab.yaml'), lines.join('\n'));
  const ta = await testApp(t, { profileDirs: [join(dir, 'profiles')], config });
  await ta.app.listen({ port: 0, host: '127.0.0.1' });
  const port = (ta.app.server.address() as AddressInfo).port;
  return { dir, files, url: (name: string) => `http://127.0.0.1:${port}/assets/lab/${name}` };
}

t.test('whole, ranged, kept-alive and concurrent bodies are exact', async (t) => {
  const { dir, files, url } = await lab(t, { rootfs: 24 * MiB + 7 });
  const rootfs = files.rootfs;
  const out = join(dir, 'out');
  const head = await run('curl', ['-fsS', '-D', '-', '-o', out, url('rootfs')]);
  t.equal(sha256(readFileSync(out)), sha256(rootfs), 'the whole file');
  t.match(head.stdout, new RegExp(`^content-length: ${rootfs.length}\\r?$`, 'mi'));
  t.match(head.stdout, /^etag: "[0-9a-f]+-180000[07]"\r?$/im, 'a strong ETag of mtime and size');

  await run('curl', ['-fsS', '-r', '1000-2999999', '-o', out, url('rootfs')]);
  t.same(readFileSync(out), rootfs.subarray(1000, 3_000_000), 'a range');
  await run('curl', ['-fsS', '-r', '-5', '-o', out, url('rootfs')]);
  t.same(readFileSync(out), rootfs.subarray(rootfs.length - 5), 'a suffix range');

  // Two URLs to curl: the second request rides the first connection.
  const twice = await run('curl', ['-fsS', '-o', `${out}.1`, '-o', `${out}.2`, '-w', '%{num_connects}\\n', url('rootfs'), url('rootfs')]);
  t.same(twice.stdout.trim().split('\n'), ['1', '0'], 'one connection for both');
  t.equal(sha256(readFileSync(`${out}.1`)), sha256(rootfs));
  t.equal(sha256(readFileSync(`${out}.2`)), sha256(rootfs), 'the kept-alive answer is exact too');

  const many = await Promise.all(
    Array.from({ length: 20 }, (_, i) =>
      run('curl', ['-fsS', '-o', '-', url('rootfs')], { encoding: 'buffer', maxBuffer: 64 * MiB }).then((r) => {
        writeFileSync(`${out}.c${i}`, r.stdout);
        return sha256(r.stdout);
      }),
    ),
  );
  t.same(new Set(many), new Set([sha256(rootfs)]), '20 concurrent clients, 20 exact bodies');
  await until('the transfers to end', () => activeSendfiles() === 0);
});

t.test('a client that goes away mid-body ends its transfer and leaves no descriptor', async (t) => {
  const { url } = await lab(t, { rootfs: 64 * MiB });
  const before = openFds();
  // 1 MiB/s for 1 s: the client leaves with most of the file unsent.
  const cut = await run('curl', ['-sS', '--limit-rate', '1M', '--max-time', '1', '-o', '/dev/null', '-w', '%{size_download}', url('rootfs')]).catch(
    (err: unknown) => err,
  );
  t.equal((cut as { code?: number }).code, 28, 'curl gave up (timeout)');
  t.ok(Number((cut as { stdout: string }).stdout) < 64 * MiB, 'with part of the body');
  await until('the transfer to end', () => activeSendfiles() === 0);
  await until('the descriptors to be closed', () => openFds() <= before);
  t.pass('no transfer and no extra descriptor left');
  const again = await run('curl', ['-fsS', '-o', '/dev/null', '-w', '%{size_download}', url('rootfs')]);
  t.equal(Number(again.stdout), 64 * MiB, 'the next client is served whole');
});

t.test('cache.clientRate caps one client, all its transfers together', async (t) => {
  const { url } = await lab(t, { a: 4 * MiB, b: 4 * MiB }, { cache: { clientRate: '4MiB' } });
  const timed = async (args: string[][]) => {
    const t0 = Date.now();
    const sizes = await Promise.all(args.map((a) => run('curl', ['-fsS', '-o', '/dev/null', '-w', '%{size_download}', ...a]).then((r) => Number(r.stdout))));
    return { ms: Date.now() - t0, sizes };
  };
  const one = await timed([[url('a')]]);
  t.same(one.sizes, [4 * MiB]);
  // A client's bucket starts empty: 4 MiB at 4 MiB/s is a second.
  t.ok(one.ms >= 900, `4 MiB at 4 MiB/s took ${one.ms} ms (at least 0.9 s)`);
  const same = await timed([[url('a')], [url('b')]]);
  t.same(same.sizes, [4 * MiB, 4 * MiB]);
  t.ok(same.ms >= 1800, `two transfers of one client share its cap: 8 MiB took ${same.ms} ms (at least 1.8 s)`);
  const apart = await timed([[url('a')], ['--interface', '127.0.0.2', url('b')]]);
  t.same(apart.sizes, [4 * MiB, 4 * MiB]);
  t.ok(apart.ms < same.ms * 0.8, `two clients each have their own: ${apart.ms} ms against ${same.ms} ms for one`);
});

/** A plain http server whose every answer is `length` bytes of `path` from `offset`, by sendfileBody. */
async function rawServer(t: Test, path: string, length: number, stallMs: number) {
  const results: { sent?: number; code?: string }[] = [];
  const server: Server = createServer((req, res) => {
    const fd = openSync(path, 'r');
    res.setHeader('content-length', length);
    sendfileBody(res, fd, 0, length, { rate: 0, rateKey: '', stallMs })
      .then((sent) => results.push({ sent }))
      .catch((err: unknown) => {
        const e = err as NodeJS.ErrnoException & { sent?: number };
        results.push({ ...(e.sent !== undefined && { sent: e.sent }), ...(e.code !== undefined && { code: e.code }) });
      })
      .finally(() => closeSync(fd));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  return { port: (server.address() as AddressInfo).port, results };
}

t.test('a client that stops reading is cut after the stall time', async (t) => {
  const dir = tempDir();
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'big');
  writeFileSync(path, randomBytes(64 * MiB));
  const { port, results } = await rawServer(t, path, 64 * MiB, 400);
  const client = connect(port, '127.0.0.1');
  client.pause(); // never reads: the socket buffers fill and sendfile would wait for ever
  t.teardown(() => client.destroy());
  client.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
  const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
  await until('the stall to be noticed', () => results.length === 1);
  t.equal(results[0]?.code, 'ETIMEDOUT', 'ended as a stall');
  t.ok((results[0]?.sent ?? 0) > 0 && (results[0]?.sent ?? 0) < 64 * MiB, 'after part of the body');
  client.resume();
  await closed;
  t.pass('and the connection is closed');
});

t.test('a file shorter than the range is an error and the connection is closed', async (t) => {
  const dir = tempDir();
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'short');
  writeFileSync(path, randomBytes(100_000));
  const { port, results } = await rawServer(t, path, 200_000, 5000);
  const curl = spawn('curl', ['-sS', '-o', '/dev/null', `http://127.0.0.1:${port}/`]);
  const code = await new Promise<number | null>((resolve) => curl.on('close', resolve));
  t.equal(code, 18, 'curl: transfer closed with outstanding read data (18)');
  t.same(results, [{ sent: 100_000, code: 'ENODATA' }]);
  t.equal(fstatSync(openSync(path, 'r')).size, 100_000);
});

t.test('preconditions over a real connection: 304, 412 with the reason, If-Range', async (t) => {
  const { url } = await lab(t, { kernel: 100_000 });
  const head = await run('curl', ['-fsS', '--head', url('kernel')]);
  const etag = /^etag: (.+?)\r?$/im.exec(head.stdout)?.[1] ?? '';
  t.match(etag, /^"[0-9a-f]+-186a0"$/);
  const code = async (...args: string[]) => (await run('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', ...args, url('kernel')])).stdout;
  t.equal(await code('-H', `If-None-Match: ${etag}`), '304');
  t.equal(await code('-H', 'If-Match: "other"'), '412');
  const body = (await run('curl', ['-sS', '-H', 'If-Match: "other"', url('kernel')])).stdout;
  t.match(JSON.parse(body), { error: 'precondition_failed', message: /is not the one If-Match/ });
  t.equal(await code('-r', '0-9', '-H', `If-Range: ${etag}`), '206');
  t.equal(await code('-r', '0-9', '-H', 'If-Range: "stale"'), '200');
});

t.test('pipelined requests on one connection get their answers whole and in order', async (t) => {
  const { files, url } = await lab(t, { a: 3 * MiB + 1, b: 2 * MiB + 3 });
  const { port, pathname: pathA } = new URL(url('a'));
  const pathB = new URL(url('b')).pathname;
  const client = connect(Number(port), '127.0.0.1');
  t.teardown(() => client.destroy());
  const chunks: Buffer[] = [];
  client.on('data', (c: Buffer) => chunks.push(c));
  const ended = new Promise<void>((resolve) => client.once('end', () => resolve()));
  // Both requests in one write: the second arrives while the first body is being sent.
  client.write(`GET ${pathA} HTTP/1.1\r\nHost: x\r\n\r\nGET ${pathB} HTTP/1.1\r\nHost: x\r\n\r\nGET ${pathA} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
  await ended;
  let rest = Buffer.concat(chunks);
  const bodies: Buffer[] = [];
  while (rest.length > 0) {
    const split = rest.indexOf('\r\n\r\n');
    const head = rest.subarray(0, split).toString('latin1');
    t.match(head, /^HTTP\/1\.1 200 /, 'a 200');
    const length = Number(/^content-length: (\d+)$/im.exec(head)?.[1]);
    bodies.push(rest.subarray(split + 4, split + 4 + length));
    rest = rest.subarray(split + 4 + length);
  }
  t.equal(bodies.length, 3, 'three answers');
  t.same(bodies.map(sha256), [files.a, files.b, files.a].map(sha256), 'each the right file, in order');
});
