/** ustar headers GNU tar reads back (src/precache/tar-header.ts); archive names and list rules (bundles.ts). */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { archiveName, bundleId, imageGroups } from '../../../src/precache/bundles.js';
import { TAR_END, tarHeader, tarPadding } from '../../../src/precache/tar-header.js';
import { readTarFiles } from '../../../src/registry/tar.js';

t.test('an archive of our headers is what GNU tar lists and extracts', async (t) => {
  const top = `ocp-v4.0-art-dev@sha256_${'a'.repeat(64)}`;
  const long = `${top}/${'b'.repeat(64)}.manifest.json`;
  const mtime = new Date('2026-12-01T00:00:00Z');
  const body = Buffer.from('{"schemaVersion":2}');
  const archive = Buffer.concat([
    tarHeader({ path: top, type: 'directory', size: 0, mode: 0o755, mtime }),
    tarHeader({ path: long, type: 'file', size: body.length, mode: 0o644, mtime }),
    body,
    tarPadding(body.length),
    TAR_END,
  ]);
  const dir = mkdtempSync(join(tmpdir(), 'edgeboot-tarh-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'a.tar'), archive);
  t.same(execFileSync('tar', ['-tf', join(dir, 'a.tar')], { encoding: 'utf8' }).trim().split('\n'), [`${top}/`, long], 'GNU tar lists both, the 153-byte path via the ustar prefix');
  execFileSync('tar', ['-xf', join(dir, 'a.tar'), '-C', dir]);
  t.same(readFileSync(join(dir, long)), body, 'and extracts the bytes');
  const back = await readTarFiles((async function* () { yield archive; })(), () => true);
  t.same(back.get(long), body, 'our reader agrees');
  t.throws(() => tarHeader({ path: `${'x'.repeat(200)}/${'y'.repeat(101)}`, type: 'file', size: 0, mode: 0o644, mtime }), /too long for a ustar header/);
});

t.test('archive names and lists follow factory-precaching-cli', async (t) => {
  t.equal(archiveName('openshift-release-dev/ocp-v4.0-art-dev', `sha256:${'c'.repeat(64)}`), `ocp-v4.0-art-dev@sha256_${'c'.repeat(64)}`);
  t.same(imageGroups({ kind: 'release', name: 'release', ref: 'quay.io/o/r:4' }, false), { ai: true, ocp: true });
  t.same(imageGroups({ kind: 'component', name: 'etcd', ref: 'quay.io/o/a@sha256:1' }, false), { ai: true, ocp: true }, 'a discovery component');
  t.same(imageGroups({ kind: 'component', name: 'console', ref: 'quay.io/o/a@sha256:1' }, false), { ai: false, ocp: true });
  t.same(imageGroups({ kind: 'image', name: 'x', ref: 'registry.redhat.io/multicluster-engine/assisted-installer-rhel8:v1' }, false), { ai: true, ocp: false });
  t.same(imageGroups({ kind: 'image', name: 'x', ref: 'registry.redhat.io/multicluster-engine/assisted-installer-reporter-rhel8:v1' }, false), { ai: true, ocp: true }, 'the reporter is on both');
  t.same(imageGroups({ kind: 'image', name: 'x', ref: 'quay.io/me/agent:v1' }, true), { ai: true, ocp: false }, 'given as an AI image');
  t.same(imageGroups({ kind: 'image', name: 'x', ref: 'quay.io/me/tool:v1' }, false), { ai: false, ocp: true });
  const spec = { release: 'quay.io/o/r:4', aiImages: [], images: ['quay.io/a/b:1'], architecture: 'amd64' };
  t.equal(bundleId(spec), bundleId({ ...spec }), 'the same spec, the same bundle');
  t.not(bundleId(spec), bundleId({ ...spec, filter: 'aws' }), 'another filter, another bundle');
});
