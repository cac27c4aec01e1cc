#!/usr/bin/env node
// Writes an OCI image layout of images that share a base layer, for bench/registry-pull.sh.
//
//   node bench/make-images.mjs <layout-dir> <base-MiB> <unique-MiB spec>
//   node bench/make-images.mjs /tmp/layout 256 "64,32 96 48,48 80 32,64 96 40,40 72,56"
//
// The spec has one word per image, each a comma list of that image's own layer sizes in MiB;
// every image also has the base layer (base-MiB, 0 for none) below them. A layer is a gzipped
// tar (application/vnd.oci.image.layer.v1.tar+gzip) of one file of random bytes: the file is
// the layer's size less the tar's headers, so the compressed blob is a little over the size
// asked. Random data does not compress, so the gzip is written with deflate level 0 (stored
// blocks): 1 GiB takes seconds instead of minutes at level 1, and is within 0.03 % of the
// size level 1 gives for the same bytes. The config's rootfs.diff_ids are the sha256 of the
// uncompressed tars, as a builder writes them. Images are OCI manifests (linux/amd64), tagged
// img0, img1, ... in index.json (org.opencontainers.image.ref.name).
//
// Prints one line per image: `<tag> <manifest digest> <image bytes>` (manifest + config +
// layers), then `distinct <bytes>`: the bytes of all distinct blobs (what a cache that keeps
// one copy per digest has to fetch).
import { createHash, randomFillSync } from 'node:crypto';
import { createWriteStream, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createGzip } from 'node:zlib';

const [dir, baseArg, spec] = process.argv.slice(2);
if (!dir || baseArg === undefined || spec === undefined) {
  console.error('usage: make-images.mjs <layout-dir> <base-MiB> "<image1 layers MiB, comma list> <image2 ...> ..."');
  process.exit(2);
}
const MiB = 1048576;
const baseMiB = Number(baseArg);
const images = spec
  .trim()
  .split(/\s+/)
  .map((w) => w.split(',').map(Number));
if (!Number.isFinite(baseMiB) || baseMiB < 0 || images.some((l) => l.some((n) => !Number.isFinite(n) || n <= 0))) {
  console.error(`bad sizes: base ${baseArg}, images "${spec}"`);
  process.exit(2);
}

const blobs = join(dir, 'blobs', 'sha256');
mkdirSync(blobs, { recursive: true });
writeFileSync(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
let seq = 0;

function putBlob(bytes) {
  const hex = createHash('sha256').update(bytes).digest('hex');
  writeFileSync(join(blobs, hex), bytes);
  return { digest: `sha256:${hex}`, size: bytes.length };
}

/** A ustar header for one regular file. */
function tarHeader(name, size) {
  const h = Buffer.alloc(512);
  const put = (s, off, len) => h.write(s, off, len, 'ascii');
  put(name, 0, 100);
  put('0000644\0', 100, 8);
  put('0000000\0', 108, 8);
  put('0000000\0', 116, 8);
  put(size.toString(8).padStart(11, '0') + '\0', 124, 12);
  put('00000000000\0', 136, 12);
  put('        ', 148, 8); // checksum field counts as spaces while summing
  put('0', 156, 1);
  put('ustar\0', 257, 6);
  put('00', 263, 2);
  let sum = 0;
  for (const b of h) sum += b;
  put(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8);
  return h;
}

/** A layer of about `mib` MiB: gzip (level 0) of a tar holding one file of random bytes. */
async function makeLayer(mib) {
  const total = Math.round(mib * MiB);
  const fileSize = Math.max(0, total - 3 * 512);
  const tmp = join(dir, `tmp-${process.pid}-${seq++}`);
  const out = createWriteStream(tmp);
  const gz = createGzip({ level: 0, chunkSize: MiB });
  const diff = createHash('sha256');
  const dig = createHash('sha256');
  let size = 0;
  gz.on('data', (b) => {
    dig.update(b);
    size += b.length;
  });
  gz.pipe(out);
  const closed = new Promise((resolve, reject) => {
    out.on('close', resolve);
    out.on('error', reject);
    gz.on('error', reject);
  });
  const write = async (b) => {
    diff.update(b);
    if (!gz.write(b)) await new Promise((r) => gz.once('drain', r));
  };
  await write(tarHeader(`layer-${seq}.bin`, fileSize));
  for (let left = fileSize; left > 0;) {
    const n = Math.min(left, MiB);
    await write(randomFillSync(Buffer.allocUnsafe(n)));
    left -= n;
  }
  const pad = (512 - (fileSize % 512)) % 512;
  await write(Buffer.alloc(pad + 1024)); // the file's padding, then the two zero blocks
  gz.end();
  await closed;
  const hex = dig.digest('hex');
  renameSync(tmp, join(blobs, hex));
  return { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: `sha256:${hex}`, size, diffId: `sha256:${diff.digest('hex')}` };
}

const distinct = new Map(); // digest -> size
const base = baseMiB > 0 ? await makeLayer(baseMiB) : undefined;
const index = { schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [] };
const lines = [];
for (const [i, sizes] of images.entries()) {
  const own = [];
  for (const mib of sizes) own.push(await makeLayer(mib));
  const layers = [...(base ? [base] : []), ...own];
  const config = putBlob(
    Buffer.from(
      JSON.stringify({
        created: '2026-01-01T00:00:00Z',
        architecture: 'amd64',
        os: 'linux',
        config: { Env: ['PATH=/usr/sbin:/usr/bin:/sbin:/bin'], Labels: { 'edgeboot.bench': `img${i}` } },
        rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
        history: layers.map((_, n) => ({ created: '2026-01-01T00:00:00Z', created_by: `bench layer ${n}` })),
      }),
    ),
  );
  const manifest = putBlob(
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
        layers: layers.map(({ mediaType, digest, size }) => ({ mediaType, digest, size })),
      }),
    ),
  );
  for (const b of [manifest, config, ...layers]) distinct.set(b.digest, b.size);
  const tag = `img${i}`;
  index.manifests.push({
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    ...manifest,
    platform: { architecture: 'amd64', os: 'linux' },
    annotations: { 'org.opencontainers.image.ref.name': tag },
  });
  lines.push(`${tag} ${manifest.digest} ${manifest.size + config.size + layers.reduce((s, l) => s + l.size, 0)}`);
}
writeFileSync(join(dir, 'index.json'), JSON.stringify(index));
let all = 0;
for (const s of distinct.values()) all += s;
console.log([...lines, `distinct ${all}`].join('\n'));
