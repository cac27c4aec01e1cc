/**
 * The artifact cache under a disk far slower than an upstream that closes its connection
 * (issue 15 §1): the whole app on loopback, its cache writes slowed by the `beforeWrite` test
 * seam (2 ms before each chunk), a 160 MiB close-delimited artifact from a bare node:net
 * upstream that honours `Range: bytes=N-` (test/helpers/upstream.ts), fetched with curl through
 * /assets. undici 7 ended the process there (its parser paused by back-pressure when the FIN
 * came); now the body is never held back, is cut once 16 MiB here (64 MiB by default) wait in
 * memory, and the download resumes with Range from what the disk has: the process lives,
 * memory stays bounded, the resumes show in the cache's stats and upstream requests, and the
 * bytes verify.
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import t from 'tap';
import { upstreamDispatcher } from '../../src/net/upstream-agent.js';
import { testApp } from '../helpers/app.js';
import { tempDir } from '../helpers/process.js';
import { startClosingUpstream } from '../helpers/upstream.js';

const run = promisify(execFile);
const MiB = 1024 * 1024;
/** What the cache's dispatcher may hold here: well below the body, so an unbounded hold would show. */
const HELD = 16 * MiB;

t.test('a 160 MiB close-delimited artifact onto a slow cache disk: cut, resumed with Range, verified, process alive', async (t) => {
  const body = randomBytes(160 * MiB);
  const sha = createHash('sha256').update(body).digest('hex');
  const up = await startClosingUpstream(t, 'close', { ranges: true });
  up.routes.set('/rootfs.img', { body });
  const dir = tempDir(t);
  mkdirSync(join(dir, 'profiles'));
  writeFileSync(
    join(dir, 'profiles', 'slow.yaml'),
    [
      'name: slow',
      'description: a big close-delimited artifact',
      'artifacts:',
      `  rootfs: { url: "${up.url('/rootfs.img')}", sha256: ${sha} }`,
      'boot:',
      '  kernel: rootfs',
      '  args: console=ttyS0',
      '',
    ].join('\n'),
  );
  const ta = await testApp(t, {
    profileDirs: [join(dir, 'profiles')],
    cache: { beforeWrite: () => sleep(2), dispatcher: upstreamDispatcher({ maxHeldBytes: HELD }) },
  });
  await ta.app.listen({ host: '127.0.0.1', port: 0 });
  const addr = ta.app.server.address();
  if (addr === null || typeof addr === 'string') throw new Error('no port');
  const base = `http://127.0.0.1:${addr.port}`;

  // Memory beyond what the test itself holds (the body, in the upstream): sampled while curl runs.
  const baseline = process.memoryUsage().arrayBuffers;
  let peak = 0;
  const probe = setInterval(() => (peak = Math.max(peak, process.memoryUsage().arrayBuffers - baseline)), 20);
  const out = join(dir, 'rootfs');
  const started = Date.now();
  const curl = await run('curl', ['-sS', '--max-time', '240', '-o', out, '-w', '%{http_code}', `${base}/assets/slow/rootfs`]).finally(() =>
    clearInterval(probe),
  );
  t.comment(
    `curl took ${Date.now() - started} ms; peak extra array-buffer memory ${(peak / MiB).toFixed(1)} MiB; ${ta.artifacts?.stats.outpacedResumes} cut(s)`,
  );
  t.equal(curl.stdout, '200', 'curl gets 200');
  t.equal(createHash('sha256').update(readFileSync(out)).digest('hex'), sha, "curl's bytes have the upstream sha256");
  const entry = await ta.store.getCacheEntry(up.url('/rootfs.img'));
  t.equal(entry?.digest, sha, 'the cache holds the verified artifact');

  const cuts = ta.artifacts?.stats.outpacedResumes ?? 0;
  t.ok(cuts >= 1, `the download was cut for the slow disk and resumed (${cuts} times)`);
  const resumes = up.requests.filter((r) => r.range !== undefined);
  t.equal(resumes.length, cuts, 'each cut is one Range request to the upstream');
  t.ok(
    resumes.every((r, i) => Number(/^bytes=(\d+)-$/.exec(r.range ?? '')?.[1]) > Number(/^bytes=(\d+)-$/.exec(resumes[i - 1]?.range ?? 'bytes=0-')?.[1])),
    `each resume starts further on (${resumes.map((r) => r.range).join(', ')})`,
  );
  // Held bytes, the 8 MiB write buffer and socket buffers of both ends (the upstream is in this
  // process too), with room for the collector's lag: far below the 160 MiB an unbounded hold reaches.
  t.ok(
    peak < 100 * MiB,
    `memory stays bounded: ${(peak / MiB).toFixed(1)} MiB extra at most for a 160 MiB body (${HELD / MiB} MiB held, 8 MiB write buffer, sockets)`,
  );
  const health = await fetch(`${base}/healthz`);
  t.equal(health.status, 200, 'the same process answers /healthz');
});
