/**
 * An upstream OCI registry for the pull-through mirror tests, and the images to fill it with.
 *
 * - `startRegistry` runs Debian's `docker-registry` (CNCF distribution 2.8) on port 80 of a
 *   loopback address of its own (a random 127.x.y.z by default, so parallel test files never
 *   collide and a mirror path component is a bare host), with no auth, htpasswd basic auth, or
 *   the token flow against a small in-process token server that signs ES256 JWTs.
 * - `makeImage`, `makeIndex` and `makeReleaseImage` write OCI image layouts with no network:
 *   deterministic gzipped tars (shared layers get identical digests across images), config
 *   blobs with the right `rootfs.diff_ids`, OCI or Docker schema 2 manifests, multi-arch
 *   indexes, and an OpenShift-style release image with `release-manifests/image-references`.
 * - `pushImage` fills the registry with `skopeo copy --all --preserve-digests`; the registry
 *   then holds the generated manifest bytes unchanged, in the generated format (OCI stays OCI,
 *   Docker schema 2 stays Docker schema 2: skopeo does not convert when digests are preserved).
 *   `skopeoInspectRaw` reads manifests back straight from a registry.
 *
 * Known behaviour of the pieces, worth knowing when a mirror test fails:
 * - distribution 2.8's access log is Apache combined format on stdout whatever
 *   `log.formatter` says; `formatter: json` applies to the application log on stderr, whose
 *   `response completed` lines (`http.request.method`, `http.request.uri`,
 *   `http.response.status`, `http.response.written`) leave out requests refused by auth.
 *   `requests()` therefore reads the access log; `logLines()` has the JSON.
 * - 2.8 answers a manifest GET by its Accept header: an OCI manifest asked without the OCI type
 *   is a 404 MANIFEST_UNKNOWN, and a Docker schema 2 manifest or manifest list asked without
 *   its type comes back as a schema 1 (`…v1+prettyjws`, amd64 for a list) it signs itself,
 *   with another digest. A mirror must forward Accept.
 * - skopeo 1.9's `oci:` transport only selects `index.json` entries of OCI media types, so
 *   Docker-format images are pushed from a `dir:` copy (see `pushImage`).
 *
 * Only loopback is ever contacted. Every process is killed and every temp dir removed at
 * teardown, also when the test fails; registries run under `setpriv --pdeathsig KILL`, so they
 * die with the test process even when it is SIGKILLed (a tap timeout), and the next start
 * sweeps the temp dirs such a process left behind.
 */
import { execFile, spawn } from 'node:child_process';
import { createHash, createPrivateKey, randomBytes, randomInt, sign, X509Certificate, type KeyObject } from 'node:crypto';
import { constants, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createNetServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { gunzipSync, gzipSync } from 'node:zlib';
import { killAtExit, onJsonLines, type Teardown } from './process.js';

// ---------------------------------------------------------------------------------------------
// Media types

export const MEDIA_TYPES = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
} as const;

/** `oci`: OCI image manifest / index; `docker`: Docker schema 2 manifest / manifest list. */
export type ManifestFormat = 'oci' | 'docker';

// ---------------------------------------------------------------------------------------------
// The registry

export type RegistryAuth = 'none' | 'basic' | 'token';

export interface Credentials {
  username: string;
  password: string;
}

export interface StartRegistryOptions<A extends RegistryAuth = RegistryAuth> {
  /** Default `none`. */
  auth?: A;
  /** A 127.0.0.0/8 address to listen on (port 80). Default: a random unused 127.x.y.z. */
  address?: string;
  /** For `basic` and `token`. Default: user `edgeboot` with a random password. */
  credentials?: Credentials;
  /**
   * `token` only: hand anonymous clients tokens that grant `pull` (a public upstream such as
   * quay.io). Default false: anonymous clients get a token with no access at all.
   */
  anonymousPull?: boolean;
  /** How long to wait for the registry to serve. Default 15 s. */
  readyTimeoutMs?: number;
}

/** One request the registry served, from its access log. */
export interface RegistryRequest {
  method: string;
  /** The path, without the query string (as sent: not percent-decoded). */
  path: string;
  /** The query string without `?`, or '' */
  query: string;
  status: number;
  /** Response body bytes written. */
  bytes: number;
  userAgent: string;
  /** As the access log prints it: `01/Dec/2026:21:20:27 +0000`. */
  time: string;
}

/** One line of the registry's JSON application log (stderr), e.g. `response completed`. */
export interface RegistryLogLine {
  level: string;
  msg: string;
  time: string;
  [field: string]: unknown;
}

/** One `access` entry of a token (and of a parsed `scope`). */
export interface TokenAccess {
  type: string;
  name: string;
  actions: string[];
}

/** One request the token server answered. */
export interface TokenRequest {
  method: string;
  path: string;
  service: string | undefined;
  /** The `scope` parameters, as sent (`repository:ns/name:pull,push`). */
  scopes: string[];
  /** The Basic user, when the credentials were right; undefined for anonymous requests. */
  user: string | undefined;
  /** 200, or 401 for wrong credentials, 404/405 for anything but `GET /token`. */
  status: number;
  /** What the token granted (empty when no token was issued). */
  granted: TokenAccess[];
}

/** The token server of a `token` registry. */
export interface TokenServer {
  /** `http://<host>:<port>/token`: the registry's `auth.token.realm`. */
  realm: string;
  /** `auth.token.service`: the registry's host. */
  service: string;
  /** `auth.token.issuer`. */
  issuer: string;
  /** The PEM certificate the registry trusts (`auth.token.rootcertbundle`). */
  certFile: string;
  /** The libtrust key id of the signing key, which every token's header carries as `kid`. */
  kid: string;
  /** Every request so far, in order. */
  requests(): TokenRequest[];
}

