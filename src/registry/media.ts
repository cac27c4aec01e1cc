/** Manifest media types the mirror passes through byte for byte (never converted: the digest is of the bytes). */
export const MANIFEST_TYPES = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.docker.distribution.manifest.v2+json',
] as const;

/** The Accept header for manifests upstream: every type above. */
export const MANIFEST_ACCEPT = MANIFEST_TYPES.join(', ');

/** Manifests larger than this are refused, as distribution refuses them (4 MiB). */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

/** The media type a manifest declares in its own `mediaType` field, if it is JSON with one. */
export function declaredMediaType(bytes: Buffer): string | undefined {
  try {
    const doc = JSON.parse(bytes.toString('utf8')) as { mediaType?: unknown };
    return typeof doc.mediaType === 'string' ? doc.mediaType : undefined;
  } catch {
    // Not JSON: it declares nothing, and the upstream's Content-Type is all there is.
    return undefined;
  }
}
