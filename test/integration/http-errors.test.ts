/**
 * Issue 15 §1: a request handler that throws ends as a logged 500 with the request id and
 * nothing else; an error after the headers are out ends the connection, not the process; names
 * of Object.prototype in a URL or an event type are unknown names, not a TypeError; and a JSON
 * body nested past MAX_JSON_DEPTH is a 400 on every JSON route, not a stack overflow.
 */
import { execFile } from 'node:child_process';
import { Readable, Writable } from 'node:stream';
import { promisify } from 'node:util';
import Fastify, { type FastifyBaseLogger } from 'fastify';
import t from 'tap';
import { installErrorHandling } from '../../src/http/errors.js';
import { installJsonBodyParsers, jsonDepthExceeds, MAX_JSON_DEPTH } from '../../src/http/json-body.js';
import { createLogger } from '../../src/log.js';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { deepJson } from '../helpers/http-fuzz.js';
import { testApp, type ErrorBody } from '../helpers/app.js';
import { startServer, tempDir } from '../helpers/process.js';

const run = promisify(execFile);
const SECRET_PATH = '/etc/edgeboot/pull-secret.json?token=hunter2hunter2';

interface LogLine {
  level: number;
  reqId?: string;
  route?: string;
  msg: string;
  err?: { message: string; stack: string };
}

/** A test-only app: the error handling of the real one, routes that fail in each way, log lines kept. */
async function failingApp() {
  const lines: LogLine[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l) as LogLine);
      done();
    },
  });
  // Typed as Fastify's logger, so the instance is the FastifyInstance the installers take.
  const logger: FastifyBaseLogger = createLogger('info', sink);
  const app = Fastify({ loggerInstance: logger });
  installErrorHandling(app);
  installJsonBodyParsers(app);
  app.get('/sync', () => {
    throw new Error(`cannot open ${SECRET_PATH}`);
  });
  app.get('/async', async () => {
    await new Promise((resolve) => setImmediate(resolve));
    throw new TypeError(`Cannot read properties of undefined (reading '${SECRET_PATH}')`);
  });
  app.get('/mid-body', (_req, reply) => {
    let sent = 0;
    const body = new Readable({
      read() {
        if (sent++ < 4) this.push(Buffer.alloc(64 * 1024, 0x61));
        else this.destroy(new Error(`disk read failed at ${SECRET_PATH}`));
      },
    });
    return reply.type('application/octet-stream').send(body);
  });
  app.post('/echo', async (req) => ({ got: req.body }));
  await app.ready();
  return { app, lines };
}

t.test('a handler that throws, sync or async: 500 with the request id only, one error line with id, route and stack', async (t) => {
  const { app, lines } = await failingApp();
  t.teardown(() => app.close());
  for (const path of ['/sync', '/async']) {
    lines.length = 0;
    const res = await app.inject({ url: path });
    t.equal(res.statusCode, 500, path);
    const body = res.json<{ error: string; message: string; requestId: string }>();
    t.same(
      body,
      { error: 'internal', message: 'internal server error', requestId: body.requestId },
      `${path}: the body is the code, a sentence and the id, nothing else`,
    );
    t.ok(body.requestId.length > 0, 'a request id');
    t.notMatch(res.body, /pull-secret|hunter2|Cannot read|at /, 'no message text or stack in the body');
    const errors = lines.filter((l) => l.level >= 50);
    t.equal(errors.length, 1, `${path}: logged once at error level`);
    const line = errors[0];
    t.equal(line?.reqId, body.requestId, 'the log line carries the request id the client was given');
    t.equal(line?.route, path, 'and the route');
    t.match(line?.err?.stack, /at /, 'and the stack');
    t.notMatch(JSON.stringify(line), /hunter2/, 'the token in the message is redacted in the log');
  }
});