interface RegistryBase {
  /** The loopback address, e.g. `127.61.3.7`; the registry listens on its port 80. */
  host: string;
  /** `http://<host>` */
  url: string;
  /** The registry's filesystem storage. */
  storageDir: string;
  /** The registry's config file (JSON, which its YAML parser reads). */
  configFile: string;
  /** `<host>/<name>`: a full image reference for `ns/name:tag` or `ns/name@sha256:…`. */
  ref(name: string): string;
  /**
   * The pull secret as JSON text, `{"auths": {"<host>": {"auth": base64(user:pass)}}}`
   * (`{"auths": {}}` for an unauthenticated registry).
   */
  pullSecret(): string;
  /** Writes `pullSecret()` to `<dir>/auth.json` (default dir: the registry's temp dir) and returns the path. */
  authFile(dir?: string): string;
  /**
   * Every request the registry served so far, in order, from its access log (which, unlike
   * the JSON log, has the 401s too). Waits until the log has been quiet for a moment, since a
   * line lands just after its response.
   */
  requests(): Promise<RegistryRequest[]>;
  /** Every line of the JSON application log so far. */
  logLines(): RegistryLogLine[];
  /** Everything the registry printed that was neither an access log line nor JSON. */
  otherOutput(): string[];
  /** Kills the registry (and stops the token server). Storage stays until teardown. Idempotent. */
  stop(): Promise<void>;
}

interface NoAuth {
  auth: 'none';
  credentials: undefined;
  username: undefined;
  password: undefined;
  tokenServer: undefined;
}

interface BasicAuth {
  auth: 'basic';
  credentials: Credentials;
  username: string;
  password: string;
  tokenServer: undefined;
}

interface TokenAuth {
  auth: 'token';
  credentials: Credentials;
  username: string;
  password: string;
  tokenServer: TokenServer;
}

type AuthPart<A extends RegistryAuth> = A extends 'none' ? NoAuth : A extends 'basic' ? BasicAuth : TokenAuth;

/** A running registry; `auth` discriminates what it carries (credentials, token server). */
export type Registry<A extends RegistryAuth = RegistryAuth> = RegistryBase & AuthPart<A>;

let exitHookInstalled = false;

/** The skopeo home goes with the test process, even one that skips its teardowns. */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    if (skopeoHome) rmSync(skopeoHome, { recursive: true, force: true });
  });
}

let swept = false;

/**
 * Removes the temp dirs of registries (and skopeo homes) whose test process was killed before
 * its teardown ran (the registry itself died with it). Once per process.
 */
function sweepStaleDirs(): void {
  if (swept) return;
  swept = true;
  for (const name of readdirSync(tmpdir())) {
    if (!name.startsWith('edgeboot-registry-') && !name.startsWith('edgeboot-skopeo-')) continue;
    const dir = join(tmpdir(), name);
    let pid: number;
    try {
      pid = Number(readFileSync(join(dir, 'owner.pid'), 'utf8').trim());
    } catch {
      continue;
    }
    if (!Number.isInteger(pid) || pid <= 0) continue;
    try {
      process.kill(pid, 0);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ESRCH') rmSync(dir, { recursive: true, force: true });
    }
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A random 127.x.y.z, clear of 127.0.0.0/16 (127.0.0.1, Debian's 127.0.1.1). */
function randomLoopback(): string {
  return `127.${randomInt(1, 255)}.${randomInt(0, 256)}.${randomInt(1, 255)}`;
}

function assertLoopback(address: string): void {
  const m = /^127\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(address);
  if (!m || m.slice(1).some((o) => Number(o) > 255)) throw new Error(`registry address ${address} is not an IPv4 loopback address (127.0.0.0/8)`);
}

/** Resolves when `host:port` could be bound (and is closed again); rejects with the bind error. */
async function checkBind(host: string, port: number): Promise<void> {
  const srv = createNetServer();
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject);
    srv.listen({ host, port, exclusive: true }, () => resolve());
  });
  await new Promise<void>((r) => srv.close(() => r()));
}

/** `docker-registry`'s access log: Apache combined format, on stdout. */
const ACCESS_LINE = /^\S+ \S+ \S+ \[([^\]]+)\] "(\S+) (\S+) [^"]*" (\d{3}) (\d+|-) "(?:[^"\\]|\\.)*" "((?:[^"\\]|\\.)*)"$/;

function parseAccessLine(line: string): RegistryRequest | undefined {
  const m = ACCESS_LINE.exec(line);
  if (!m) return undefined;
  const [, time = '', method = '', uri = '', status = '0', bytes = '-', userAgent = ''] = m;
  const q = uri.indexOf('?');
  return {
    method,
    path: q < 0 ? uri : uri.slice(0, q),
    query: q < 0 ? '' : uri.slice(q + 1),
    status: Number(status),
    bytes: bytes === '-' ? 0 : Number(bytes),
    userAgent,
    time,
  };
}

function isRegistryLogLine(v: unknown): v is RegistryLogLine {
  return typeof v === 'object' && v !== null && typeof (v as { msg?: unknown }).msg === 'string' && typeof (v as { level?: unknown }).level === 'string';
}

/**
 * Starts a registry on port 80 of a loopback address, with storage in a temp dir, and waits
 * until it serves `/v2/`. `auth: 'basic'` uses an htpasswd file (bcrypt, `htpasswd -Bbn`);
 * `auth: 'token'` also starts a token server on another port of the same address. The
 * registry is killed and its files removed at teardown.
 */
export async function startRegistry<A extends RegistryAuth = 'none'>(t: Teardown, opts: StartRegistryOptions<A> = {}): Promise<Registry<A>> {
  for (const bin of ['docker-registry', ...(opts.auth === 'basic' ? ['htpasswd'] : []), ...(opts.auth === 'token' ? ['openssl'] : [])])
    await assertCommand(bin);
  installExitHook();
  if (opts.address !== undefined) assertLoopback(opts.address);
  sweepStaleDirs();
  const dir = mkdtempSync(join(tmpdir(), 'edgeboot-registry-'));
  writeFileSync(join(dir, 'owner.pid'), `${process.pid}\n`);
  const stops: (() => Promise<void>)[] = [];
  t.teardown(async () => {
    for (const stop of stops.reverse()) await stop();
    rmSync(dir, { recursive: true, force: true });
  });
  const auth: RegistryAuth = opts.auth ?? 'none';
  const credentials: Credentials | undefined =
    auth === 'none' ? undefined : (opts.credentials ?? { username: 'edgeboot', password: randomBytes(12).toString('hex') });

  let lastError: Error | undefined;
  for (let attempt = 0; attempt < (opts.address === undefined ? 8 : 1); attempt++) {
    const host = opts.address ?? randomLoopback();
    try {
      await checkBind(host, 80);
    } catch (err) {
      lastError = new Error(`cannot bind ${host}:80 for the registry: ${(err as Error).message}`);
      continue;
    }
    const attemptDir = join(dir, `run-${attempt}`);
    mkdirSync(attemptDir);
    const tokenServer = auth === 'token' && credentials ? await startTokenServer(host, attemptDir, credentials, opts.anonymousPull ?? false) : undefined;
    if (tokenServer) stops.push(() => tokenServer.close());
    try {
      const reg = await runRegistry(host, attemptDir, auth, credentials, tokenServer, opts.readyTimeoutMs ?? 15_000);
      stops.push(() => reg.stop());
      return reg as unknown as Registry<A>;
    } catch (err) {
      lastError = err as Error;
      if (tokenServer) await tokenServer.close();
      // Another process took the address between the check and the registry's bind: next one.
      if (!lastError.message.includes('address already in use') || opts.address !== undefined) break;
    }
  }
  throw lastError ?? new Error('registry did not start');
}

