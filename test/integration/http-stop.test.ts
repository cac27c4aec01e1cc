/**
 * HTTP's stop under load (the stop contract of src/protocol.ts): four 24 MiB downloads, read
 * slowly by fetch (undici), are in flight when stop() is called. None is cut: each body arrives
 * whole, each response sent to its end before stop() resolves, and a new connection is refused after it. A client that
 * stops reading is cut off once the grace is over, and stop() resolves then.
 */
import Fastify from 'fastify';
import { Readable } from 'node:stream';
import t from 'tap';
import { createHttpServer } from '../../src/http/server.js';
import type { ProtocolServer } from '../../src/protocol.js';

type Test = Parameters<Parameters<typeof t.test>[0]>[0];

const SIZE = 24 << 20;
const CHUNK = 64 << 10;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Served {
  server: ProtocolServer;
  url: string;
  started: () => number;
  /** Responses whose last byte left (Fastify's onResponse). */
  finished: () => number;
}

async function serve(t: Test, stopGraceMs: number): Promise<Served> {
  const app = Fastify();
  let started = 0;
  let finished = 0;
  app.addHook('onResponse', async () => {
    finished++;
  });
  app.get('/big', async (_req, reply) => {
    started++;
    const chunk = Buffer.alloc(CHUNK, 0x5a);
    const body = Readable.from(
      (function* () {
        for (let sent = 0; sent < SIZE; sent += CHUNK) yield chunk;
      })(),
    );
    return reply.header('content-length', SIZE).type('application/octet-stream').send(body);
  });
  const server = createHttpServer(app, { host: '127.0.0.1', port: 0 }, stopGraceMs);
  await server.start();
  t.teardown(() => server.stop());
  return { server, url: `http://127.0.0.1:${server.addresses[0]?.port ?? 0}/big`, started: () => started, finished: () => finished };
}

/** Reads the body with a pause every 1 MiB, so a download lasts about a second. */
/** The body's reader; a download always has a body. */
function bodyOf(res: Response): ReadableStreamDefaultReader<Uint8Array> {
  if (res.body === null) throw new Error(`no body (HTTP ${res.status})`);
  return res.body.getReader() as ReadableStreamDefaultReader<Uint8Array>;
}

async function slowRead(res: Response): Promise<number> {
  const reader = bodyOf(res);
  let bytes = 0;
  let paused = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return bytes;
    bytes += value.length;
    if (bytes - paused >= 1 << 20) {
      paused = bytes;
      await sleep(40);
    }
  }
}

t.test('stop() with 4 large downloads in flight: none is cut, all end before stop() resolves', async (t) => {
  const s = await serve(t, 30_000);
  const downloads = Array.from({ length: 4 }, () => fetch(s.url).then(slowRead));
  for (let n = 0; n < 300 && s.started() < 4; n++) await sleep(10);
  t.equal(s.started(), 4, 'four downloads in flight when stop() is called');
  t.equal(s.finished(), 0, 'none has ended yet');
  await s.server.stop();
  t.equal(s.finished(), 4, 'every response was sent to its end before stop() resolved');
  const done = await Promise.all(downloads);
  for (const [i, bytes] of done.entries()) t.equal(bytes, SIZE, `download ${i} whole`);
  await t.rejects(fetch(s.url), 'a new connection after stop() is refused');
});

t.test('a client that stops reading is cut off after the grace', async (t) => {
  const s = await serve(t, 300);
  const res = await fetch(s.url);
  const reader = bodyOf(res);
  await reader.read();
  const since = Date.now();
  await s.server.stop();
  const took = Date.now() - since;
  t.ok(took >= 290 && took < 3_000, `stop() waited the grace, then cut the connection (${took} ms)`);
  let bytes = 0;
  const cut = await (async () => {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return false;
      bytes += value.length;
    }
  })().catch(() => true);
  t.ok(cut && bytes < SIZE, `the body ended cut (${bytes} more bytes), not whole`);
});