t.test('an error after the headers are sent ends the connection (curl sees a short body) and the server goes on', async (t) => {
  const { app, lines } = await failingApp();
  t.teardown(() => app.close());
  await app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = app.server.address() as { port: number };
  const cut = await run('curl', [
    '-sS',
    '--max-time',
    '10',
    '-o',
    '/dev/null',
    '-w',
    '%{http_code} %{size_download}',
    `http://127.0.0.1:${port}/mid-body`,
  ]).then(
    () => undefined,
    (err: unknown) => err as { code: number; stdout: string },
  );
  t.ok(cut, 'curl fails: the body ended before its end');
  t.match(cut?.stdout, /^200 \d+$/, 'after a 200 status line and part of the body');
  t.ok([18, 56].includes(cut?.code ?? 0), `curl reports a partial transfer or a receive failure (exit ${cut?.code})`);
  const after = await run('curl', ['-sS', '--max-time', '10', '-w', ' %{http_code}', `http://127.0.0.1:${port}/sync`]);
  t.match(after.stdout, /"error":"internal".* 500$/, 'the same server answers the next request');
  t.notMatch(lines.map((l) => JSON.stringify(l)).join('\n'), /hunter2/, 'no token in any log line');
});

t.test('jsonDepthExceeds counts containers without recursion', async (t) => {
  t.equal(jsonDepthExceeds(1, 0), false, 'a scalar has no depth');
  t.equal(jsonDepthExceeds({}, 1), false);
  t.equal(jsonDepthExceeds({ a: [{}] }, 2), true, '{a:[{}]} is 3 deep');
  t.equal(jsonDepthExceeds({ a: [{}] }, 3), false);
  t.equal(jsonDepthExceeds(JSON.parse(deepJson(MAX_JSON_DEPTH, false)), MAX_JSON_DEPTH), false, 'exactly the cap passes');
  t.equal(jsonDepthExceeds(JSON.parse(deepJson(MAX_JSON_DEPTH + 1, true)), MAX_JSON_DEPTH), true);
  t.equal(jsonDepthExceeds(JSON.parse(deepJson(500_000, true)), MAX_JSON_DEPTH), true, 'half a million levels, no stack overflow');
});

t.test('a body nested past the cap is a 400 on every JSON route; at the cap it is parsed', async (t) => {
  const { app } = await failingApp();
  t.teardown(() => app.close());
  const atCap = await app.inject({ method: 'POST', url: '/echo', headers: { 'content-type': 'application/json' }, payload: deepJson(MAX_JSON_DEPTH, false) });
  t.equal(atCap.statusCode, 200, `${MAX_JSON_DEPTH} levels are fine`);
  const over = await app.inject({
    method: 'POST',
    url: '/echo',
    headers: { 'content-type': 'application/json' },
    payload: deepJson(MAX_JSON_DEPTH + 1, false),
  });
  t.equal(over.statusCode, 400);
  t.same(over.json(), { error: 'invalid_request', message: `the JSON body nests deeper than ${MAX_JSON_DEPTH} levels of objects and arrays` });
});

