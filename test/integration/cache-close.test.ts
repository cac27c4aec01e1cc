/**
 * Cancellation is an AbortSignal end to end (src/cache): closing the cache at shutdown stops
 * the downloads running (the upstream request ends, the temporary file goes, readers see the
 * cancellation). A client that leaves while its bytes are still downloading only ends its own
 * wait (test/unit/cache/download.test.ts): the download goes on for the others.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { ArtifactCache, DownloadCancelledError } from '../../src/cache/artifacts.js';
import { BlobStore } from '../../src/cache/blobs.js';
import { createLogger } from '../../src/log.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import { tempDir, testApp } from '../helpers/app.js';

const BODY = randomBytes(64 * 1024);
const SHA = createHash('sha256').update(BODY).digest('hex');

/** An upstream that sends the first half of BODY, then holds the rest until `release()`. */
async function stallingUpstream(): Promise<{ url: string; server: Server; closed: Promise<void>; release: () => void }> {
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  let closed!: () => void;
  const requestClosed = new Promise<void>((resolve) => (closed = resolve));
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-length': BODY.length });
    res.write(BODY.subarray(0, BODY.length / 2));
    res.once('close', () => closed());
    void released.then(() => res.end(BODY.subarray(BODY.length / 2)));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/rootfs.img`, server, closed: requestClosed, release };
}

t.test('closing the cache cancels a running download: the upstream request ends and nothing partial stays', async (t) => {
  const up = await stallingUpstream();
  t.teardown(() => up.server.close());
  const dir = tempDir();
  const store = openSqliteStore({ path: join(dir, 'edgeboot.db') });
  t.teardown(() => store.close());
  const blobs = new BlobStore(join(dir, 'cache'));
  const cache = new ArtifactCache({ store, blobs, log: createLogger('silent'), now: () => new Date() });
  const opened = await cache.open({ url: up.url, sha256: SHA });
  if (opened.kind !== 'download') throw new Error('expected a download');
  const d = opened.download;
  while (d.written < BODY.length / 2) await d.changed();
  await cache.close();
  t.ok(d.failure instanceof DownloadCancelledError, `the download failed as cancelled: ${d.failure?.message}`);
  await t.rejects(d.done, DownloadCancelledError, 'its waiters hear it');
  await up.closed;
  t.pass('the upstream request was closed');
  t.same(readdirSync(blobs.tmpDir), [], 'the temporary file is gone');
  t.equal(await store.getCacheEntry(up.url), undefined, 'nothing was indexed');
});

t.test('a client that leaves mid-download does not stop the download: the next client gets it whole', async (t) => {
  const up = await stallingUpstream();
  t.teardown(() => up.server.close());
  const ta = await testApp(t, { cache: {} });
  const address = await ta.app.listen({ port: 0, host: '127.0.0.1' });
  const started = await ta.artifacts?.open({ url: up.url, sha256: SHA });
  if (started?.kind !== 'download') throw new Error('expected a download');
  const d = started.download;
  while (d.written < BODY.length / 2) await d.changed();
  const id = ta.hubArtifacts?.register({ url: up.url, sha256: SHA });
  if (!id) throw new Error('expected a hub artifact registry');
  // A client that reads the first half and leaves while the rest is held by the upstream.
  const left = await new Promise<number>((resolve, reject) => {
    const req = request(`${address}/assets/hub/${id}/rootfs`, (res) => {
      let got = 0;
      res.on('data', (c: Buffer) => {
        got += c.length;
        if (got >= BODY.length / 2 - 1) req.destroy();
      });
      res.on('close', () => resolve(got));
    });
    req.on('error', (err: NodeJS.ErrnoException) => (err.code === 'ECONNRESET' ? undefined : reject(err)));
    req.end();
  });
  t.ok(left >= BODY.length / 2 - 1, 'the client had what was written, then left');
  up.release();
  const done = await d.done;
  t.equal(done.entry.digest, SHA, 'the download went on and was verified');
  const again = await fetch(`${address}/assets/hub/${id}/rootfs`, { headers: { connection: 'close' } });
  t.equal(
    createHash('sha256')
      .update(Buffer.from(await again.arrayBuffer()))
      .digest('hex'),
    SHA,
    'the next client gets it whole',
  );
});
