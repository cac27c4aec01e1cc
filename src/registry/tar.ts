/**
 * The tar archives edgeboot reads and writes, both through tar-stream:
 * - reading chosen files out of a tar stream (POSIX ustar, GNU long names, PAX path records), as
 *   image layers are: only the wanted files are kept in memory, the rest streams past. Enough
 *   for `release-manifests/image-references` in a release image's layer;
 * - writing a ustar archive of directories, buffers and streamed files (precache bundles); a
 *   path too long for ustar's prefix and name gets a PAX record.
 */
import { Readable } from 'node:stream';
import { extract, pack, type Pack } from 'tar-stream';

export interface TarLimits {
  /** A wanted file larger than this is an error rather than a buffer of that size. */
  maxFileBytes: number;
}

// Pre-POSIX (v7) headers have no magic; image layers written by old tools still carry them.
const EXTRACT_OPTIONS: Parameters<typeof extract>[0] & { allowUnknownFormat: boolean } = { allowUnknownFormat: true };

/** Files whose normalised name (`./` and `/` prefixes cut) `wanted` accepts, by that name. */
export async function readTarFiles(
  source: AsyncIterable<Buffer>,
  wanted: (name: string) => boolean,
  limits: TarLimits = { maxFileBytes: 64 << 20 },
): Promise<Map<string, Buffer>> {
  const found = new Map<string, Buffer>();
  const entries = extract(EXTRACT_OPTIONS);
  const feed = Readable.from(source);
  feed.on('error', (err) => entries.destroy(err));
  feed.pipe(entries);
  try {
    for await (const entry of entries) {
      const { type, size } = entry.header;
      const name = normalise(entry.header.name);
      if ((type !== 'file' && type !== 'contiguous-file') || !wanted(name)) {
        entry.resume();
        continue;
      }
      if (size > limits.maxFileBytes) throw new Error(`${name} in the layer is ${size} bytes, over the ${limits.maxFileBytes}-byte limit`);
      const parts: Buffer[] = [];
      for await (const chunk of entry) parts.push(chunk as Buffer);
      found.set(name, Buffer.concat(parts));
    }
  } catch (err) {
    throw tarError(err);
  } finally {
    feed.destroy();
  }
  return found;
}

/** tar-stream's errors, in the words the release resolution has always reported. */
function tarError(err: unknown): unknown {
  if (!(err instanceof Error)) return err;
  if (err.message.startsWith('Invalid tar header')) return new Error('a tar header with a wrong checksum: not a tar stream, or a damaged one', { cause: err });
  if (err.message === 'Unexpected end of data') return new Error('the tar stream ended inside an entry', { cause: err });
  return err;
}

function normalise(name: string): string {
  return name.replace(/^(\.\/|\/)+/, '');
}

export interface TarEntry {
  path: string;
  type: 'file' | 'directory';
  mode: number;
  mtime: Date;
  /** A file's bytes: a buffer, or a stream opened when the archive reaches the entry, of exactly `size` bytes. */
  body?: Buffer | { size: number; open: () => Readable };
}

/** A tar archive of `entries`, in order, owned by root; read it as a stream of buffers. */
export function packTar(entries: AsyncIterable<TarEntry>): Readable {
  const archive = pack();
  const write = async () => {
    for await (const e of entries) {
      // A directory's name ends in `/`, as GNU tar writes it (tar-stream adds none).
      const name = e.type === 'directory' && !e.path.endsWith('/') ? `${e.path}/` : e.path;
      const header = { name, type: e.type, mode: e.mode, mtime: e.mtime, uid: 0, gid: 0, uname: 'root', gname: 'root' };
      const body = e.body;
      if (body === undefined) archive.entry({ ...header, size: 0 });
      else if (Buffer.isBuffer(body)) archive.entry({ ...header, size: body.length }, body);
      else await pipeEntry(archive, { ...header, size: body.size }, body.open());
    }
    archive.finalize();
  };
  write().catch((err: unknown) => archive.destroy(err instanceof Error ? err : new Error(String(err))));
  return Readable.from(archive);
}

/** Streams one file's bytes into its entry; tar-stream fails the entry when they are not its size. */
function pipeEntry(archive: Pack, header: Parameters<Pack['entry']>[0], source: Readable): Promise<void> {
  return new Promise((resolve, reject) => {
    const entry = archive.entry(header, (err) => (err ? reject(err) : resolve()));
    entry.on('error', reject);
    // The archive's reader gone (a failed write, a cancelled build): the file closes too.
    entry.on('close', () => source.destroy());
    source.on('error', (err) => {
      entry.destroy(err);
      reject(err);
    });
    source.pipe(entry);
  });
}
