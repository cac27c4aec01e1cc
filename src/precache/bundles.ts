/**
 * Precache bundles in factory-precaching-cli's layout, what the stock node-side hooks
 * (extract-ai.sh / extract-ocp.sh) read from the `data` partition: `mapping.txt`
 * (`<source by digest>=<repo>:<tag>`), `ai-images.txt` and `ocp-images.txt` (refs by digest),
 * `ignored-images.txt` (what the filter left out), and one `<name>@sha256_<hex>.tgz` per image:
 * a gzip'd tar of a containers/image `dir:` layout under one top directory of the same name
 * (`version`, `manifest.json` byte for byte, `<instance-hex>.manifest.json` per platform of an
 * index, one file per blob named by its hex digest). Plus `bundle.json`: every file with its
 * size and sha256, which the live environment's job downloads and verifies.
 *
 * A bundle is built once per spec (its id is the spec's hash) and kept. The images come
 * through an image job (the mirror and the artifact cache: each blob fetched once); the
 * archives stream from the content store and are never held in memory.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import type { Logger } from 'pino';
import type { ArtifactCache } from '../cache/artifacts.js';
import type { ImageFilter } from '../registry/filter.js';
import { RegistryMirror } from '../registry/mirror.js';
import type { ImagePuller, PullImageResult, PullJob } from '../registry/puller.js';
import { parseImageRef } from '../registry/reference.js';
import { mirrorPath, parseManifest } from '../registry/release.js';
import { packTar, type TarEntry } from '../registry/tar.js';

export interface BundleSpec {
  release?: string;
  /** Images the live (discovery) stage loads: the assisted installer's agent, installer, … */
  aiImages: string[];
  images: string[];
  /** The filter's text, as given (it is part of what the bundle is). */
  filter?: string;
  architecture: string;
}

export interface BundleFile {
  name: string;
  size: number;
  sha256: string;
}

export interface BundleManifest {
  id: string;
  spec: BundleSpec;
  release?: PullJob['release'];
  files: BundleFile[];
  /** Bytes of all files. */
  bytes: number;
  createdAt: string;
  seconds: number;
}

export interface BundleStatus {
  id: string;
  state: 'building' | 'ready' | 'failed';
  /** The image job feeding the build, while it runs. */
  job?: PullJob;
  /** Archives written so far, of all. */
  archives?: { done: number; total: number };
  error?: string;
  manifest?: BundleManifest;
}

/** Release components the discovery stage of a single-node install needs too (factory-precaching-cli's list). */
const DISCOVERY_COMPONENTS = new Set([
  'must-gather',
  'hyperkube',
  'cloud-credential-operator',
  'cluster-policy-controller',
  'pod',
  'cluster-config-operator',
  'cluster-etcd-operator',
  'cluster-kube-controller-manager-operator',
  'cluster-kube-scheduler-operator',
  'machine-config-operator',
  'etcd',
  'cluster-bootstrap',
  'cluster-ingress-operator',
  'cluster-kube-apiserver-operator',
]);

const DIR_VERSION = 'Directory Transport Version: 1.1\n';
const MANIFEST_FILE = 'bundle.json';

export function bundleId(spec: BundleSpec): string {
  const canonical = JSON.stringify({ r: spec.release ?? null, a: spec.aiImages, i: spec.images, f: spec.filter ?? null, arch: spec.architecture });
  return createHash('sha256').update(canonical).digest('hex').slice(0, 16);
}

/** `<last path component>@sha256_<hex>`: the archive's name the extract script derives from a ref by digest. */
export function archiveName(repository: string, digest: string): string {
  return `${repository.slice(repository.lastIndexOf('/') + 1)}@${digest.replace(':', '_')}`;
}

