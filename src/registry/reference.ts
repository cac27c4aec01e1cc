/**
 * Names in the OCI distribution API (distribution-spec "Pulling"): repository names, tags and
 * digests, and the mirror's paths, whose first component names the upstream registry
 * (`/v2/quay.io/openshift-release-dev/ocp-v4.0-art-dev/manifests/sha256:…`).
 */

/** One path component of a repository name: `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`. */
const COMPONENT = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$/;
const TAG = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;
/** The only digest algorithm this mirror stores (content-addressed by sha256). */
const SHA256_DIGEST = /^sha256:([a-f0-9]{64})$/;

export type Reference = { kind: 'tag'; tag: string } | { kind: 'digest'; digest: string; hex: string };

export interface MirrorPath {
  /** The first component: an upstream host, or a configured prefix standing for one. */
  upstream: string;
  /** The repository on the upstream (the rest of the name). */
  repository: string;
  what: 'manifests' | 'blobs';
  reference: Reference;
}

export function isRepositoryName(name: string): boolean {
  return name.length <= 255 && name.split('/').every((c) => COMPONENT.test(c));
}

/** A tag or a sha256 digest; undefined for anything else. */
export function parseReference(s: string): Reference | undefined {
  const d = SHA256_DIGEST.exec(s);
  if (d) return { kind: 'digest', digest: s, hex: d[1] as string };
  if (TAG.test(s)) return { kind: 'tag', tag: s };
  return undefined;
}

export function referenceString(r: Reference): string {
  return r.kind === 'tag' ? r.tag : r.digest;
}

/**
 * `<upstream>/<repository…>/(manifests|blobs)/<reference>` (after `/v2/`), or why not. Blobs are
 * named by digest only. The upstream component needs a repository after it.
 */
export function parseMirrorPath(rest: string): MirrorPath | { error: 'NAME_INVALID' | 'MANIFEST_INVALID' | 'DIGEST_INVALID'; message: string } | undefined {
  const m = /^(.+)\/(manifests|blobs)\/([^/]+)$/.exec(rest);
  if (!m) return undefined;
  const name = m[1] as string;
  const what = m[2] as 'manifests' | 'blobs';
  const slash = name.indexOf('/');
  if (slash < 0 || !isRepositoryName(name)) return { error: 'NAME_INVALID', message: `${name} is not <upstream>/<repository> with valid name components` };
  const reference = parseReference(m[3] as string);
  if (!reference || (what === 'blobs' && reference.kind !== 'digest')) {
    return what === 'blobs'
      ? { error: 'DIGEST_INVALID', message: `${m[3]} is not a sha256 digest` }
      : { error: 'MANIFEST_INVALID', message: `${m[3]} is neither a tag nor a sha256 digest` };
  }
  return { upstream: name.slice(0, slash), repository: name.slice(slash + 1), what, reference };
}

/** `<upstream>/<repository…>/tags/list` (after `/v2/`), or why not; undefined for other paths. */
export function parseTagsPath(rest: string): Pick<MirrorPath, 'upstream' | 'repository'> | { error: 'NAME_INVALID'; message: string } | undefined {
  const m = /^(.+)\/tags\/list$/.exec(rest);
  if (!m) return undefined;
  const name = m[1] as string;
  const slash = name.indexOf('/');
  if (slash < 0 || !isRepositoryName(name)) return { error: 'NAME_INVALID', message: `${name} is not <upstream>/<repository> with valid name components` };
  return { upstream: name.slice(0, slash), repository: name.slice(slash + 1) };
}

/** An image reference with its registry host: `host[:port]/repository[:tag][@sha256:…]`. */
export interface ImageRef {
  host: string;
  repository: string;
  reference: Reference;
  /** The tag, when the reference names one beside a digest (`name:tag@sha256:…`). */
  tag?: string;
}

/**
 * Parses an image reference that names its registry (the first component has a dot, a port, or
 * is `localhost`); a digest wins over a tag given beside it, as container tools do.
 */
export function parseImageRef(s: string): ImageRef | { error: string } {
  const text = s.trim().replace(/^docker:\/\//, '');
  const at = text.indexOf('@');
  const beforeDigest = at >= 0 ? text.slice(0, at) : text;
  const slash = beforeDigest.indexOf('/');
  if (slash < 0) return { error: `${s}: name the registry host first (quay.io/…, registry.example:5000/…)` };
  const host = beforeDigest.slice(0, slash);
  if (!/[.:]/.test(host) && host !== 'localhost') return { error: `${s}: ${host} is not a registry host (it needs a dot or a port): name the registry first` };
  let path = beforeDigest.slice(slash + 1);
  let tag: string | undefined;
  const colon = path.lastIndexOf(':');
  if (colon > path.lastIndexOf('/')) {
    tag = path.slice(colon + 1);
    path = path.slice(0, colon);
  }
  if (!isRepositoryName(path)) return { error: `${s}: ${path} is not a valid repository name` };
  if (at >= 0) {
    const digest = parseReference(text.slice(at + 1));
    if (digest?.kind !== 'digest') return { error: `${s}: ${text.slice(at + 1)} is not a sha256 digest` };
    return { host, repository: path, reference: digest, ...(tag !== undefined && { tag }) };
  }
  const t = parseReference(tag ?? 'latest');
  if (t?.kind !== 'tag') return { error: `${s}: ${tag} is not a valid tag` };
  return { host, repository: path, reference: t };
}

export function imageRefString(r: ImageRef): string {
  return `${r.host}/${r.repository}${r.reference.kind === 'tag' ? `:${r.reference.tag}` : `@${r.reference.digest}`}`;
}
