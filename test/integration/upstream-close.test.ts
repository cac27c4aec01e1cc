/**
 * Upstreams that end a response by closing the connection must not take edgeboot down
 * (issue 15 §1: undici 7 asserted `!this.paused` and the process exited when the FIN reached a
 * parser held back by the cache's writer). The real `edgeboot serve` on loopback, its clients
 * curl and skopeo, and as upstreams:
 * - `python3 -m http.server` (HTTP/1.0, Content-Length, close) behind profile artifacts of
 *   100 KiB and 32 MiB;
 * - a bare node:net server (test/helpers/upstream.ts) in both closing framings — no length at
 *   all, and Content-Length with `Connection: close` — behind profile artifacts, behind the
 *   `/v2/` mirror (manifest and blobs, skopeo inspect and copy), and as the hub whose assisted
 *   script edgeboot fetches and rewrites (`boot.assistedChain: rewrite`), its kernel and initrd
 *   then fetched through the cache.
 * After each, the bytes have the upstream's sha256 and the same process answers /healthz.
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t, { type Test } from 'tap';
import { startServer, tempDir, type ServerProcess } from '../helpers/process.js';
import { makeImage, skopeoPull, type BuiltImage, type FileMap } from '../helpers/registry.js';
import { startClosingUpstream, startPythonHttpServer, type Closing } from '../helpers/upstream.js';

const run = promisify(execFile);
const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const KiB = 1024;
const MiB = 1024 * KiB;
const FRAMINGS: Closing[] = ['close', 'length-close'];

/** curl's status code and the sha256 of the body it saved; `failed` when curl itself failed (a dead server). */
async function curlSha(t: Test, url: string): Promise<{ status: string; sha?: string; failed?: string }> {
  const out = join(tempDir(t), 'body');
  try {
    const r = await run('curl', ['-sS', '--max-time', '60', '-o', out, '-w', '%{http_code}', url]);
    return { status: r.stdout, sha: sha256(readFileSync(out)) };
  } catch (err) {
    return { status: 'none', failed: (err as Error).message };
  }
}

/** The process that served the requests is still up, and still answers. */
async function stillServing(t: Test, eb: ServerProcess): Promise<void> {
  t.equal(eb.process.exitCode, null, `edgeboot is still running${eb.process.exitCode === null ? '' : `; stderr: ${eb.stderr().slice(0, 600)}`}`);
  const health = await fetch(`${eb.url}/healthz`).then(
    (r) => r.status,
    (err: unknown) => (err instanceof Error ? err.message : String(err)),
  );
  t.equal(health, 200, 'and answers /healthz');
}

function writeProfile(dir: string, name: string, artifacts: Record<string, string>): string {
  const profiles = join(dir, 'profiles');
  mkdirSync(profiles, { recursive: true });
  const names = Object.keys(artifacts);
  writeFileSync(
    join(profiles, `${name}.yaml`),
    [
      `name: ${name}`,
      'description: artifacts from upstreams that close the connection',
      'artifacts:',
      ...Object.entries(artifacts).map(([n, url]) => `  ${n}: { url: "${url}" }`),
      'boot:',
      `  kernel: ${names[0]}`,
      `  initrds: [${names.slice(1).join(', ')}]`,
      '  args: console=ttyS0',
      '',
    ].join('\n'),
  );
  return profiles;
}

t.test('python3 -m http.server as the upstream of profile artifacts, 100 KiB and 32 MiB', async (t) => {
  const dir = tempDir(t);
  const www = join(dir, 'www');
  mkdirSync(www);
  const files = { small: randomBytes(100 * KiB), big: randomBytes(32 * MiB) };
  for (const [n, b] of Object.entries(files)) writeFileSync(join(www, `${n}.img`), b);
  const py = await startPythonHttpServer(t, www);
  const profiles = writeProfile(dir, 'py', { small: py.url('/small.img'), big: py.url('/big.img') });
  const eb = await startServer(t, { cwd: dir, env: { EDGEBOOT_PROFILES_DIRS: profiles } });

  for (const [n, b] of Object.entries(files)) {
    const got = await curlSha(t, `${eb.url}/assets/py/${n}`);
    t.same(got, { status: '200', sha: sha256(b) }, `${n}: 200, the upstream's bytes`);
  }
  t.match(py.log(), /"GET \/big\.img HTTP\/1\.1" 200/, 'python served the big file (once edgeboot asked)');
  const again = await curlSha(t, `${eb.url}/assets/py/big`);
  t.same(again, { status: '200', sha: sha256(files.big) }, 'from the cache afterwards');
  await stillServing(t, eb);
});

