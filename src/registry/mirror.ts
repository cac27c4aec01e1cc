/**
 * The read-only pull-through mirror behind `/v2/`: manifests kept byte for byte as blobs of the
 * content store (named by the sha256 of their bytes, with their media type in the store), tags
 * remembered per upstream repository, blobs fetched through the artifact cache (one entry and
 * one upstream fetch per digest, verified before it counts).
 *
 * A manifest by digest never changes: once stored it is served without asking upstream. A tag
 * is asked upstream each time and answered from the store when the upstream cannot be reached
 * (stale on error), so a site whose WAN is down still pulls what it pulled before. Tag lists
 * work the same way: asked upstream, the last full list kept for when it cannot be reached.
 *
 * Only names `registry.allowedUpstreams` allows are served or asked upstream (UpstreamDeniedError
 * otherwise, before any lookup or connection): the mirror is not an open proxy.
 */
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { ArtifactRequest } from '../cache/artifacts.js';
import type { BlobStore } from '../cache/blobs.js';
import type { RegistryIndexRepository, RegistryManifest } from '../store/store.js';
import { RegistryClient, RegistryError } from './client.js';
import { UpstreamDeniedError } from './allow.js';
import { referenceString, type MirrorPath } from './reference.js';
import { sortTags } from './tags.js';

export interface MirrorOptions {
  client: RegistryClient;
  blobs: BlobStore;
  store: RegistryIndexRepository;
  log: Logger;
  /** The upstream host (with a port, if any) a path's first component stands for. */
  upstreamHost: (component: string) => string;
  /** false: serve only what is stored (`registry.pullThrough`). */
  pullThrough: boolean;
  /** Whether `host/repository` may be asked of its upstream (`registry.allowedUpstreams`). */
  allowed: (host: string, repository: string) => boolean;
  now?: () => Date;
}

export interface MirroredManifest {
  manifest: RegistryManifest;
  path: string;
}

/** A manifest the mirror does not have and cannot get: the distribution API's MANIFEST_UNKNOWN. */
export class ManifestUnknownError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ManifestUnknownError';
  }
}

/** A repository whose tags the mirror does not have and cannot get: the distribution API's NAME_UNKNOWN. */
export class RepositoryUnknownError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RepositoryUnknownError';
  }
}

export class RegistryMirror {
  private readonly inflight = new Map<string, Promise<MirroredManifest>>();
  private readonly inflightTags = new Map<string, Promise<string[]>>();
  private readonly now: () => Date;

  constructor(private readonly o: MirrorOptions) {
    this.now = o.now ?? (() => new Date());
  }

  async manifest(p: MirrorPath): Promise<MirroredManifest> {
    const host = this.allowedHost(p);
    const ref = referenceString(p.reference);
    const name = `${p.upstream}/${p.repository}`;
    if (p.reference.kind === 'digest') {
      const digest = p.reference.digest;
      const stored = await this.stored(digest);
      if (stored) return stored;
      if (!this.o.pullThrough) throw new ManifestUnknownError(`${name}@${ref} is not in this mirror, and it does not pull through`);
      return singleFlight(this.inflight, `${host}/${p.repository}@${ref}`, () => this.fetch(host, p.repository, ref, digest));
    }
    const tag = p.reference.tag;
    if (this.o.pullThrough) {
      try {
        const got = await singleFlight(this.inflight, `${host}/${p.repository}:${tag}`, () => this.fetch(host, p.repository, tag, undefined));
        await this.o.store.putRegistryTag(p.upstream, p.repository, tag, got.manifest.digest, this.now().toISOString());
        return got;
      } catch (err) {
        if (!(err instanceof RegistryError) || err.status !== undefined) throw err;
        const known = await this.storedTag(p.upstream, p.repository, tag);
        if (!known) throw err;
        this.o.log.warn({ image: `${name}:${tag}`, digest: known.manifest.digest, err: err.message }, 'upstream unreachable: serving the tag as last seen');
        return known;
      }
    }
    const known = await this.storedTag(p.upstream, p.repository, tag);
    if (!known) throw new ManifestUnknownError(`${name}:${tag} is not in this mirror, and it does not pull through`);
    return known;
  }

  /** The artifact cache's request for a blob, through the upstream of `p`. */
  blobRequest(p: MirrorPath): ArtifactRequest {
    if (p.reference.kind !== 'digest') throw new Error('blobs are named by digest');
    return this.o.client.blobRequest(this.allowedHost(p), p.repository, p.reference.digest);
  }

