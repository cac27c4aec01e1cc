/** The measuring half of bench/tar.sh (which fetches the old code into $WORK/old). */
import { createReadStream, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type * as Tar from '../src/registry/tar.js';

const { FILES, SIZE_MIB, RUNS, WORK, REPO } = process.env;
const files = Number(FILES);
const size = Number(SIZE_MIB) << 20;
const runs = Number(RUNS);
const work = String(WORK);

interface OldHeader {
  tarHeader(e: { path: string; type: 'file' | 'directory'; size: number; mode: number; mtime: Date }): Buffer;
  tarPadding(size: number): Buffer;
  TAR_END: Buffer;
}
type ReadFiles = (source: AsyncIterable<Buffer>, wanted: (name: string) => boolean) => Promise<Map<string, Buffer>>;
const oldHeader = (await import(join(work, 'old', 'tar-header.ts'))) as OldHeader;
const oldReader = (await import(join(work, 'old', 'tar.ts'))) as { readTarFiles: ReadFiles };
const current = (await import(join(String(REPO), 'src', 'registry', 'tar.ts'))) as typeof Tar;

const blob = join(work, 'blob');
writeFileSync(blob, Buffer.alloc(size, 0x5a));
const mtime = new Date('2026-12-01T00:00:00Z');
const names = Array.from({ length: files }, (_, i) => `image/${String(i).padStart(64, '0')}`);

const sink = () => new Writable({ write: (_c, _e, done) => done() });

async function* oldArchive(): AsyncGenerator<Buffer> {
  yield oldHeader.tarHeader({ path: 'image', type: 'directory', size: 0, mode: 0o755, mtime });
  for (const name of names) {
    yield oldHeader.tarHeader({ path: name, type: 'file', size, mode: 0o644, mtime });
    for await (const chunk of createReadStream(blob, { highWaterMark: 1 << 20 })) yield chunk as Buffer;
    yield oldHeader.tarPadding(size);
  }
  yield oldHeader.TAR_END;
}

async function* newEntries() {
  yield { path: 'image', type: 'directory' as const, mode: 0o755, mtime };
  for (const name of names) {
    const open = () => createReadStream(blob, { highWaterMark: 1 << 20 });
    yield { path: name, type: 'file' as const, mode: 0o644, mtime, body: { size, open } };
  }
}

const archivePath = join(work, 'archive.tar');
await pipeline(Readable.from(oldArchive()), (await open(archivePath, 'w')).createWriteStream());
const total = files * size;

const cases: Record<string, () => Promise<void>> = {
  'write, old': () => pipeline(Readable.from(oldArchive()), sink()),
  'write, tar-stream': () => pipeline(current.packTar(newEntries()), sink()),
  'read, old': async () => {
    await oldReader.readTarFiles(createReadStream(archivePath, { highWaterMark: 1 << 20 }), (n) => n === 'image');
  },
  'read, tar-stream': async () => {
    await current.readTarFiles(createReadStream(archivePath, { highWaterMark: 1 << 20 }), (n) => n === 'image');
  },
};
const times = new Map<string, number[]>(Object.keys(cases).map((k) => [k, []]));
for (let r = 0; r < runs; r++) {
  for (const [name, run] of Object.entries(cases)) {
    const t0 = process.hrtime.bigint();
    await run();
    times.get(name)?.push(Number(process.hrtime.bigint() - t0) / 1e9);
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
const rate = (k: string) => total / (1 << 20) / median(times.get(k) ?? []);
console.log(`${files} files x ${SIZE_MIB} MiB (${total >> 20} MiB), ${runs} runs, medians:`);
for (const k of Object.keys(cases)) console.log(`  ${k.padEnd(18)} ${rate(k).toFixed(0).padStart(6)} MiB/s`);
const ratio = (what: string) => (rate(`${what}, tar-stream`) / rate(`${what}, old`)).toFixed(2);
console.log(`  write: tar-stream/old ${ratio('write')}; read: tar-stream/old ${ratio('read')}`);