async function runRegistry(
  host: string,
  dir: string,
  auth: RegistryAuth,
  credentials: Credentials | undefined,
  tokenServer: (TokenServer & { close(): Promise<void> }) | undefined,
  readyTimeoutMs: number,
): Promise<Registry> {
  const storageDir = join(dir, 'storage');
  mkdirSync(storageDir);
  let authConfig: Record<string, unknown> | undefined;
  if (auth === 'basic' && credentials) {
    const htpasswdFile = join(dir, 'htpasswd');
    const line = await run('htpasswd', ['-Bbn', credentials.username, credentials.password]);
    writeFileSync(htpasswdFile, line.stdout.toString().trim() + '\n');
    authConfig = { htpasswd: { realm: 'edgeboot-test-registry', path: htpasswdFile } };
  } else if (tokenServer) {
    authConfig = { token: { realm: tokenServer.realm, service: tokenServer.service, issuer: tokenServer.issuer, rootcertbundle: tokenServer.certFile } };
  }
  // JSON is YAML: the registry's config parser reads it as it is.
  const config = {
    version: '0.1',
    log: { level: 'info', formatter: 'json', accesslog: { disabled: false }, fields: { service: 'registry' } },
    storage: {
      filesystem: { rootdirectory: storageDir },
      delete: { enabled: true },
      maintenance: { uploadpurging: { enabled: false } },
    },
    http: { addr: `${host}:80`, secret: randomBytes(16).toString('hex'), headers: { 'X-Content-Type-Options': ['nosniff'] } },
    ...(authConfig && { auth: authConfig }),
  };
  const configFile = join(dir, 'config.yml');
  writeFileSync(configFile, JSON.stringify(config, null, 2) + '\n');

  // No REGISTRY_* variable may reach it: each one overrides a config key. Under setpriv
  // (util-linux) the kernel SIGKILLs it when the test process dies, even by SIGKILL or a tap
  // timeout, which no 'exit' hook sees.
  const argv = ['docker-registry', 'serve', configFile];
  const [cmd = 'docker-registry', ...args] = (await hasCommand('setpriv')) ? ['setpriv', '--pdeathsig', 'KILL', '--', ...argv] : argv;
  const child = spawn(cmd, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', HOME: dir },
  });
  killAtExit(child);
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.once('error', () => resolve());
  });
  const accessLog: RegistryRequest[] = [];
  const appLog: RegistryLogLine[] = [];
  const other: string[] = [];
  let lastOutputAt = Date.now();
  let onListening: (() => void) | undefined;
  createInterface({ input: child.stdout }).on('line', (line) => {
    lastOutputAt = Date.now();
    const r = parseAccessLine(line);
    if (r) accessLog.push(r);
    else other.push(line);
  });
  onJsonLines(
    child.stderr,
    (v: unknown): v is RegistryLogLine => {
      lastOutputAt = Date.now();
      return isRegistryLogLine(v);
    },
    (v) => {
      appLog.push(v);
      if (v.msg.startsWith('listening on')) onListening?.();
    },
    (line) => {
      lastOutputAt = Date.now();
      other.push(line);
    },
  );

  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      const gone = await Promise.race([exited.then(() => true), new Promise<false>((r) => (timer = setTimeout(() => r(false), 3_000)))]);
      clearTimeout(timer);
      if (!gone) {
        child.kill('SIGKILL');
        await exited;
      }
    }
    await tokenServer?.close();
  };

  const url = `http://${host}`;
  let timer: NodeJS.Timeout | undefined;
  const outcome = await Promise.race([
    new Promise<'listening'>((r) => (onListening = () => r('listening'))),
    exited.then(() => 'exited' as const),
    new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), readyTimeoutMs))),
  ]);
  clearTimeout(timer);
  const output = (): string => [...appLog.map((l) => l.msg), ...other].join('\n');
  if (outcome !== 'listening') {
    await stop();
    throw new Error(`docker-registry on ${host}:80 ${outcome === 'exited' ? 'exited' : `did not listen within ${readyTimeoutMs} ms`}: ${output()}`);
  }
  // Listening means bound; confirm it answers the API base (200 open, 401 with auth).
  const probe = await fetch(`${url}/v2/`).catch((err: unknown) => (err instanceof Error ? err : new Error(String(err))));
  if (probe instanceof Error || (probe.status !== 200 && probe.status !== 401)) {
    await stop();
    throw new Error(`docker-registry on ${host}:80 does not serve /v2/: ${probe instanceof Error ? probe.message : probe.status}; ${output()}`);
  }
  await probe.body?.cancel();

  const pullSecret = (): string =>
    JSON.stringify({ auths: credentials ? { [host]: { auth: Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64') } } : {} });
  const reg: Registry = {
    host,
    url,
    storageDir,
    configFile,
    ref: (name) => `${host}/${name}`,
    pullSecret,
    authFile(into = dir) {
      const file = join(into, 'auth.json');
      writeFileSync(file, pullSecret() + '\n', { mode: 0o600 });
      return file;
    },
    async requests() {
      const deadline = Date.now() + 2_000;
      await sleep(20);
      while (Date.now() - lastOutputAt < 40 && Date.now() < deadline) await sleep(10);
      return [...accessLog];
    },
    logLines: () => [...appLog],
    otherOutput: () => [...other],
    stop,
    ...(auth === 'none' || !credentials
      ? { auth: 'none', credentials: undefined, username: undefined, password: undefined, tokenServer: undefined }
      : auth === 'basic' || !tokenServer
        ? { auth: 'basic', credentials, username: credentials.username, password: credentials.password, tokenServer: undefined }
        : { auth: 'token', credentials, username: credentials.username, password: credentials.password, tokenServer: publicTokenServer(tokenServer) }),
  };
  return reg;
}

function publicTokenServer(s: TokenServer): TokenServer {
  return { realm: s.realm, service: s.service, issuer: s.issuer, certFile: s.certFile, kid: s.kid, requests: () => s.requests() };
}

// ---------------------------------------------------------------------------------------------
// The token server

/**
 * The libtrust fingerprint distribution matches a JWT's `kid` against: SHA-256 of the
 * PKIX DER public key, truncated to 240 bits, base32 in 12 colon-separated groups of 4.
 */
export function libtrustKeyId(publicKeyDer: Buffer): string {
  const b32 = base32(createHash('sha256').update(publicKeyDer).digest().subarray(0, 30));
  return (b32.match(/.{4}/g) ?? []).join(':');
}

function base32(buf: Buffer): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of buf) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += alphabet.charAt((value >>> (bits - 5)) & 31);
      bits -= 5;
    }
  }
  if (bits > 0) out += alphabet.charAt((value << (5 - bits)) & 31);
  return out;
}