t.test('close-delimited upstreams of profile artifacts, in both framings', async (t) => {
  const dir = tempDir(t);
  const bodies = { small: randomBytes(100 * KiB), big: randomBytes(8 * MiB + 3) };
  const artifacts: Record<string, string> = {};
  const upstreams = [];
  for (const closing of FRAMINGS) {
    const up = await startClosingUpstream(t, closing);
    for (const [n, b] of Object.entries(bodies)) {
      up.routes.set(`/${n}.img`, { headers: { 'content-type': 'application/octet-stream' }, body: b });
      artifacts[`${closing}-${n}`] = up.url(`/${n}.img`);
    }
    upstreams.push(up);
  }
  const eb = await startServer(t, { cwd: dir, env: { EDGEBOOT_PROFILES_DIRS: writeProfile(dir, 'closing', artifacts) } });

  for (const closing of FRAMINGS) {
    for (const [n, b] of Object.entries(bodies)) {
      const got = await curlSha(t, `${eb.url}/assets/closing/${closing}-${n}`);
      t.same(got, { status: '200', sha: sha256(b) }, `${closing}, ${n}: 200, the upstream's bytes`);
    }
  }
  for (const up of upstreams) t.equal(up.requests.filter((r) => r.method === 'GET').length, 2, `${up.host}: one GET per artifact`);
  await stillServing(t, eb);
});

t.test('the /v2/ mirror over upstream registries in both framings: curl, skopeo inspect and copy', async (t) => {
  const dir = tempDir(t);
  const upstreams: Record<string, string> = {};
  const images = new Map<Closing, BuiltImage>();
  for (const closing of FRAMINGS) {
    // An image of its own per upstream: a blob is one cache entry per digest, whichever
    // upstream it came through.
    const layers: FileMap[] = [{ 'etc/os-release': `ID=${closing}\n` }, { 'usr/lib/small': randomBytes(100 * KiB) }, { 'usr/lib/big': randomBytes(3 * MiB) }];
    const image = makeImage(join(dir, `layout-${closing}`), { layers, tag: 'v1' });
    const up = await startClosingUpstream(t, closing);
    const manifest = { headers: { 'content-type': image.mediaType, 'docker-content-digest': image.digest }, body: image.manifest };
    up.routes.set('/v2/', { headers: { 'content-type': 'application/json' }, body: Buffer.from('{}') });
    up.routes.set('/v2/ns/app/manifests/v1', manifest);
    up.routes.set(`/v2/ns/app/manifests/${image.digest}`, manifest);
    for (const blob of [image.config.bytes, ...image.layers.map((l) => l.blob)]) {
      up.routes.set(`/v2/ns/app/blobs/sha256:${sha256(blob)}`, { headers: { 'content-type': 'application/octet-stream' }, body: blob });
    }
    upstreams[closing] = up.host;
    images.set(closing, image);
  }
  const eb = await startServer(t, {
    cwd: dir,
    env: { EDGEBOOT_REGISTRY_INSECURE_REGISTRIES: Object.values(upstreams).join(','), EDGEBOOT_REGISTRY_UPSTREAMS: JSON.stringify(upstreams) },
  });

  for (const [closing, image] of images) {
    for (const [n, layer] of [
      ['100 KiB', image.layers[1]],
      ['3 MiB', image.layers[2]],
    ] as const) {
      if (!layer) throw new Error('the image has three layers');
      const blob = await curlSha(t, `${eb.url}/v2/${closing}/ns/app/blobs/${layer.digest}`);
      t.same(blob, { status: '200', sha: layer.digest.slice('sha256:'.length) }, `${closing}: a ${n} blob through the mirror, by curl, verified`);
    }
    await stillServing(t, eb);
    const mirror = `127.0.0.1:${eb.port}/${closing}`;
    const raw = await run('skopeo', ['inspect', '--raw', '--tls-verify=false', '--no-creds', `docker://${mirror}/ns/app:v1`], {
      encoding: 'buffer',
      timeout: 60_000,
    }).then(
      (r) => r.stdout,
      (err: unknown) => Buffer.from(err instanceof Error ? err.message : String(err)),
    );
    t.equal(sha256(raw), image.digest.slice('sha256:'.length), `${closing}: skopeo inspect --raw gives the upstream manifest, byte for byte`);
    const out = join(dir, `pulled-${closing}`);
    const copied = await skopeoPull(`${mirror}/ns/app:v1`, `${out}:v1`, { timeoutMs: 60_000 }).then(
      () => 'copied',
      (err: unknown) => (err instanceof Error ? err.message : String(err)),
    );
    t.equal(copied, 'copied', `${closing}: skopeo copy through the mirror`);
    const pulled = copied === 'copied' ? readdirSync(join(out, 'blobs', 'sha256')).sort() : [];
    t.same(
      pulled,
      [image.digest, image.config.digest, ...image.layers.map((l) => l.digest)].map((d) => d.slice('sha256:'.length)).sort(),
      `${closing}: every blob and the manifest, by digest`,
    );
    await stillServing(t, eb);
  }
});

