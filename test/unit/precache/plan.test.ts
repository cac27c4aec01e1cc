/** The precache plan (src/precache/plan.ts): which disk, how big a partition, which files from where. */
import t, { type Test } from 'tap';
import type { PrecacheConfig } from '../../../src/config/config.js';
import type { DiskInfo, Inventory } from '../../../src/machines/model.js';
import type { BundleFile } from '../../../src/precache/bundles.js';
import { makePlan, partitionGiB, type PlanInput, type PlanOutcome, type PrecachePlan } from '../../../src/precache/plan.js';

const GiB = 2 ** 30;

const CONFIG: PrecacheConfig = { after: 'reboot', heartbeatSeconds: 900, maxBoots: 3, installReserveGiB: 120, progressSeconds: 10 };

const FILES: BundleFile[] = [
  { name: 'release.tgz', size: 3 * GiB, sha256: 'a'.repeat(64) },
  { name: 'images-0001.tgz', size: 7 * GiB + 123, sha256: 'b'.repeat(64) },
];
const BUNDLE = { id: '0123456789abcdef', bytes: FILES.reduce((n, f) => n + f.size, 0), files: FILES };

function disk(name: string, sizeGiB: number, extra: Partial<DiskInfo> = {}): DiskInfo {
  return { path: `/dev/${name}`, name, sizeBytes: sizeGiB * GiB, type: 'disk', removable: false, readOnly: false, ...extra };
}

function inventory(...disks: DiskInfo[]): Inventory {
  return { disks, macs: ['52:54:00:ab:cd:ef'], reportedAt: '2025-01-01T00:00:00.000Z' };
}

const fileUrl = (name: string): string => `http://10.77.0.1:8080/api/v1/bundles/${BUNDLE.id}/files/${encodeURIComponent(name)}`;

function input(over: Partial<PlanInput>): PlanInput {
  return { inventory: inventory(disk('sda', 1000)), bundle: BUNDLE, config: CONFIG, fileUrl, ...over };
}

function planOf(t: Test, outcome: PlanOutcome): PrecachePlan | undefined {
  if (outcome.ok) return outcome.plan;
  t.fail(`expected a plan, got ${outcome.problem}: ${outcome.reason}`);
  return undefined;
}

function problemOf(t: Test, outcome: PlanOutcome): { problem: string; reason: string } | undefined {
  if (!outcome.ok) return outcome;
  t.fail(`expected a problem, got a plan for ${outcome.plan.disk}`);
  return undefined;
}

/** What the default partition must be: the smallest whole GiB holding 1.5 × the bundle, at least 1. */
function isDefaultSize(bytes: number, n: number): boolean {
  return Number.isInteger(n) && n >= 1 && n * GiB >= bytes * 1.5 && (n === 1 || (n - 1) * GiB < bytes * 1.5);
}

t.test('partitionGiB: 1.5 × the bundle rounded up to whole GiB, at least 1', async (t) => {
  for (const bytes of [0, 1, GiB / 2, (2 * GiB) / 3 - 1, GiB, 2 * GiB, 2 * GiB + 1, 10 * GiB + 7, 333 * GiB - 1, 4096 * GiB]) {
    const n = partitionGiB(bytes);
    t.ok(isDefaultSize(bytes, n), `${bytes} bytes -> ${n} GiB`);
  }
  t.equal(partitionGiB(0), 1, 'an empty bundle still gets 1 GiB');
  t.equal(partitionGiB(2 * GiB), 3, 'exactly 3 GiB for 2 GiB: no extra GiB when it fits');
  t.equal(partitionGiB(2 * GiB + 1), 4, 'one byte more needs a fourth GiB');
});

t.test('the plan: partition, bundle, files with URLs, config settings, required bytes', async (t) => {
  for (const config of [CONFIG, { ...CONFIG, after: 'poweroff' as const, progressSeconds: 37, installReserveGiB: 0 }]) {
    const plan = planOf(t, makePlan(input({ config })));
    if (!plan) continue;
    const sizeGiB = partitionGiB(BUNDLE.bytes);
    t.ok(isDefaultSize(BUNDLE.bytes, plan.partition.sizeGiB), 'the default size comes from the bundle bytes');
    t.same(plan.partition, { number: 1, label: 'data', sizeGiB, filesystem: 'xfs' });
    t.equal(plan.requiredBytes, (sizeGiB + config.installReserveGiB) * GiB, 'partition and install reserve');
    t.strictSame(plan.bundle, { id: BUNDLE.id, bytes: BUNDLE.bytes }, 'the bundle without its file list');
    t.strictSame(
      plan.files,
      FILES.map((f) => ({ name: f.name, size: f.size, sha256: f.sha256, url: fileUrl(f.name) })),
      'every file, in order, with its URL',
    );
    t.equal(plan.after, config.after, 'after from the config');
    t.equal(plan.progressSeconds, config.progressSeconds, 'progressSeconds from the config');
  }
});

