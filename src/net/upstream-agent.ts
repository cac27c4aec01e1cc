/**
 * The undici dispatcher of every upstream fetch (artifact cache, registry client, hub script):
 * one Agent with the timeouts, redirects followed, and a handler that never holds back the
 * parser of a response that ends with the connection closed.
 *
 * Why: undici 7 asserts `!this.paused` in `Parser.finish()` when the socket of a response that
 * is not keep-alive ends while the parser is paused by back-pressure (client-h1.js,
 * `onHttpSocketEnd` and `onHttpSocketClose`; nodejs/undici#5360, fixed only in undici 8, which
 * needs Node 22). The assertion is thrown from a socket listener, so it ends the process. A
 * slow reader of such a response is therefore never allowed to pause the parser: the chunks
 * keep arriving and wait in the body stream's buffer, and once more than `maxHeldBytes` wait
 * there the request is aborted with an `UpstreamOutpacedError`, which a reader that can resume
 * (the artifact cache, with Range) treats like a dropped connection.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Duplex, Readable } from 'node:stream';
import { Agent, interceptors, type Dispatcher } from 'undici';

export interface UpstreamDispatcherOptions {
  /** Response headers within this (default 30 s). */
  headersTimeoutMs?: number;
  /** No body bytes for this long fails the request (default 60 s). */
  bodyTimeoutMs?: number;
  /** Redirects followed (default 5; 0 follows none). */
  maxRedirections?: number;
  /** Bytes of a closing response held for a reader that asked to pause, before the request is aborted (default 64 MiB). */
  maxHeldBytes?: number;
}

export const DEFAULT_MAX_HELD_BYTES = 64 * 1024 * 1024;

/** A reader stayed behind a closing upstream by more than the bytes it may hold: the request was cut. */
export class UpstreamOutpacedError extends Error {
  readonly code = 'UPSTREAM_OUTPACED';
  constructor(readonly heldBytes: number) {
    super(
      `the reader is slower than the upstream: ${heldBytes} bytes waited in memory, so the transfer was cut (the upstream closes its connection, so its parser cannot be held back in undici 7)`,
    );
    this.name = 'UpstreamOutpacedError';
  }
}

/** The dispatcher for upstream fetches. */
export function upstreamDispatcher(o: UpstreamDispatcherOptions = {}): Dispatcher {
  const agent = new Agent({ headersTimeout: o.headersTimeoutMs ?? 30_000, bodyTimeout: o.bodyTimeoutMs ?? 60_000 });
  const redirects = o.maxRedirections ?? 5;
  // compose() wraps in order, so the last interceptor sees the caller's handler first: the hold
  // sits between the caller and the redirect handler, and only the final response reaches it.
  return agent.compose(
    ...(redirects > 0 ? [interceptors.redirect({ maxRedirections: redirects })] : []),
    neverPauseClosing(o.maxHeldBytes ?? DEFAULT_MAX_HELD_BYTES),
  );
}

/**
 * An upstream body of at most `max` bytes, or undefined as soon as it passes them: the rest is
 * never read (leaving the loop destroys the stream, and the connection with it). Each chunk is
 * taken as it arrives, so undici's parser is never held back.
 */
export async function readUpTo(body: Readable, max: number): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    length += chunk.length;
    if (length > max) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/**
 * Whether undici keeps the connection after this response, so that pausing its parser is safe,
 * decided from the headers alone. llhttp's rule (`llhttp_should_keep_alive`): HTTP/1.1 without
 * `Connection: close`, or HTTP/1.0 with `Connection: keep-alive`, and a body framed by
 * Content-Length or chunked coding (RFC 9112 §6.3, §9.3). The handler never sees the HTTP
 * version, and `python3 -m http.server` answers HTTP/1.0 with a Content-Length and no
 * Connection header, so only an explicit `keep-alive` (without `close`) counts: a response
 * that does not say so is treated as closing.
 */
export function keepsConnection(headers: IncomingHttpHeaders): boolean {
  const tokens = listTokens(headers.connection);
  if (!tokens.includes('keep-alive') || tokens.includes('close')) return false;
  const codings = listTokens(headers['transfer-encoding']);
  if (codings.length > 0) return codings[codings.length - 1] === 'chunked';
  return headers['content-length'] !== undefined;
}

function listTokens(v: string | string[] | undefined): string[] {
  const text = Array.isArray(v) ? v.join(',') : (v ?? '');
  return text
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter((s) => s !== '');
}

function neverPauseClosing(maxHeldBytes: number): Dispatcher.DispatcherComposeInterceptor {
  return (dispatch) => (opts, handler) => dispatch(opts, new ClosingResponseHold(handler, maxHeldBytes));
}

/**
 * Sits between undici and the caller's handler. For a closing response, the caller's `pause()`
 * is noted but not passed on (its `resume()` always is), and the bytes delivered while it wants
 * a pause are counted against `maxHeldBytes`.
 */
class ClosingResponseHold implements Dispatcher.DispatchHandler {
  private closing = false;
  private wantsPause = false;
  private held = 0;
  private readonly views = new WeakMap<Dispatcher.DispatchController, Dispatcher.DispatchController>();

  constructor(
    private readonly inner: Dispatcher.DispatchHandler,
    private readonly maxHeldBytes: number,
  ) {}

  private view(controller: Dispatcher.DispatchController): Dispatcher.DispatchController {
    // An error before the request started may come without a controller, whatever undici's types say.
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- see the line above
    if (typeof controller !== 'object' || controller === null) return controller;
    let v = this.views.get(controller);
    if (v) return v;
    const paused = (): boolean => (this.closing ? this.wantsPause : controller.paused);
    v = {
      get aborted() {
        return controller.aborted;
      },
      get paused() {
        return paused();
      },
      get reason() {
        return controller.reason;
      },
      get rawHeaders() {
        return controller.rawHeaders;
      },
      get rawTrailers() {
        return controller.rawTrailers;
      },
      abort: (reason: Error) => controller.abort(reason),
      pause: () => {
        if (this.closing) this.wantsPause = true;
        else controller.pause();
      },
      resume: () => {
        this.wantsPause = false;
        this.held = 0;
        controller.resume();
      },
    };
    this.views.set(controller, v);
    return v;
  }

  onRequestStart(controller: Dispatcher.DispatchController, context: unknown): void {
    this.inner.onRequestStart?.(this.view(controller), context);
  }

  onRequestUpgrade(controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders, socket: Duplex): void {
    this.inner.onRequestUpgrade?.(this.view(controller), statusCode, headers, socket);
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders, statusMessage?: string): void {
    this.closing = !keepsConnection(headers);
    this.wantsPause = false;
    this.held = 0;
    this.inner.onResponseStart?.(this.view(controller), statusCode, headers, statusMessage);
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (controller.aborted) return;
    if (this.closing && this.wantsPause) {
      this.held += chunk.length;
      if (this.held > this.maxHeldBytes) {
        controller.abort(new UpstreamOutpacedError(this.held));
        return;
      }
    }
    this.inner.onResponseData?.(this.view(controller), chunk);
  }

  onResponseEnd(controller: Dispatcher.DispatchController, trailers: IncomingHttpHeaders): void {
    this.inner.onResponseEnd?.(this.view(controller), trailers);
  }

  onResponseError(controller: Dispatcher.DispatchController, error: Error): void {
    this.inner.onResponseError?.(this.view(controller), error);
  }
}
