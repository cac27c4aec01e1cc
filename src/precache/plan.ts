/**
 * The plan the live environment's job carries out (pure): which disk gets the `data`
 * partition, how big it is, and every bundle file with its size, sha256 and URL.
 */
import type { PrecacheConfig } from '../config/config.js';
import type { DiskInfo, Inventory } from '../machines/model.js';
import type { BundleFile } from './bundles.js';

const GiB = 2 ** 30;

export interface PlanFile extends BundleFile {
  url: string;
}

export interface PrecachePlan {
  disk: string;
  /** What the disk must hold at least: the partition and the install's reserve. */
  requiredBytes: number;
  /** GPT partition 1, named `data`, at the end of the disk: what `--save-partlabel data` keeps. */
  partition: { number: 1; label: 'data'; sizeGiB: number; filesystem: 'xfs' };
  bundle: { id: string; bytes: number };
  files: PlanFile[];
  after: PrecacheConfig['after'];
  progressSeconds: number;
}

export type PlanProblem = 'no_inventory' | 'no_disk' | 'disk_too_small';

export type PlanOutcome = { ok: true; plan: PrecachePlan } | { ok: false; problem: PlanProblem; reason: string };

export interface PlanInput {
  inventory: Inventory | undefined;
  /** The reservation's `precache.disk`. */
  disk?: string;
  /** The reservation's `precache.sizeGiB`. */
  sizeGiB?: number;
  bundle: { id: string; bytes: number; files: BundleFile[] };
  config: PrecacheConfig;
  fileUrl: (name: string) => string;
}

/** Room for the bundle and for the stock hooks, which unpack several archives beside it. */
export function partitionGiB(bundleBytes: number): number {
  return Math.max(1, Math.ceil((bundleBytes * 1.5) / GiB));
}

/** GiB to one decimal, rounded down for what a disk holds and up for what is needed, so the two never read alike. */
export const gib = (bytes: number, round: (x: number) => number = Math.floor): string => `${(round((bytes / GiB) * 10) / 10).toFixed(1)} GiB`;

/** A disk the job may write: a whole, writable, fixed disk. */
function eligible(d: DiskInfo): boolean {
  return d.type === 'disk' && !d.readOnly && !d.removable && d.sizeBytes > 0;
}

export function makePlan(input: PlanInput): PlanOutcome {
  const { inventory, config, bundle } = input;
  const sizeGiB = input.sizeGiB ?? partitionGiB(bundle.bytes);
  const requiredBytes = (sizeGiB + config.installReserveGiB) * GiB;
  const need = `${sizeGiB} GiB for the data partition and ${config.installReserveGiB} GiB for the install (precache.installReserveGiB)`;
  if (!inventory) return { ok: false, problem: 'no_inventory', reason: 'no inventory yet: the job posts it before asking for the plan' };
  let disk: DiskInfo | undefined;
  if (input.disk !== undefined) {
    const wanted = input.disk;
    disk = inventory.disks.find((d) => d.path === wanted || `/dev/${d.name}` === wanted);
    // A stable path (/dev/disk/by-path/…) is not in the inventory: the job checks its size there.
    if (!disk && !wanted.startsWith('/dev/disk/')) {
      return {
        ok: false,
        problem: 'no_disk',
        reason: `precache.disk ${wanted} is not among the disks the machine reported (${inventory.disks.map((d) => d.path).join(', ') || 'none'})`,
      };
    }
    if (disk?.readOnly) return { ok: false, problem: 'no_disk', reason: `precache.disk ${wanted} is read-only` };
  } else {
    const candidates = inventory.disks.filter(eligible);
    if (candidates.length === 0) {
      return {
        ok: false,
        problem: 'no_disk',
        reason: `the machine reported no writable fixed disk (${inventory.disks.map((d) => `${d.path} ${d.type}${d.removable ? ' removable' : ''}${d.readOnly ? ' read-only' : ''}`).join(', ') || 'no disks'})`,
      };
    }
    disk = candidates.find((d) => d.sizeBytes >= requiredBytes) ?? candidates[0];
  }
  if (disk && disk.sizeBytes < requiredBytes) {
    return {
      ok: false,
      problem: 'disk_too_small',
      reason: `disk ${disk.path} is too small: it holds ${gib(disk.sizeBytes, Math.floor)}; the plan needs ${gib(requiredBytes, Math.ceil)}: ${need}`,
    };
  }
  return {
    ok: true,
    plan: {
      disk: disk?.path ?? (input.disk as string),
      requiredBytes,
      partition: { number: 1, label: 'data', sizeGiB, filesystem: 'xfs' },
      bundle: { id: bundle.id, bytes: bundle.bytes },
      files: bundle.files.map((f) => ({ ...f, url: input.fileUrl(f.name) })),
      after: config.after,
      progressSeconds: config.progressSeconds,
    },
  };
}
