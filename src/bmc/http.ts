/**
 * The HTTP under the Redfish client: one undici Agent per BMC session (its own connect, header and
 * body timeouts and its own TLS trust), JSON in and out, and every transport failure turned into a
 * BmcError whose message names the BMC and the cause but never a secret: the password and the
 * session token are cut from any text that leaves this module.
 */
import { rootCertificates } from 'node:tls';
import { Agent, request } from 'undici';
import { redactSecrets } from '../secrets/redact.js';
import { BmcError } from './types.js';

export interface RedfishAnswer {
  status: number;
  headers: Record<string, string | undefined>;
  /** The parsed JSON body; undefined when empty or not JSON. */
  body: unknown;
}

export type HttpMethod = 'GET' | 'POST' | 'PATCH' | 'DELETE';

export interface RequestOptions {
  body?: unknown;
  headers?: Record<string, string>;
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** TLS failures whose fix is the operator's: trust the certificate or turn verification off. */
const TLS_TRUST_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

export class BmcHttp {
  private readonly agent: Agent;
  /** Texts cut from every message: the password, and each session token once known. */
  private readonly secrets = new Set<string>();

  constructor(
    readonly baseUrl: string,
    private readonly o: { timeoutMs: number; verifyTls: boolean; ca?: string },
  ) {
    this.agent = new Agent({
      // Node's `ca` replaces its root store: bmc.caFile is added beside the usual roots, not instead of them.
      connect: { timeout: o.timeoutMs, rejectUnauthorized: o.verifyTls, ...(o.ca ? { ca: [...rootCertificates, o.ca] } : {}) },
      // The request's signal (below) ends a wait for headers or body at the limit; these undici timers
      // tick coarsely (~0.5 s) and could fire before it, so they are only a backstop.
      headersTimeout: o.timeoutMs + 1000,
      bodyTimeout: o.timeoutMs + 1000,
      // A BMC's web server is small: a few connections per session is plenty and spares it.
      connections: 2,
    });
  }

  addSecret(secret: string): void {
    if (secret !== '') this.secrets.add(secret);
  }

  /** A text with every known secret and every secret-looking field cut. */
  scrub(text: string): string {
    let out = text;
    for (const secret of this.secrets) out = out.split(secret).join('<redacted>');
    return redactSecrets(out);
  }

  async send(method: HttpMethod, path: string, o: RequestOptions = {}): Promise<RedfishAnswer> {
    const headers: Record<string, string> = { Accept: 'application/json', 'OData-Version': '4.0', ...o.headers };
    if (o.body !== undefined) headers['Content-Type'] = 'application/json';
    let answer;
    try {
      answer = await request(new URL(path, this.baseUrl), {
        dispatcher: this.agent,
        method,
        headers,
        body: o.body === undefined ? undefined : JSON.stringify(o.body),
        // The whole exchange once connected: a BMC that trickles bytes or never answers ends at the
        // limit. (The signal is not looked at while connecting: connect.timeout above bounds that.)
        signal: AbortSignal.timeout(this.o.timeoutMs),
      });
    } catch (error) {
      throw this.transportError(method, path, error);
    }
    let text: string;
    try {
      text = await answer.body.text();
    } catch (error) {
      throw this.transportError(method, path, error);
    }
    return { status: answer.statusCode, headers: flatHeaders(answer.headers), body: parseJson(text) };
  }

  /** A BmcError for an answer that is not the success wanted: the Redfish message(s), else the status. */
  answerError(method: string, path: string, answer: RedfishAnswer): BmcError {
    const kind = answer.status === 401 || answer.status === 403 ? 'auth' : 'refused';
    const text = redfishMessages(answer.body).join('; ') || 'no Redfish message';
    return new BmcError(kind, this.scrub(`${this.baseUrl}: ${method} ${path} answered HTTP ${answer.status}: ${text}`), answer.status);
  }

  async close(): Promise<void> {
    await this.agent.close();
  }

  private transportError(method: string, path: string, error: unknown): BmcError {
    const code = errorCode(error);
    const where = `${this.baseUrl}: ${method} ${path}`;
    if (code && TLS_TRUST_CODES.has(code)) {
      const why =
        code === 'ERR_TLS_CERT_ALTNAME_INVALID'
          ? `does not name this host (${code}): address the BMC by a name or IP its certificate lists`
          : code === 'CERT_HAS_EXPIRED'
            ? `has expired (${code}): renew it on the BMC`
            : `is not trusted (${code}): add its CA to bmc.caFile`;
      return new BmcError('unreachable', this.scrub(`${where}: the BMC's TLS certificate ${why}, or set the machine's verifyTls to false`));
    }
    if (code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || code === 'TimeoutError') {
      return new BmcError('unreachable', this.scrub(`${where}: no answer within ${this.o.timeoutMs} ms (bmc.requestTimeoutSeconds)`));
    }
    const detail = error instanceof Error ? error.message : String(error);
    return new BmcError('unreachable', this.scrub(`${where}: ${code ? `${code}: ` : ''}${detail}`));
  }
}

/** undici's error code, or the cause's (a refused connection is `ECONNREFUSED` on the cause). */
function errorCode(error: unknown): string | undefined {
  if (!(error instanceof Error)) return undefined;
  if (error.name === 'TimeoutError') return 'TimeoutError';
  const own = 'code' in error && typeof error.code === 'string' ? error.code : undefined;
  const cause = error.cause instanceof Error && 'code' in error.cause && typeof error.cause.code === 'string' ? error.cause.code : undefined;
  // A socket error wraps the real reason (ECONNRESET, a TLS code) in its cause.
  return own === 'UND_ERR_SOCKET' && cause ? cause : (own ?? cause);
}

function flatHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const [name, value] of Object.entries(headers)) out[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : value;
  return out;
}

function parseJson(text: string): unknown {
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    // Not JSON (an HTML error page from a proxy or an old BMC): the status alone then says what happened.
    return undefined;
  }
}

/**
 * The human text of a Redfish error (DSP0266 "Error responses"): each @Message.ExtendedInfo entry's
 * Message with its MessageId, else error.message.
 */
export function redfishMessages(body: unknown): string[] {
  const error = isRecord(body) && isRecord(body.error) ? body.error : undefined;
  if (!error) return [];
  const info = Array.isArray(error['@Message.ExtendedInfo']) ? error['@Message.ExtendedInfo'].filter(isRecord) : [];
  const texts = info
    .map((entry) => [entry.Message, entry.MessageId].filter((part) => typeof part === 'string' && part !== '').join(' '))
    .filter((text) => text !== '');
  if (texts.length > 0) return texts;
  return typeof error.message === 'string' ? [error.message] : [];
}

/** The MessageIds of a Redfish error body, from ExtendedInfo and from error.code. */
export function redfishMessageIds(body: unknown): string[] {
  const error = isRecord(body) && isRecord(body.error) ? body.error : undefined;
  if (!error) return [];
  const info = Array.isArray(error['@Message.ExtendedInfo']) ? error['@Message.ExtendedInfo'].filter(isRecord) : [];
  const ids = info.map((entry) => entry.MessageId).filter((id): id is string => typeof id === 'string');
  return typeof error.code === 'string' ? [...ids, error.code] : ids;
}
