/**
 * What a transfer sends: a file (read by the pump with pread, from the page cache, as
 * tftpd-hpa does — a boot storm fetching one iPXE binary reads it from disk once) or a buffer
 * of generated content. Files come open and checked from `openInRoots` (roots.ts).
 */
import type { FileHandle } from 'node:fs/promises';

export interface TftpContent {
  readonly size: number;
  /** A file descriptor open for reading, or the bytes themselves. */
  readonly source: number | Buffer;
  close(): void;
}

export function bufferContent(data: Buffer): TftpContent {
  return { size: data.length, source: data, close: () => undefined };
}

/** An open regular file (`size` bytes) as transfer content; the content owns `fh` and closes it. */
export function fileContent(fh: FileHandle, size: number, path: string): TftpContent {
  let closed = false;
  return {
    size,
    source: fh.fd,
    close() {
      if (closed) return;
      closed = true;
      // Closing a read-only descriptor loses nothing if it fails; it is still worth a trace.
      fh.close().catch((err: unknown) => process.emitWarning(`TFTP: closing ${path} failed: ${String(err)}`));
    },
  };
}

/** Reads an open regular file of `size` bytes whole, up to `max`; undefined if larger. Closes `fh`. */
export async function readWhole(fh: FileHandle, size: number, max: number): Promise<Buffer | undefined> {
  try {
    return size > max ? undefined : await fh.readFile();
  } finally {
    await fh.close();
  }
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
