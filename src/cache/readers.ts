import { open, type FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';
import type { DownloadView } from './download.js';
import { asError } from './errors.js';

const READ_CHUNK = 1 << 20;

/**
 * How many bytes from `pos` (up to `end`, inclusive) a reader of a running download may have
 * now, waiting for the download to write at least one. The last byte waits for the verdict: a
 * client never completes a body that turns out not to verify; it sees the transfer cut short
 * instead. Throws when the download fails, restarts from byte 0 (`generation` is the reader's),
 * or ends before `pos`, and when `signal` aborts (the reader left) while it waits.
 */
export async function availableAt(d: DownloadView, generation: number, pos: number, end: number, signal?: AbortSignal): Promise<number> {
  for (;;) {
    if (d.generation !== generation) throw new Error('the upstream restarted the download: ask again');
    if (d.failure) throw d.failure;
    const final = d.finished ? d.written : d.total === undefined ? d.written : Math.min(d.written, d.total - 1);
    const available = Math.min(final, end + 1);
    if (pos < available) return available - pos;
    if (d.finished) throw new Error(`the artifact is shorter than the range asked (${d.written} bytes)`);
    await d.changed(signal);
  }
}

/** The temporary file; if the download was committed meanwhile, the blob it became. */
export async function openDownload(d: DownloadView): Promise<FileHandle> {
  try {
    return await open(d.tmp, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    return open((await d.done).path, 'r');
  }
}

/**
 * Bytes `start`..`end` (inclusive) of a download that may still be running, as they arrive: a
 * machine that asks for an artifact mid-download is served at once, not after the whole file.
 * Fails when the download fails or restarts under it. Destroying the stream (the client left)
 * or aborting `signal` stops a wait for more bytes at once, and closes the file.
 */
export function readDownload(d: DownloadView, start: number, end: number, signal?: AbortSignal): Readable {
  return new DownloadReader(d, start, end, signal);
}

class DownloadReader extends Readable {
  private readonly stop = new AbortController();
  private readonly generation: number;
  private readonly file: Promise<FileHandle>;
  private readonly signal: AbortSignal;
  private pos: number;

  constructor(
    private readonly d: DownloadView,
    start: number,
    private readonly end: number,
    signal: AbortSignal | undefined,
  ) {
    super();
    this.generation = d.generation;
    this.pos = start;
    this.signal = signal ? AbortSignal.any([signal, this.stop.signal]) : this.stop.signal;
    this.file = openDownload(d);
    // A failure to open is reported by the first read.
    this.file.catch(() => undefined);
  }

  override _read(): void {
    this.pull().then(
      (chunk) => this.push(chunk),
      (err: unknown) => this.destroy(asError(err)),
    );
  }

  /** The next chunk, or null at the end of the range. */
  private async pull(): Promise<Buffer | null> {
    if (this.pos > this.end) return null;
    const fh = await this.file;
    const n = Math.min(await availableAt(this.d, this.generation, this.pos, this.end, this.signal), READ_CHUNK);
    const buf = Buffer.allocUnsafe(n);
    const { bytesRead } = await fh.read(buf, 0, n, this.pos);
    if (bytesRead === 0) throw new Error('the download file shrank under a reader');
    this.pos += bytesRead;
    return buf.subarray(0, bytesRead);
  }

  /** Stops a wait for more bytes first: closing the file waits for the read in progress. */
  override _destroy(err: Error | null, done: (err?: Error | null) => void): void {
    this.stop.abort(err ?? new Error('the reader was closed'));
    this.file
      .then(
        (fh) => fh.close(),
        () => undefined,
      )
      .then(
        () => done(err),
        (closeErr: unknown) => done(err ?? asError(closeErr)),
      );
  }
}
