/**
 * The HTTP route fuzz's generator (pure: a seeded PRNG in, request descriptions out). Requests
 * start from the app's own route table and are then mutated: methods, path segments that are
 * names of Object.prototype, traversal, NULs, broken percent-encoding, long and non-ASCII
 * segments, query strings, headers that lie (content-type, content-length, range, validators,
 * authorization) and bodies (random, deep and wrong-typed JSON, huge strings, binary).
 */
import { prng } from './dhcp-mutate.js';

export type Rng = ReturnType<typeof prng>;

/** One registered route: its path template (`/api/v1/machines/:mac`) and methods. */
export interface RouteEntry {
  path: string;
  methods: string[];
}

/** A request as `app.inject()` takes it; it is also what a failure prints for a replay. */
export interface FuzzRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  payload?: string | Buffer;
}

/** Values the generator plugs into path parameters and bodies: the app's real names, and a token. */
export interface FuzzVocabulary {
  macs: readonly string[];
  profiles: readonly string[];
  artifacts: readonly string[];
  /** `<host:port>` of an upstream that refuses connections (a closed loopback port). */
  deadUpstream: string;
  adminToken: string;
}

/**
 * Parses `app.printRoutes({ commonPrefix: false })`: a tree whose lines are `├── fragment (METHODS)`,
 * four columns per level; a route's path is its ancestors' fragments joined.
 */
export function routesFromTree(tree: string): RouteEntry[] {
  const out: RouteEntry[] = [];
  const stack: string[] = [];
  for (const line of tree.split('\n')) {
    const m = /^([│ ]*)[├└]── (.*?)(?: \(([A-Z, ]+)\))?$/.exec(line);
    if (!m) continue;
    const depth = (m[1] as string).length / 4;
    stack.length = depth;
    stack.push(m[2] as string);
    if (m[3]) out.push({ path: stack.join(''), methods: m[3].split(', ') });
  }
  return out;
}

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'TRACE', 'PROPFIND', 'SEARCH', 'MKCOL', 'LOCK'] as const;

/** Segments that break code which indexes plain objects, decodes, or joins paths. */
const NASTY_SEGMENTS = [
  'constructor',
  '__proto__',
  'toString',
  'hasOwnProperty',
  'valueOf',
  'prototype',
  '__defineGetter__',
  '..',
  '.',
  '%2e%2e',
  '%2E%2E%2F%2E%2E',
  '..%2f..%2fetc%2fpasswd',
  '%00',
  'a%00b',
  '%',
  '%zz',
  '%C3%28',
  '%F0%9F%99%82',
  'é',
  '🙂',
  '\u202e',
  '%0d%0aX-Injected:%201',
  '',
  ' ',
  '*',
  ':mac',
  'sha256:' + 'a'.repeat(64),
  'NaN',
  '-1',
  '1e309',
  '0x10',
] as const;

const QUERY_KEYS = [
  'mac',
  'uuid',
  'arch',
  'serial',
  'token',
  'after',
  'limit',
  'state',
  'profile',
  'label',
  'n',
  'last',
  'wait',
  'cursor',
  'constructor',
  '__proto__',
  'toString',
  'hasOwnProperty',
  '__proto__[polluted]',
  'a[b][c]',
  '',
] as const;

const CONTENT_TYPES = [
  'application/json',
  'application/json; charset=utf-8',
  'application/json; charset=latin1',
  'application/merge-patch+json',
  'text/plain',
  'application/octet-stream',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=xyz',
  'application/vnd.oci.image.manifest.v1+json',
  'constructor',
  '__proto__',
  ';;;',
  'application/json; boundary="',
] as const;

const ARCHES = ['x86_64', 'arm64', 'i386', 'efi', '00007', 'constructor', '__proto__'];

/** A string of one of several shapes: short, long, non-ASCII, control characters, a nasty segment. */
function randomString(r: Rng): string {
  switch (r.int(8)) {
    case 0:
      return r.pick(NASTY_SEGMENTS);
    case 1:
      return 'x'.repeat(r.int(5000));
    case 2:
      return String.fromCharCode(...Array.from({ length: r.int(40) }, () => r.int(0x2fff)));
    case 3:
      return String.fromCharCode(...Array.from({ length: r.int(20) }, () => r.int(32)));
    case 4:
      return String(r.int(1 << 30) - (1 << 29));
    default:
      return Math.floor(r.int(1 << 30)).toString(36);
  }
}

