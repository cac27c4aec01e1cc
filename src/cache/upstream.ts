import type { Logger } from 'pino';
import { request, type Dispatcher } from 'undici';
import { redactSecrets } from '../secrets/redact.js';
import type { CacheEntry } from '../store/store.js';

/** What edgeboot calls itself to upstreams (their logs then say who fetched). */
export const USER_AGENT = 'edgeboot/0.1';

/** A body that ended before its announced length: retried like a dropped connection. */
export class CutShort extends Error {}

/**
 * HEAD: the upstream still has the cached copy (the same validators and length), or cannot be
 * reached (the cached copy keeps serving).
 */
export async function stillCurrent(url: string, entry: CacheEntry, dispatcher: Dispatcher, log: Logger): Promise<boolean> {
  try {
    const res = await request(url, { method: 'HEAD', headers: { 'user-agent': USER_AGENT }, dispatcher });
    await res.body.dump();
    if (res.statusCode !== 200) return false;
    const etag = textHeader(res.headers.etag);
    const lastModified = textHeader(res.headers['last-modified']);
    const length = numberHeader(res.headers['content-length']);
    if (length !== undefined && length !== entry.size) return false;
    if (etag !== undefined || entry.etag !== undefined) return etag === entry.etag;
    if (lastModified !== undefined || entry.lastModified !== undefined) return lastModified === entry.lastModified;
    return false;
  } catch (err) {
    log.warn({ upstream: redactSecrets(url), err: describeNetworkError(err) }, 'cannot revalidate a cached artifact: serving the cached copy');
    return true;
  }
}

export function contentRangeStart(v: string | string[] | undefined): number | undefined {
  const m = /^bytes (\d+)-\d+\/(\d+|\*)$/.exec(textHeader(v) ?? '');
  return m ? Number(m[1]) : undefined;
}

export function textHeader(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

export function numberHeader(v: string | string[] | undefined): number | undefined {
  const t = textHeader(v);
  return t !== undefined && /^\d+$/.test(t) ? Number(t) : undefined;
}

export function isTimeout(err: unknown): boolean {
  const code = (err as { code?: string }).code ?? '';
  return /TIMEOUT/i.test(code) || code === 'ETIMEDOUT';
}

export function describeNetworkError(err: unknown): string {
  if (err instanceof CutShort) return err.message;
  const e = err as { code?: string; message?: string; cause?: { code?: string; message?: string } };
  const code = e.code ?? e.cause?.code;
  const message = e.cause?.message ?? e.message ?? String(err);
  return code ? `${code}: ${message}` : message;
}
