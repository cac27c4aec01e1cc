/**
 * `edgeboot images pull` and its API job against Debian's docker-registry (basic auth) filled
 * by skopeo with a generated OpenShift-style release image — its top layer holds
 * `release-manifests/image-references` naming four component images by digest, two sharing a
 * base layer, one a multi-arch index — and an extra image:
 * - the release resolves with no `oc`: version, digest, every component;
 * - a filter leaves components out and the summary names them with the pattern;
 * - every blob of every image (each platform of the index) leaves the upstream exactly once,
 *   the shared layer included, and the summary's upstream bytes are the distinct blobs' bytes;
 * - run again, everything is already cached and nothing leaves the upstream;
 * - afterwards skopeo pulls a component through /v2/ with the upstream stopped;
 * - a job's own pull secret is used for an upstream the server has no credentials for, and a
 *   wrong one fails the job with the upstream's reason; bad refs and bodies are 400s.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { lowPortSkip } from '../helpers/privileges.js';
import { runCli, startServer, tempDir } from '../helpers/process.js';
import { makeImage, makeIndex, makeReleaseImage, pushImage, skopeoPull, startRegistry, type BuiltImage } from '../helpers/registry.js';

const skip = await lowPortSkip(80, 'the upstream docker-registry');

interface Job {
  id: string;
  state: string;
  release?: { version: string; digest: string };
  images: { total: number; fetched: number; cached: number; failed: number };
  blobs: { total: number; fetched: number; cached: number };
  bytes: { total: number; upstream: number; deduplicated: number };
  excluded: { name: string; pattern: string }[];
  failures: { ref: string; error: string }[];
  error?: string;
}

t.test('a release and an extra image pulled into the mirror, once', { skip }, async (t) => {
  const reg = await startRegistry(t, { auth: 'basic' });
  const dir = tempDir(t);
  const base = { 'usr/lib/base.bin': Buffer.alloc(400_000, 5) };
  const comps = {
    pod: makeImage(join(dir, 'pod'), { layers: [base, { 'usr/bin/pod': 'pod' }], tag: 'x' }),
    etcd: makeImage(join(dir, 'etcd'), { layers: [base, { 'usr/bin/etcd': 'etcd' }], tag: 'x' }),
    'aws-cloud-controller-manager': makeImage(join(dir, 'aws'), { layers: [{ aws: Buffer.alloc(50_000, 9) }], tag: 'x' }),
  } satisfies Record<string, BuiltImage>;
  const amd = makeImage(join(dir, 'm'), { layers: [{ m: 'amd64' }], tag: 'amd' });
  const arm = makeImage(join(dir, 'm'), { layers: [{ m: 'arm64' }], platform: { os: 'linux', architecture: 'arm64' }, tag: 'arm' });
  const multi = makeIndex(join(dir, 'm'), [amd, arm], { tag: 'multi' });
  const repository = `${reg.host}/ocp/art-dev`;
  const release = makeReleaseImage(join(dir, 'release'), {
    version: '4.99.0',
    repository,
    components: [...Object.entries(comps).map(([name, image]) => ({ name, image })), { name: 'multi-thing', image: multi }],
    tag: 'rel',
  });
  for (const [, img] of Object.entries(comps)) await pushImage(reg, img, `ocp/art-dev@${img.digest}`);
  await pushImage(reg, multi, `ocp/art-dev@${multi.digest}`);
  await pushImage(reg, release, 'ocp/release:4.99.0-x86_64');
  const extra = makeImage(join(dir, 'extra'), { layers: [base, { agent: 'assisted' }], tag: 'v1' });
  await pushImage(reg, extra, 'mce/assisted-installer-agent:v1');

  const srv = await startServer(t, {
    cwd: tempDir(t),
    env: { EDGEBOOT_REGISTRY_INSECURE_REGISTRIES: reg.host, EDGEBOOT_REGISTRY_PULL_SECRET: reg.authFile(tempDir(t)) },
  });
  const filterFile = join(dir, 'filter.yaml');
  writeFileSync(filterFile, 'patterns:\n  - "\\\\baws\\\\b"\n  - azure\n');
  // The same pull each time: the release, one more image, the filter file.
  const pullArgs = [
    'images',
    'pull',
    ...['--server', srv.url, '--token', srv.token],
    ...['--release', `${reg.host}/ocp/release:4.99.0-x86_64`],
    ...['--img', `${reg.host}/mce/assisted-installer-agent:v1`],
    ...['--filter', filterFile],
  ];
  const before = (await reg.requests()).length;
  const pulled = await runCli(t, [...pullArgs, '--parallel', '3', '--json'], { timeoutMs: 60_000 });
  t.equal(pulled.code, 0, `the CLI succeeds (${pulled.stderr})`);
  const job = JSON.parse(pulled.stdout) as Job;
  t.equal(job.state, 'done');
  t.equal(job.release?.version, '4.99.0', 'the version from image-references');
  t.equal(job.release?.digest, release.digest);
  t.same(
    job.excluded.map((e) => [e.name, e.pattern]),
    [['aws-cloud-controller-manager', '\\baws\\b']],
    'the filter left aws out, and says by which pattern',
  );
  t.same(job.images, { total: 5, fetched: 5, cached: 0, failed: 0, pending: 0 }, 'release + pod + etcd + multi-thing + the extra image');

  const gets = (await reg.requests()).slice(before).filter((r) => r.method === 'GET' && r.status === 200 && r.path.includes('/blobs/'));
  const perDigest = new Map<string, number>();
  for (const r of gets) perDigest.set(r.path.slice(r.path.lastIndexOf('/') + 1), (perDigest.get(r.path.slice(r.path.lastIndexOf('/') + 1)) ?? 0) + 1);
  t.same(
    [...perDigest.values()].filter((n) => n > 1),
    [],
    'no blob left the upstream twice',
  );
  const wanted = new Map<string, number>();
  for (const img of [release, comps.pod, comps.etcd, amd, arm, extra]) for (const b of [img.config, ...img.layers]) wanted.set(b.digest, b.size);
  t.same(new Set(perDigest.keys()), new Set(wanted.keys()), 'every blob of every kept image, each platform of the index too');
  const distinct = [...wanted.values()].reduce((a, b) => a + b, 0);
  t.equal(job.bytes.upstream, distinct, 'upstream bytes: the distinct blobs once');
  t.equal(job.bytes.total - job.bytes.upstream, job.bytes.deduplicated);
  t.equal(job.blobs.total, wanted.size);

  const again = await runCli(t, [...pullArgs], { timeoutMs: 60_000 });
  t.equal(again.code, 0);
  t.match(again.stdout, /images: 5 in all, 0 fetched, 5 already cached, 0 failed, 1 left out by the filter/, 'run again: all cached');
  t.match(again.stdout, /bytes: 0 B from upstream/);
  t.match(again.stdout, /left out: aws-cloud-controller-manager .* by \/\\baws\\b\//);

  await reg.stop();
  const mirror = `127.0.0.1:${srv.port}/${reg.host}`;
  await skopeoPull(`${mirror}/ocp/art-dev@${comps.etcd.digest}`, `${join(dir, 'offline')}:etcd`);
  const copied = JSON.parse(readFileSync(join(dir, 'offline', 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
  t.equal(copied.manifests[0]?.digest, comps.etcd.digest, 'a pulled component copies through /v2/ with the upstream stopped');
});

t.test("a job's own pull secret, and bad requests", { skip }, async (t) => {
  const reg = await startRegistry(t, { auth: 'basic' });
  const dir = tempDir(t);
  const img = makeImage(join(dir, 'i'), { layers: [{ x: 'x' }], tag: 'v1' });
  await pushImage(reg, img, 'ns/i:v1');
  // The server has no credentials for this registry.
  const srv = await startServer(t, { cwd: tempDir(t), env: { EDGEBOOT_REGISTRY_INSECURE_REGISTRIES: reg.host } });
  const conn = ['--server', srv.url, '--token', srv.token];
  const wrong = join(dir, 'wrong.json');
  writeFileSync(wrong, JSON.stringify({ auths: { [reg.host]: { auth: Buffer.from('edgeboot:nope').toString('base64') } } }));
  const refused = await runCli(t, ['images', 'pull', ...conn, '--img', `${reg.host}/ns/i:v1`, '--pull-secret', wrong], { timeoutMs: 30_000 });
  t.equal(refused.code, 1, 'a wrong pull secret fails the pull');
  t.match(refused.stdout, /failed: .*ns\/i:v1: .*HTTP 401/, 'with the upstream reason');
  const ok = await runCli(t, ['images', 'pull', ...conn, '--img', `${reg.host}/ns/i:v1`, '--pull-secret', reg.authFile(dir)], { timeoutMs: 30_000 });
  t.equal(ok.code, 0, `the job's own pull secret works (${ok.stdout}${ok.stderr})`);
  t.match(ok.stdout, /images: 1 in all, 1 fetched/);

  const post = (body: unknown) =>
    fetch(`${srv.url}/api/v1/images/jobs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${srv.token}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
  const noHost = await post({ images: ['library/busybox:1'] });
  t.equal(noHost.status, 400);
  t.match(((await noHost.json()) as { message: string }).message, /name the registry host first|not a registry host/);
  t.equal((await post({})).status, 400, 'nothing to pull');
  t.equal((await post({ images: [`${reg.host}/ns/i:v1`], filter: 'patterns: [unclosed(' })).status, 400, 'a broken filter');
  t.equal((await post({ images: [`${reg.host}/ns/i:v1`], pullSecret: '{' })).status, 400, 'a broken pull secret');
  t.equal((await fetch(`${srv.url}/api/v1/images/jobs/0123456789abcdef`, { headers: { authorization: `Bearer ${srv.token}` } })).status, 404);
  t.equal(
    (await fetch(`${srv.url}/api/v1/images/jobs`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } })).status,
    401,
    'admin only',
  );
});