t.test('fileUrl is asked once per file, by name', async (t) => {
  const asked: string[] = [];
  const plan = planOf(t, makePlan(input({ fileUrl: (name) => (asked.push(name), `x:${name}`) })));
  t.same(
    asked,
    FILES.map((f) => f.name),
  );
  t.same(
    plan?.files.map((f) => f.url),
    FILES.map((f) => `x:${f.name}`),
  );
});

t.test("the reservation's sizeGiB wins over the default", async (t) => {
  const plan = planOf(t, makePlan(input({ sizeGiB: 250 })));
  t.equal(plan?.partition.sizeGiB, 250);
  t.equal(plan?.requiredBytes, (250 + CONFIG.installReserveGiB) * GiB);
});

t.test('no inventory: no plan, whatever else is given', async (t) => {
  for (const over of [{}, { disk: '/dev/sda' }, { disk: '/dev/disk/by-path/pci-0000:00:05.0' }]) {
    const p = problemOf(t, makePlan(input({ ...over, inventory: undefined })));
    t.equal(p?.problem, 'no_inventory', JSON.stringify(over));
  }
});

t.test('without a reservation disk: the first eligible disk that is big enough', async (t) => {
  const need = partitionGiB(BUNDLE.bytes) + CONFIG.installReserveGiB;
  const cases: [string, DiskInfo[], string][] = [
    ['the only disk', [disk('sda', need)], '/dev/sda'],
    ['the first of two big ones', [disk('sda', 500), disk('sdb', 900)], '/dev/sda'],
    ['a small one is passed over', [disk('sda', need - 1), disk('sdb', need), disk('sdc', 2000)], '/dev/sdb'],
    ['removable is skipped', [disk('sda', 2000, { removable: true }), disk('nvme0n1', 500)], '/dev/nvme0n1'],
    ['read-only is skipped', [disk('sda', 2000, { readOnly: true }), disk('sdb', 500)], '/dev/sdb'],
    ['loop and rom are skipped', [disk('loop0', 2000, { type: 'loop' }), disk('sr0', 2000, { type: 'rom' }), disk('vda', 500)], '/dev/vda'],
    ['a zero-size disk is skipped', [disk('sda', 0), disk('sdb', 500)], '/dev/sdb'],
  ];
  for (const [what, disks, expected] of cases) {
    const plan = planOf(t, makePlan(input({ inventory: inventory(...disks) })));
    t.equal(plan?.disk, expected, what);
  }
});

t.test('without a reservation disk: no eligible disk is no_disk', async (t) => {
  const cases: [string, DiskInfo[]][] = [
    ['no disks at all', []],
    [
      'only removable, read-only, loop and rom',
      [
        disk('sda', 2000, { removable: true }),
        disk('sdb', 2000, { readOnly: true }),
        disk('loop0', 2000, { type: 'loop' }),
        disk('sr0', 2000, { type: 'rom' }),
      ],
    ],
  ];
  for (const [what, disks] of cases) {
    const p = problemOf(t, makePlan(input({ inventory: inventory(...disks) })));
    t.equal(p?.problem, 'no_disk', what);
    for (const d of disks) t.match(p?.reason, d.path, `${what}: the reason lists ${d.path}`);
  }
});

t.test('disk_too_small names the disk, its size and what is needed', async (t) => {
  const sizeGiB = partitionGiB(BUNDLE.bytes);
  const need = sizeGiB + CONFIG.installReserveGiB;
  const cases: [string, Partial<PlanInput>][] = [
    ['the only eligible disk', { inventory: inventory(disk('sda', 40), disk('sdb', 2000, { removable: true })) }],
    ['the reservation disk', { disk: '/dev/sda', inventory: inventory(disk('sda', 40), disk('sdb', 2000)) }],
  ];
  for (const [what, over] of cases) {
    const p = problemOf(t, makePlan(input(over)));
    t.equal(p?.problem, 'disk_too_small', what);
    t.match(p?.reason, '/dev/sda', `${what}: names the disk`);
    t.match(p?.reason, `${(40).toFixed(1)} GiB`, `${what}: names its size`);
    t.match(p?.reason, `${need.toFixed(1)} GiB`, `${what}: names the total need`);
    t.match(p?.reason, `${sizeGiB} GiB for the data partition`, `${what}: names the partition`);
    t.match(p?.reason, `${CONFIG.installReserveGiB} GiB for the install`, `${what}: names the reserve`);
    t.match(p?.reason, 'installReserveGiB', `${what}: names the setting`);
  }
  // With no big-enough eligible disk, the first eligible one is the one reported.
  const p = problemOf(t, makePlan(input({ inventory: inventory(disk('sda', 10), disk('sdb', 20)) })));
  t.equal(p?.problem, 'disk_too_small');
  t.match(p?.reason, '/dev/sda');
});

