/**
 * Boot-storm admission on a real `edgeboot serve`: with cache.maxTransfers 2 and largeBytes
 * 1 MiB, two machines pulling a large artifact (held open by not reading) fill the server; a
 * third gets 503 with Retry-After (iPXE retries after it) and an error that says so, while
 * small artifacts and HEAD still answer; when a transfer ends, the next one is admitted.
 * /metrics counts the refusal and the running transfers.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { Agent, setGlobalDispatcher } from 'undici';
import { startServer, tempDir } from '../helpers/process.js';

// Connections close at once (see artifact-cache.test.ts).
setGlobalDispatcher(new Agent({ keepAliveTimeout: 10, keepAliveMaxTimeout: 10 }));

t.test('large transfers beyond cache.maxTransfers get 503 with Retry-After', async (t) => {
  const dir = tempDir(t);
  const files = join(dir, 'files');
  mkdirSync(files);
  writeFileSync(join(files, 'rootfs.img'), randomBytes(64 * 1024 * 1024));
  writeFileSync(join(files, 'small.img'), randomBytes(100 * 1024));
  const profiles = join(dir, 'profiles');
  mkdirSync(profiles);
  writeFileSync(
    join(profiles, 'site.yaml'),
    `name: site\ndescription: one large and one small artifact\nartifacts:\n  rootfs: { url: "file://${join(files, 'rootfs.img')}" }\n  small: { url: "file://${join(files, 'small.img')}" }\nboot:\n  kernel: small\n  initrds: [rootfs]\n  args: console=ttyS0\n`,
  );
  const srv = await startServer(t, {
    cwd: dir,
    env: { EDGEBOOT_PROFILES_DIRS: profiles, EDGEBOOT_CACHE_MAX_TRANSFERS: '2', EDGEBOOT_CACHE_LARGE_BYTES: '1MiB', EDGEBOOT_CACHE_RETRY_AFTER_SECONDS: '7' },
  });
  const url = `${srv.url}/assets/site/rootfs`;
  const held = [await fetch(url), await fetch(url)];
  t.same(
    held.map((r) => r.status),
    [200, 200],
    'two machines are sending',
  );

  const third = await fetch(url);
  t.equal(third.status, 503, 'the third is told the server is busy');
  t.equal(third.headers.get('retry-after'), '7', 'with Retry-After from cache.retryAfterSeconds');
  const body = (await third.json()) as { error: string; message: string };
  t.equal(body.error, 'busy');
  t.match(body.message, /already sending 2 large artifacts: retry after 7 s/);
  const small = await fetch(`${srv.url}/assets/site/small`);
  t.equal(small.status, 200, 'an artifact under largeBytes is not counted');
  await small.arrayBuffer();
  const head = await fetch(url, { method: 'HEAD' });
  t.equal(head.status, 200, 'HEAD (the RHCOS initramfs check) is not a transfer');

  const metrics = await (await fetch(`${srv.url}/metrics`)).text();
  t.match(metrics, /^edgeboot_assets_busy_total 1$/m);
  t.match(metrics, /^edgeboot_assets_active_large_transfers 2$/m);

  await held[0]?.body?.cancel();
  let next: Response | undefined;
  for (let i = 0; i < 50; i++) {
    next = await fetch(url);
    if (next.status === 200) break;
    await next.arrayBuffer();
    await new Promise((r) => setTimeout(r, 100));
  }
  t.equal(next?.status, 200, 'once a transfer ends, the next machine is admitted');
  await next?.body?.cancel();
  await held[1]?.body?.cancel();
});
