/**
 * End to end, the precache stage: QEMU guests (BIOS, QEMU's iPXE ROM) PXE-boot from edgeboot in
 * full DHCP mode into the CoreOS-live stand-in (test/vm/live-standin), which applies
 * edgeboot's real Ignition and runs its precache job with the real sgdisk, mkfs.xfs and curl
 * against a raw disk image (test/helpers/standin.ts). The bundles are built beforehand from
 * generated images in Debian's docker-registry (test/helpers/prebuilt-bundle.ts); inside the
 * namespaces edgeboot serves them from its cache dir, with no registry in reach.
 *
 * - A 4 GiB disk, a bundle with one 24 MiB archive, downloads capped at 2 MiB/s per client
 *   (`cache.clientRate`): the guest is killed half-way through the big file, a new guest on the
 *   same disk and MAC resumes it (a 206, `resumedFrom` > 0) and the machine ends `precached`.
 *   The disk is then read back on the host, read-only: partition 1 named `data`, 1 GiB, at the
 *   end of the disk; XFS; every file of the bundle with its size and sha256, no `.part` left;
 *   every archive unpacks into a `dir:` layout that skopeo copies with the source image's digest.
 * - A bundle file corrupted on the server (same size): fetched twice, then `failed` at `verify`.
 * - A 1 GiB disk for a 2 GiB partition plus 1 GiB of install reserve: `failed`, disk too small,
 *   and nothing written to the disk.
 * - A redo on an installed disk: the OS's four partitions and the data partition the install
 *   kept (renumbered 5, XFS) holding one file of the bundle and an archive of an earlier one.
 *   The job keeps partition 5 and the install's partitions, does not fetch the file that is
 *   there, removes the stale archive, and the machine is precached.
 * The last three run side by side. Each timeline is read back from the API and its order asserted.
 * Every QEMU runs under a hard timeout; a failure prints the consoles and edgeboot's log.
 * Needs root, the VM tools of qemu-boot-full.test.ts, docker-registry, skopeo, gdisk, xfsprogs,
 * jq and a built dist/.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, createReadStream, mkdirSync, openSync, readdirSync, readFileSync, readSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t, { type Test } from 'tap';
import { assertOrder, describeTimeline, ev, type Step } from '../helpers/boot-lab.js';
import type { MachineEvent } from '../helpers/dhcp-system.js';
import { netnsList, netnsSkip } from '../helpers/netns.js';
import { prebuildBundle, type PrebuiltBundle } from '../helpers/prebuilt-bundle.js';
import { tempDir } from '../helpers/process.js';
import { createPrecacheLab, mountReadOnly, readPartition, readTable, STANDIN_PROFILE, type MachineView, type PrecacheLab } from '../helpers/standin.js';
import { sparseDisk } from '../helpers/vm.js';

const run = promisify(execFile);
const skip = netnsSkip();
t.setTimeout(480_000);

const MiB = 1 << 20;
const GiB = 1 << 30;
const MAC = { resume: '52:54:00:eb:06:01', corrupt: '52:54:00:eb:06:02', small: '52:54:00:eb:06:03', redo: '52:54:00:eb:06:04' } as const;
/** The hub is never reached: these machines power off once precached. */
const NEVER = 'http://10.77.0.1:8090/never';

async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** Every path under `dir`, relative to it. */
function walk(dir: string, prefix = ''): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? [`${prefix}${e.name}/`, ...walk(join(dir, e.name), `${prefix}${e.name}/`)] : [`${prefix}${e.name}`],
  );
}

const progress = (e: MachineEvent): boolean => e.type === 'precache-progress';
const toState =
  (to: string) =>
  (e: MachineEvent): boolean =>
    e.type === 'state-changed' && e.to === to;

/** Registers `mac` for a precache of `bundle`; throws unless edgeboot answers 201. */
async function register(pl: PrecacheLab, mac: string, bundle: string, sizeGiB: number, more: { ip?: string; hostname?: string } = {}): Promise<void> {
  const r = await pl.api('PUT', `/api/v1/machines/${mac}`, {
    ...more,
    profile: 'precache-assisted',
    assisted: { ipxeScriptUrl: NEVER },
    precache: { liveProfile: STANDIN_PROFILE, bundle, sizeGiB },
  });
  if (r.status !== 201) throw new Error(`PUT /api/v1/machines/${mac}: ${r.status} ${JSON.stringify(r.body)}`);
}