t.test('the size limit is exact: requiredBytes fits, one byte less does not', async (t) => {
  const required = (partitionGiB(BUNDLE.bytes) + CONFIG.installReserveGiB) * GiB;
  for (const reservation of [undefined, '/dev/sda']) {
    const fits = makePlan(input({ ...(reservation && { disk: reservation }), inventory: inventory(disk('sda', 0, { sizeBytes: required })) }));
    t.equal(planOf(t, fits)?.disk, '/dev/sda', `${reservation ?? 'auto'}: exactly the need`);
    const short = makePlan(input({ ...(reservation && { disk: reservation }), inventory: inventory(disk('sda', 0, { sizeBytes: required - 1 })) }));
    t.equal(problemOf(t, short)?.problem, 'disk_too_small', `${reservation ?? 'auto'}: one byte short`);
  }
  // The reserve counts: without it the same disk would do.
  const small = inventory(disk('sda', partitionGiB(BUNDLE.bytes)));
  t.equal(problemOf(t, makePlan(input({ inventory: small })))?.problem, 'disk_too_small');
  t.equal(planOf(t, makePlan(input({ inventory: small, config: { ...CONFIG, installReserveGiB: 0 } })))?.disk, '/dev/sda');
});

t.test('a reservation disk is found by path or by /dev/NAME, even when another would be chosen', async (t) => {
  const disks = [disk('sda', 2000), disk('nvme0n1', 500, { path: '/dev/block/nvme0n1' }), disk('sdc', 500, { removable: true })];
  const plan = (wanted: string): string | undefined => planOf(t, makePlan(input({ disk: wanted, inventory: inventory(...disks) })))?.disk;
  t.equal(plan('/dev/block/nvme0n1'), '/dev/block/nvme0n1', 'by path');
  t.equal(plan('/dev/nvme0n1'), '/dev/block/nvme0n1', "by /dev/NAME, planned as the disk's path");
  t.equal(plan('/dev/sdc'), '/dev/sdc', 'chosen by name, a removable disk is taken');
});

t.test('a reservation disk the machine did not report is no_disk, unless it is a /dev/disk/ path', async (t) => {
  const inv = inventory(disk('sda', 2000), disk('sdb', 2000));
  const missing = problemOf(t, makePlan(input({ disk: '/dev/sdz', inventory: inv })));
  t.equal(missing?.problem, 'no_disk');
  t.match(missing?.reason, '/dev/sdz', 'names the wanted disk');
  t.match(missing?.reason, '/dev/sda, /dev/sdb', 'lists what was reported');

  // Stable paths are trusted (the job checks the size on the machine), even when every reported disk is too small.
  const byPath = '/dev/disk/by-path/pci-0000:00:05.0';
  const plan = planOf(t, makePlan(input({ disk: byPath, inventory: inventory(disk('sda', 1)) })));
  t.equal(plan?.disk, byPath);
  t.equal(plan?.requiredBytes, (partitionGiB(BUNDLE.bytes) + CONFIG.installReserveGiB) * GiB, 'with the bytes the job must check');
});

t.test('a read-only reservation disk is no_disk', async (t) => {
  const p = problemOf(t, makePlan(input({ disk: '/dev/sda', inventory: inventory(disk('sda', 2000, { readOnly: true }), disk('sdb', 2000)) })));
  t.equal(p?.problem, 'no_disk');
  t.match(p?.reason, /read-only/);
  t.match(p?.reason, '/dev/sda');
});

t.test('makePlan leaves its input alone', async (t) => {
  const inv = inventory(disk('sda', 2000), disk('sdb', 10));
  const before = JSON.stringify([inv, BUNDLE, CONFIG]);
  makePlan(input({ inventory: inv }));
  makePlan(input({ inventory: inv, disk: '/dev/sdb' }));
  t.equal(JSON.stringify([inv, BUNDLE, CONFIG]), before);
});
