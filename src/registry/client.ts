/**
 * A client of upstream registries (the OCI distribution API): manifests by tag or digest with
 * every manifest media type accepted, and the requests for blobs, authenticated as the
 * upstream asks — anonymous until a 401, then its Bearer token flow (distribution's token
 * spec: `GET realm?service=…&scope=repository:<name>:pull`, with the pull secret's Basic
 * credentials if it has some) or Basic. Tokens are kept per host and scope until shortly
 * before they expire. Redirects (blob storage) are followed by the dispatcher, which drops
 * Authorization when the origin changes.
 */
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import { request, type Dispatcher } from 'undici';
import { USER_AGENT, type ArtifactRequest } from '../cache/artifacts.js';
import { readUpTo, upstreamDispatcher } from '../net/upstream-agent.js';
import { parseChallenges, type Challenge, type Credentials } from './auth.js';
import { declaredMediaType, MANIFEST_ACCEPT, MAX_MANIFEST_BYTES } from './media.js';
import { upstreamNextPage } from './tags.js';

export interface RegistryClientOptions {
  /** Hosts (with a port, if any) reached over plain http rather than https. */
  insecure: ReadonlySet<string>;
  credentials: (host: string, repository: string) => Credentials | undefined;
  log: Logger;
  dispatcher?: Dispatcher;
  retries?: number;
  /** Tags asked per upstream page (`n`); default TAG_PAGE_SIZE. */
  tagPageSize?: number;
}

/** The upstream answered with an error status (404 for an unknown manifest), or could not be reached. */
export class RegistryError extends Error {
  constructor(
    message: string,
    /** The upstream's status; undefined when it could not be reached. */
    readonly status?: number,
  ) {
    super(message);
    this.name = 'RegistryError';
  }
}

export interface FetchedManifest {
  bytes: Buffer;
  mediaType: string;
  /** sha256 of the bytes, `sha256:<hex>`. */
  digest: string;
}

const RETRY_BASE_MS = 250;
/** Tags asked per upstream page, and the bounds of one tag list (pages, bytes per page). */
const TAG_PAGE_SIZE = 1000;
const MAX_TAG_PAGES = 200;
const MAX_TAG_PAGE_BYTES = 8 * 1024 * 1024;
/** A token is renewed this long before the upstream said it expires. */
const TOKEN_MARGIN_MS = 10_000;

export class RegistryClient {
  private readonly dispatcher: Dispatcher;
  private readonly challenges = new Map<string, Challenge>();
  private readonly tokens = new Map<string, { token: string; until: number }>();

  constructor(private readonly o: RegistryClientOptions) {
    this.dispatcher = o.dispatcher ?? upstreamDispatcher();
  }

  baseUrl(host: string): string {
    return `${this.o.insecure.has(host) ? 'http' : 'https'}://${host}`;
  }

  /** The manifest `reference` (a tag or a digest) of `host/repository`, byte for byte. */
  async manifest(host: string, repository: string, reference: string): Promise<FetchedManifest> {
    const res = await this.send(host, repository, `/v2/${repository}/manifests/${reference}`, { accept: MANIFEST_ACCEPT });
    const where = `${host}/${repository}:${reference}`;
    if (res.statusCode !== 200) {
      const text = await errorBody(res);
      throw new RegistryError(`${where}: the upstream answered HTTP ${res.statusCode}${upstreamMessage(text)}`, res.statusCode);
    }
    const bytes = await bodyWithin(res.body, MAX_MANIFEST_BYTES, `${where}: a manifest`);
    const header = res.headers['content-type'];
    const mediaType =
      (Array.isArray(header) ? header[0] : header)?.split(';')[0]?.trim() || declaredMediaType(bytes) || 'application/vnd.oci.image.manifest.v1+json';
    return { bytes, mediaType, digest: `sha256:${createHash('sha256').update(bytes).digest('hex')}` };
  }

