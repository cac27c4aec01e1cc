/**
 * A stand-in upstream for the artifact cache tests: an HTTP server on 127.0.0.1:0 that serves
 * files from memory with Content-Length, ETag and single ranges, counts every request and
 * byte, and misbehaves on demand — drops the connection mid-body, serves other bytes than it
 * announced, streams slowly, or answers an error status.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Teardown } from './process.js';

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
    const rec: UpstreamRequest = { path, status: 200, bytes: 0, ...(req.headers.range && { range: req.headers.range }), ...(req.headers['if-range'] && { ifRange: String(req.headers['if-range']) }) };
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
