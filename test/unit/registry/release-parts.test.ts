/**
 * The pure parts of release resolution and image jobs: the tar reader against archives GNU tar
 * writes in its three formats (ustar with a name prefix, GNU long names, PAX path records),
 * chunked at every size; image-references; image refs; filters.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { parseFilter } from '../../../src/registry/filter.js';
import { imageRefString, parseImageRef } from '../../../src/registry/reference.js';
import { parseImageReferences } from '../../../src/registry/release.js';
import { readTarFiles } from '../../../src/registry/tar.js';

const LONG_DIR = `${'d'.repeat(60)}/${'e'.repeat(60)}`;
const LONG = `${LONG_DIR}/${'f'.repeat(120)}.txt`;

function archives(): Record<string, Buffer> {
  const dir = mkdtempSync(join(tmpdir(), 'edgeboot-tar-'));
  try {
    mkdirSync(join(dir, 'src/release-manifests'), { recursive: true });
    mkdirSync(join(dir, 'src', LONG_DIR), { recursive: true });
    writeFileSync(join(dir, 'src/release-manifests/image-references'), '{"kind":"ImageStream"}\n');
    writeFileSync(join(dir, 'src/big.bin'), Buffer.alloc(70_000, 1));
    writeFileSync(join(dir, 'src', LONG), 'the long one\n');
    const out: Record<string, Buffer> = {};
    for (const format of ['ustar', 'gnu', 'pax']) {
      if (format === 'ustar') continue; // 240-character names do not fit ustar
      execFileSync('tar', [`--format=${format}`, '-C', join(dir, 'src'), '-cf', join(dir, `${format}.tar`), '.']);
      out[format] = readFileSync(join(dir, `${format}.tar`));
    }
    execFileSync('tar', ['--format=ustar', '-C', join(dir, 'src'), '-cf', join(dir, 'ustar.tar'), 'release-manifests', 'big.bin']);
    out.ustar = readFileSync(join(dir, 'ustar.tar'));
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function* chunks(b: Buffer, size: number): AsyncGenerator<Buffer> {
  for (let i = 0; i < b.length; i += size) yield b.subarray(i, i + size);
}

t.test('tar: wanted files out of GNU tar archives in every format, chunked any way', async (t) => {
  for (const [format, tar] of Object.entries(archives())) {
    for (const size of [7, 512, 513, 4096, tar.length]) {
      const files = await readTarFiles(chunks(tar, size), (n) => n === 'release-manifests/image-references' || n === LONG);
      t.equal(files.get('release-manifests/image-references')?.toString(), '{"kind":"ImageStream"}\n', `${format}, chunks of ${size}: the short name`);
      if (format !== 'ustar') t.equal(files.get(LONG)?.toString(), 'the long one\n', `${format}, chunks of ${size}: the 240-character name`);
    }
  }
});

t.test('tar: damaged input is an error, a too-large file a clear one', async (t) => {
  const tar = archives().gnu as Buffer;
  const bad = Buffer.from(tar);
  bad[150] = 0x39; // inside the first header's checksum
  await t.rejects(
    readTarFiles(chunks(bad, 1000), () => true),
    /wrong checksum/,
  );
  await t.rejects(
    readTarFiles(chunks(tar.subarray(0, 2000), 1000), () => true),
    /ended inside an entry/,
  );
  await t.rejects(
    readTarFiles(chunks(tar, 4096), (n) => n === 'big.bin', { maxFileBytes: 1000 }),
    /big\.bin in the layer is 70000 bytes, over the 1000-byte limit/,
  );
});

t.test('image-references: the version and every DockerImage tag', async (t) => {
  const doc = {
    kind: 'ImageStream',
    metadata: { name: '4.14.0' },
    spec: {
      tags: [
        { name: 'pod', from: { kind: 'DockerImage', name: 'quay.io/o/a@sha256:1' } },
        { name: 'odd', from: { kind: 'ImageStreamTag', name: 'x' } },
      ],
    },
  };
  t.same(parseImageReferences(Buffer.from(JSON.stringify(doc)), 'r'), { version: '4.14.0', components: [{ name: 'pod', image: 'quay.io/o/a@sha256:1' }] });
  t.throws(() => parseImageReferences(Buffer.from('{"kind":"List"}'), 'r'), /not an ImageStream/);
  t.throws(() => parseImageReferences(Buffer.from('nope'), 'r'), /not JSON/);
});

t.test('image refs name their registry', async (t) => {
  const hex = 'b'.repeat(64);
  t.match(parseImageRef('quay.io/openshift-release-dev/ocp-release:4.14.0-x86_64'), {
    host: 'quay.io',
    repository: 'openshift-release-dev/ocp-release',
    reference: { kind: 'tag', tag: '4.14.0-x86_64' },
  });
  t.match(parseImageRef(`registry.example:5000/a/b@sha256:${hex}`), { host: 'registry.example:5000', repository: 'a/b', reference: { kind: 'digest' } });
  t.match(parseImageRef(`docker://quay.io/a/b:v1@sha256:${hex}`), { reference: { kind: 'digest' }, tag: 'v1' }, 'a digest wins over the tag beside it');
  t.match(parseImageRef('localhost/a'), { host: 'localhost', reference: { kind: 'tag', tag: 'latest' } });
  t.match(parseImageRef('library/busybox:1'), { error: /not a registry host/ });
  t.match(parseImageRef('busybox'), { error: /name the registry host first/ });
  t.match(parseImageRef('quay.io/A/b'), { error: /not a valid repository name/ });
  t.match(parseImageRef('quay.io/a/b@sha256:xyz'), { error: /not a sha256 digest/ });
  const r = parseImageRef(`quay.io/a/b@sha256:${hex}`);
  if ('error' in r) throw new Error(r.error);
  t.equal(imageRefString(r), `quay.io/a/b@sha256:${hex}`);
});

t.test('filters: YAML patterns or one per line; the pattern that matched', async (t) => {
  const yaml = parseFilter('patterns:\n  - "\\\\baws\\\\b"\n  - azure\n');
  t.equal(yaml.excludes('quay.io/x@sha256:1', 'openshift/release:4.14.0-x86_64-aws-ebs-csi-driver'), '\\baws\\b');
  t.equal(yaml.excludes('openshift/release:4.14.0-x86_64-awsome'), undefined, 'word boundaries hold');
  t.equal(yaml.excludes('azure-disk'), 'azure');
  const lines = parseFilter('# clouds\nvsphere\n\n  ovirt  \n');
  t.same(
    lines.patterns.map((p) => p.source),
    ['vsphere', 'ovirt'],
  );
  t.throws(() => parseFilter('patterns: [a, 1]'), /list of strings/);
  t.throws(() => parseFilter('('), /not a regular expression/);
});