  /**
   * Every tag of `host/repository`, following the upstream's `Link: rel="next"` pages on the
   * same origin (distribution-spec "Listing Tags"), at most MAX_TAG_PAGES pages of at most
   * MAX_TAG_PAGE_BYTES each; unsorted, as the upstream sent them.
   */
  async tags(host: string, repository: string): Promise<string[]> {
    const origin = this.baseUrl(host);
    const where = `${host}/${repository}`;
    const all: string[] = [];
    let path = `/v2/${repository}/tags/list?n=${this.o.tagPageSize ?? TAG_PAGE_SIZE}`;
    for (let page = 0; page < MAX_TAG_PAGES; page++) {
      const res = await this.send(host, repository, path, { accept: 'application/json' });
      if (res.statusCode !== 200) {
        const text = await errorBody(res);
        throw new RegistryError(`${where}: the upstream answered the tag list with HTTP ${res.statusCode}${upstreamMessage(text)}`, res.statusCode);
      }
      all.push(...tagsOf(await bodyWithin(res.body, MAX_TAG_PAGE_BYTES, `${where}: a tag list page`), where));
      const next = upstreamNextPage(res.headers.link, origin, repository);
      if (next === undefined) return all;
      path = next;
    }
    throw new RegistryError(`${where}: the upstream's tag list goes on past ${MAX_TAG_PAGES} pages`, 502);
  }

  /**
   * What the artifact cache needs to fetch a blob: its URL, the digest to verify, one index
   * entry per digest, and a fresh Authorization for each attempt — learning the upstream's
   * challenge first (`GET /v2/`) if no request to that host has yet. Only a download asks the
   * upstream anything: a cached blob serves with the upstream gone.
   */
  blobRequest(host: string, repository: string, digest: string): ArtifactRequest {
    return {
      url: `${this.baseUrl(host)}/v2/${repository}/blobs/${digest}`,
      sha256: digest.slice('sha256:'.length),
      key: `oci-blob:${digest}`,
      headers: async () => {
        if (!this.challenges.has(host)) await this.learnChallenge(host);
        return this.authorization(host, repository);
      },
    };
  }

  /** Asks `/v2/`: a 401 names the scheme and, for Bearer, the realm to ask for tokens. */
  private async learnChallenge(host: string): Promise<void> {
    const res = await this.attempt(
      () => request(`${this.baseUrl(host)}/v2/`, { method: 'GET', headers: { 'user-agent': USER_AGENT }, dispatcher: this.dispatcher }),
      host,
    );
    await res.body.dump();
    if (res.statusCode === 401) this.remember(host, res.headers['www-authenticate']);
  }

  private remember(host: string, header: string | string[] | undefined): void {
    const all = parseChallenges(Array.isArray(header) ? header.join(', ') : (header ?? ''));
    const chosen = all.find((c) => c.scheme === 'bearer') ?? all.find((c) => c.scheme === 'basic');
    if (chosen) this.challenges.set(host, chosen);
  }

  private async authorization(host: string, repository: string): Promise<Record<string, string>> {
    const challenge = this.challenges.get(host);
    if (!challenge) return {};
    const creds = this.o.credentials(host, repository);
    if (challenge.scheme === 'basic') return creds ? { authorization: basic(creds) } : {};
    const scope = `repository:${repository}:pull`;
    const key = `${host}\n${scope}`;
    const cached = this.tokens.get(key);
    if (cached && cached.until > Date.now()) return { authorization: `Bearer ${cached.token}` };
    const realm = challenge.params.realm;
    if (!realm) throw new RegistryError(`${host} asks for a Bearer token but names no realm`, 502);
    const url = new URL(realm);
    if (challenge.params.service) url.searchParams.set('service', challenge.params.service);
    url.searchParams.set('scope', scope);
    const res = await this.attempt(
      () => request(url, { method: 'GET', headers: { 'user-agent': USER_AGENT, ...(creds && { authorization: basic(creds) }) }, dispatcher: this.dispatcher }),
      host,
    );
    if (res.statusCode !== 200) {
      const text = await errorBody(res);
      throw new RegistryError(
        `the token service of ${host} (${url.origin}${url.pathname}) answered HTTP ${res.statusCode}${upstreamMessage(text)}${creds ? '' : ' (the pull secret has no credentials for it)'}`,
        res.statusCode === 401 ? 401 : 502,
      );
    }
    const body = (await res.body.json()) as { token?: unknown; access_token?: unknown; expires_in?: unknown };
    const token = typeof body.token === 'string' ? body.token : typeof body.access_token === 'string' ? body.access_token : undefined;
    if (!token) throw new RegistryError(`the token service of ${host} answered without a token`, 502);
    const seconds = typeof body.expires_in === 'number' && body.expires_in > 0 ? body.expires_in : 60;
    this.tokens.set(key, { token, until: Date.now() + seconds * 1000 - TOKEN_MARGIN_MS });
    return { authorization: `Bearer ${token}` };
  }