t.test('hubs in both framings: the assisted script fetched and rewritten, its kernel and initrd through the cache', async (t) => {
  const dir = tempDir(t);
  const eb = await startServer(t, { cwd: dir, env: { EDGEBOOT_BOOT_ASSISTED_CHAIN: 'rewrite' } });
  const admin = { authorization: `Bearer ${eb.token}`, 'content-type': 'application/json' };
  const register = async (mac: string, scriptUrl: string): Promise<void> => {
    // The reservation's ip is the test's own address: the machine's secrets go to it alone.
    const body = { profile: 'assisted', ip: '127.0.0.1', assisted: { ipxeScriptUrl: `${scriptUrl}?api_key=HUBKEY` } };
    const r = await fetch(`${eb.url}/api/v1/machines/${mac}`, { method: 'PUT', headers: admin, body: JSON.stringify(body) });
    t.equal(r.status, 201, `${mac} registered`);
  };
  const bootScript = async (mac: string): Promise<string> => (await fetch(`${eb.url}/ipxe?mac=${mac}`)).text();

  for (const [i, closing] of FRAMINGS.entries()) {
    const hub = await startClosingUpstream(t, closing);
    const kernel = randomBytes(6 * MiB + 1);
    const initrd = randomBytes(100 * KiB);
    const script = [
      '#!ipxe',
      `initrd --name initrd ${hub.url('/images/ie/pxe-initrd')}?api_key=HUBKEY&arch=x86_64`,
      `kernel ${hub.url('/boot-artifacts/kernel')}?arch=x86_64 initrd=initrd coreos.live.rootfs_url=${hub.url('/boot-artifacts/rootfs')}?arch=x86_64 ignition.firstboot`,
      'boot',
      '',
    ].join('\n');
    hub.routes.set('/ipxe-script', { headers: { 'content-type': 'text/plain' }, body: Buffer.from(script) });
    hub.routes.set('/big-script', {
      headers: { 'content-type': 'text/plain' },
      body: Buffer.concat([Buffer.from('#!ipxe\n'), Buffer.alloc(64 * MiB, '# padding\n')]),
    });
    hub.routes.set('/images/ie/pxe-initrd', { headers: { 'content-type': 'application/octet-stream' }, body: initrd });
    hub.routes.set('/boot-artifacts/kernel', { headers: { 'content-type': 'application/octet-stream' }, body: kernel });

    const mac = `52:54:00:c1:05:${i}1`;
    await register(mac, hub.url('/ipxe-script'));
    const rewritten = await bootScript(mac);
    const kernelUrl = /^kernel (http:\/\/127\.0\.0\.1:\d+\/assets\/hub\/[0-9a-f]{16}\/kernel) /m.exec(rewritten)?.[1];
    const initrdUrl = /^initrd --name initrd (http:\/\/127\.0\.0\.1:\d+\/assets\/hub\/[0-9a-f]{16}\/initrd) /m.exec(rewritten)?.[1];
    t.ok(kernelUrl && initrdUrl, `${closing}: the hub's script, rewritten to edgeboot's URLs`, { script: rewritten });
    t.notMatch(rewritten, /HUBKEY/, `${closing}: without the api_key`);
    if (kernelUrl && initrdUrl) {
      t.same(await curlSha(t, initrdUrl), { status: '200', sha: sha256(initrd) }, `${closing}: the hub's initrd (100 KiB)`);
      t.same(await curlSha(t, kernelUrl), { status: '200', sha: sha256(kernel) }, `${closing}: the hub's kernel (6 MiB)`);
    }
    await stillServing(t, eb);

    // A script over the limit is refused once past the limit, not read whole first.
    const big = `52:54:00:c1:05:${i}2`;
    await register(big, hub.url('/big-script'));
    const refused = await bootScript(big);
    t.match(refused, /is over 65536 bytes/, `${closing}: a 64 MiB script is refused, and the script says so`);
    t.notMatch(refused, /HUBKEY/, `${closing}: without the api_key`);
    const sent = hub.requests.find((r) => r.path === '/big-script')?.sent ?? 0;
    t.ok(sent < 16 * MiB, `${closing}: edgeboot stopped reading it early (${sent} bytes left the hub)`);
    await stillServing(t, eb);
  }
});