/** Any JSON value, nested at most `depth` levels. */
export function randomJson(r: Rng, depth: number, vocab: FuzzVocabulary): unknown {
  const kind = depth <= 0 ? r.int(6) : r.int(9);
  switch (kind) {
    case 0:
      return null;
    case 1:
      return r.int(2) === 0;
    case 2:
      return r.pick([0, -1, 1.5, 1e308, -1e308, Number.MAX_SAFE_INTEGER + 2, r.int(100000)]);
    case 3:
      return randomString(r);
    case 4:
      return r.pick(vocab.macs);
    case 5:
      return r.pick(vocab.profiles);
    case 6:
      return Array.from({ length: r.int(6) }, () => randomJson(r, depth - 1, vocab));
    default: {
      const keys = [
        'mac',
        'macs',
        'uuid',
        'hostname',
        'ip',
        'profile',
        'labels',
        'assisted',
        'precache',
        'type',
        'message',
        'data',
        'url',
        'sha256',
        'size',
        'release',
        'images',
        'filter',
        'to',
        'ok',
        'step',
        'disks',
        ...NASTY_SEGMENTS,
      ];
      const o: Record<string, unknown> = {};
      for (let i = r.int(6); i > 0; i--) o[r.pick(keys)] = randomJson(r, depth - 1, vocab);
      return o;
    }
  }
}

/** `{"a":{"a":…}}` (or arrays) nested `levels` deep, as text: built without recursion. */
export function deepJson(levels: number, array: boolean): string {
  return array ? '['.repeat(levels) + ']'.repeat(levels) : '{"a":'.repeat(levels) + '1' + '}'.repeat(levels);
}

/** Well-formed bodies of the app's own routes, so that requests also get past the schemas. */
function plausibleBody(r: Rng, vocab: FuzzVocabulary): unknown {
  switch (r.int(6)) {
    case 0:
      return { profile: r.pick(vocab.profiles), hostname: `node-${r.int(99)}`, labels: { site: `f${r.int(9)}` } };
    case 1:
      return { type: r.pick(['booted', 'install-done', 'precache-progress', 'precache-failed', 'x']), message: randomString(r), data: randomJson(r, 4, vocab) };
    case 2:
      return { labels: r.int(2) ? null : { a: 'b' }, hostname: r.int(2) ? null : 'h', precache: r.int(2) ? null : { sizeGiB: 1 + r.int(100) } };
    case 3:
      return { url: `http://${vocab.deadUpstream}/${randomString(r)}` };
    case 4:
      return { release: `${vocab.deadUpstream}/ocp/release:4.14.${r.int(9)}`, images: [`${vocab.deadUpstream}/x/y:1`] };
    default:
      return { ok: r.int(2) === 0, step: 'download', message: randomString(r), disks: [{ path: '/dev/sda', sizeBytes: r.int(1 << 30) }] };
  }
}

function body(r: Rng, vocab: FuzzVocabulary): { payload?: string | Buffer; contentType?: string } {
  const json = 'application/json';
  switch (r.int(14)) {
    case 0:
    case 1:
      return {};
    case 2:
    case 3:
    case 4:
      return { payload: JSON.stringify(plausibleBody(r, vocab)), contentType: r.pick([json, 'application/merge-patch+json']) };
    case 5:
    case 6:
      return { payload: JSON.stringify(randomJson(r, 5, vocab)), contentType: r.pick([json, 'application/merge-patch+json']) };
    case 7: {
      // Deep JSON: mostly just past any sane cap, sometimes as deep as the body limit allows.
      const levels = r.int(50) === 0 ? 150_000 + r.int(50_000) : 20 + r.int(r.pick([50, 500, 5000]));
      return { payload: deepJson(levels, r.int(3) === 0), contentType: r.pick([json, 'application/merge-patch+json']) };
    }
    case 8: {
      // A deep value inside an otherwise plausible body (labels, event data, inventory).
      const inner = deepJson(20 + r.int(3000), r.int(2) === 0);
      const key = r.pick(['labels', 'data', 'precache', 'assisted', 'disks', 'observed', 'inventory', 'images']);
      return { payload: `{"type":"booted","${key}":${inner}}`, contentType: r.pick([json, 'application/merge-patch+json']) };
    }
    case 9:
      return { payload: r.bytes(r.int(2000)), contentType: r.pick(CONTENT_TYPES) };
    case 10:
      return { payload: JSON.stringify({ [r.pick(['message', 'filter', 'url', 'hostname'])]: 'y'.repeat(r.int(2) ? 70_000 : 1_100_000) }), contentType: json };
    case 11: {
      const text = JSON.stringify(plausibleBody(r, vocab));
      return { payload: text.slice(0, r.int(text.length + 1)), contentType: r.pick(CONTENT_TYPES) };
    }
    case 12:
      return {
        payload: r.pick(['null', '"x"', '1', '[]', 'true', '{"__proto__":{"x":1}}', '{"constructor":{"prototype":{"x":1}}}', '{"a":1,"a":2}', '\uFEFF{}', '']),
        contentType: r.pick(CONTENT_TYPES),
      };
    default:
      return { payload: JSON.stringify(randomJson(r, 3, vocab)), contentType: r.pick(CONTENT_TYPES) };
  }
}