  /** A GET with authorization; one retry after a 401 that taught a (new) challenge. */
  private async send(host: string, repository: string, path: string, headers: Record<string, string>): Promise<Dispatcher.ResponseData> {
    for (let round = 0; ; round++) {
      const auth = await this.authorization(host, repository);
      const res = await this.attempt(
        () =>
          request(`${this.baseUrl(host)}${path}`, { method: 'GET', headers: { 'user-agent': USER_AGENT, ...headers, ...auth }, dispatcher: this.dispatcher }),
        host,
      );
      if (res.statusCode !== 401 || round > 0) return res;
      await res.body.dump();
      this.tokens.delete(`${host}\nrepository:${repository}:pull`);
      this.remember(host, res.headers['www-authenticate']);
    }
  }

  /** Network errors, 429 and 5xx are retried with backoff; other answers are returned. */
  private async attempt(call: () => Promise<Dispatcher.ResponseData>, host: string): Promise<Dispatcher.ResponseData> {
    const retries = this.o.retries ?? 3;
    for (let n = 0; ; n++) {
      try {
        const res = await call();
        if ((res.statusCode === 429 || res.statusCode >= 500) && n < retries) {
          await res.body.dump();
          this.o.log.warn({ host, status: res.statusCode, attempt: n + 1 }, 'registry upstream busy or failing: retrying');
        } else return res;
      } catch (err) {
        if (n >= retries) throw new RegistryError(`${host} cannot be reached: ${(err as Error).message}`);
        this.o.log.warn({ host, err: (err as Error).message, attempt: n + 1 }, 'registry upstream unreachable: retrying');
      }
      await new Promise((r) => setTimeout(r, RETRY_BASE_MS * 2 ** n));
    }
  }
}

/** A body of at most `max` bytes; past them, a 502 naming `what` (read no further). */
async function bodyWithin(body: Readable, max: number, what: string): Promise<Buffer> {
  const bytes = await readUpTo(body, max);
  if (bytes === undefined) throw new RegistryError(`${what} over the ${max}-byte limit`, 502);
  return bytes;
}

/** The `tags` of a tags/list body (`null` for none, as distribution sends an empty repository). */
function tagsOf(bytes: Buffer, where: string): string[] {
  let doc: unknown;
  try {
    doc = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new RegistryError(`${where}: the tag list is not JSON: ${(err as Error).message}`, 502);
  }
  const tags = typeof doc === 'object' && doc !== null ? (doc as { tags?: unknown }).tags : undefined;
  if (tags === null) return [];
  if (!Array.isArray(tags) || !tags.every((t) => typeof t === 'string')) throw new RegistryError(`${where}: the tag list has no "tags" array of strings`, 502);
  return tags;
}

function basic(c: Credentials): string {
  return `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}`;
}

/** The body of an upstream's error answer, or why it could not be read. */
function errorBody(res: Dispatcher.ResponseData): Promise<string> {
  return res.body.text().catch((err: unknown) => (err instanceof Error ? err.message : String(err)));
}

/** The first error message of a distribution error body, if it is one. */
function upstreamMessage(text: string): string {
  try {
    const doc = JSON.parse(text) as { errors?: { code?: string; message?: string }[] };
    const e = doc.errors?.[0];
    return e ? `: ${e.code ?? ''} ${e.message ?? ''}`.trimEnd() : '';
  } catch {
    // Not a distribution error body: the status says it all.
    return '';
  }
}
