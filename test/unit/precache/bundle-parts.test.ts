/** Archives GNU tar reads back (packTar in src/registry/tar.ts); archive names and list rules (bundles.ts). */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import t from 'tap';
import { archiveName, bundleId, imageGroups } from '../../../src/precache/bundles.js';
import { packTar, readTarFiles, type TarEntry } from '../../../src/registry/tar.js';

async function archiveOf(entries: TarEntry[]): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of packTar(
    (async function* () {
      yield* entries;
    })(),
  ))
    parts.push(chunk as Buffer);
  return Buffer.concat(parts);
}

t.test('an archive of a bundle image is what GNU tar lists and extracts', async (t) => {
  const top = `ocp-v4.0-art-dev@sha256_${'a'.repeat(64)}`;
  const long = `${top}/${'b'.repeat(64)}.manifest.json`;
  const blob = `${top}/${'c'.repeat(64)}`;
  const tooLongForUstar = `${top}/${'d'.repeat(101)}`;
  const mtime = new Date('2026-12-01T00:00:00Z');
  const body = Buffer.from('{"schemaVersion":2}');
  const streamed = Buffer.alloc(70_000, 7);
  const inTwoPieces = () => Readable.from([streamed.subarray(0, 1000), streamed.subarray(1000)]);
  const archive = await archiveOf([
    { path: top, type: 'directory', mode: 0o755, mtime },
    { path: long, type: 'file', mode: 0o644, mtime, body },
    { path: blob, type: 'file', mode: 0o644, mtime, body: { size: streamed.length, open: inTwoPieces } },
    { path: tooLongForUstar, type: 'file', mode: 0o644, mtime, body: Buffer.from('x') },
  ]);
  t.equal(archive.length % 512, 0, 'whole blocks');
  const dir = mkdtempSync(join(tmpdir(), 'edgeboot-tarh-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'a.tar'), archive);
  t.same(
    execFileSync('tar', ['-tf', join(dir, 'a.tar')], { encoding: 'utf8' })
      .trim()
      .split('\n'),
    [`${top}/`, long, blob, tooLongForUstar],
    'GNU tar lists them all: the 153-byte path via the ustar prefix, the one no prefix fits via PAX',
  );
  const verbose = execFileSync('tar', ['-tvf', join(dir, 'a.tar')], { encoding: 'utf8' });
  t.match(verbose, /^-rw-r--r-- root\/root +19 2026-12-01 /m, 'owned by root, mode and mtime kept');
  execFileSync('tar', ['-xf', join(dir, 'a.tar'), '-C', dir]);
  t.same(readFileSync(join(dir, long)), body, 'and extracts the bytes');
  t.same(readFileSync(join(dir, blob)), streamed, 'a streamed file too');
  const back = await readTarFiles(
    (async function* () {
      yield archive;
    })(),
    () => true,
  );
  t.same(back.get(long), body, 'our reader agrees');
  t.same(back.get(tooLongForUstar), Buffer.from('x'));
  const fiveBytes = () => Readable.from([Buffer.alloc(5)]);
  const short = archiveOf([{ path: 'f', type: 'file', mode: 0o644, mtime, body: { size: 10, open: fiveBytes } }]);
  await t.rejects(short, 'a stream shorter than its announced size fails the archive');
});

t.test('archive names and lists follow factory-precaching-cli', async (t) => {
  t.equal(archiveName('openshift-release-dev/ocp-v4.0-art-dev', `sha256:${'c'.repeat(64)}`), `ocp-v4.0-art-dev@sha256_${'c'.repeat(64)}`);
  t.same(imageGroups({ kind: 'release', name: 'release', ref: 'quay.io/o/r:4' }, false), { ai: true, ocp: true });
  t.same(imageGroups({ kind: 'component', name: 'etcd', ref: 'quay.io/o/a@sha256:1' }, false), { ai: true, ocp: true }, 'a discovery component');
  t.same(imageGroups({ kind: 'component', name: 'console', ref: 'quay.io/o/a@sha256:1' }, false), { ai: false, ocp: true });
  t.same(imageGroups({ kind: 'image', name: 'x', ref: 'registry.redhat.io/multicluster-engine/assisted-installer-rhel8:v1' }, false), { ai: true, ocp: false });
  t.same(
    imageGroups({ kind: 'image', name: 'x', ref: 'registry.redhat.io/multicluster-engine/assisted-installer-reporter-rhel8:v1' }, false),
    { ai: true, ocp: true },
    'the reporter is on both',
  );
  t.same(imageGroups({ kind: 'image', name: 'x', ref: 'quay.io/me/agent:v1' }, true), { ai: true, ocp: false }, 'given as an AI image');
  t.same(imageGroups({ kind: 'image', name: 'x', ref: 'quay.io/me/tool:v1' }, false), { ai: false, ocp: true });
  const spec = { release: 'quay.io/o/r:4', aiImages: [], images: ['quay.io/a/b:1'], architecture: 'amd64' };
  t.equal(bundleId(spec), bundleId({ ...spec }), 'the same spec, the same bundle');
  t.not(bundleId(spec), bundleId({ ...spec, filter: 'aws' }), 'another filter, another bundle');
});
