/** The HTTP plumbing of the emulator: reading a JSON body and writing Redfish answers. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { errorBody, malformedJson, type RedfishFailure } from './errors.js';

const MAX_BODY = 64 * 1024;

/** Every answer carries OData-Version (DSP0266 "Response headers"). */
const COMMON_HEADERS = { 'OData-Version': '4.0', 'Cache-Control': 'no-cache' };

export type Body = { ok: true; value: unknown } | { ok: false; failure: RedfishFailure };

export async function readJson(req: IncomingMessage): Promise<Body> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
    size += buf.length;
    if (size > MAX_BODY) return { ok: false, failure: malformedJson() };
    chunks.push(buf);
  }
  const text = Buffer.concat(chunks).toString('utf8').trim();
  if (text === '') return { ok: true, value: undefined };
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch {
    // Not JSON: the Redfish answer for it is MalformedJSON, nothing to log.
    return { ok: false, failure: malformedJson() };
  }
}

export function sendJson(res: ServerResponse, status: number, doc: unknown, headers: Record<string, string> = {}): void {
  const body = JSON.stringify(doc);
  res.writeHead(status, {
    ...COMMON_HEADERS,
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': String(Buffer.byteLength(body)),
    ...headers,
  });
  res.end(body);
}

export function sendEmpty(res: ServerResponse, status: number, headers: Record<string, string> = {}): void {
  res.writeHead(status, { ...COMMON_HEADERS, ...headers });
  res.end();
}

export function sendXml(res: ServerResponse, xml: string): void {
  res.writeHead(200, { ...COMMON_HEADERS, 'Content-Type': 'application/xml; charset=utf-8', 'Content-Length': String(Buffer.byteLength(xml)) });
  res.end(xml);
}

export function sendFailure(res: ServerResponse, f: RedfishFailure): void {
  sendJson(res, f.status, errorBody(f), f.headers);
}

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
