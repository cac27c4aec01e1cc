/**
 * Pre-warming images: a job that resolves a release (its component images, filtered) and any
 * extra images, then pulls every manifest (every platform of an index, as `skopeo copy --all`)
 * and every blob into the mirror, N images at a time. Blobs go through the artifact cache, so
 * a blob shared by several images, or already cached, leaves the upstream once or not at all;
 * a job run again after an interruption fetches only what is still missing.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { ArtifactCache } from '../cache/artifacts.js';
import type { ImageFilter } from './filter.js';
import { RegistryMirror } from './mirror.js';
import { imageRefString, parseImageRef, type ImageRef } from './reference.js';
import { mirrorPath, parseManifest, resolveRelease, type Descriptor, type ReleaseInfo } from './release.js';

export interface PullSpec {
  release?: string;
  images: string[];
  filter?: ImageFilter;
  parallel: number;
  /** The release's platform; default amd64. */
  architecture?: string;
}

export interface PullImageResult {
  ref: string;
  /** `name` in a release, or the ref itself for an extra image. */
  name: string;
  kind: 'release' | 'component' | 'image';
  /** The top manifest's digest, once pulled. */
  digest?: string;
  /**
   * Its name in an oc-mirror style `mapping.txt` (`<repo>:<tag>`): `openshift/release:<version>-<arch>-<name>`
   * for a component, `openshift/release-images:<version>-<arch>` for the release, `<repository>:<tag>`
   * for an image given by tag; none for one given by digest alone.
   */
  mapping?: string;
  state: 'pending' | 'fetched' | 'cached' | 'failed';
  bytes: number;
  error?: string;
}

export interface PullJob {
  id: string;
  state: 'running' | 'done' | 'failed';
  release?: { ref: string; digest: string; version: string; architecture: string };
  images: { total: number; fetched: number; cached: number; failed: number; pending: number };
  blobs: { total: number; fetched: number; cached: number };
  /** Bytes of every image's blobs (shared ones once per image), what left the upstream, and the difference. */
  bytes: { total: number; upstream: number; deduplicated: number };
  excluded: { name: string; ref: string; pattern: string; mapping?: string }[];
  failures: { ref: string; error: string }[];
  error?: string;
  startedAt: string;
  finishedAt?: string;
  seconds: number;
}

const KEPT_JOBS = 100;

/** The upstream of a job's pulls: the server's mirror, or one with the job's own pull secret. */
export type MirrorFor = () => RegistryMirror;

export class ImagePuller {
  private readonly jobs = new Map<string, { job: PullJob; started: number; images: PullImageResult[]; ended: Promise<void> }>();

  constructor(private readonly o: { cache: ArtifactCache; log: Logger }) {}

  get(id: string): PullJob | undefined {
    const j = this.jobs.get(id);
    if (!j) return undefined;
    if (j.job.state === 'running') j.job.seconds = (Date.now() - j.started) / 1000;
    return j.job;
  }

  /** Every job kept (the last KEPT_JOBS), newest first. */
  list(): PullJob[] {
    return [...this.jobs.keys()].reverse().flatMap((id) => this.get(id) ?? []);
  }

  /** Resolves when the job has ended, done or failed. */
  async ended(id: string): Promise<PullJob | undefined> {
    const e = this.jobs.get(id);
    if (!e) return undefined;
    await e.ended;
    return this.get(id);
  }

  /** Every image of a job with its outcome. */
  images(id: string): PullImageResult[] | undefined {
    return this.jobs.get(id)?.images;
  }

  /** Starts a job; refs are checked first, so a bad one is refused before anything runs. */
  start(spec: PullSpec, mirror: MirrorFor): PullJob {
    const extra = spec.images.map((s) => {
      const r = parseImageRef(s);
      if ('error' in r) throw new Error(r.error);
      return r;
    });
    const release = spec.release === undefined ? undefined : parseImageRef(spec.release);
    if (release && 'error' in release) throw new Error(release.error);
    const id = randomBytes(8).toString('hex');
    const job: PullJob = {
      id,
      state: 'running',
      images: { total: 0, fetched: 0, cached: 0, failed: 0, pending: 0 },
      blobs: { total: 0, fetched: 0, cached: 0 },
      bytes: { total: 0, upstream: 0, deduplicated: 0 },
      excluded: [],
      failures: [],
      startedAt: new Date().toISOString(),
      seconds: 0,
    };
    const entry = { job, started: Date.now(), images: [] as PullImageResult[], ended: Promise.resolve() };
    this.jobs.set(id, entry);
    // Finished jobs are kept for their summaries, the oldest dropped past KEPT_JOBS.
    for (const [old, e] of this.jobs) {
      if (this.jobs.size <= KEPT_JOBS) break;
      if (e.job.state !== 'running') this.jobs.delete(old);
    }
    entry.ended = this.run(entry, spec, release, extra, mirror()).catch((err: unknown) => {
      const message = (err as Error).message;
      job.state = 'failed';
      job.error = message;
      this.finish(entry);
      this.o.log.error({ job: id, err: message }, 'image pull job failed');
    });
    return job;
  }

  private finish(entry: { job: PullJob; started: number }): void {
    entry.job.finishedAt = new Date().toISOString();
    entry.job.seconds = (Date.now() - entry.started) / 1000;
    entry.job.bytes.deduplicated = Math.max(0, entry.job.bytes.total - entry.job.bytes.upstream);
  }