t.test('the whole app: deep JSON bodies are 400s, Object.prototype names are unknown names', async (t) => {
  const ta = await testApp(t, { cache: { retries: 0 } });
  const { app, auth } = ta;
  const mac = '52:54:00:00:15:01';
  const put = await app.inject({ method: 'PUT', url: `/api/v1/machines/${mac}`, headers: auth, payload: { profile: 'rhcos-live', labels: { site: 'f1' } } });
  t.equal(put.statusCode, 201);

  // The merge patch of the issue: 150,000 levels (900 KB, under the 1 MiB body limit).
  const patch = await app.inject({
    method: 'PATCH',
    url: `/api/v1/machines/${mac}`,
    headers: { ...auth, 'content-type': 'application/merge-patch+json' },
    payload: deepJson(150_000, false),
  });
  t.equal(patch.statusCode, 400, 'PATCH with a 150,000-level merge patch');
  t.match(patch.json<ErrorBody>(), { error: 'invalid_request', message: /nests deeper than 32/ });

  const routes: { method: 'POST' | 'PUT' | 'PATCH'; url: string; limit: number }[] = [
    { method: 'PUT', url: `/api/v1/machines/${mac}`, limit: 1 << 20 },
    { method: 'PATCH', url: `/api/v1/machines/${mac}`, limit: 1 << 20 },
    { method: 'POST', url: `/api/v1/machines/${mac}/events`, limit: 64 << 10 },
    { method: 'POST', url: `/api/v1/machines/${mac}/reset`, limit: 1 << 20 },
    { method: 'POST', url: `/api/v1/machines/${mac}/inventory`, limit: 256 << 10 },
    { method: 'POST', url: `/api/v1/machines/${mac}/result`, limit: 64 << 10 },
    { method: 'POST', url: '/api/v1/cache/prefetch', limit: 1 << 20 },
    { method: 'POST', url: '/api/v1/images/jobs', limit: 1 << 20 },
    { method: 'POST', url: '/api/v1/bundles', limit: 1 << 20 },
  ];
  for (const r of routes) {
    // As deep as the route's body limit allows, inside an otherwise plausible body.
    const levels = Math.floor((r.limit - 200) / 6);
    for (const payload of [
      `{"type":"booted","data":${deepJson(levels, false)}}`,
      `{"labels":${deepJson(levels, true)}}`,
      deepJson(MAX_JSON_DEPTH + 1, false),
    ]) {
      const res = await app.inject({ method: r.method, url: r.url, headers: { ...auth, 'content-type': 'application/json' }, payload });
      t.equal(res.statusCode, 400, `${r.method} ${r.url} with ${payload.length} bytes of nesting`);
      t.match(res.json<ErrorBody>(), { error: 'invalid_request', message: /nests deeper/ });
    }
  }

  for (const name of ['constructor', 'toString', '__proto__', 'hasOwnProperty', 'valueOf']) {
    const res = await app.inject({ url: `/assets/rhcos-live/${name}` });
    t.equal(res.statusCode, 404, `/assets/rhcos-live/${name}`);
    t.equal(res.json<ErrorBody>().error, 'not_found');
  }

  for (const type of ['constructor', 'tostring', 'valueof', 'hasownproperty']) {
    const res = await app.inject({ method: 'POST', url: `/api/v1/machines/${mac}/events`, headers: auth, payload: { type, message: 'x' } });
    t.equal(res.statusCode, 201, `an event of type ${type} is recorded, not a TypeError`);
  }
  const m = await app.inject({ url: `/api/v1/machines/${mac}`, headers: auth });
  t.equal(m.json<{ state: string }>().state, 'registered', 'and moves nothing');
});

t.test('edgeboot serve: an error that escapes every handler is one fatal log line and exit 70, for the service manager to restart', async (t) => {
  for (const kind of ['throw', 'reject'] as const) {
    // Preloaded into the real server: on SIGUSR2, an exception or a rejection nothing catches.
    const preload = join(tempDir(t), 'escape.mjs');
    writeFileSync(
      preload,
      kind === 'throw'
        ? "process.on('SIGUSR2', () => setImmediate(() => { throw new Error('escaped throw token=hunter2hunter2'); }));\n"
        : "process.on('SIGUSR2', () => { void Promise.reject(new Error('escaped rejection token=hunter2hunter2')); });\n",
    );
    const server = await startServer(t, { dataDir: join(tempDir(t), 'var'), env: { NODE_OPTIONS: `--import=${preload}` } });
    const health = await fetch(`${server.url}/healthz`);
    t.equal(health.status, 200, `${kind}: serving before`);
    server.process.kill('SIGUSR2');
    const exit = await server.exited;
    t.equal(exit.code, 70, `${kind}: exits with 70 (EX_SOFTWARE), not on in an unknown state`);
    const fatal = server.logLines.filter((l) => l.level === 60);
    t.equal(fatal.length, 1, `${kind}: one fatal line`);
    t.match(fatal[0], { kind: kind === 'throw' ? 'uncaughtException' : 'unhandledRejection', err: { message: /escaped/, stack: /at / } });
    t.notMatch(JSON.stringify(server.logLines) + server.stderr(), /hunter2/, 'the secret in the message is redacted');
  }
});