/** A boot of the live environment, up to the job's inventory; the first one starts the run. */
const liveBoot = (first: boolean): Step[] => [
  ev('dhcp-offer', { ipxe: true }),
  ev('entry-script-served'),
  ...(first ? [ev('state-changed', {}, { from: 'registered', to: 'precaching' })] : []),
  ev('script-served', { kind: 'boot', stage: 'precache', profile: STANDIN_PROFILE }),
  ev('asset-served', { profile: STANDIN_PROFILE, artifact: 'kernel' }),
  ev('asset-served', { profile: STANDIN_PROFILE, artifact: 'initramfs' }),
  ev('booted'),
  ev('inventory'),
];

/** The timeline's responses for one bundle file (edgeboot records each on the machine that fetched it). */
function fileResponses(events: MachineEvent[], file: string): { method: string; status: number; range?: string }[] {
  return events
    .filter((e) => (e.type === 'asset-served' || e.type === 'asset-failed') && e.data?.artifact === file)
    .map((e) => ({ method: String(e.data?.method), status: Number(e.data?.status), ...(typeof e.data?.range === 'string' && { range: e.data.range }) }));
}

/** Overwrites 16 bytes in the middle of `path` with their complement: same size, another sha256. */
function corruptMiddle(path: string): void {
  const size = statSync(path).size;
  const fd = openSync(path, 'r+');
  try {
    const buf = Buffer.alloc(16);
    readSync(fd, buf, 0, 16, Math.floor(size / 2));
    for (let i = 0; i < buf.length; i++) buf[i] = (buf[i] ?? 0) ^ 0xff;
    writeSync(fd, buf, 0, 16, Math.floor(size / 2));
  } finally {
    closeSync(fd);
  }
}