/** Parses `type:name:actions`; the name may hold colons (a registry with a port). */
function parseScope(scope: string): TokenAccess | undefined {
  const first = scope.indexOf(':');
  const last = scope.lastIndexOf(':');
  if (first <= 0 || last <= first) return undefined;
  return {
    type: scope.slice(0, first),
    name: scope.slice(first + 1, last),
    actions: scope
      .slice(last + 1)
      .split(',')
      .filter(Boolean),
  };
}

async function startTokenServer(
  host: string,
  dir: string,
  credentials: Credentials,
  anonymousPull: boolean,
): Promise<TokenServer & { close(): Promise<void> }> {
  // Node makes key pairs but not certificates: openssl makes both, self-signed, ES256 (P-256).
  const keyFile = join(dir, 'token-key.pem');
  const certFile = join(dir, 'token-cert.pem');
  await run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    keyFile,
    '-out',
    certFile,
    '-days',
    '2',
    '-subj',
    '/CN=edgeboot-test-token-signer',
  ]);
  const key: KeyObject = createPrivateKey(readFileSync(keyFile));
  const cert = new X509Certificate(readFileSync(certFile));
  const kid = libtrustKeyId(cert.publicKey.export({ type: 'spki', format: 'der' }));
  const issuer = 'edgeboot-test-token-issuer';
  const service = host;
  const requests: TokenRequest[] = [];

  const issue = (user: string | undefined, access: TokenAccess[]): string => {
    const now = Math.floor(Date.now() / 1000);
    const header = { typ: 'JWT', alg: 'ES256', kid };
    const claims = { iss: issuer, sub: user ?? '', aud: service, exp: now + 60, nbf: now - 10, iat: now, jti: randomBytes(12).toString('hex'), access };
    const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    const sig = sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' });
    return `${input}.${sig.toString('base64url')}`;
  };

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const u = new URL(req.url ?? '/', `http://${host}`);
    const scopes = u.searchParams
      .getAll('scope')
      .flatMap((s) => s.split(' '))
      .filter(Boolean);
    const rec: TokenRequest = {
      method: req.method ?? '',
      path: u.pathname,
      service: u.searchParams.get('service') ?? undefined,
      scopes,
      user: undefined,
      status: 200,
      granted: [],
    };
    requests.push(rec);
    const answer = (status: number, body: unknown, headers: Record<string, string> = {}): void => {
      rec.status = status;
      res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
    };
    if (u.pathname !== '/token') return answer(404, { errors: [{ code: 'NOT_FOUND', message: 'not found' }] });
    if (req.method !== 'GET') return answer(405, { errors: [{ code: 'UNSUPPORTED', message: 'only GET /token' }] }, { allow: 'GET' });
    const authz = req.headers.authorization;
    let user: string | undefined;
    if (authz !== undefined) {
      const m = /^Basic\s+(\S+)$/i.exec(authz);
      const pair = m?.[1] ? Buffer.from(m[1], 'base64').toString() : '';
      if (pair !== `${credentials.username}:${credentials.password}`) {
        return answer(401, { errors: [{ code: 'UNAUTHORIZED', message: 'wrong credentials' }] }, { 'www-authenticate': 'Basic realm="edgeboot-test-token"' });
      }
      user = credentials.username;
    }
    rec.user = user;
    for (const scope of scopes) {
      const a = parseScope(scope);
      if (!a) continue;
      const actions = user !== undefined ? a.actions : anonymousPull && a.type === 'repository' ? a.actions.filter((x) => x === 'pull') : [];
      if (actions.length > 0) rec.granted.push({ ...a, actions });
    }
    const token = issue(user, rec.granted);
    answer(200, { token, access_token: token, expires_in: 60, issued_at: new Date().toISOString() });
  };

  const sockets = new Set<Socket>();
  const server: Server = createHttpServer(handle);
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port: 0 }, () => resolve());
  });
  const addr = server.address();
  if (addr === null || typeof addr === 'string') throw new Error('token server has no port');
  let closed = false;
  return {
    realm: `http://${host}:${addr.port}/token`,
    service,
    issuer,
    certFile,
    kid,
    requests: () => [...requests],
    close: async () => {
      if (closed) return;
      closed = true;
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

function b64url(s: string): string {
  return Buffer.from(s).toString('base64url');
}

// ---------------------------------------------------------------------------------------------
// Tar (deterministic ustar, written by hand) and OCI layouts

/** A file's content, or content with a mode (default 0644). */
export type FileContent = string | Buffer | { data: string | Buffer; mode?: number };
/** Relative path → content; parent directories are added to the tar by themselves. */
export type FileMap = Record<string, FileContent>;

/**
 * A deterministic ustar archive of `files`: sorted, parents first, mtime 0, uid/gid 0, no
 * user or group names. The same map always gives the same bytes.
 */
export function makeTar(files: FileMap): Buffer {
  const entries = new Map<string, { data: Buffer; mode: number; dir: boolean }>();
  for (const [raw, content] of Object.entries(files)) {
    const path = raw.replace(/^(\.\/|\/)+/, '');
    if (path === '' || path.endsWith('/') || path.split('/').some((p) => p === '..' || p === '.' || p === ''))
      throw new Error(`bad tar path ${JSON.stringify(raw)}`);
    const parts = path.split('/');
    for (let i = 1; i < parts.length; i++) {
      const d = parts.slice(0, i).join('/') + '/';
      if (!entries.has(d)) entries.set(d, { data: Buffer.alloc(0), mode: 0o755, dir: true });
    }
    const c = typeof content === 'string' || Buffer.isBuffer(content) ? { data: content } : content;
    entries.set(path, { data: Buffer.isBuffer(c.data) ? c.data : Buffer.from(c.data), mode: c.mode ?? 0o644, dir: false });
  }
  const blocks: Buffer[] = [];
  for (const [name, e] of [...entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    blocks.push(tarHeader(name, e.dir ? 0 : e.data.length, e.mode, e.dir ? '5' : '0'));
    if (!e.dir && e.data.length > 0) {
      blocks.push(e.data);
      const pad = (512 - (e.data.length % 512)) % 512;
      if (pad) blocks.push(Buffer.alloc(pad));
    }
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

function tarHeader(name: string, size: number, mode: number, type: '0' | '5'): Buffer {
  const h = Buffer.alloc(512);
  let prefix = '';
  let base = name;
  if (Buffer.byteLength(name) > 100) {
    // ustar: split at a slash into prefix (≤155) and name (≤100).
    const cut = [...name.matchAll(/\//g)]
      .map((m) => m.index)
      .find((i) => Buffer.byteLength(name.slice(0, i)) <= 155 && Buffer.byteLength(name.slice(i + 1)) <= 100);
    if (cut === undefined) throw new Error(`tar path too long for ustar: ${name}`);
    prefix = name.slice(0, cut);
    base = name.slice(cut + 1);
  }
  const put = (s: string, off: number, len: number): void => void h.write(s, off, len, 'utf8');
  const octal = (n: number, len: number): string => n.toString(8).padStart(len - 1, '0') + '\0';
  put(base, 0, 100);
  put(octal(mode, 8), 100, 8);
  put(octal(0, 8), 108, 8);
  put(octal(0, 8), 116, 8);
  put(octal(size, 12), 124, 12);
  put(octal(0, 12), 136, 12);
  put('        ', 148, 8);
  put(type, 156, 1);
  put('ustar\0', 257, 6);
  put('00', 263, 2);
  put(prefix, 345, 155);
  let sum = 0;
  for (const b of h) sum += b;
  put(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8);
  return h;
}

/** The regular files of a tar (gzipped or not), by path without a leading `./`. Reads ustar and GNU long names. */
export function readTar(archive: Buffer): Map<string, Buffer> {
  const tar = archive[0] === 0x1f && archive[1] === 0x8b ? gunzipSync(archive) : archive;
  const files = new Map<string, Buffer>();
  let off = 0;
  let longName: string | undefined;
  while (off + 512 <= tar.length) {
    const h = tar.subarray(off, off + 512);
    if (h.every((b) => b === 0)) break;
    const str = (o: number, l: number): string => h.toString('utf8', o, o + l).replace(/\0.*$/s, '');
    const size = parseInt(str(124, 12).trim() || '0', 8);
    const type = str(156, 1) || '0';
    const magic = str(257, 6);
    const prefix = magic.startsWith('ustar') ? str(345, 155) : '';
    const data = tar.subarray(off + 512, off + 512 + size);
    off += 512 + Math.ceil(size / 512) * 512;
    if (type === 'L') {
      longName = data.toString('utf8').replace(/\0.*$/s, '');
      continue;
    }
    const name = (longName ?? (prefix ? `${prefix}/${str(0, 100)}` : str(0, 100))).replace(/^\.\//, '');
    longName = undefined;
    if (type === '0' || type === '7') files.set(name, Buffer.from(data));
  }
  return files;
}

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

/** A content descriptor as manifests and `index.json` carry it. */
export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: Platform;
  annotations?: Record<string, string>;
}

export interface ImageSpec {
  /** One file map per layer, bottom first; each becomes a deterministic gzipped tar. */
  layers: FileMap[];
  /** Default linux/amd64. */
  platform?: Platform;
  /** Default `oci`. */
  format?: ManifestFormat;
  /**
   * The `org.opencontainers.image.ref.name` of the manifest in the layout's `index.json`, i.e.
   * `oci:<dir>:<tag>`. Default `img-<first 12 hex of the digest>`. An existing entry of that
   * name is replaced.
   */
  tag?: string;
  /** `config.Labels` of the image config. */
  labels?: Record<string, string>;
  env?: string[];
  cmd?: string[];
  /** Manifest annotations (OCI only). */
  annotations?: Record<string, string>;
}

export interface BuiltLayer {
  mediaType: string;
  /** Digest of the gzipped blob. */
  digest: string;
  size: number;
  /** Digest of the uncompressed tar (the config's `rootfs.diff_ids` entry). */
  diffId: string;
  uncompressedSize: number;
  /** The gzipped blob. */
  blob: Buffer;
}

export interface BuiltImage {
  kind: 'image';
  /** The OCI layout directory that holds it. */
  layout: string;
  /** Its name in the layout's `index.json`. */
  tag: string;
  format: ManifestFormat;
  platform: Platform;
  mediaType: string;
  /** Manifest digest, `sha256:<hex>`. */
  digest: string;
  /** Manifest size in bytes. */
  size: number;
  /** The manifest bytes, exactly as written (and as the registry must serve them). */
  manifest: Buffer;
  config: { mediaType: string; digest: string; size: number; bytes: Buffer };
  layers: BuiltLayer[];
}

export interface IndexOptions {
  /** As for images; default `idx-<first 12 hex of the digest>`. */
  tag?: string;
  /** Default: `docker` (a manifest list) when every image is Docker schema 2, else `oci`. */
  format?: ManifestFormat;
  /** Index annotations (OCI only). */
  annotations?: Record<string, string>;
}

export interface BuiltIndex {
  kind: 'index';
  layout: string;
  tag: string;
  format: ManifestFormat;
  mediaType: string;
  digest: string;
  size: number;
  /** The index / manifest list bytes. */
  manifest: Buffer;
  images: BuiltImage[];
}

/** Where `skopeo copy` reads from: `oci:<layout>[:<tag>]`. `BuiltImage` and `BuiltIndex` are ones. */
export interface LayoutRef {
  layout: string;
  tag?: string;
}

export function sha256(data: Buffer | string): string {
  return 'sha256:' + createHash('sha256').update(data).digest('hex');
}

function writeBlob(layout: string, data: Buffer): string {
  const digest = sha256(data);
  const dir = join(layout, 'blobs', 'sha256');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, digest.slice('sha256:'.length));
  if (!existsSync(file)) writeFileSync(file, data);
  return digest;
}

interface LayoutIndex {
  schemaVersion: 2;
  mediaType?: string;
  manifests: Descriptor[];
}

const REF_NAME = 'org.opencontainers.image.ref.name';

function addToLayoutIndex(layout: string, desc: Descriptor, tag: string): void {
  mkdirSync(layout, { recursive: true });
  writeFileSync(join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  const file = join(layout, 'index.json');
  const index: LayoutIndex = existsSync(file)
    ? (JSON.parse(readFileSync(file, 'utf8')) as LayoutIndex)
    : { schemaVersion: 2, mediaType: MEDIA_TYPES.ociIndex, manifests: [] };
  index.manifests = index.manifests.filter((m) => m.annotations?.[REF_NAME] !== tag);
  index.manifests.push({ mediaType: desc.mediaType, digest: desc.digest, size: desc.size, annotations: { [REF_NAME]: tag } });
  writeFileSync(file, JSON.stringify(index));
}

/**
 * Writes an image into the OCI layout `dir` (created if need be; other images stay): one
 * deterministic gzipped tar per layer, the config (with `rootfs.diff_ids` and the platform)
 * and the manifest, then lists the manifest in `index.json` under `spec.tag`.
 */
export function makeImage(dir: string, spec: ImageSpec): BuiltImage {
  const format = spec.format ?? 'oci';
  const platform: Platform = spec.platform ?? { os: 'linux', architecture: 'amd64' };
  if (format === 'docker' && spec.annotations) throw new Error('Docker schema 2 manifests have no annotations');
  const layers: BuiltLayer[] = spec.layers.map((files) => {
    const tar = makeTar(files);
    const blob = gzipSync(tar, { level: 6 });
    return {
      mediaType: format === 'oci' ? MEDIA_TYPES.ociLayerGzip : MEDIA_TYPES.dockerLayerGzip,
      digest: writeBlob(dir, blob),
      size: blob.length,
      diffId: sha256(tar),
      uncompressedSize: tar.length,
      blob,
    };
  });
  const epoch = '1970-01-01T00:00:00Z';
  const imageConfig = {
    created: epoch,
    architecture: platform.architecture,
    ...(platform.variant && { variant: platform.variant }),
    os: platform.os,
    config: {
      ...(spec.env && { Env: spec.env }),
      ...(spec.cmd && { Cmd: spec.cmd }),
      ...(spec.labels && { Labels: spec.labels }),
    },
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
    history: layers.map(() => ({ created: epoch, created_by: 'edgeboot test harness' })),
  };
  const configBytes = Buffer.from(JSON.stringify(imageConfig));
  const config = {
    mediaType: format === 'oci' ? MEDIA_TYPES.ociConfig : MEDIA_TYPES.dockerConfig,
    digest: writeBlob(dir, configBytes),
    size: configBytes.length,
    bytes: configBytes,
  };
  const mediaType = format === 'oci' ? MEDIA_TYPES.ociManifest : MEDIA_TYPES.dockerManifest;
  const manifestDoc = {
    schemaVersion: 2,
    mediaType,
    config: { mediaType: config.mediaType, digest: config.digest, size: config.size },
    layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
    ...(spec.annotations && { annotations: spec.annotations }),
  };
  const manifest = Buffer.from(JSON.stringify(manifestDoc));
  const digest = writeBlob(dir, manifest);
  const tag = spec.tag ?? `img-${digest.slice(7, 19)}`;
  addToLayoutIndex(dir, { mediaType, digest, size: manifest.length }, tag);
  return { kind: 'image', layout: dir, tag, format, platform, mediaType, digest, size: manifest.length, manifest, config, layers };
}

/**
 * Writes a multi-arch index (OCI image index, or Docker manifest list) over `images`, which
 * must already be in the layout `dir`, and lists it in `index.json`.
 */
export function makeIndex(dir: string, images: BuiltImage[], opts: IndexOptions = {}): BuiltIndex {
  for (const img of images) {
    if (!existsSync(join(dir, 'blobs', 'sha256', img.digest.slice(7)))) throw new Error(`image ${img.digest} is not in the layout ${dir}`);
  }
  const format = opts.format ?? (images.length > 0 && images.every((i) => i.format === 'docker') ? 'docker' : 'oci');
  if (format === 'docker' && opts.annotations) throw new Error('Docker manifest lists have no annotations');
  const mediaType = format === 'oci' ? MEDIA_TYPES.ociIndex : MEDIA_TYPES.dockerManifestList;
  const doc = {
    schemaVersion: 2,
    mediaType,
    manifests: images.map((i) => ({
      mediaType: i.mediaType,
      digest: i.digest,
      size: i.size,
      platform: { architecture: i.platform.architecture, os: i.platform.os, ...(i.platform.variant && { variant: i.platform.variant }) },
    })),
    ...(opts.annotations && { annotations: opts.annotations }),
  };
  const manifest = Buffer.from(JSON.stringify(doc));
  const digest = writeBlob(dir, manifest);
  const tag = opts.tag ?? `idx-${digest.slice(7, 19)}`;
  addToLayoutIndex(dir, { mediaType, digest, size: manifest.length }, tag);
  return { kind: 'index', layout: dir, tag, format, mediaType, digest, size: manifest.length, manifest, images };
}

/** One component of a release: the `spec.tags[].name` and the image (or index) it points at. */
export interface ReleaseComponent {
  name: string;
  image: BuiltImage | BuiltIndex;
}

export interface ReleaseSpec {
  /** `metadata.name` of the ImageStream and the release version, e.g. `4.14.0`. */
  version: string;
  /**
   * Where the components live, `<host>/<ns>/<name>` (like
   * `quay.io/openshift-release-dev/ocp-v4.0-art-dev`): each is named `<repository>@<digest>`.
   */
  repository: string;
  components: ReleaseComponent[];
  /** Default `docker`, as OpenShift payloads are. */
  format?: ManifestFormat;
  platform?: Platform;
  tag?: string;
  /** Layers below the release-manifests layer (e.g. a base shared with the components). */
  baseLayers?: FileMap[];
  /** More files of the release-manifests layer, e.g. `release-manifests/0000_…yaml`. */
  extraFiles?: FileMap;
}

/** The ImageStream of `release-manifests/image-references`, as `oc adm release new` writes it. */
export interface ImageReferences {
  kind: 'ImageStream';
  apiVersion: 'image.openshift.io/v1';
  metadata: { name: string; creationTimestamp: null };
  spec: {
    lookupPolicy: { local: boolean };
    tags: {
      name: string;
      from: { kind: 'DockerImage'; name: string };
      generation: null;
      importPolicy: Record<string, never>;
      referencePolicy: { type: 'Source' };
    }[];
  };
  status: { dockerImageRepository: string };
}

export interface BuiltRelease extends BuiltImage {
  imageReferences: ImageReferences;
  /** The components, with the pull spec the release names them by. */
  references: { name: string; pullSpec: string; digest: string }[];
}

/**
 * Writes an OpenShift-style release image into the layout `dir`: its top layer holds
 * `release-manifests/image-references` (an ImageStream naming each component as
 * `<repository>@sha256:…`) and `release-manifests/release-metadata`; its config carries the
 * `io.openshift.release` label. The components must be pushed to `repository` separately.
 */
export function makeReleaseImage(dir: string, spec: ReleaseSpec): BuiltRelease {
  const references = spec.components.map((c) => ({ name: c.name, pullSpec: `${spec.repository}@${c.image.digest}`, digest: c.image.digest }));
  const imageReferences: ImageReferences = {
    kind: 'ImageStream',
    apiVersion: 'image.openshift.io/v1',
    metadata: { name: spec.version, creationTimestamp: null },
    spec: {
      lookupPolicy: { local: false },
      tags: references.map((r) => ({
        name: r.name,
        from: { kind: 'DockerImage', name: r.pullSpec },
        generation: null,
        importPolicy: {},
        referencePolicy: { type: 'Source' },
      })),
    },
    status: { dockerImageRepository: '' },
  };
  const metadata = { kind: 'cincinnati-metadata-v0', version: spec.version, previous: [], metadata: {} };
  const image = makeImage(dir, {
    format: spec.format ?? 'docker',
    ...(spec.platform && { platform: spec.platform }),
    ...(spec.tag !== undefined && { tag: spec.tag }),
    labels: { 'io.openshift.release': spec.version },
    layers: [
      ...(spec.baseLayers ?? []),
      {
        'release-manifests/image-references': JSON.stringify(imageReferences, null, 2) + '\n',
        'release-manifests/release-metadata': JSON.stringify(metadata, null, 2) + '\n',
        ...spec.extraFiles,
      },
    ],
  });
  return { ...image, imageReferences, references };
}

// ---------------------------------------------------------------------------------------------
// skopeo

/** A failed `skopeo` (or other) run: exit code and stderr for the assertion. */
export class CommandError extends Error {
  constructor(
    readonly command: string,
    readonly args: string[],
    readonly exitCode: number | null,
    readonly stderr: string,
    readonly stdout: Buffer,
  ) {
    super(`${command} ${args.join(' ')} failed (exit ${exitCode}): ${stderr.trim()}`);
    this.name = 'CommandError';
  }
}

const checkedCommands = new Map<string, Promise<void>>();
const foundCommands = new Map<string, Promise<boolean>>();

function hasCommand(bin: string): Promise<boolean> {
  let p = foundCommands.get(bin);
  if (!p) {
    p = run('sh', ['-c', `command -v "$0"`, bin]).then(
      () => true,
      () => false,
    );
    foundCommands.set(bin, p);
  }
  return p;
}

function assertCommand(bin: string): Promise<void> {
  let p = checkedCommands.get(bin);
  if (!p) {
    p = hasCommand(bin).then((found) => {
      if (!found) throw new Error(`${bin} is not installed (Debian: docker-registry, apache2-utils, skopeo, openssl; see .ci/run)`);
    });
    checkedCommands.set(bin, p);
  }
  return p;
}

function run(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<{ stdout: Buffer; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(
      cmd,
      args,
      { encoding: 'buffer', maxBuffer: 512 * 1024 * 1024, timeout: opts.timeoutMs ?? 60_000, env: opts.env ?? process.env },
      (err, stdout, stderr) => {
        if (err) {
          const code = typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : null;
          reject(new CommandError(cmd, args, code, `${stderr.toString()}${err.killed ? ' (killed: timeout)' : ''}`, stdout));
          return;
        }
        resolve({ stdout, stderr: stderr.toString() });
      },
    );
  });
}

let skopeoHome: string | undefined;

/**
 * skopeo's environment: a HOME, runtime dir, auth file and registries.conf of our own, so no
 * credential or mirror setting of the machine applies, and no proxy variable at all.
 */
function skopeoEnv(): NodeJS.ProcessEnv {
  installExitHook();
  if (!skopeoHome) {
    sweepStaleDirs();
    skopeoHome = mkdtempSync(join(tmpdir(), 'edgeboot-skopeo-'));
    writeFileSync(join(skopeoHome, 'owner.pid'), `${process.pid}\n`);
    writeFileSync(join(skopeoHome, 'auth.json'), '{"auths":{}}\n');
    writeFileSync(join(skopeoHome, 'registries.conf'), 'unqualified-search-registries = []\n');
  }
  return {
    PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
    HOME: skopeoHome,
    XDG_RUNTIME_DIR: skopeoHome,
    REGISTRY_AUTH_FILE: join(skopeoHome, 'auth.json'),
    CONTAINERS_REGISTRIES_CONF: join(skopeoHome, 'registries.conf'),
    TMPDIR: skopeoHome,
  };
}

/** How skopeo authenticates: explicit credentials, a pull-secret file, or none (anonymous). */
export interface SkopeoAuth {
  /** `--creds user:pass`. */
  creds?: Credentials;
  /** `--authfile FILE`. */
  authFile?: string;
  /** Default 60 s. */
  timeoutMs?: number;
}

export interface PushOptions extends Omit<SkopeoAuth, 'creds'> {
  /** Default: the registry's own credentials; `null`: anonymous. */
  creds?: Credentials | null;
  /** `--all` (every image of an index). Default true. */
  all?: boolean;
  /** `--preserve-digests` (fail rather than convert). Default true. */
  preserveDigests?: boolean;
  /** More `skopeo copy` arguments, e.g. `['--format', 'v2s2']` with `preserveDigests: false`. */
  extraArgs?: string[];
}

function authArgs(prefix: '' | 'dest-' | 'src-', a: { creds?: Credentials | null | undefined; authFile?: string | undefined }): string[] {
  if (a.creds) return [`--${prefix}creds`, `${a.creds.username}:${a.creds.password}`];
  if (a.authFile) return [`--${prefix}authfile`, a.authFile];
  return [`--${prefix}no-creds`];
}

/**
 * `skopeo copy --all --preserve-digests <source> docker://<host>/<ref>` over plain HTTP.
 * `source` is a layout dir (with exactly one image in `index.json`) or a `LayoutRef` (a
 * `BuiltImage`, `BuiltIndex` or `BuiltRelease`); `ref` is `ns/name:tag` or `ns/name@sha256:…`.
 *
 * An OCI manifest or index goes as `oci:<layout>:<tag>`. skopeo 1.9's `oci:` transport does
 * not select `index.json` entries of Docker media types ("no descriptor found for
 * reference"), so a Docker schema 2 manifest or manifest list goes through a throwaway
 * `dir:` copy of it instead, whose manifests skopeo reads byte for byte. Either way the
 * registry ends up with the generated bytes and media type. Rejects with a `CommandError`.
 */
export async function pushImage(
  registry: Pick<Registry, 'host' | 'credentials'>,
  source: string | LayoutRef,
  ref: string,
  opts: PushOptions = {},
): Promise<void> {
  await assertCommand('skopeo');
  const layout = typeof source === 'string' ? source : source.layout;
  const entry = layoutEntry(layout, typeof source === 'string' ? undefined : source.tag);
  const viaDir = entry.mediaType === MEDIA_TYPES.dockerManifest || entry.mediaType === MEDIA_TYPES.dockerManifestList;
  const dirView = viaDir ? dirTransportCopy(layout, entry.digest) : undefined;
  const tag = entry.annotations?.[REF_NAME];
  const src = dirView ? `dir:${dirView}` : `oci:${layout}${tag !== undefined ? `:${tag}` : ''}`;
  const creds = opts.creds === undefined ? registry.credentials : opts.creds;
  const args = [
    '--insecure-policy',
    'copy',
    '--quiet',
    ...(opts.all === false ? [] : ['--all']),
    ...(opts.preserveDigests === false ? [] : ['--preserve-digests']),
    '--dest-tls-verify=false',
    ...authArgs('dest-', { creds, authFile: opts.authFile }),
    ...(opts.extraArgs ?? []),
    src,
    `docker://${registry.host}/${ref}`,
  ];
  try {
    await run('skopeo', args, { env: skopeoEnv(), ...(opts.timeoutMs !== undefined && { timeoutMs: opts.timeoutMs }) });
  } finally {
    if (dirView) rmSync(dirView, { recursive: true, force: true });
  }
}

/** The `index.json` entry named `tag`, or the only entry when `tag` is undefined. */
function layoutEntry(layout: string, tag: string | undefined): Descriptor {
  const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')) as LayoutIndex;
  if (tag === undefined) {
    const [only, ...more] = index.manifests;
    if (!only || more.length > 0) throw new Error(`${layout}/index.json lists ${index.manifests.length} manifests: name one by its tag`);
    return only;
  }
  const found = index.manifests.find((m) => m.annotations?.[REF_NAME] === tag);
  if (!found) throw new Error(`${layout}/index.json has no manifest named ${tag}`);
  return found;
}

/**
 * A containers/image `dir:` copy (version 1.1) of the manifest `digest` of a layout, with its
 * instances (`<hex>.manifest.json`) and blobs (`<hex>`), in a new temp dir.
 */
function dirTransportCopy(layout: string, digest: string): string {
  const out = mkdtempSync(join(skopeoEnv().HOME ?? tmpdir(), 'dir-'));
  const blob = (d: string): string => join(layout, 'blobs', 'sha256', d.slice('sha256:'.length));
  writeFileSync(join(out, 'version'), 'Directory Transport Version: 1.1\n');
  const copyImage = (manifestBytes: Buffer): void => {
    const m = JSON.parse(manifestBytes.toString()) as { config: Descriptor; layers: Descriptor[] };
    for (const d of [m.config, ...m.layers]) copyFileSync(blob(d.digest), join(out, d.digest.slice('sha256:'.length)), constants.COPYFILE_FICLONE);
  };
  const top = readFileSync(blob(digest));
  writeFileSync(join(out, 'manifest.json'), top);
  const doc = JSON.parse(top.toString()) as { manifests?: Descriptor[] };
  if (doc.manifests) {
    for (const child of doc.manifests) {
      const bytes = readFileSync(blob(child.digest));
      writeFileSync(join(out, `${child.digest.slice('sha256:'.length)}.manifest.json`), bytes);
      copyImage(bytes);
    }
  } else {
    copyImage(top);
  }
  return out;
}

/**
 * `skopeo copy --preserve-digests docker://<ref> oci:<layout>` over plain HTTP, anonymous: a
 * pull the way a machine's container runtime would make it, through a mirror or straight from
 * a registry (`ref` is `<host>/ns/name:tag` or `…@sha256:…`). `all` copies every image of an
 * index. Rejects with a `CommandError`.
 */
export async function skopeoPull(ref: string, layout: string, opts: { all?: boolean; timeoutMs?: number } = {}): Promise<void> {
  await assertCommand('skopeo');
  const args = [
    '--insecure-policy',
    'copy',
    '--quiet',
    ...(opts.all ? ['--all'] : []),
    '--preserve-digests',
    '--src-tls-verify=false',
    '--src-no-creds',
    `docker://${ref}`,
    `oci:${layout}`,
  ];
  await run('skopeo', args, { env: skopeoEnv(), ...(opts.timeoutMs !== undefined && { timeoutMs: opts.timeoutMs }) });
}

/**
 * The raw manifest (or, with `config`, the raw config blob) of `ref` (`<host>/ns/name:tag`,
 * `<host>/ns/name@sha256:…`, or with `docker://`), exactly as the registry serves it:
 * `skopeo inspect --raw --tls-verify=false`. Anonymous unless `creds` or `authFile` is given.
 * Rejects with a `CommandError`.
 */
export async function skopeoInspectRaw(ref: string, opts: SkopeoAuth & { config?: boolean } = {}): Promise<Buffer> {
  await assertCommand('skopeo');
  const args = [
    'inspect',
    '--raw',
    ...(opts.config ? ['--config'] : []),
    '--tls-verify=false',
    ...authArgs('', opts),
    ref.startsWith('docker://') ? ref : `docker://${ref}`,
  ];
  const r = await run('skopeo', args, { env: skopeoEnv(), ...(opts.timeoutMs !== undefined && { timeoutMs: opts.timeoutMs }) });
  return r.stdout;
}
