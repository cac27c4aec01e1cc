/**
 * A reader slower than an upstream that closes its connection must not end the process
 * (issue 15 §1; undici 7 asserts `!this.paused` in Parser.finish when the socket of a
 * non-keep-alive response ends while back-pressure holds its parser). Each fetch runs in a
 * child process (test/helpers/slow-reader-run.ts) that pipes a 32 MiB body into a Writable
 * sleeping between chunks, from loopback upstreams on port 0:
 * - `python3 -m http.server` (HTTP/1.0, Content-Length, close) and a bare node:net server in
 *   both closing framings (no length; Content-Length with `Connection: close`): through the
 *   upstream dispatcher (src/net/upstream-agent.ts) the child ends with the right sha256;
 *   through the Agent every fetch used before, the same child dies of the assertion, which is
 *   what proves the dispatcher makes the difference;
 * - a keep-alive upstream (node:http) keeps undici's back-pressure: little waits in memory;
 * - a reader that falls further behind than `maxHeldBytes` gets an UpstreamOutpacedError, and
 *   its process lives on.
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';
import type { SlowReadResult } from '../helpers/slow-reader-run.js';
import { tempDir } from '../helpers/process.js';
import { startClosingUpstream, startPythonHttpServer, startUpstream } from '../helpers/upstream.js';

const RUNNER = fileURLToPath(new URL('../helpers/slow-reader-run.ts', import.meta.url));
/** The TypeScript loader the tests run under (package.json's tap node-arg), for the .ts runner. */
const TS_LOADER = [`--import=${import.meta.resolve('tsx')}`];
const MiB = 1024 * 1024;
const BODY = randomBytes(32 * MiB);
const BODY_SHA = createHash('sha256').update(BODY).digest('hex');
/** ms the slow reader sleeps per chunk. */
const DELAY_MS = '2';

interface Child {
  code: number | null;
  result?: SlowReadResult;
  stderr: string;
}

/** Runs the slow reader; killed after 90 s. */
function slowRead(mode: 'plain' | 'upstream', url: string, maxHeld?: number): Promise<Child> {
  return new Promise((resolve, reject) => {
    const args = [...TS_LOADER, RUNNER, mode, url, DELAY_MS, ...(maxHeld === undefined ? [] : [String(maxHeld)])];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr = (stderr + b.toString()).slice(-8_000)));
    const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      const line = stdout.trim().split('\n').pop();
      resolve({ code, ...(line && { result: JSON.parse(line) as SlowReadResult }), stderr });
    });
  });
}

const upstreams: { name: string; url: (t: Test) => Promise<string> }[] = [
  {
    name: 'python3 -m http.server (HTTP/1.0, Content-Length)',
    url: async (t) => {
      const www = join(tempDir(t), 'www');
      mkdirSync(www);
      writeFileSync(join(www, 'big.img'), BODY);
      return (await startPythonHttpServer(t, www)).url('/big.img');
    },
  },
  ...(['close', 'length-close'] as const).map((closing) => ({
    name: `a bare server, ${closing === 'close' ? 'close-delimited (no length)' : 'Content-Length and Connection: close'}`,
    url: async (t: Test) => {
      const up = await startClosingUpstream(t, closing);
      up.routes.set('/big.img', { body: BODY });
      return up.url('/big.img');
    },
  })),
];

for (const u of upstreams) {
  t.test(`a slow reader of ${u.name}, 32 MiB`, async (t) => {
    const url = await u.url(t);
    const fixed = await slowRead('upstream', url);
    t.equal(fixed.code, 0, `through the upstream dispatcher the process lives${fixed.code === 0 ? '' : `; stderr: ${fixed.stderr.slice(-600)}`}`);
    t.same(fixed.result?.error, undefined, 'and the request succeeds');
    t.equal(fixed.result?.bytes, BODY.length, 'every byte arrives');
    t.equal(fixed.result?.sha256, BODY_SHA, 'with the upstream sha256');
    t.comment(`most bytes waiting in the body stream: ${fixed.result?.peakHeld}`);

    const before = await slowRead('plain', url);
    t.not(before.code, 0, 'through the Agent used before, the same reader ends the process');
    t.match(before.stderr, /AssertionError|ERR_ASSERTION/, "with undici 7's assertion");
    t.equal(before.result, undefined, 'before it could print a result');
  });
}

t.test('a keep-alive upstream keeps back-pressure: the parser pauses, little waits in memory', async (t) => {
  const up = await startUpstream(t);
  up.files.set('/big.img', BODY);
  const r = await slowRead('upstream', up.url('/big.img'));
  t.equal(r.code, 0, 'the process lives');
  t.equal(r.result?.sha256, BODY_SHA, 'the bytes are the upstream ones');
  t.ok((r.result?.peakHeld ?? Infinity) <= 1 * MiB, `at most 1 MiB waited in the body stream (${r.result?.peakHeld})`);
});

t.test('a reader further behind than maxHeldBytes is cut with UpstreamOutpacedError, and lives', async (t) => {
  const up = await startClosingUpstream(t, 'close');
  up.routes.set('/big.img', { body: BODY });
  const maxHeld = 4 * MiB;
  const r = await slowRead('upstream', up.url('/big.img'), maxHeld);
  t.equal(r.code, 0, 'the process lives');
  t.equal(r.result?.error?.name, 'UpstreamOutpacedError', `the body fails with the cut: ${r.result?.error?.message}`);
  t.ok((r.result?.bytes ?? 0) < BODY.length, `the reader got part of the body (${r.result?.bytes} bytes)`);
  t.ok((r.result?.peakHeld ?? Infinity) <= maxHeld + 1 * MiB, `about maxHeldBytes waited at most (${r.result?.peakHeld})`);
});
