/**
 * The read-only registry mirror at /v2/ (src/registry/, src/http/routes/registry.ts) against
 * Debian's docker-registry as the upstream (test/helpers/registry.ts: port 80 of a loopback
 * address, filled by skopeo from OCI layouts the test generates), with skopeo as the client and
 * the real `edgeboot serve` in between:
 * - `skopeo inspect --raw` through edgeboot gives the upstream's manifest bytes exactly (OCI,
 *   Docker schema 2, a multi-arch index), by tag and by digest, with basic auth and with the
 *   token flow upstream;
 * - `skopeo copy docker://<edgeboot>/… oci:…` brings the same digests;
 * - two images sharing a base layer, pulled at once: every blob leaves the upstream once;
 * - an upstream blob whose bytes do not match its digest is refused (DIGEST_INVALID) and
 *   nothing is stored; the mirror still serves the rest;
 * - with the upstream gone, what was pulled still pulls, by tag too; an unknown manifest is a
 *   distribution-format 404.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import t from 'tap';
import { lowPortSkip } from '../helpers/privileges.js';
import { startServer, tempDir } from '../helpers/process.js';
import { makeImage, makeIndex, pushImage, skopeoInspectRaw, skopeoPull, startRegistry, type Registry } from '../helpers/registry.js';

const skip = await lowPortSkip(80, 'the upstream docker-registry');

const run = promisify(execFile);
/** The manifest digest of the one image in an OCI layout skopeo wrote. */
const copiedDigest = (layout: string): string | undefined =>
  (JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')) as { manifests: { digest: string }[] }).manifests[0]?.digest;
const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

async function edgebootFor(t: Parameters<typeof startServer>[0], reg: Registry, dir = tempDir(t)) {
  return startServer(t, {
    cwd: dir,
    env: { EDGEBOOT_REGISTRY_INSECURE_REGISTRIES: reg.host, EDGEBOOT_REGISTRY_PULL_SECRET: reg.authFile(dir) },
  });
}

for (const auth of ['basic', 'token'] as const) {
  t.test(`through edgeboot, byte for byte, with ${auth} auth upstream`, { skip }, async (t) => {
    const reg = await startRegistry(t, { auth });
    const dir = tempDir(t);
    const base = { 'etc/os-release': 'ID=edgeboot-test\n', 'usr/lib/big': Buffer.alloc(300_000, 7) };
    const a = makeImage(join(dir, 'a'), { layers: [base, { 'app/a': 'a' }], tag: 'v1' });
    const d = makeImage(join(dir, 'd'), { layers: [base, { 'app/d': 'docker' }], tag: 'v1' });
    const arm = makeImage(join(dir, 'm'), { layers: [{ 'app/m': 'arm' }], platform: { os: 'linux', architecture: 'arm64' }, tag: 'arm' });
    const amd = makeImage(join(dir, 'm'), { layers: [{ 'app/m': 'amd' }], tag: 'amd' });
    const idx = makeIndex(join(dir, 'm'), [amd, arm], { tag: 'multi' });
    await pushImage(reg, a, 'ns/a:v1');
    // Converted to Docker schema 2 on the way in, as OpenShift's payload images are.
    await pushImage(reg, d, 'ns/d:v1', { preserveDigests: false, extraArgs: ['--format', 'v2s2'] });
    const docker = await skopeoInspectRaw(reg.ref('ns/d:v1'), { creds: reg.credentials });
    await pushImage(reg, idx, 'ns/m:multi');

    const eb = await edgebootFor(t, reg);
    const mirror = `127.0.0.1:${eb.port}/${reg.host}`;
    for (const [ref, want] of [
      ['ns/a:v1', a.manifest],
      [`ns/a@${a.digest}`, a.manifest],
      ['ns/d:v1', docker],
      ['ns/m:multi', idx.manifest],
      [`ns/m@${arm.digest}`, arm.manifest],
    ] as const) {
      const got = await skopeoInspectRaw(`${mirror}/${ref}`);
      t.equal(sha(got), sha(want), `${ref}: the upstream's manifest bytes`);
    }
    const head = await fetch(`${eb.url}/v2/${reg.host}/ns/d/manifests/v1`, {
      method: 'HEAD',
      headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json' },
    });
    t.equal(head.headers.get('content-type'), 'application/vnd.docker.distribution.manifest.v2+json', 'Docker schema 2 keeps its media type');
    t.equal(head.headers.get('docker-content-digest'), sha(docker));
    t.equal(Number(head.headers.get('content-length')), docker.length);

    const out = join(dir, 'copied');
    await skopeoPull(`${mirror}/ns/m:multi`, `${out}:multi`, { all: true });
    const index = JSON.parse(readFileSync(join(out, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    t.equal(index.manifests[0]?.digest, idx.digest, 'skopeo copy through edgeboot: the index digest');
    const blobs = new Set(readdirSync(join(out, 'blobs', 'sha256')).map((h) => `sha256:${h}`));
    for (const img of [amd, arm]) for (const l of img.layers) t.ok(blobs.has(l.digest), `layer ${l.digest.slice(0, 19)} copied`);
  });
}

t.test('overlapping pulls at once fetch each blob upstream once; a corrupt blob is refused', { skip }, async (t) => {
  const reg = await startRegistry(t, { auth: 'basic' });
  const dir = tempDir(t);
  const base = { 'usr/lib/base': Buffer.alloc(2_000_000, 1) };
  const a = makeImage(join(dir, 'a'), { layers: [base, { a: 'a' }], tag: 'v1' });
  const b = makeImage(join(dir, 'b'), { layers: [base, { b: 'b' }], tag: 'v1' });
  const c = makeImage(join(dir, 'c'), { layers: [{ c: Buffer.alloc(100_000, 3) }], tag: 'v1' });
  await pushImage(reg, a, 'ns/a:v1');
  await pushImage(reg, b, 'ns/b:v1');
  await pushImage(reg, c, 'ns/c:v1');
  const ebDir = tempDir(t);
  let eb = await edgebootFor(t, reg, ebDir);
  let mirror = `127.0.0.1:${eb.port}/${reg.host}`;
  const before = (await reg.requests()).length;
  await Promise.all(
    ['a', 'b', 'a', 'b'].map((n, i) =>
      run('skopeo', [
        '--insecure-policy',
        'copy',
        '--quiet',
        '--src-tls-verify=false',
        '--src-no-creds',
        `docker://${mirror}/ns/${n}:v1`,
        `oci:${join(dir, `pull-${i}`)}:v1`,
      ]),
    ),
  );
  const gets = (await reg.requests()).slice(before).filter((r) => r.method === 'GET' && r.status === 200 && r.path.includes('/blobs/'));
  const perDigest = new Map<string, number>();
  for (const r of gets) {
    const digest = r.path.slice(r.path.lastIndexOf('/') + 1);
    perDigest.set(digest, (perDigest.get(digest) ?? 0) + 1);
  }
  const wanted = new Set([...a.layers, ...b.layers].map((l) => l.digest).concat([a.config.digest, b.config.digest]));
  t.same(new Set(perDigest.keys()), wanted, 'every blob of both images was fetched');
  t.same(
    [...perDigest.values()].filter((n) => n > 1),
    [],
    'and none twice, the shared base layer included',
  );

  // Corrupt c's layer in the upstream's storage: the registry serves it without checking.
  const layer = c.layers[0];
  if (!layer) throw new Error('c has no layer');
  const hex = layer.digest.slice('sha256:'.length);
  const data = join(reg.storageDir, 'docker/registry/v2/blobs/sha256', hex.slice(0, 2), hex, 'data');
  const bytes = readFileSync(data);
  bytes[100] = (bytes[100] ?? 0) ^ 0xff;
  writeFileSync(data, bytes);
  // The first reader was streamed the bytes as they came, and is cut before the last one.
  const first = await fetch(`${eb.url}/v2/${reg.host}/ns/c/blobs/${layer.digest}`)
    .then((r) => r.arrayBuffer())
    .then(
      () => 'complete',
      (err: unknown) => (err instanceof Error ? err.message : String(err)),
    );
  t.not(first, 'complete', `the reader mid-download was cut short (${first})`);
  const bad = await fetch(`${eb.url}/v2/${reg.host}/ns/c/blobs/${layer.digest}`);
  const body = (await bad.json()) as { errors: { code: string; message: string }[] };
  t.equal(bad.status, 502, 'the corrupt blob is refused');
  t.equal(body.errors[0]?.code, 'DIGEST_INVALID');
  t.match(body.errors[0]?.message, /sha256 is [0-9a-f]{64}, expected/);
  const cache = (await (await fetch(`${eb.url}/api/v1/cache`, { headers: { authorization: `Bearer ${eb.token}` } })).json()) as { entries: { key: string }[] };
  t.notOk(
    cache.entries.some((e) => e.key === `oci-blob:${layer.digest}`),
    'nothing stored for it',
  );

  // Upstream gone: what was pulled still pulls, by tag too; the rest is a clean error.
  await reg.stop();
  const again = await skopeoInspectRaw(`${mirror}/ns/a:v1`);
  t.equal(sha(again), a.digest, 'a tag pulled before still answers, from the store');
  await skopeoPull(`${mirror}/ns/b:v1`, `${join(dir, 'offline')}:v1`);
  t.equal(copiedDigest(join(dir, 'offline')), b.digest, 'a whole image pulled before copies with the upstream down');
  // And after a restart of edgeboot, which then knows nothing of the upstream's auth.
  await eb.stop();
  eb = await edgebootFor(t, reg, ebDir);
  mirror = `127.0.0.1:${eb.port}/${reg.host}`;
  await skopeoPull(`${mirror}/ns/b@${b.digest}`, `${join(dir, 'restarted')}:v1`);
  t.equal(copiedDigest(join(dir, 'restarted')), b.digest, 'and by digest after a restart of edgeboot, the upstream still down');
  const unknown = await fetch(`${eb.url}/v2/${reg.host}/ns/nope/manifests/sha256:${'0'.repeat(64)}`);
  t.equal(unknown.status, 502, 'an unknown manifest with the upstream down: 502');
  const u = (await unknown.json()) as { errors: { code: string }[] };
  t.equal(u.errors[0]?.code, 'UNAVAILABLE', 'in the distribution error format');
  const v2 = await fetch(`${eb.url}/v2/`);
  t.equal(v2.status, 200);
  t.equal(v2.headers.get('docker-distribution-api-version'), 'registry/2.0');
});

t.test('registry.readTokens: clients must present one', { skip }, async (t) => {
  const reg = await startRegistry(t, { auth: 'none' });
  const dir = tempDir(t);
  const img = makeImage(join(dir, 'i'), { layers: [{ x: 'x' }], tag: 'v1' });
  await pushImage(reg, img, 'ns/i:v1');
  const token = 'site-read-token-0123456789';
  const eb = await startServer(t, { cwd: tempDir(t), env: { EDGEBOOT_REGISTRY_INSECURE_REGISTRIES: reg.host, EDGEBOOT_REGISTRY_READ_TOKENS: token } });
  const ref = `127.0.0.1:${eb.port}/${reg.host}/ns/i:v1`;
  await t.rejects(skopeoInspectRaw(ref), /401|unauthorized|authentication required/i, 'anonymous: refused');
  const got = await skopeoInspectRaw(ref, { creds: { username: 'machine', password: token } });
  t.equal(sha(got), img.digest, 'with the token as the password');
  const bearer = await fetch(`${eb.url}/v2/${reg.host}/ns/i/manifests/v1`, {
    headers: { authorization: `Bearer ${token}`, accept: 'application/vnd.oci.image.manifest.v1+json' },
  });
  t.equal(bearer.status, 200, 'or as a Bearer token');
  const wrong = await fetch(`${eb.url}/v2/`, { headers: { authorization: `Bearer ${token}x` } });
  t.equal(wrong.status, 401);
  t.match(wrong.headers.get('www-authenticate'), /^Basic realm="edgeboot"/);
  t.match(((await wrong.json()) as { errors: { code: string }[] }).errors[0], { code: 'UNAUTHORIZED' });
});
