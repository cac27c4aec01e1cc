/**
 * Precache bundles (src/precache/bundles.ts) in factory-precaching-cli's layout, built by the
 * real `edgeboot serve` from a generated release in Debian's docker-registry, fetched with curl
 * and checked with the real consumers' rules:
 * - every file of bundle.json downloads with its size and sha256 (HEAD, Range, ETag too);
 * - mapping.txt, ai-images.txt, ocp-images.txt and ignored-images.txt follow the tool's rules
 *   (the release and the discovery components on both lists, assisted-installer images on the
 *   AI list, the filter's exclusions ignored);
 * - for every listed ref, the archive name the stock extract script derives
 *   (`basename "${uri/:/_}"`, in bash) is a file of the bundle;
 * - every .tgz unpacks (GNU tar) into a `dir:` layout that `skopeo copy --all dir:… oci:…`
 *   accepts, with the source image's digest, multi-arch included;
 * - the same spec again is the same bundle, built once.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import t from 'tap';
import { lowPortSkip } from '../helpers/privileges.js';
import { startServer, tempDir } from '../helpers/process.js';
import { makeImage, makeIndex, makeReleaseImage, pushImage, startRegistry } from '../helpers/registry.js';

const skip = await lowPortSkip(80, 'the upstream docker-registry');

const run = promisify(execFile);
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

interface Status {
  id: string;
  state: string;
  error?: string;
  manifest?: { files: { name: string; size: number; sha256: string }[]; release?: { digest: string } };
}

t.test('a bundle of a release, AI and extra images, in the layout the node-side hooks read', { skip }, async (t) => {
  const reg = await startRegistry(t, { auth: 'basic' });
  const dir = tempDir(t);
  const base = { 'usr/lib/base.bin': Buffer.alloc(200_000, 4) };
  const pod = makeImage(join(dir, 'pod'), { layers: [base, { 'usr/bin/pod': 'pod' }], tag: 'x' });
  const consoleImg = makeImage(join(dir, 'console'), { layers: [base, { 'usr/bin/console': 'console' }], tag: 'x' });
  const aws = makeImage(join(dir, 'aws'), { layers: [{ aws: 'aws' }], tag: 'x' });
  const amd = makeImage(join(dir, 'm'), { layers: [{ m: 'amd64' }], tag: 'amd' });
  const arm = makeImage(join(dir, 'm'), { layers: [{ m: 'arm64' }], platform: { os: 'linux', architecture: 'arm64' }, tag: 'arm' });
  const multi = makeIndex(join(dir, 'm'), [amd, arm], { tag: 'multi' });
  const release = makeReleaseImage(join(dir, 'release'), {
    version: '4.99.0',
    repository: `${reg.host}/ocp/art-dev`,
    components: [
      { name: 'pod', image: pod },
      { name: 'console', image: consoleImg },
      { name: 'aws-ebs-csi-driver', image: aws },
      { name: 'multi-thing', image: multi },
    ],
    tag: 'rel',
  });
  for (const img of [pod, consoleImg, aws]) await pushImage(reg, img, `ocp/art-dev@${img.digest}`);
  await pushImage(reg, multi, `ocp/art-dev@${multi.digest}`);
  await pushImage(reg, release, 'ocp/release:4.99.0-x86_64');
  const agent = makeImage(join(dir, 'agent'), { layers: [base, { agent: 'agent' }], tag: 'v1' });
  await pushImage(reg, agent, 'multicluster-engine/assisted-installer-agent:v1');
  const tool = makeImage(join(dir, 'tool'), { layers: [{ tool: 'tool' }], tag: 'v1' });
  await pushImage(reg, tool, 'ns/tool:v1');

  const srv = await startServer(t, {
    cwd: tempDir(t),
    env: { EDGEBOOT_REGISTRY_INSECURE_REGISTRIES: reg.host, EDGEBOOT_REGISTRY_PULL_SECRET: reg.authFile(tempDir(t)) },
  });
  const admin = { authorization: `Bearer ${srv.token}`, 'content-type': 'application/json' };
  const spec = {
    release: `${reg.host}/ocp/release:4.99.0-x86_64`,
    aiImages: [`${reg.host}/multicluster-engine/assisted-installer-agent:v1`],
    images: [`${reg.host}/ns/tool:v1`],
    filter: 'patterns:\n  - "\\\\baws\\\\b"\n',
  };
  const started = await fetch(`${srv.url}/api/v1/bundles`, { method: 'POST', headers: admin, body: JSON.stringify(spec) });
  t.equal(started.status, 202);
  const { id } = (await started.json()) as Status;
  let status: Status = { id, state: 'building' };
  const end = Date.now() + 60_000;
  while (status.state === 'building' && Date.now() < end) {
    status = (await (await fetch(`${srv.url}/api/v1/bundles/${id}`, { headers: admin })).json()) as Status;
    await sleep(200);
  }
  t.equal(status.state, 'ready', `built (${status.error ?? ''})`);
  const files = status.manifest?.files ?? [];
  t.equal(status.manifest?.release?.digest, release.digest);

  const out = join(dir, 'bundle');
  mkdirSync(out);
  for (const f of files) {
    await run('curl', ['-fsS', '-o', join(out, f.name), `${srv.url}/bundles/${id}/${f.name}`]);
    const got = readFileSync(join(out, f.name));
    t.equal(got.length, f.size, `${f.name}: its size`);
    t.equal(sha256(got), f.sha256, `${f.name}: its sha256`);
  }
  const tgz = files.find((f) => f.name.endsWith('.tgz'));
  const head = await run('curl', ['-fsS', '--head', `${srv.url}/bundles/${id}/${tgz?.name}`]);
  t.match(head.stdout, new RegExp(`^content-length: ${tgz?.size}\\r?$`, 'mi'), 'HEAD: the length');
  t.match(head.stdout, new RegExp(`^etag: "sha256:${tgz?.sha256}"\\r?$`, 'mi'), 'ETag: the sha256');
  const part = await run('curl', ['-fsS', '-r', '10-19', `${srv.url}/bundles/${id}/${tgz?.name}`], { encoding: 'buffer' });
  t.same(part.stdout, readFileSync(join(out, tgz?.name ?? '')).subarray(10, 20), 'a range');
  t.equal((await fetch(`${srv.url}/bundles/${id}/..%2fedgeboot.db`)).status, 400, 'a path is not a bundle file');

  const text = (name: string) => readFileSync(join(out, name), 'utf8').trim().split('\n').filter(Boolean);
  const ref = (repo: string, digest: string) => `${reg.host}/${repo}@${digest}`;
  const relRef = ref('ocp/release', release.digest);
  t.same(
    new Set(text('ai-images.txt')),
    new Set([relRef, ref('ocp/art-dev', pod.digest), ref('multicluster-engine/assisted-installer-agent', agent.digest)]),
    'AI list: the release, the discovery component, the agent',
  );
  t.same(
    new Set(text('ocp-images.txt')),
    new Set([relRef, ref('ocp/art-dev', pod.digest), ref('ocp/art-dev', consoleImg.digest), ref('ocp/art-dev', multi.digest), ref('ns/tool', tool.digest)]),
    'OCP list: all but the AI-only image',
  );
  const mapping = text('mapping.txt');
  t.ok(mapping.includes(`${relRef}=openshift/release-images:4.99.0-amd64`));
  t.ok(mapping.includes(`${ref('ocp/art-dev', pod.digest)}=openshift/release:4.99.0-amd64-pod`));
  t.ok(
    mapping.includes(`${ref('multicluster-engine/assisted-installer-agent', agent.digest)}=multicluster-engine/assisted-installer-agent:v1`),
    'an image by tag keeps its tag',
  );
  t.same(text('ignored-images.txt'), [`${reg.host}/ocp/art-dev@${aws.digest}=openshift/release:4.99.0-amd64-aws-ebs-csi-driver`], 'the filtered component');

  const uris = [...new Set([...text('ai-images.txt'), ...text('ocp-images.txt')])];
  const derived = await run('bash', ['-c', 'for uri in "$@"; do echo "$(basename "${uri/:/_}")"; done', 'derive', ...uris]);
  for (const name of derived.stdout.trim().split('\n'))
    t.ok(
      files.some((f) => f.name === `${name}.tgz`),
      `the extract script finds ${name}.tgz`,
    );

  const sources = new Set([pod.digest, consoleImg.digest, agent.digest, tool.digest, multi.digest, release.digest]);
  for (const f of files.filter((x) => x.name.endsWith('.tgz'))) {
    const unpack = join(dir, 'unpack', f.name);
    mkdirSync(unpack, { recursive: true });
    await run('tar', ['-xzf', join(out, f.name), '-C', unpack]);
    const [top] = readdirSync(unpack);
    t.equal(`${top}.tgz`, f.name, `${f.name}: one top directory of the same name`);
    t.equal(readFileSync(join(unpack, top ?? '', 'version'), 'utf8'), 'Directory Transport Version: 1.1\n');
    const oci = join(dir, 'oci', f.name.replace(/[@:]/g, '_'));
    mkdirSync(join(dir, 'oci'), { recursive: true });
    await run('skopeo', ['--insecure-policy', 'copy', '--quiet', '--all', '--preserve-digests', `dir:${join(unpack, top ?? '')}`, `oci:${oci}:x`]);
    const index = JSON.parse(readFileSync(join(oci, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    const digest = index.manifests[0]?.digest ?? '';
    t.ok(sources.has(digest), `${f.name}: skopeo copies it, with the source digest`);
    t.ok(f.name.endsWith(`@${digest.replace(':', '_')}.tgz`), `${f.name}: named by that digest`);
  }

  const before = (await reg.requests()).length;
  const again = await fetch(`${srv.url}/api/v1/bundles`, { method: 'POST', headers: admin, body: JSON.stringify(spec) });
  t.equal(again.status, 200, 'the same spec: ready at once');
  t.equal(((await again.json()) as Status).id, id, 'the same bundle');
  t.equal((await reg.requests()).length, before, 'nothing asked upstream');
});