/** Which list an image goes on, by factory-precaching-cli's rules. */
export function imageGroups(image: Pick<PullImageResult, 'kind' | 'name' | 'ref'>, isAi: boolean): { ai: boolean; ocp: boolean } {
  if (image.kind === 'release') return { ai: true, ocp: true };
  if (image.kind === 'component') return { ai: DISCOVERY_COMPONENTS.has(image.name), ocp: true };
  const repository = image.ref.replace(/^[^/]+\//, '').replace(/[:@].*$/, '');
  const ai = isAi || /(^|\/)multicluster-engine\/assisted-installer/.test(repository);
  return { ai, ocp: !ai || repository.includes('assisted-installer-reporter') };
}

export class BundleBuilder {
  private readonly building = new Map<string, BundleStatus>();
  /** Ready bundles never change: each manifest is read from its bundle.json once. */
  private readonly ready = new Map<string, BundleManifest>();

  constructor(
    private readonly o: {
      dir: string;
      puller: ImagePuller;
      cache: ArtifactCache;
      log: Logger;
      /** The mirror an image job of this bundle reads through. */
      mirror: () => RegistryMirror;
    },
  ) {}

  /** The builds running now. */
  buildsRunning(): BundleStatus[] {
    return [...this.building.values()];
  }

  dirOf(id: string): string {
    return join(this.o.dir, id);
  }

  /** A ready bundle's manifest from its directory, a running build, or undefined. */
  async status(id: string): Promise<BundleStatus | undefined> {
    const running = this.building.get(id);
    if (running && running.state !== 'ready') {
      if (running.job) running.job = this.o.puller.get(running.job.id) ?? running.job;
      return running;
    }
    const manifest = this.ready.get(id) ?? (await this.readManifest(id));
    if (!manifest) return running;
    this.ready.set(id, manifest);
    return { id, state: 'ready', manifest };
  }

  private async readManifest(id: string): Promise<BundleManifest | undefined> {
    try {
      return JSON.parse(await readFile(join(this.dirOf(id), MANIFEST_FILE), 'utf8')) as BundleManifest;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  /** Starts building the bundle of `spec` unless it is built or being built; its status. */
  async build(spec: BundleSpec, filter: ImageFilter | undefined, parallel: number): Promise<BundleStatus> {
    const id = bundleId(spec);
    const known = await this.status(id);
    if (known && known.state !== 'failed') return known;
    const job = this.o.puller.start(
      {
        ...(spec.release !== undefined && { release: spec.release }),
        images: [...spec.aiImages, ...spec.images],
        ...(filter && { filter }),
        parallel,
        architecture: spec.architecture,
      },
      this.o.mirror,
    );
    const status: BundleStatus = { id, state: 'building', job };
    this.building.set(id, status);
    void this.write(id, spec, job.id, status).catch((err: unknown) => {
      const message = (err as Error).message;
      status.state = 'failed';
      status.error = message;
      this.o.log.error({ bundle: id, err: message }, 'bundle build failed');
    });
    return status;
  }

  private async write(id: string, spec: BundleSpec, jobId: string, status: BundleStatus): Promise<void> {
    const started = Date.now();
    const job = await this.o.puller.ended(jobId);
    status.job = job;
    if (job?.state !== 'done') throw new Error(`pulling the images failed: ${job?.error ?? 'the job is gone'}`);
    if (job.failures.length > 0)
      throw new Error(`${job.failures.length} images could not be pulled: ${job.failures.map((f) => `${f.ref}: ${f.error}`).join('; ')}`);
    const images = (this.o.puller.images(jobId) ?? []).filter((i) => i.digest !== undefined);
    const aiRefs = new Set(spec.aiImages.map((s) => normaliseRef(s)));
    const dir = this.dirOf(id);
    const tmp = `${dir}.tmp-${process.pid}`;
    await rm(tmp, { recursive: true, force: true });
    await mkdir(tmp, { recursive: true });
    const mirror = this.o.mirror();
    const files: BundleFile[] = [];
    const mapping: string[] = [];
    const ai: string[] = [];
    const ocp: string[] = [];
    const written = new Set<string>();
    status.archives = { done: 0, total: images.length };
    for (const image of images) {
      const ref = parseImageRef(image.ref);
      if ('error' in ref) throw new Error(ref.error);
      const digest = image.digest as string;
      const byDigest = `${ref.host}/${ref.repository}@${digest}`;
      const name = archiveName(ref.repository, digest);
      if (image.mapping !== undefined) mapping.push(`${byDigest}=${image.mapping}`);
      const groups = imageGroups(image, aiRefs.has(normaliseRef(image.ref)));
      if (groups.ai) ai.push(byDigest);
      if (groups.ocp) ocp.push(byDigest);
      if (!written.has(name)) {
        written.add(name);
        files.push(await this.writeArchive(join(tmp, `${name}.tgz`), name, mirror, ref, digest));
      }
      status.archives.done++;
    }
    const ignored = job.excluded.map((e) => (e.mapping ? `${e.ref}=${e.mapping}` : e.ref));
    for (const [file, lines] of [
      ['mapping.txt', mapping],
      ['ai-images.txt', ai],
      ['ocp-images.txt', ocp],
      ['ignored-images.txt', ignored],
    ] as const) {
      const text = lines.length > 0 ? `${[...new Set(lines)].join('\n')}\n` : '';
      await writeFile(join(tmp, file), text);
      files.push({ name: file, size: Buffer.byteLength(text), sha256: createHash('sha256').update(text).digest('hex') });
    }
    files.sort((a, b) => a.name.localeCompare(b.name));
    const manifest: BundleManifest = {
      id,
      spec,
      ...(job.release && { release: job.release }),
      files,
      bytes: files.reduce((n, f) => n + f.size, 0),
      createdAt: new Date().toISOString(),
      seconds: (Date.now() - started) / 1000,
    };
    await writeFile(join(tmp, MANIFEST_FILE), `${JSON.stringify(manifest, null, 2)}\n`);
    await rm(dir, { recursive: true, force: true });
    await rename(tmp, dir);
    status.state = 'ready';
    status.manifest = manifest;
    this.o.log.info({ bundle: id, files: files.length, bytes: manifest.bytes, seconds: manifest.seconds }, 'bundle built');
  }

  /**
   * One image's archive: the tar streams from the store (manifests read, blobs piped), through
   * gzip and a sha256 into the file. Level 0 (stored blocks): the layers are compressed already,
   * and the extract side only needs the gzip format.
   */
  private async writeArchive(
    path: string,
    name: string,
    mirror: RegistryMirror,
    ref: { host: string; repository: string },
    digest: string,
  ): Promise<BundleFile> {
    const cache = this.o.cache;
    const mtime = new Date();
    const hash = createHash('sha256');
    async function* entries(): AsyncGenerator<TarEntry> {
      yield { path: name, type: 'directory', mode: 0o755, mtime };
      const file = (file: string, body: TarEntry['body']): TarEntry => ({ path: `${name}/${file}`, type: 'file', mode: 0o644, mtime, body });
      yield file('version', Buffer.from(DIR_VERSION));
      const blobs = new Map<string, number>();
      const visit = async function* (d: string, top: boolean): AsyncGenerator<TarEntry> {
        const hex = d.slice('sha256:'.length);
        const m = await mirror.manifest(mirrorPath({ host: ref.host, repository: ref.repository, reference: { kind: 'digest', digest: d, hex } }));
        const bytes = await RegistryMirror.read(m);
        yield file(top ? 'manifest.json' : `${hex}.manifest.json`, bytes);
        const parsed = parseManifest(bytes, `${ref.host}/${ref.repository}@${d}`);
        for (const child of parsed.manifests ?? []) yield* visit(child.digest, false);
        for (const b of [...(parsed.config ? [parsed.config] : []), ...(parsed.layers ?? [])]) blobs.set(b.digest, b.size);
      };
      yield* visit(digest, true);
      for (const [d, size] of blobs) {
        const cached = await cache.get(
          mirror.blobRequest({ upstream: ref.host, repository: ref.repository, what: 'blobs', reference: { kind: 'digest', digest: d, hex: d.slice(7) } }),
        );
        const actual = (await stat(cached.path)).size;
        if (actual !== size) throw new Error(`blob ${d} is ${actual} bytes in the store, its manifest says ${size}`);
        yield file(d.slice(7), { size, open: () => createReadStream(cached.path, { highWaterMark: 1 << 20 }) });
      }
    }
    let size = 0;
    const tap = new Transform({
      transform(chunk: Buffer, _enc, done) {
        hash.update(chunk);
        size += chunk.length;
        done(null, chunk);
      },
    });
    // 1 MiB output chunks: gzip's default 16 KiB made the thread pool the bottleneck (bench/bundle-build.sh).
    await pipeline(packTar(entries()), createGzip({ level: 0, chunkSize: 1 << 20 }), tap, createWriteStream(path));
    return { name: `${name}.tgz`, size, sha256: hash.digest('hex') };
  }
}

function normaliseRef(s: string): string {
  return s.trim().replace(/^docker:\/\//, '');
}