  private async run(
    entry: { job: PullJob; started: number; images: PullImageResult[] },
    spec: PullSpec,
    release: ImageRef | undefined,
    extra: ImageRef[],
    mirror: RegistryMirror,
  ): Promise<void> {
    const { job } = entry;
    const todo: { ref: ImageRef; name: string; kind: PullImageResult['kind']; mapping?: string }[] = [];
    const seenBlobs = new Map<string, Promise<boolean>>();
    if (release) {
      const info: ReleaseInfo = await resolveRelease(mirror, release, spec.architecture ?? 'amd64', async (layer) => {
        await this.ensureBlob(mirror, release, layer, job, seenBlobs);
        return (await this.o.cache.get(this.blobRequest(mirror, release, layer))).path;
      });
      job.release = { ref: imageRefString(release), digest: info.digest, version: info.version, architecture: info.architecture };
      todo.push({ ref: release, name: 'release', kind: 'release', mapping: `openshift/release-images:${info.version}-${info.architecture}` });
      for (const c of info.components) {
        const mapping = `openshift/release:${info.version}-${info.architecture}-${c.name}`;
        const pattern = spec.filter?.excludes(c.image, mapping, c.name);
        if (pattern !== undefined) {
          job.excluded.push({ name: c.name, ref: c.image, pattern, mapping });
          continue;
        }
        const r = parseImageRef(c.image);
        if ('error' in r) {
          job.failures.push({ ref: c.image, error: r.error });
          continue;
        }
        todo.push({ ref: r, name: c.name, kind: 'component', mapping });
      }
    }
    for (const r of extra) {
      const s = imageRefString(r);
      const pattern = spec.filter?.excludes(s);
      if (pattern !== undefined) job.excluded.push({ name: s, ref: s, pattern });
      else {
        const tag = r.reference.kind === 'tag' ? r.reference.tag : r.tag;
        todo.push({ ref: r, name: s, kind: 'image', ...(tag !== undefined && { mapping: `${r.repository}:${tag}` }) });
      }
    }
    entry.images = todo.map((t) => ({
      ref: imageRefString(t.ref),
      name: t.name,
      kind: t.kind,
      ...(t.mapping !== undefined && { mapping: t.mapping }),
      state: 'pending',
      bytes: 0,
    }));
    job.images.total = todo.length;
    job.images.pending = todo.length;
    job.images.failed = job.failures.length;
    let next = 0;
    const worker = async () => {
      while (next < todo.length) {
        const i = next++;
        const item = todo[i] as { ref: ImageRef };
        const result = entry.images[i] as PullImageResult;
        try {
          const fetched = await this.pullImage(mirror, item.ref, job, seenBlobs, result);
          result.state = fetched ? 'fetched' : 'cached';
          if (fetched) job.images.fetched++;
          else job.images.cached++;
        } catch (err) {
          result.state = 'failed';
          result.error = (err as Error).message;
          job.images.failed++;
          job.failures.push({ ref: result.ref, error: result.error });
          this.o.log.warn({ job: job.id, image: result.ref, err: result.error }, 'image pull failed');
        }
        job.images.pending--;
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, Math.min(spec.parallel, todo.length || 1)) }, worker));
    job.state = 'done';
    this.finish(entry);
    this.o.log.info({ job: job.id, images: job.images, bytes: job.bytes, seconds: job.seconds }, 'image pull job done');
  }

  /** Every manifest and blob of one image; true when some blob came from the upstream. */
  private async pullImage(mirror: RegistryMirror, ref: ImageRef, job: PullJob, seen: Map<string, Promise<boolean>>, result: PullImageResult): Promise<boolean> {
    let fetched = false;
    const blobs: Descriptor[] = [];
    const visit = async (reference: ImageRef['reference']) => {
      const m = await mirror.manifest(mirrorPath(ref, reference));
      result.digest ??= m.manifest.digest;
      const parsed = parseManifest(await RegistryMirror.read(m), imageRefString(ref));
      for (const child of parsed.manifests ?? []) {
        const hex = child.digest.slice('sha256:'.length);
        await visit({ kind: 'digest', digest: child.digest, hex });
      }
      if (parsed.config) blobs.push(parsed.config);
      blobs.push(...(parsed.layers ?? []));
    };
    await visit(ref.reference);
    for (const b of blobs) {
      result.bytes += b.size;
      job.bytes.total += b.size;
      if (await this.ensureBlob(mirror, ref, b, job, seen)) fetched = true;
    }
    return fetched;
  }

  /** A blob in the cache, once per job; true if this job had it come from the upstream. */
  private ensureBlob(mirror: RegistryMirror, ref: ImageRef, b: Descriptor, job: PullJob, seen: Map<string, Promise<boolean>>): Promise<boolean> {
    let pending = seen.get(b.digest);
    if (!pending) {
      job.blobs.total++;
      pending = this.pullBlob(mirror, ref, b, job).then((came) => {
        if (came) job.blobs.fetched++;
        else job.blobs.cached++;
        return came;
      });
      seen.set(b.digest, pending);
    }
    return pending;
  }

  private blobRequest(mirror: RegistryMirror, ref: ImageRef, b: Descriptor) {
    const hex = b.digest.slice('sha256:'.length);
    return mirror.blobRequest({ upstream: ref.host, repository: ref.repository, what: 'blobs', reference: { kind: 'digest', digest: b.digest, hex } });
  }

  /** One blob into the cache; true if it had to come from the upstream. */
  private async pullBlob(mirror: RegistryMirror, ref: ImageRef, b: Descriptor, job: PullJob): Promise<boolean> {
    const opened = await this.o.cache.open(this.blobRequest(mirror, ref, b));
    if (opened.kind === 'cached') return false;
    const d = opened.download;
    let counted = 0;
    const onProgress = () => {
      // A download that had to start over begins again at 0: count only what is new.
      if (d.written > counted) job.bytes.upstream += d.written - counted;
      counted = d.written;
    };
    const stop = d.onChange(onProgress);
    try {
      await d.done;
    } finally {
      stop();
      onProgress();
    }
    return true;
  }
}