  /**
   * Every tag of a repository, sorted: asked upstream each time (one request in flight per
   * repository) and kept as the last full list, which answers when the upstream cannot be
   * reached, or always without pull-through.
   */
  async tags(p: Pick<MirrorPath, 'upstream' | 'repository'>): Promise<string[]> {
    const host = this.allowedHost(p);
    const name = `${p.upstream}/${p.repository}`;
    if (this.o.pullThrough) {
      try {
        return await singleFlight(this.inflightTags, `${host}/${p.repository}`, async () => {
          const tags = sortTags(await this.o.client.tags(host, p.repository));
          await this.o.store.putRegistryTagList(p.upstream, p.repository, { tags, updatedAt: this.now().toISOString() });
          return tags;
        });
      } catch (err) {
        if (!(err instanceof RegistryError) || err.status !== undefined) throw err;
        const known = await this.o.store.getRegistryTagList(p.upstream, p.repository);
        if (!known) throw err;
        this.o.log.warn(
          { image: name, tags: known.tags.length, since: known.updatedAt, err: err.message },
          'upstream unreachable: serving the tag list as last seen',
        );
        return known.tags;
      }
    }
    const known = await this.o.store.getRegistryTagList(p.upstream, p.repository);
    if (!known) throw new RepositoryUnknownError(`${name}: no tag list in this mirror, and it does not pull through`);
    return known.tags;
  }

  /** The upstream host of a mirror path, once the allow-list lets it be asked; else UpstreamDeniedError. */
  private allowedHost(p: Pick<MirrorPath, 'upstream' | 'repository'>): string {
    const host = this.o.upstreamHost(p.upstream);
    if (!this.o.allowed(host, p.repository)) throw new UpstreamDeniedError(`${host}/${p.repository}`);
    return host;
  }

  private async storedTag(upstream: string, repository: string, tag: string): Promise<MirroredManifest | undefined> {
    const digest = await this.o.store.getRegistryTag(upstream, repository, tag);
    return digest ? this.stored(digest) : undefined;
  }

  private async stored(digest: string): Promise<MirroredManifest | undefined> {
    const manifest = await this.o.store.getRegistryManifest(digest);
    if (!manifest) return undefined;
    const hex = digest.slice('sha256:'.length);
    if ((await this.o.blobs.size(hex)) !== manifest.size) return undefined;
    return { manifest, path: this.o.blobs.path(hex) };
  }

  /** Fetches, checks the digest asked for (if any), and stores the bytes as they came. */
  private async fetch(host: string, repository: string, reference: string, digest: string | undefined): Promise<MirroredManifest> {
    const got = await this.o.client.manifest(host, repository, reference);
    if (digest !== undefined && got.digest !== digest) {
      throw new RegistryError(`${host}/${repository}@${digest}: the upstream sent a manifest whose sha256 is ${got.digest}`, 502);
    }
    const hex = got.digest.slice('sha256:'.length);
    const tmp = this.o.blobs.tmpPath();
    await writeFile(tmp, got.bytes);
    const path = await this.o.blobs.commit(tmp, hex);
    const manifest: RegistryManifest = { digest: got.digest, mediaType: got.mediaType, size: got.bytes.length, createdAt: this.now().toISOString() };
    await this.o.store.putRegistryManifest(manifest);
    this.o.log.info({ image: `${host}/${repository}:${reference}`, digest: got.digest, mediaType: got.mediaType }, 'manifest mirrored');
    return { manifest, path };
  }

  /** A stored manifest's bytes (they are small), checked against their digest. */
  static async read(m: MirroredManifest): Promise<Buffer> {
    const bytes = await readFile(m.path);
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    if (digest !== m.manifest.digest) throw new Error(`the stored manifest ${m.manifest.digest} reads as ${digest}: the content store is damaged`);
    return bytes;
  }
}

/** One run of `run` per key at a time: callers that come while it runs share its promise. */
function singleFlight<T>(inflight: Map<string, Promise<T>>, key: string, run: () => Promise<T>): Promise<T> {
  let p = inflight.get(key);
  if (!p) {
    p = run().finally(() => inflight.delete(key));
    inflight.set(key, p);
  }
  return p;
}
