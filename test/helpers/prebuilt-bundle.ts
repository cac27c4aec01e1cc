/**
 * A precache bundle built ahead of a test by the real `edgeboot serve`, so that a later
 * edgeboot (typically inside a network namespace, where no registry is reachable) serves it
 * from its cache dir at `/bundles/<id>/<file>`.
 *
 * `prebuildBundle`:
 * 1. starts Debian's docker-registry on a random host loopback address (test/helpers/registry.ts);
 * 2. generates `images` small OCI images (default 2) and pushes them by tag. Every image has a
 *    shared base layer (16 KiB of random bytes, so each pair of images shares a layer) and a
 *    layer of its own: the last image's is `layerBytes` random bytes (default 256 KiB), the
 *    others' are at most 64 KiB. Random bytes do not compress, so the last image's `.tgz` is
 *    the one big file of the bundle (about `layerBytes`), which a test can slow down or
 *    interrupt; it sorts after the other archives (`img0-…`, `img1-…`), so a job that fetches
 *    in the bundle's order has finished a whole archive before it. The repository names carry
 *    a random suffix, so ids and digests are unique per run;
 * 3. starts edgeboot on host loopback in env mode on `dataDir` with `EDGEBOOT_CACHE_DIR=cacheDir`,
 *    POSTs `/api/v1/bundles {"images": [...]}` and polls `GET /api/v1/bundles/<id>` until the
 *    bundle is `ready` (at most 60 s);
 * 4. stops edgeboot and the registry, and returns the bundle's id and manifest, the pushed refs
 *    with their manifest digests, and the two directories.
 *
 * The bundle lives at `<cacheDir>/bundles/<id>/` (`bundle.json` plus its files); start the
 * later edgeboot with the same `dataDir` and `EDGEBOOT_CACHE_DIR` (or `cache.dir`). Nothing
 * but loopback is contacted. The caller owns both directories (they are not removed here).
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startServer, tempDir, type Teardown } from './process.js';
import { makeImage, pushImage, startRegistry } from './registry.js';

export interface PrebuiltBundle {
  id: string;
  manifest: { id: string; files: { name: string; size: number; sha256: string }[]; bytes: number };
  /** The refs the bundle was built from (`<registry host>/<repo>:<tag>`) and their manifest digests. */
  images: { ref: string; digest: string }[];
  dataDir: string;
  cacheDir: string;
}

export interface PrebuildOptions {
  dataDir: string;
  cacheDir: string;
  /** How many generated images; default 2 (at least 1). */
  images?: number;
  /** Size of the last image's own random layer; default 256 KiB. */
  layerBytes?: number;
  /** How long to wait for `ready`; default 60 s. */
  timeoutMs?: number;
}

interface BundleStatusBody {
  id: string;
  state: string;
  error?: string;
  manifest?: PrebuiltBundle['manifest'];
}

const SHARED_LAYER_BYTES = 16 * 1024;
const SMALL_LAYER_BYTES = 64 * 1024;

export async function prebuildBundle(t: Teardown, opts: PrebuildOptions): Promise<PrebuiltBundle> {
  const count = Math.max(1, opts.images ?? 2);
  const layerBytes = opts.layerBytes ?? 256 * 1024;
  mkdirSync(opts.dataDir, { recursive: true });
  mkdirSync(opts.cacheDir, { recursive: true });

  const reg = await startRegistry(t);
  try {
    const layouts = tempDir(t, 'edgeboot-prebuilt-');
    const suffix = randomBytes(4).toString('hex');
    const shared = { 'usr/lib/shared.bin': randomBytes(SHARED_LAYER_BYTES) };
    const images: PrebuiltBundle['images'] = [];
    for (let i = 0; i < count; i++) {
      const own = randomBytes(i === count - 1 ? layerBytes : Math.min(layerBytes, SMALL_LAYER_BYTES));
      const img = makeImage(join(layouts, `img${i}`), { layers: [shared, { [`opt/img${i}.bin`]: own }], tag: 'x' });
      const repoTag = `precache/img${i}-${suffix}:v1`;
      await pushImage(reg, img, repoTag);
      images.push({ ref: reg.ref(repoTag), digest: img.digest });
    }

    const srv = await startServer(t, {
      dataDir: opts.dataDir,
      env: { EDGEBOOT_CACHE_DIR: opts.cacheDir, EDGEBOOT_REGISTRY_INSECURE_REGISTRIES: reg.host },
    });
    try {
      const admin = { authorization: `Bearer ${srv.token}`, 'content-type': 'application/json' };
      const started = await fetch(`${srv.url}/api/v1/bundles`, { method: 'POST', headers: admin, body: JSON.stringify({ images: images.map((i) => i.ref) }) });
      if (started.status !== 202 && started.status !== 200) throw new Error(`POST /api/v1/bundles: ${started.status} ${await started.text()}`);
      const { id } = (await started.json()) as BundleStatusBody;
      let status: BundleStatusBody = { id, state: 'building' };
      const limit = opts.timeoutMs ?? 60_000;
      for (const end = Date.now() + limit; status.state === 'building' && Date.now() < end;) {
        await sleep(200);
        const r = await fetch(`${srv.url}/api/v1/bundles/${id}`, { headers: admin });
        status = (await r.json()) as BundleStatusBody;
      }
      if (status.state !== 'ready' || !status.manifest) {
        throw new Error(
          `bundle ${id} is ${status.state} after ${limit} ms${status.error ? `: ${status.error}` : ''}; edgeboot log tail:\n${srv.logLines
            .slice(-10)
            .map((l) => JSON.stringify(l))
            .join('\n')}`,
        );
      }
      const m = status.manifest;
      return { id, manifest: { id: m.id, files: m.files, bytes: m.bytes }, images, dataDir: opts.dataDir, cacheDir: opts.cacheDir };
    } finally {
      await srv.stop();
    }
  } finally {
    await reg.stop();
  }
}
