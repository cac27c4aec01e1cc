/**
 * Stand-in upstreams for the artifact cache tests, on 127.0.0.1:
 * - `startUpstream`: an HTTP server on port 0 that serves files from memory with
 *   Content-Length, ETag and single ranges, counts every request and byte, and misbehaves on
 *   demand — drops the connection mid-body, serves other bytes than it announced, streams
 *   slowly, or answers an error status;
 * - `startClosingUpstream`: a bare node:net server whose responses end with the connection
 *   closed (close-delimited, or Content-Length with `Connection: close`);
 * - `startPythonHttpServer`: `python3 -m http.server` over a directory.
 */
import { spawn } from 'node:child_process';
import { createServer, STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import { createInterface } from 'node:readline';
import { killAtExit, type Teardown } from './process.js';

export interface UpstreamRequest {
  path: string;
  range?: string;
  ifRange?: string;
  status: number;
  bytes: number;
}

export interface Misbehaviour {
  /** Destroy the socket after this many body bytes, on the next `times` requests (default 1). */
  dropAfter?: { bytes: number; times?: number };
  /** Serve these bytes instead of the file's (same length, same headers). */
  corrupt?: boolean;
  /** Send the body in `chunk`-byte pieces, `delayMs` apart. */
  slow?: { chunk: number; delayMs: number };
  /** Answer this status, with no body. */
  status?: number;
  /** Ignore Range and send the whole file with 200. */
  noRanges?: boolean;
}

export interface Upstream {
  url(path: string): string;
  files: Map<string, Buffer>;
  misbehave: Map<string, Misbehaviour>;
  requests: UpstreamRequest[];
  /** GET requests for `path` so far. */
  gets(path: string): UpstreamRequest[];
  close(): Promise<void>;
  port: number;
}

export async function startUpstream(t: Teardown): Promise<Upstream> {
  const files = new Map<string, Buffer>();
  const misbehave = new Map<string, Misbehaviour>();
  const requests: UpstreamRequest[] = [];
  const sockets = new Set<import('node:net').Socket>();
  const server: Server = createServer((req, res) => void handle(req, res));
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://upstream').pathname;
    const rec: UpstreamRequest = {
      path,
      status: 200,
      bytes: 0,
      ...(req.headers.range && { range: req.headers.range }),
      ...(req.headers['if-range'] && { ifRange: String(req.headers['if-range']) }),
    };
    requests.push(rec);
    const file = files.get(path);
    const m = misbehave.get(path) ?? {};
    if (m.status !== undefined || !file) {
      rec.status = m.status ?? 404;
      res.writeHead(rec.status).end();
      return;
    }
    const etag = `"v1-${file.length}"`;
    let start = 0;
    let end = file.length - 1;
    const r = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    const headers: Record<string, string | number> = { 'content-type': 'application/octet-stream', etag, 'accept-ranges': 'bytes' };
    if (r && !m.noRanges && (req.headers['if-range'] === undefined || req.headers['if-range'] === etag)) {
      start = Number(r[1]);
      end = r[2] ? Math.min(Number(r[2]), end) : end;
      rec.status = 206;
      headers['content-range'] = `bytes ${start}-${end}/${file.length}`;
    }
    headers['content-length'] = end - start + 1;
    res.writeHead(rec.status, headers);
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    let body = file.subarray(start, end + 1);
    if (m.corrupt) body = Buffer.from(body.map((b) => b ^ 0x5a));
    const drop = m.dropAfter && (m.dropAfter.times ?? 1) > 0 ? m.dropAfter : undefined;
    if (drop) drop.times = (drop.times ?? 1) - 1;
    const chunk = m.slow?.chunk ?? 64 * 1024;
    for (let off = 0; off < body.length; off += chunk) {
      let piece = body.subarray(off, off + chunk);
      if (drop && rec.bytes + piece.length > drop.bytes) {
        piece = piece.subarray(0, drop.bytes - rec.bytes);
        await write(res, piece);
        rec.bytes += piece.length;
        res.socket?.destroy();
        return;
      }
      await write(res, piece);
      rec.bytes += piece.length;
      if (m.slow) await new Promise((ok) => setTimeout(ok, m.slow?.delayMs));
    }
    res.end();
  }

  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const port = (server.address() as AddressInfo).port;
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    for (const s of sockets) s.destroy();
    await new Promise<void>((ok) => server.close(() => ok()));
  };
  t.teardown(close);
  return {
    port,
    url: (path) => `http://127.0.0.1:${port}${path}`,
    files,
    misbehave,
    requests,
    gets: (path) => requests.filter((r) => r.path === path),
    close,
  };
}

function write(res: ServerResponse, b: Buffer): Promise<void> {
  return new Promise((ok) => {
    if (res.write(b)) ok();
    else res.once('drain', ok);
  });
}

/**
 * How a close-delimited upstream ends a response (RFC 9112 §6.3):
 * - `close`: no Content-Length and no chunked coding; the body ends where the server closes
 *   the connection (item 8: "the message body length is determined by the number of octets
 *   received prior to the server closing the connection");
 * - `length-close`: Content-Length and `Connection: close`, then the close.
 */
export type Closing = 'close' | 'length-close';

export interface ClosingResponse {
  status?: number;
  headers?: Record<string, string>;
  body: Buffer;
}

