/**
 * The typed face of native/http_sendfile.c: a response body sent from a file descriptor by the
 * kernel (sendfile(2)) on the addon's threads, after Node's http has written the headers.
 */
import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { loadAddon } from '../native.js';

interface SendfileAddon {
  send(socketFd: number, fileFd: number, offset: number, length: number, rate: number, rateKey: string, stallMs: number, cb: (err: NodeJS.ErrnoException | null, sent: number) => void): number;
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
 * Sends `length` bytes of `fd` from `offset` as the body of `res`, whose status and headers are
 * set (Content-Length among them) and not yet written; resolves with the bytes sent and ends the
 * response. `fd` may be closed once this returns. If the client goes away or stalls, the
 * connection is destroyed and the promise rejects with the reason.
 */
export async function sendfileBody(res: ServerResponse, fd: number, offset: number, length: number, opts: SendfileOptions): Promise<number> {
  const addon = loadAddon<SendfileAddon>('http_sendfile');
  const socket = res.socket;
  const sock = socketFd(socket);
  if (!socket || sock === undefined) throw new Error('sendfile needs the response on a TCP socket');
  res.flushHeaders();
  // The headers must be in the kernel before the first body byte: a write's callback runs when
  // every earlier write on the socket has completed.
  await new Promise<void>((resolve, reject) => {
    socket.write(EMPTY, (err) => (err ? reject(err) : resolve()));
  });
  if (socket.destroyed) throw Object.assign(new Error('the client closed the connection before the body'), { code: 'ECONNRESET' });
  let done = false;
  let id = 0;
  const sent = await new Promise<number>((resolve, reject) => {
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
  res.end();
  return sent;
}