/** A value for a path parameter, by its name. */
function paramValue(name: string, r: Rng, vocab: FuzzVocabulary): string {
  if (r.int(10) === 0) return encodeURIComponent(randomString(r)).slice(0, 3000);
  switch (name) {
    case 'mac':
      return r.pick([...vocab.macs, '00:00:00:00:00:00', 'ff:ff:ff:ff:ff:ff', '01-00-5e-00-00-01', 'AABBCCDDEEFF', '52:54:00:ab:cd']);
    case 'profile':
      return r.pick([...vocab.profiles, 'hub']);
    case 'artifact':
      return r.pick(vocab.artifacts);
    case 'id':
      return r.int(2) ? (r.int(1 << 30).toString(16) + 'deadbeefdeadbeef').slice(0, 16) : '0123456789abcdef';
    case 'v2':
      return registryPath(r, vocab);
    default:
      return r.pick(['x', 'kernel', 'manifest.json', 'mapping.txt', '0', 'undionly.kpxe', 'sub/ipxe.efi', ...vocab.artifacts]);
  }
}

/** The rest of a `/v2/` path: the upstream is always the dead loopback one or a configured prefix. */
function registryPath(r: Rng, vocab: FuzzVocabulary): string {
  const repo = r.pick(['ocp/release', 'a/b/c', 'x', 'UPPER/case', 'a//b']);
  const ref = r.pick(['latest', '4.14.0', 'sha256:' + 'ab'.repeat(32), 'sha256:zz', '..', '']);
  return `${r.pick([vocab.deadUpstream, 'release'])}/${repo}/${r.pick(['manifests', 'blobs', 'tags/list', 'x'])}/${ref}`;
}

function query(r: Rng, vocab: FuzzVocabulary): string {
  const n = r.int(4) === 0 ? r.int(30) : r.int(4);
  const parts: string[] = [];
  for (let i = 0; i < n; i++) {
    const key = r.pick(QUERY_KEYS);
    const value = r.pick([r.pick(vocab.macs), r.pick(ARCHES), randomString(r), String(r.int(10000)), '', 'true', '-1', '1e9', 'registered', 'site=f1']);
    parts.push(r.int(8) === 0 ? r.pick(NASTY_SEGMENTS) : `${encodeURIComponent(key)}=${r.int(6) === 0 ? value : encodeURIComponent(value)}`);
  }
  return parts.length > 0 ? '?' + parts.join('&') : '';
}