export interface ClosingRequest {
  method: string;
  path: string;
  /** The Range header, if any. */
  range?: string;
  sent: number;
}

export interface ClosingUpstream {
  /** `127.0.0.1:<port>` */
  host: string;
  url(path: string): string;
  /** What each path answers (the query is ignored); any other path is a 404. */
  routes: Map<string, ClosingResponse>;
  /** Every request, in order, with the body bytes handed to the kernel before the end or a reset. */
  requests: ClosingRequest[];
  close(): Promise<void>;
}

/**
 * A bare HTTP/1.1 server on 127.0.0.1:0 (node:net, no HTTP library) whose every response ends
 * with the server closing the connection, as `closing` says: the upstreams that crashed undici's
 * parser when the reader held the body back. One request per connection; HEAD gets the headers.
 * With `ranges`, a `Range: bytes=N-` is answered 206 from byte N (closing the same way).
 */
export async function startClosingUpstream(t: Teardown, closing: Closing, opts: { ranges?: boolean } = {}): Promise<ClosingUpstream> {
  const routes = new Map<string, ClosingResponse>();
  const requests: ClosingRequest[] = [];
  const sockets = new Set<Socket>();
  const server = createNetServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    let head = '';
    const onData = (data: Buffer): void => {
      head += data.toString('latin1');
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) {
        if (head.length > 64 * 1024) socket.destroy();
        return;
      }
      socket.off('data', onData);
      const [method = '', target = '/'] = head.slice(0, head.indexOf('\r\n')).split(' ');
      const path = new URL(target, 'http://upstream').pathname;
      const range = /\r\nrange: *([^\r]*)/i.exec(head.slice(0, end))?.[1];
      const rec: ClosingRequest = { method, path, ...(range !== undefined && { range }), sent: 0 };
      requests.push(rec);
      const route = routes.get(path) ?? { status: 404, body: Buffer.from('not found\n') };
      const from = opts.ranges && (route.status ?? 200) === 200 ? /^bytes=(\d+)-$/.exec(range ?? '') : null;
      const start = from ? Number(from[1]) : undefined;
      void answer(
        socket,
        rec,
        start !== undefined && start < route.body.length
          ? {
              status: 206,
              headers: { ...route.headers, 'Content-Range': `bytes ${start}-${route.body.length - 1}/${route.body.length}` },
              body: route.body.subarray(start),
            }
          : route,
      );
    };
    socket.on('data', onData);
  });

  async function answer(socket: Socket, rec: ClosingRequest, r: ClosingResponse): Promise<void> {
    const status = r.status ?? 200;
    const lines = [`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Status'}`, ...Object.entries(r.headers ?? {}).map(([k, v]) => `${k}: ${v}`)];
    if (closing === 'length-close') lines.push(`Content-Length: ${r.body.length}`, 'Connection: close');
    await writeSocket(socket, Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1'));
    if (rec.method !== 'HEAD') {
      for (let off = 0; off < r.body.length && !socket.destroyed; off += 64 * 1024) {
        const piece = r.body.subarray(off, off + 64 * 1024);
        await writeSocket(socket, piece);
        // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- the client may have closed during the write
        if (!socket.destroyed) rec.sent += piece.length;
      }
    }
    socket.end();
  }

  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const port = (server.address() as AddressInfo).port;
  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    for (const s of sockets) s.destroy();
    await new Promise<void>((ok) => server.close(() => ok()));
  };
  t.teardown(close);
  return { host: `127.0.0.1:${port}`, url: (path) => `http://127.0.0.1:${port}${path}`, routes, requests, close };
}

function writeSocket(socket: Socket, b: Buffer): Promise<void> {
  return new Promise((ok) => {
    if (socket.destroyed || socket.write(b)) ok();
    else {
      // Each listener goes with the other: a slow reader makes thousands of waits on one socket.
      const done = (): void => {
        socket.off('drain', done);
        socket.off('close', done);
        ok();
      };
      socket.once('drain', done);
      socket.once('close', done);
    }
  });
}

export interface PythonHttpServer {
  url(path: string): string;
  /** Its stderr so far: one access-log line per request. */
  log(): string;
}

/**
 * `python3 -m http.server` serving `dir` on 127.0.0.1 and a port the kernel picks (port 0; the
 * chosen port is read from its "Serving HTTP on" line). It answers HTTP/1.0 with
 * Content-Length and closes the connection after each response. Killed at teardown.
 */
export async function startPythonHttpServer(t: Teardown, dir: string): Promise<PythonHttpServer> {
  const child = spawn('python3', ['-u', '-m', 'http.server', '0', '--bind', '127.0.0.1', '--directory', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
  killAtExit(child);
  t.teardown(() => {
    child.kill('SIGKILL');
  });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d: string) => (stderr += d));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`python3 -m http.server did not say where it serves within 10 s: ${stderr}`)), 10_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`python3 -m http.server exited (${code}): ${stderr}`));
    });
    createInterface({ input: child.stdout }).on('line', (line) => {
      const m = /^Serving HTTP on 127\.0\.0\.1 port (\d+) /.exec(line);
      if (!m) return;
      clearTimeout(timer);
      resolve(Number(m[1]));
    });
  });
  return { url: (path) => `http://127.0.0.1:${port}${path}`, log: () => stderr };
}
