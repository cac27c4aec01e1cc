import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface ClientOptions {
  server?: string;
  token?: string;
  json?: boolean;
}

export class ClientError extends Error {
  constructor(
    message: string,
    readonly status?: number,
    readonly code?: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = 'ClientError';
  }
}

/** `--server`, else EDGEBOOT_URL, else the local default. */
export function serverUrl(o: ClientOptions): string {
  return (o.server ?? process.env.EDGEBOOT_URL ?? 'http://127.0.0.1:8080').replace(/\/+$/, '');
}

/** `--token`, else EDGEBOOT_TOKEN, else the admin-token file of the data dir. */
export function adminToken(o: ClientOptions): string | undefined {
  if (o.token) return o.token;
  if (process.env.EDGEBOOT_TOKEN) return process.env.EDGEBOOT_TOKEN;
  const file = join(process.env.EDGEBOOT_SERVER_DATA_DIR ?? './var', 'admin-token');
  return existsSync(file) ? readFileSync(file, 'utf8').trim() : undefined;
}

/** One API call; a non-2xx answer becomes a ClientError carrying the server's message. */
export async function api<T>(o: ClientOptions, method: string, path: string, body?: unknown, timeoutMs = 30_000): Promise<T> {
  const url = `${serverUrl(o)}${path}`;
  const token = adminToken(o);
  let res: Response;
  try {
    res = await fetch(url, {
      method,
      headers: {
        ...(token && { authorization: `Bearer ${token}` }),
        ...(body !== undefined && { 'content-type': 'application/json' }),
      },
      ...(body !== undefined && { body: JSON.stringify(body) }),
      ...(timeoutMs > 0 && { signal: AbortSignal.timeout(timeoutMs) }),
    });
  } catch (err) {
    const cause = (err as Error & { cause?: Error }).cause?.message ?? (err as Error).message;
    throw new ClientError(`cannot reach ${serverUrl(o)}: ${cause} (set --server or EDGEBOOT_URL)`);
  }
  const text = await res.text();
  if (!res.ok) {
    let code: string | undefined;
    let message = text;
    let details: unknown;
    try {
      const e = JSON.parse(text) as { error?: string; message?: string; details?: unknown };
      code = e.error;
      message = e.message ?? text;
      details = e.details;
    } catch {
      // not JSON: keep the raw text as the message
    }
    if (res.status === 401 && !token) message += ' (no token: pass --token, set EDGEBOOT_TOKEN, or run where ./var/admin-token is readable)';
    throw new ClientError(`${message}${code ? ` [${code}]` : ''}`, res.status, code, details);
  }
  return (text === '' ? undefined : JSON.parse(text)) as T;
}
