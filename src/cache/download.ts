import { EventEmitter } from 'node:events';
import { asError } from './errors.js';
import type { Cached } from './model.js';

/**
 * A download in progress as its readers see it: `written` bytes of `tmp` are final, and a change
 * (more bytes, the length, the end) wakes `changed()`. Read-only: only the downloader moves it on.
 */
export interface DownloadView {
  readonly key: string;
  /** The temporary file the bytes go to; renamed into the blob store once verified. */
  readonly tmp: string;
  readonly written: number;
  /** Known once the upstream answered with a length. */
  readonly total: number | undefined;
  /** Bumped when the download restarts from byte 0: readers past 0 must give up. */
  readonly generation: number;
  readonly failure: Error | undefined;
  readonly finished: boolean;
  readonly done: Promise<Cached>;
  /** Resolves at the next change; rejects with `signal`'s reason if that aborts first (the reader left). */
  changed(signal?: AbortSignal): Promise<void>;
  /** Calls `listener` at each change until the function returned is called. */
  onChange(listener: () => void): () => void;
}

/**
 * The state of one download, moved on by the downloader alone (which holds this class; everyone
 * else gets the `DownloadView`). `signal` aborts when the download is cancelled.
 */
export class Download implements DownloadView {
  readonly done: Promise<Cached>;
  private readonly events = new EventEmitter();
  private readonly controller = new AbortController();
  private bytes = 0;
  private length: number | undefined;
  private restarts = 0;
  private error: Error | undefined;
  private ended = false;
  private cancelReason: Error | undefined;

  constructor(
    readonly key: string,
    readonly tmp: string,
    run: (d: Download) => Promise<Cached>,
  ) {
    this.events.setMaxListeners(0);
    this.done = run(this).then(
      (c) => {
        this.ended = true;
        this.emitChange();
        return c;
      },
      (err: unknown) => {
        this.error = asError(err);
        this.emitChange();
        throw this.error;
      },
    );
    // Readers see the failure through `failure`; an unobserved rejection is not a crash.
    this.done.catch(() => undefined);
  }

  get written(): number {
    return this.bytes;
  }
  get total(): number | undefined {
    return this.length;
  }
  get generation(): number {
    return this.restarts;
  }
  get failure(): Error | undefined {
    return this.error;
  }
  get finished(): boolean {
    return this.ended;
  }

  /** Aborted by `cancel`: the upstream request, a retry's wait and the file are given up. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }
  /** Why the download was cancelled, if it was. */
  get cancelled(): Error | undefined {
    return this.cancelReason;
  }
  cancel(reason: Error): void {
    this.cancelReason ??= reason;
    this.controller.abort(reason);
  }

  /** `n` more bytes are final in `tmp`. */
  wrote(n: number): void {
    this.bytes += n;
    this.emitChange();
  }
  /** The upstream sent the file from byte 0 again. Readers notice at the next change. */
  restart(): void {
    this.bytes = 0;
    this.restarts++;
  }
  /** The upstream's length (undefined: it announced none), once it was admitted. */
  announce(total: number | undefined): void {
    this.length = total;
    this.emitChange();
  }

  changed(signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(asError(signal.reason));
      const onAbort = (): void => {
        this.events.off('progress', onChange);
        reject(asError(signal?.reason));
      };
      const onChange = (): void => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      };
      this.events.once('progress', onChange);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }
  onChange(listener: () => void): () => void {
    this.events.on('progress', listener);
    return () => this.events.off('progress', listener);
  }

  private emitChange(): void {
    this.events.emit('progress');
  }
}
