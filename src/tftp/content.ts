/**
 * What a transfer sends: a byte range source of known size. Files are read through a chunk
 * cache shared by every transfer, so a boot storm of machines fetching the same iPXE binary
 * reads it from disk once, and a large file is read in big sequential pieces ahead of the
 * window instead of one small read per block.
 */
import { open, type FileHandle } from 'node:fs/promises';

export interface TftpContent {
  readonly size: number;
  /**
   * The bytes of [position, position + length), cut at the end of the content, as one or two
   * views that stay unchanged (chunks are never written after they are read). Synchronous when
   * they are in memory, which is the steady state.
   */
  read(position: number, length: number): Buffer[] | Promise<Buffer[]>;
  close(): void;
}

export function bufferContent(data: Buffer): TftpContent {
  return {
    size: data.length,
    read: (position, length) => [data.subarray(position, Math.min(data.length, position + length))],
    close: () => undefined,
  };
}

/**
 * Netascii (RFC 1350 §5, after RFC 764): every LF becomes CR LF and every bare CR becomes CR NUL.
 * Text files on this host end lines with LF alone, so a lone LF is a line end.
 */
export function toNetascii(data: Buffer): Buffer {
  let extra = 0;
  for (const byte of data) if (byte === 0x0a || byte === 0x0d) extra += 1;
  if (extra === 0) return data;
  const out = Buffer.allocUnsafe(data.length + extra);
  let j = 0;
  for (const byte of data) {
    if (byte === 0x0a) {
      out[j++] = 0x0d;
      out[j++] = 0x0a;
    } else if (byte === 0x0d) {
      out[j++] = 0x0d;
      out[j++] = 0x00;
    } else out[j++] = byte;
  }
  return out;
}

export const CHUNK_BYTES = 128 * 1024;

/** Least-recently-used chunks of files, keyed by file identity (device, inode, size, mtime). */
export class ChunkCache {
  private readonly chunks = new Map<string, Buffer | Promise<Buffer>>();
  private bytes = 0;
  hits = 0;
  misses = 0;

  constructor(readonly maxBytes: number) {}

  get size(): number {
    return this.bytes;
  }

  get(key: string): Buffer | Promise<Buffer> | undefined {
    const c = this.chunks.get(key);
    if (c === undefined) return undefined;
    this.chunks.delete(key);
    this.chunks.set(key, c);
    return c;
  }

  /** Starts a load; a failed one is forgotten so the next reader tries again. */
  load(key: string, read: () => Promise<Buffer>): Promise<Buffer> {
    this.misses += 1;
    const p = read().then(
      (buf) => {
        if (this.chunks.get(key) === p) {
          this.chunks.set(key, buf);
          this.bytes += buf.length;
          this.evict();
        }
        return buf;
      },
      (err: unknown) => {
        if (this.chunks.get(key) === p) this.chunks.delete(key);
        throw err;
      },
    );
    this.chunks.set(key, p);
    return p;
  }

  private evict(): void {
    for (const [key, c] of this.chunks) {
      if (this.bytes <= this.maxBytes) return;
      if (!Buffer.isBuffer(c)) continue;
      this.chunks.delete(key);
      this.bytes -= c.length;
    }
  }
}

/** Opens a regular file for reading through the cache. Throws the file system's error. */
export async function openFileContent(path: string, cache: ChunkCache): Promise<TftpContent> {
  const fh = await open(path, 'r');
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw Object.assign(new Error(`${path} is not a regular file`), { code: 'EISDIR' });
    return new FileContent(fh, st.size, `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}`, cache);
  } catch (err) {
    await fh.close();
    throw err;
  }
}

class FileContent implements TftpContent {
  /** The few chunks this transfer is on (previous, current, next): no cache lookup per block. */
  private readonly near = new Map<number, Buffer>();
  private pending = 0;
  private closing = false;
  private closed = false;

  constructor(
    private readonly fh: FileHandle,
    readonly size: number,
    private readonly identity: string,
    private readonly cache: ChunkCache,
  ) {}

  read(position: number, length: number): Buffer[] | Promise<Buffer[]> {
    const end = Math.min(this.size, position + length);
    if (end <= position) return [EMPTY];
    const first = Math.floor(position / CHUNK_BYTES);
    const second = Math.floor((end - 1) / CHUNK_BYTES);
    const a = this.near.get(first);
    const b = second === first ? a : this.near.get(second);
    if (a !== undefined && b !== undefined) return this.cut(a, b, first, position, end);
    return Promise.all([a ?? this.chunk(first), b ?? this.chunk(second)]).then(([ca, cb]) => this.cut(ca, cb, first, position, end));
  }

  close(): void {
    this.closing = true;
    this.near.clear();
    if (this.pending === 0) this.closeHandle();
  }

  private cut(a: Buffer, b: Buffer, first: number, position: number, end: number): Buffer[] {
    const base = first * CHUNK_BYTES;
    const split = base + CHUNK_BYTES;
    if (end <= split) return [a.subarray(position - base, end - base)];
    return [a.subarray(position - base), b.subarray(0, end - split)];
  }

  /** Fetches a chunk into `near` (from the cache or the disk) and reads the next one ahead. */
  private async chunk(index: number): Promise<Buffer> {
    const buf = await this.fromCache(index);
    if (this.closing) return buf;
    this.near.set(index, buf);
    for (const k of this.near.keys()) if (k < index - 1 || k > index + 1) this.near.delete(k);
    const next = index + 1;
    if (next * CHUNK_BYTES < this.size && !this.near.has(next)) {
      Promise.resolve(this.fromCache(next)).then(
        (nb: Buffer) => {
          if (!this.closing) this.near.set(next, nb);
        },
        // The reader that needs this chunk loads it again and gets the error itself.
        () => undefined,
      );
    }
    return buf;
  }

  private fromCache(index: number): Buffer | Promise<Buffer> {
    const key = `${this.identity}#${index}`;
    const cached = this.cache.get(key);
    if (cached !== undefined) {
      this.cache.hits += 1;
      return cached;
    }
    return this.cache.load(key, () => this.readChunk(index));
  }

  private async readChunk(index: number): Promise<Buffer> {
    this.pending += 1;
    try {
      const position = index * CHUNK_BYTES;
      const want = Math.min(CHUNK_BYTES, this.size - position);
      const buf = Buffer.allocUnsafe(want);
      let got = 0;
      while (got < want) {
        const { bytesRead } = await this.fh.read(buf, got, want - got, position + got);
        if (bytesRead === 0) throw Object.assign(new Error('the file shrank while it was being sent'), { code: 'ESHRUNK' });
        got += bytesRead;
      }
      return buf;
    } finally {
      this.pending -= 1;
      if (this.closing && this.pending === 0) this.closeHandle();
    }
  }

  private closeHandle(): void {
    if (this.closed) return;
    this.closed = true;
    // A failing close of a read-only descriptor loses nothing; it is still worth a trace.
    this.fh.close().catch((err: unknown) => process.emitWarning(`TFTP: closing a file failed: ${String(err)}`));
  }
}

const EMPTY = Buffer.alloc(0);
