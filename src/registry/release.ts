/**
 * Release resolution without `oc`: a release image's `release-manifests/image-references` (an
 * ImageStream whose tags name every component image by digest), read out of its layers, as
 * `oc adm release info` lists it. The layers come through the artifact cache, so resolving a
 * release also caches its image.
 */
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { createGunzip } from 'node:zlib';
import type { Readable } from 'node:stream';
import { RegistryMirror, type MirroredManifest } from './mirror.js';
import type { ImageRef, MirrorPath } from './reference.js';
import { readTarFiles } from './tar.js';

const IMAGE_REFERENCES = 'release-manifests/image-references';
const RELEASE_METADATA = 'release-manifests/release-metadata';

export interface Descriptor {
  mediaType?: string;
  digest: string;
  size: number;
  platform?: { os?: string; architecture?: string; variant?: string };
}

/** An image manifest or an index (manifest list), as far as pulling needs them. */
export interface ParsedManifest {
  mediaType?: string;
  config?: Descriptor;
  layers?: Descriptor[];
  manifests?: Descriptor[];
}

export interface ReleaseComponent {
  /** The ImageStream tag: `machine-config-operator`, `pod`, … */
  name: string;
  /** Where it comes from, by digest: `quay.io/openshift-release-dev/ocp-v4.0-art-dev@sha256:…`. */
  image: string;
}

export interface ReleaseInfo {
  /** The release image's manifest digest (the one for `arch`, when the release is an index). */
  digest: string;
  /** `metadata.name` of the ImageStream: the release version, e.g. `4.14.0`. */
  version: string;
  architecture: string;
  components: ReleaseComponent[];
}

export function parseManifest(bytes: Buffer, what: string): ParsedManifest {
  let doc: unknown;
  try {
    doc = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new Error(`${what}: the manifest is not JSON: ${(err as Error).message}`, { cause: err });
  }
  if (typeof doc !== 'object' || doc === null) throw new Error(`${what}: the manifest is not a JSON object`);
  return doc;
}

export function mirrorPath(ref: ImageRef, reference: MirrorPath['reference'] = ref.reference): MirrorPath {
  return { upstream: ref.host, repository: ref.repository, what: 'manifests', reference };
}

/** The manifest of `ref` for one platform: the index's entry for `architecture` (linux), or the image itself. */
export async function platformManifest(
  mirror: RegistryMirror,
  ref: ImageRef,
  architecture: string,
): Promise<{ mirrored: MirroredManifest; manifest: ParsedManifest }> {
  const top = await mirror.manifest(mirrorPath(ref));
  const parsed = parseManifest(await RegistryMirror.read(top), `${ref.host}/${ref.repository}`);
  if (!parsed.manifests) return { mirrored: top, manifest: parsed };
  const entry = parsed.manifests.find((m) => m.platform?.architecture === architecture && (m.platform.os ?? 'linux') === 'linux');
  if (!entry) {
    const have = parsed.manifests.map((m) => `${m.platform?.os ?? '?'}/${m.platform?.architecture ?? '?'}`).join(', ');
    throw new Error(`${ref.host}/${ref.repository} has no linux/${architecture} image (it has ${have})`);
  }
  const hex = entry.digest.slice('sha256:'.length);
  const mirrored = await mirror.manifest(mirrorPath(ref, { kind: 'digest', digest: entry.digest, hex }));
  return { mirrored, manifest: parseManifest(await RegistryMirror.read(mirrored), `${ref.host}/${ref.repository}@${entry.digest}`) };
}

/** A cached layer, decompressed if it is gzip (by its first bytes; zstd layers are refused). */
async function layerStream(path: string): Promise<Readable> {
  const fh = await open(path, 'r');
  const head = Buffer.alloc(4);
  try {
    await fh.read(head, 0, 4, 0);
  } finally {
    await fh.close();
  }
  const file = createReadStream(path);
  if (head[0] === 0x1f && head[1] === 0x8b) return file.pipe(createGunzip());
  if (head.readUInt32LE(0) === 0xfd2fb528) {
    file.destroy();
    throw new Error('a zstd-compressed layer: this Node cannot decompress it to read the release manifests');
  }
  return file;
}

/**
 * `layerPath` gives the path of a layer in the content store, fetching it if need be (through
 * the artifact cache, by default; an image job passes its own, which counts the bytes).
 */
export async function resolveRelease(
  mirror: RegistryMirror,
  ref: ImageRef,
  architecture: string,
  layerPath: (layer: Descriptor) => Promise<string>,
): Promise<ReleaseInfo> {
  const name = `${ref.host}/${ref.repository}`;
  const { mirrored, manifest } = await platformManifest(mirror, ref, architecture);
  const layers = manifest.layers ?? [];
  // The manifests are in the release's own (top) layer: look from the top down.
  for (const layer of [...layers].reverse()) {
    const files = await readTarFiles(await layerStream(await layerPath(layer)), (n) => n === IMAGE_REFERENCES || n === RELEASE_METADATA);
    const refs = files.get(IMAGE_REFERENCES);
    if (!refs) continue;
    return { digest: mirrored.manifest.digest, architecture, ...parseImageReferences(refs, name) };
  }
  throw new Error(`${name}: no layer of the release image holds ${IMAGE_REFERENCES}: is it a release image?`);
}

/** The ImageStream of `image-references`: its name (the version) and every tag's image. */
export function parseImageReferences(bytes: Buffer, what: string): { version: string; components: ReleaseComponent[] } {
  let doc: { kind?: unknown; metadata?: { name?: unknown }; spec?: { tags?: { name?: unknown; from?: { kind?: unknown; name?: unknown } }[] } };
  try {
    doc = JSON.parse(bytes.toString('utf8')) as typeof doc;
  } catch (err) {
    throw new Error(`${what}: ${IMAGE_REFERENCES} is not JSON: ${(err as Error).message}`, { cause: err });
  }
  if (doc.kind !== 'ImageStream' || !Array.isArray(doc.spec?.tags)) throw new Error(`${what}: ${IMAGE_REFERENCES} is not an ImageStream with spec.tags`);
  const components: ReleaseComponent[] = [];
  for (const tag of doc.spec.tags) {
    if (typeof tag.name === 'string' && tag.from?.kind === 'DockerImage' && typeof tag.from.name === 'string')
      components.push({ name: tag.name, image: tag.from.name });
  }
  return { version: typeof doc.metadata?.name === 'string' ? doc.metadata.name : 'unknown', components };
}
