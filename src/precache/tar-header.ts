/**
 * POSIX ustar headers (the `tar` format of IEEE Std 1003.1), for writing bundles: a path of up
 * to 255 bytes split at a `/` into prefix and name, sizes in octal or, from 8 GiB, base-256.
 */

const BLOCK = 512;

export interface TarEntry {
  path: string;
  type: 'file' | 'directory';
  size: number;
  mode: number;
  mtime: Date;
}

function splitPath(path: string): { prefix: string; name: string } {
  const bytes = Buffer.byteLength(path);
  if (bytes <= 100) return { prefix: '', name: path };
  for (let i = path.lastIndexOf('/'); i > 0; i = path.lastIndexOf('/', i - 1)) {
    const prefix = path.slice(0, i);
    const name = path.slice(i + 1);
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(name) <= 100 && name !== '') return { prefix, name };
  }
  throw new Error(`${path}: too long for a ustar header (a name over 100 bytes, or over 255 in all)`);
}

function octal(buf: Buffer, offset: number, width: number, value: number): void {
  buf.write(`${value.toString(8).padStart(width - 1, '0')}\0`, offset, width, 'ascii');
}

export function tarHeader(e: TarEntry): Buffer {
  const h = Buffer.alloc(BLOCK);
  const { prefix, name } = splitPath(e.type === 'directory' && !e.path.endsWith('/') ? `${e.path}/` : e.path);
  h.write(name, 0, 100, 'utf8');
  octal(h, 100, 8, e.mode);
  octal(h, 108, 8, 0);
  octal(h, 116, 8, 0);
  const size = e.type === 'directory' ? 0 : e.size;
  if (size < 8 ** 11) octal(h, 124, 12, size);
  else {
    h[124] = 0x80;
    h.writeBigUInt64BE(BigInt(size), 128);
  }
  octal(h, 136, 12, Math.floor(e.mtime.getTime() / 1000));
  h.write(e.type === 'directory' ? '5' : '0', 156, 1, 'ascii');
  h.write('ustar\0', 257, 6, 'ascii');
  h.write('00', 263, 2, 'ascii');
  h.write('root', 265, 32, 'ascii');
  h.write('root', 297, 32, 'ascii');
  h.write(prefix, 345, 155, 'utf8');
  // §10.1.1: the checksum is of the header with its own field as spaces.
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'ascii');
  return h;
}

/** Zeros after a file's data, up to the next block. */
export function tarPadding(size: number): Buffer {
  return Buffer.alloc((BLOCK - (size % BLOCK)) % BLOCK);
}

/** The end of an archive: two zero blocks. */
export const TAR_END = Buffer.alloc(2 * BLOCK);