t.test('precache: the live stand-in writes a bundle onto the disk, resumes after a power cut, and fails clearly', { skip }, async (t) => {
  const dir = tempDir(t, 'edgeboot-qp-');
  const dataDir = join(dir, 'data');
  const cacheDir = join(dir, 'cache');
  const big = await prebuildBundle(t, { dataDir, cacheDir, images: 2, layerBytes: 24 * MiB });
  const small = await prebuildBundle(t, { dataDir, cacheDir, images: 2 });
  const redo = await prebuildBundle(t, { dataDir, cacheDir, images: 2 });
  const bigFile = [...big.manifest.files].sort((a, b) => b.size - a.size)[0];
  if (!bigFile) throw new Error('the big bundle has no files');
  t.ok(bigFile.size > 20 * MiB, `the big bundle has a ${(bigFile.size / MiB).toFixed(1)} MiB archive`);

  const pl = await createPrecacheLab(t, 'qp', {
    dataDir,
    cacheDir,
    logLevel: 'debug',
    precache: { installReserveGiB: 1, after: 'poweroff', heartbeatSeconds: 120, progressSeconds: 1 },
    cache: { clientRate: '2MiB' },
  });
  const prefix = pl.lab.prefix;
  const disks = join(dir, 'disks');
  mkdirSync(disks);

  await t.test('a power cut half-way through the big file: the next boot resumes it and the machine is precached', async (t) => {
    pl.explainOnFailure(t);
    const disk = sparseDisk(join(disks, 'resume.img'), 4 * GiB);
    await register(pl, MAC.resume, big.id, 1);

    const vm1 = pl.vm('resume-1', MAC.resume, disk, 180_000);
    const partial = await pl.waitFor(MAC.resume, 'three progress reports of the big file', 150_000, (m, events) => {
      const reports = events.filter((e) => progress(e) && e.data?.file === bigFile.name);
      if (m.state !== 'precaching' && m.state !== 'registered') throw new Error(`the machine went ${m.state} before its big download was cut`);
      return reports.length >= 3 ? { m, reports } : undefined;
    });
    await vm1.stop();
    const cutAt = partial.m.precacheProgress;
    t.comment(`cut at ${JSON.stringify(cutAt)}`);
    t.ok(cutAt && cutAt.filesDone < cutAt.filesTotal, 'the machine was cut off with files still to fetch');
    t.match(vm1.console(), /standin: starting edgeboot-precache\.service/, 'the stand-in started the job of the Ignition config');

    const vm2 = pl.vm('resume-2', MAC.resume, disk, 240_000);
    const done = await pl.waitFor(MAC.resume, 'state precached', 220_000, (m, events) => {
      if (m.state === 'failed')
        throw new Error(
          `the machine failed: ${events
            .filter(toState('failed'))
            .map((e) => e.message)
            .join('; ')}`,
        );
      return m.state === 'precached' ? m : undefined;
    });
    const exit = await Promise.race([vm2.exited, new Promise<undefined>((r) => setTimeout(() => r(undefined), 60_000))]);
    t.ok(exit, 'the guest powered itself off after its result (precache.after poweroff)');
    t.comment(`second boot to power-off: ${Math.round((Date.now() - vm2.startedAt) / 1000)} s`);
    await vm2.stop();
    t.match(vm2.console(), /XFS \(vda1\): Unmounting Filesystem/, 'the job unmounted the data partition before powering off');

    const events = await pl.events(MAC.resume);
    t.comment(describeTimeline(events));
    const resumed: Step = {
      what: `precache-progress of ${bigFile.name} with resumedFrom > 0`,
      match: (e) => progress(e) && e.data?.file === bigFile.name && typeof e.data.resumedFrom === 'number' && e.data.resumedFrom > 0,
    };
    const at = assertOrder(t, events, [
      ...liveBoot(true),
      { what: `precache-progress of ${bigFile.name}`, match: (e) => progress(e) && e.data?.file === bigFile.name },
    ]);
    assertOrder(t, events, [...liveBoot(false), resumed, ev('state-changed', {}, { from: 'precaching', to: 'precached' })], at);
    const resumedFrom = Number(events.find(resumed.match)?.data?.resumedFrom ?? 0);
    t.ok(resumedFrom > 0 && resumedFrom < bigFile.size, `resumed at ${resumedFrom} of ${bigFile.size} bytes`);

    const boots = events.flatMap((e, i) => (e.type === 'script-served' && e.data?.stage === 'precache' ? [i] : []));
    t.equal(boots.length, 2, 'two precache boots were served');
    const second = events.slice(boots[1] ?? events.length);
    const gets = fileResponses(second, bigFile.name).filter((r) => r.method === 'GET');
    t.ok(
      gets.some((r) => r.status === 206),
      `edgeboot answered the resumed download with 206 (${JSON.stringify(gets)})`,
    );
    t.notOk(
      gets.some((r) => r.status === 200),
      'and never sent the whole big file again',
    );
    const first = events.slice(0, boots[1] ?? 0);
    const finished = big.manifest.files.filter(
      (f) => f.name !== bigFile.name && fileResponses(first, f.name).some((r) => r.method === 'GET' && r.status === 200),
    );
    t.ok(finished.length > 0, `files were fetched whole before the cut (${finished.map((f) => f.name).join(', ')})`);
    for (const f of finished) t.same(fileResponses(second, f.name), [], `${f.name}, fetched whole before the cut, was kept: not fetched again`);

    const p = done.precacheProgress;
    t.equal(p?.outcome, 'precached', 'precacheProgress: outcome precached');
    t.equal(p?.boots, 2, 'precacheProgress: two precache boots');
    t.equal(p?.filesDone, big.manifest.files.length, 'precacheProgress: every file done');
    t.equal(p?.bytesTotal, big.manifest.bytes, 'precacheProgress: the bundle bytes');
    t.equal(p?.disk, '/dev/vda', 'precacheProgress: the disk');
    t.equal(p?.bundle, big.id, 'precacheProgress: the bundle');
    t.equal(done.inventory?.disks.find((d) => d.path === '/dev/vda')?.sizeBytes, 4 * GiB, 'the inventory has the 4 GiB disk');

    await t.test('the disk, read back on the host', async (t) => {
      await verifyDisk(t, disk, big, dir);
    });
  });

  await t.test('a corrupt bundle file, a disk too small, and a redo on an installed disk, side by side', async (t) => {
    pl.explainOnFailure(t);
    // All run to their end before a failure of any is reported.
    const results = await Promise.allSettled([corruptFile(t, pl, small, disks), diskTooSmall(t, pl, small, disks), redoOnInstalledDisk(t, pl, redo, disks)]);
    for (const r of results) if (r.status === 'rejected') t.fail(r.reason instanceof Error ? (r.reason.stack ?? r.reason.message) : String(r.reason));
  });

  // The lab's teardown does the same if anything above throws.
  pl.lab.cleanup();
  t.same(
    netnsList().filter((n) => n.startsWith(prefix)),
    [],
    'no namespace, tap or VM is left behind',
  );
});

