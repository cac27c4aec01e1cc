/**
 * The read-only pull-through mirror behind `/v2/`: manifests kept byte for byte as blobs of the
 * content store (named by the sha256 of their bytes, with their media type in the store), tags
 * remembered per upstream repository, blobs fetched through the artifact cache (one entry and
 * one upstream fetch per digest, verified before it counts).
 *
 * A manifest by digest never changes: once stored it is served without asking upstream. A tag
 * is asked upstream each time and answered from the store when the upstream cannot be reached
 * (stale on error), so a site whose WAN is down still pulls what it pulled before.
 */
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { ArtifactRequest } from '../cache/artifacts.js';
import type { BlobStore } from '../cache/blobs.js';
import type { RegistryManifest, Store } from '../store/store.js';
import { RegistryClient, RegistryError } from './client.js';
import { referenceString, type MirrorPath } from './reference.js';

export interface MirrorOptions {
  client: RegistryClient;
  blobs: BlobStore;
  store: Store;
  log: Logger;
  /** The upstream host (with a port, if any) a path's first component stands for. */
  upstreamHost: (component: string) => string;
  /** false: serve only what is stored (`registry.pullThrough`). */
  pullThrough: boolean;
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

export class RegistryMirror {
  private readonly inflight = new Map<string, Promise<MirroredManifest>>();
  private readonly now: () => Date;

  constructor(private readonly o: MirrorOptions) {
    this.now = o.now ?? (() => new Date());
  }

  async manifest(p: MirrorPath): Promise<MirroredManifest> {
    const host = this.o.upstreamHost(p.upstream);
    const ref = referenceString(p.reference);
    const name = `${p.upstream}/${p.repository}`;
    if (p.reference.kind === 'digest') {
      const digest = p.reference.digest;
      const stored = await this.stored(digest);
      if (stored) return stored;
      if (!this.o.pullThrough) throw new ManifestUnknownError(`${name}@${ref} is not in this mirror, and it does not pull through`);
      return this.single(`${host}/${p.repository}@${ref}`, () => this.fetch(host, p.repository, ref, digest));
    }
    const tag = p.reference.tag;
    if (this.o.pullThrough) {
      try {
        const got = await this.single(`${host}/${p.repository}:${tag}`, () => this.fetch(host, p.repository, tag, undefined));
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
    return this.o.client.blobRequest(this.o.upstreamHost(p.upstream), p.repository, p.reference.digest);
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

  private single(key: string, run: () => Promise<MirroredManifest>): Promise<MirroredManifest> {
    let p = this.inflight.get(key);
    if (!p) {
      p = run().finally(() => this.inflight.delete(key));
      this.inflight.set(key, p);
    }
    return p;
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
