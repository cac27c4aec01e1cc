/**
 * The typed face of native/http_sendfile.c: a response body sent from a file descriptor by the
 * kernel (sendfile(2)) on the addon's threads, after Node's http has written the headers.
 */
import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { loadAddon } from '../native.js';

interface SendfileAddon {
  send(
    socketFd: number,
    fileFd: number,
    offset: number,
    length: number,
    rate: number,
    rateKey: string,
    stallMs: number,
    cb: (err: NodeJS.ErrnoException | null, sent: number) => void,
  ): number;
  cancel(id: number): void;
  active(): number;
}

export interface SendfileOptions {
  /** Bytes per second for all of `rateKey`'s transfers together; 0: no cap. */
  rate: number;
  rateKey: string;
  /** A transfer whose client takes no byte for this long ends (ETIMEDOUT) and its connection closes. */
  stallMs: number;
}

const EMPTY = Buffer.alloc(0);

/** The descriptor of a plain TCP socket Node's http serves on, if it has one (not a TLS or in-process one). */
export function socketFd(socket: Socket | null): number | undefined {
  const handle = (socket as unknown as { _handle?: { fd?: unknown } } | null)?._handle;
  const fd = handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}

/** Transfers the native side has not yet called back. */
export function activeSendfiles(): number {
  return loadAddon<SendfileAddon>('http_sendfile').active();
}

/**
 * Writes the status and headers of `res` (set, Content-Length among them) and resolves once
 * they are in the kernel, so body bytes sent on the socket's descriptor follow them.
 */
export async function beginBody(res: ServerResponse): Promise<Socket> {
  const socket = res.socket;
  if (!socket || socketFd(socket) === undefined) throw new Error('sendfile needs the response on a TCP socket');
  res.flushHeaders();
  // A write's callback runs when every earlier write on the socket has completed.
  await new Promise<void>((resolve, reject) => {
    socket.write(EMPTY, (err) => (err ? reject(err) : resolve()));
  });
  if (socket.destroyed) throw Object.assign(new Error('the client closed the connection before the body'), { code: 'ECONNRESET' });
  return socket;
}

/**
 * Sends `length` bytes of `fd` from `offset` on `socket` (after `beginBody`). If the client
 * goes away or stalls, the connection is destroyed and the promise rejects with the reason
 * (and `sent`).
 */
export async function sendfileSpan(socket: Socket, fd: number, offset: number, length: number, opts: SendfileOptions): Promise<number> {
  const addon = loadAddon<SendfileAddon>('http_sendfile');
  const sock = socketFd(socket);
  if (sock === undefined || socket.destroyed) throw Object.assign(new Error('the connection is closed'), { code: 'ECONNRESET' });
  let done = false;
  let id = 0;
  return new Promise<number>((resolve, reject) => {
    // Node closing the socket does not close the addon's duplicate of it: cancel, or the
    // connection would stay open until the transfer ended by itself.
    const onClose = () => {
      if (!done) addon.cancel(id);
    };
    socket.once('close', onClose);
    id = addon.send(sock, fd, offset, length, opts.rate, opts.rateKey, opts.stallMs, (err, n) => {
      done = true;
      socket.off('close', onClose);
      if (err) reject(Object.assign(err, { sent: n }));
      else resolve(n);
    });
  }).catch((err: unknown) => {
    socket.destroy();
    throw err;
  });
}

/**
 * Sends `length` bytes of `fd` from `offset` as the whole body of `res`, whose status and
 * headers are set and not yet written; resolves with the bytes sent and ends the response.
 * `fd` may be closed once this returns.
 */
export async function sendfileBody(res: ServerResponse, fd: number, offset: number, length: number, opts: SendfileOptions): Promise<number> {
  const socket = await beginBody(res);
  const sent = await sendfileSpan(socket, fd, offset, length, opts);
  res.end();
  return sent;
}