function headers(r: Rng, vocab: FuzzVocabulary, contentType: string | undefined, payloadLength: number): Record<string, string> {
  const h: Record<string, string> = {};
  if (contentType !== undefined && r.int(12) !== 0) h['content-type'] = contentType;
  switch (r.int(4)) {
    case 0:
      break;
    case 1:
    case 2:
      h.authorization = `Bearer ${vocab.adminToken}`;
      break;
    default:
      h.authorization = r.pick([
        'Bearer',
        'Bearer ',
        'Basic ' + Buffer.from(`x:${vocab.adminToken}`).toString('base64'),
        'Basic !!!',
        'Basic ' + Buffer.from('no-colon').toString('base64'),
        'Digest x',
        'Bearer ' + randomString(r),
        '\u00ff\u00fe',
      ]);
  }
  if (r.int(6) === 0) h['content-length'] = String(r.pick([0, 1, payloadLength + 1, Math.max(0, payloadLength - 1), 2 ** 40]));
  if (r.int(5) === 0)
    h.range = r.pick([
      'bytes=0-10',
      'bytes=-5',
      'bytes=5-1',
      'bytes=0-',
      'bytes=99999999999-',
      'bytes=0-1,3-4',
      'bytes=',
      'items=0-1',
      'bytes=-0',
      'bytes=1-2-3',
      'bytes=' + '0-1,'.repeat(500),
    ]);
  if (r.int(6) === 0) h['if-none-match'] = r.pick(['*', '"x"', 'W/"x"', '"', '', 'garbage, "a", W/']);
  if (r.int(8) === 0) h['if-modified-since'] = r.pick(['Thu, 01 Jan 1970 00:00:00 GMT', 'garbage', '', 'Sat, 01 Jan 3000 00:00:00 GMT']);
  if (r.int(10) === 0) h['if-range'] = r.pick(['"x"', 'Thu, 01 Jan 1970 00:00:00 GMT', 'garbage']);
  if (r.int(8) === 0) h.accept = r.pick(['*/*', 'application/vnd.oci.image.index.v1+json', 'text/html', ';;', 'application/json;q=x']);
  if (r.int(10) === 0) h.host = r.pick(['[::1]:8080', 'evil.example', '', 'a b', 'x'.repeat(300), '127.0.0.1:99999']);
  if (r.int(10) === 0) h['x-forwarded-for'] = r.pick(['1.2.3.4', 'garbage', '::1, 10.0.0.1']);
  if (r.int(12) === 0) h['accept-encoding'] = r.pick(['gzip', 'br', 'identity;q=0', '*']);
  if (r.int(12) === 0) h['content-encoding'] = r.pick(['gzip', 'deflate', 'br', 'garbage']);
  if (r.int(15) === 0) h['transfer-encoding'] = 'chunked';
  if (r.int(20) === 0) h['user-agent'] = randomString(r).replace(/[^\x20-\x7e]/g, '');
  return h;
}

/** Replaces one path segment with a nasty one, or adds/removes structure. */
function mutatePath(path: string, r: Rng): string {
  const segments = path.split('/');
  switch (r.int(6)) {
    case 0:
      segments[1 + r.int(Math.max(1, segments.length - 1))] = r.pick(NASTY_SEGMENTS);
      return segments.join('/');
    case 1:
      return path + '/' + r.pick(NASTY_SEGMENTS);
    case 2:
      return path + r.pick(['/', '//', '/.', '%2F', '?', '#frag', ';x=1']);
    case 3:
      return segments.slice(0, Math.max(1, segments.length - 1)).join('/');
    case 4:
      return path.replace(/\//g, r.pick(['//', '/./', '%2f']));
    default:
      return segments.map((s) => (s && r.int(3) === 0 ? encodeURIComponent(s).replace(/[a-z]/g, (c) => `%${c.charCodeAt(0).toString(16)}`) : s)).join('/');
  }
}

/**
 * One request: a route of the table, its parameters filled in, then mutated. The API docs
 * (`/docs/…`, Swagger UI's static files and the spec, slow to render) get a tenth of a route's share.
 */
export function nextRequest(r: Rng, routes: readonly RouteEntry[], vocab: FuzzVocabulary): FuzzRequest {
  let route = r.pick(routes);
  if (route.path.startsWith('/docs')) route = r.pick(routes);
  let path = route.path.replace(/:([A-Za-z]+)|\*/g, (_m, name: string | undefined) =>
    paramValue(name ?? (route.path.startsWith('/v2/') ? 'v2' : 'file'), r, vocab),
  );
  if (r.int(3) === 0) path = mutatePath(path, r);
  const method = r.int(4) === 0 ? r.pick(METHODS) : r.pick(route.methods);
  const b = method === 'GET' || method === 'HEAD' ? (r.int(8) === 0 ? body(r, vocab) : {}) : body(r, vocab);
  const payloadLength = b.payload === undefined ? 0 : Buffer.byteLength(b.payload);
  return {
    method,
    url: onTheWire(path + query(r, vocab)),
    headers: headers(r, vocab, b.contentType, payloadLength),
    ...(b.payload !== undefined && { payload: b.payload }),
  };
}

/**
 * The request target as an HTTP client puts it on the wire (RFC 9112 §3.2): origin-form, so it
 * starts with `/`, and every byte outside visible ASCII (and `#`, which ends a URI) percent-encoded
 * as UTF-8. Broken escapes such as `%zz` or `%C3%28` stay: they are the server's problem.
 */
export function onTheWire(target: string): string {
  const encoded = target.replace(/[^\x21-\x22\x24-\x7e]/gu, (c) =>
    [...Buffer.from(c, 'utf8')].map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`).join(''),
  );
  return encoded.startsWith('/') ? encoded : `/${encoded}`;
}