async function verifyDisk(t: Test, disk: string, bundle: PrebuiltBundle, dir: string): Promise<void> {
  const table = await readTable(disk);
  t.comment(table.text.trim());
  t.same(table.numbers, [1], 'one partition');
  const part = await readPartition(disk, 1);
  t.equal(part.name, 'data', 'partition 1 is named data');
  t.equal(part.lastSector, table.lastUsable, 'it ends at the end of the disk, just before the backup GPT');
  t.ok(table.totalSectors - part.lastSector <= 34, `${table.totalSectors - part.lastSector - 1} sectors after it`);
  const bytes = part.sizeSectors * 512;
  t.ok(Math.abs(bytes - GiB) <= 4 * MiB, `it is 1 GiB (${(bytes / MiB).toFixed(1)} MiB)`);
  const blkid = await run('blkid', ['-p', '-O', String(part.firstSector * 512), '-o', 'value', '-s', 'TYPE', disk]).catch((e: unknown) => ({
    stdout: e instanceof Error ? e.message : String(e),
  }));
  t.equal(blkid.stdout.trim(), 'xfs', 'it holds XFS');

  const mnt = await mountReadOnly(t, disk, part);
  const listing = walk(mnt.dir);
  t.comment(`on the partition: ${listing.join(' ')}`);
  t.same(
    listing.filter((f) => f.endsWith('.part')),
    [],
    'no .part file is left',
  );
  for (const f of bundle.manifest.files) {
    const path = join(mnt.dir, f.name);
    let size = -1;
    try {
      size = statSync(path).size;
    } catch {
      // missing: the assertion says so
    }
    t.equal(size, f.size, `${f.name}: on the partition with its size`);
    if (size === f.size) t.equal(await sha256File(path), f.sha256, `${f.name}: its sha256`);
  }

  const unpackRoot = join(dir, 'unpack');
  for (const f of bundle.manifest.files.filter((x) => x.name.endsWith('.tgz'))) {
    const unpack = join(unpackRoot, f.name);
    mkdirSync(unpack, { recursive: true });
    await run('tar', ['-xzf', join(mnt.dir, f.name), '-C', unpack], { timeout: 60_000 });
    const [top] = readdirSync(unpack);
    const source = bundle.images.find((i) => f.name.endsWith(`@${i.digest.replace(':', '_')}.tgz`));
    t.ok(source, `${f.name}: named after a source image's digest`);
    const oci = join(unpackRoot, `${f.name.replace(/[@:]/g, '_')}.oci`);
    await run('skopeo', ['--insecure-policy', 'copy', '--quiet', '--all', '--preserve-digests', `dir:${join(unpack, top ?? '')}`, `oci:${oci}:x`], {
      timeout: 60_000,
    });
    const index = JSON.parse(readFileSync(join(oci, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    t.equal(index.manifests[0]?.digest, source?.digest, `${f.name}: skopeo copies it, with the source image's digest`);
  }
  await mnt.release();
}

async function corruptFile(t: Test, pl: PrecacheLab, bundle: PrebuiltBundle, disks: string): Promise<void> {
  const victim = bundle.manifest.files.find((f) => f.name.endsWith('.tgz'));
  if (!victim) throw new Error('the small bundle has no archive');
  corruptMiddle(join(bundle.cacheDir, 'bundles', bundle.id, victim.name));
  t.equal(statSync(join(bundle.cacheDir, 'bundles', bundle.id, victim.name)).size, victim.size, 'corrupt: the file on the server keeps its size');

  const disk = sparseDisk(join(disks, 'corrupt.img'), 4 * GiB);
  await register(pl, MAC.corrupt, bundle.id, 1);
  const vm = pl.vm('corrupt', MAC.corrupt, disk, 240_000);
  const failed = await pl.waitFor(MAC.corrupt, 'state failed', 220_000, (m, events) =>
    m.state === 'failed' ? { m, events } : m.state === 'precached' ? fail('corrupt: the machine was precached with a corrupt file') : undefined,
  );
  await Promise.race([vm.exited, new Promise((r) => setTimeout(r, 30_000))]);
  await vm.stop();
  const events = await pl.events(MAC.corrupt);
  t.comment(`corrupt: ${describeTimeline(events)}`);
  assertOrder(t, events, [...liveBoot(true), ev('precache-progress'), ev('state-changed', {}, { from: 'precaching', to: 'failed' })]);
  const reason = events.find(toState('failed'))?.message ?? '';
  t.match(reason, /verify/, `corrupt: the reason names the step (${reason})`);
  t.ok(reason.includes(victim.name), 'corrupt: the reason names the file');
  t.match(reason, /sha256/i, 'corrupt: the reason names the sha256');
  t.equal(failed.m.precacheProgress?.outcome, 'failed', 'corrupt: precacheProgress: outcome failed');
  t.equal(failed.m.precacheProgress?.message, reason, 'corrupt: precacheProgress carries the reason');
  const gets = fileResponses(events, victim.name).filter((r) => r.method === 'GET');
  t.ok(gets.length >= 2, `corrupt: the file was fetched once more after the mismatch (${gets.length} GETs)`);
}

async function diskTooSmall(t: Test, pl: PrecacheLab, bundle: PrebuiltBundle, disks: string): Promise<void> {
  const disk = sparseDisk(join(disks, 'small.img'), GiB);
  // A fixed address: the live boot carries the static-IP argument, which the stand-in applies.
  await register(pl, MAC.small, bundle.id, 2, { ip: '10.77.0.50', hostname: 'small-1' });
  const vm = pl.vm('small-disk', MAC.small, disk, 200_000);
  const failed = await pl.waitFor(MAC.small, 'state failed', 180_000, (m: MachineView) =>
    m.state === 'failed' ? m : m.state === 'precached' ? fail('small disk: precached on a disk too small') : undefined,
  );
  await Promise.race([vm.exited, new Promise((r) => setTimeout(r, 30_000))]);
  await vm.stop();
  const events = await pl.events(MAC.small);
  t.comment(`small disk: ${describeTimeline(events)}`);
  assertOrder(t, events, [...liveBoot(true), ev('state-changed', {}, { from: 'precaching', to: 'failed' })]);
  const reason = events.find(toState('failed'))?.message ?? '';
  t.comment(`small disk: the reason: ${reason}`);
  const plans = pl.server.logLines.filter(
    (l) => l.msg === 'request' && typeof l.url === 'string' && l.url.startsWith(`/api/v1/machines/${MAC.small.replace(/:/g, '-')}/plan`),
  );
  t.same(
    plans.map((l) => l.status),
    [409],
    'small disk: the plan request was refused with 409',
  );
  t.match(
    vm.console(),
    /standin: static address 10\.77\.0\.50\/255\.255\.255\.0 gw 10\.77\.0\.1 host small-1/,
    'small disk: the live environment took its fixed address from the ip= argument',
  );
  t.match(reason, /^disk \/dev\/vda is too small/, 'small disk: the reason says the disk is too small');
  t.match(reason, /\b1(\.0+)? ?GiB\b|1073741824/, "small disk: and the disk's size");
  t.match(reason, /\b3(\.0+)? ?GiB\b|3221225472/, 'small disk: and what is needed (2 GiB and 1 GiB of install reserve)');
  t.equal(failed.precacheProgress?.outcome, 'failed', 'small disk: precacheProgress: outcome failed');
  t.notOk(
    events.some((e) => progress(e) && e.data?.step === 'partition'),
    'small disk: the job never got to partition',
  );
  t.same((await readTable(disk)).numbers, [], 'small disk: no partition was written');
}

/**
 * Lays out `disk` as an installed machine's: the OS's four partitions in front, and the data
 * partition that coreos-installer --save-partlabel kept, renumbered 5, at the end, XFS, holding
 * `files`. Written on the host through a read-write loop device over the partition alone.
 */
async function installedLayout(t: Test, disk: string, files: Record<string, Buffer>): Promise<void> {
  const gpt = [
    '-n',
    '1:2048:+1M',
    '-c',
    '1:BIOS-BOOT',
    '-n',
    '2:0:+127M',
    '-c',
    '2:EFI-SYSTEM',
    '-n',
    '3:0:+384M',
    '-c',
    '3:boot',
    '-n',
    '4:0:+2G',
    '-c',
    '4:root',
    '-n',
    '5:-1GiB:0',
    '-c',
    '5:data',
  ];
  await run('sgdisk', [...gpt, disk], { timeout: 10_000 });
  const p = await readPartition(disk, 5);
  const { stdout } = await run('losetup', ['-f', '--show', '-o', String(p.firstSector * 512), '--sizelimit', String(p.sizeSectors * 512), disk], {
    timeout: 10_000,
  });
  const device = stdout.trim();
  const mnt = tempDir(t, 'edgeboot-qp-installed-');
  let mounted = false;
  try {
    await run('mkfs.xfs', ['-q', '-f', device], { timeout: 60_000 });
    await run('mount', ['-t', 'xfs', device, mnt], { timeout: 20_000 });
    mounted = true;
    for (const [name, content] of Object.entries(files)) writeFileSync(join(mnt, name), content);
  } finally {
    if (mounted) await run('umount', [mnt], { timeout: 20_000 });
    await run('losetup', ['-d', device], { timeout: 10_000 });
  }
}

async function redoOnInstalledDisk(t: Test, pl: PrecacheLab, bundle: PrebuiltBundle, disks: string): Promise<void> {
  const kept = bundle.manifest.files.find((f) => f.name === 'mapping.txt');
  if (!kept) throw new Error('the redo bundle has no mapping.txt');
  const disk = sparseDisk(join(disks, 'installed.img'), 4 * GiB);
  const stale = 'old-image@sha256_0000000000000000000000000000000000000000000000000000000000000000.tgz';
  await installedLayout(t, disk, {
    [kept.name]: readFileSync(join(bundle.cacheDir, 'bundles', bundle.id, kept.name)),
    [stale]: Buffer.from('an archive of an earlier bundle'),
  });
  await register(pl, MAC.redo, bundle.id, 1);
  const vm = pl.vm('installed', MAC.redo, disk, 240_000);
  await pl.waitFor(MAC.redo, 'state precached', 220_000, (m) =>
    m.state === 'precached' ? m : m.state === 'failed' ? fail(`redo: failed: ${m.precacheProgress?.message ?? ''}`) : undefined,
  );
  await Promise.race([vm.exited, new Promise((r) => setTimeout(r, 30_000))]);
  await vm.stop();
  t.match(vm.console(), /edgeboot-precache: partition: keeping partition 5 \(data, XFS\)/, 'redo: the job kept the data partition the install renumbered');
  t.same((await readTable(disk)).numbers, [1, 2, 3, 4, 5], "redo: the install's partitions are untouched");
  const events = await pl.events(MAC.redo);
  t.same(
    fileResponses(events, kept.name).filter((r) => r.method === 'GET'),
    [],
    `redo: ${kept.name}, already there and verifying, was not fetched again`,
  );
  const mounted = await mountReadOnly(t, disk, await readPartition(disk, 5));
  const names = readdirSync(mounted.dir).sort();
  t.same(names, bundle.manifest.files.map((f) => f.name).sort(), 'redo: the partition holds this bundle and nothing of the earlier one');
  for (const f of bundle.manifest.files) t.equal(await sha256File(join(mounted.dir, f.name)), f.sha256, `redo: ${f.name} verifies`);
  await mounted.release();
}

function fail(message: string): never {
  throw new Error(message);
}
