/**
 * End to end, full mode: real QEMU guests PXE-boot from edgeboot — its DHCP, TFTP and HTTP on
 * one bridge in a namespace (test/helpers/boot-lab.ts) — and go through their lifecycle.
 *
 * - BIOS, QEMU's iPXE NIC ROM, a blank 2 GiB disk, profile precache-assisted with the busybox
 *   live stand-in (`precache.liveProfile: e2e-live`), a bundle built beforehand
 *   (test/helpers/prebuilt-bundle.ts: edgeboot on host loopback, on the data and cache dirs the
 *   lab's edgeboot then starts on; no registry is reachable in the lab) and the assisted hub's
 *   stand-in. One power-on, three boots, the guest rebooting itself: boot 1 is the live
 *   environment (kernel and initramfs from /assets), which follows the precache protocol of the
 *   real job with busybox (test/vm/init): booted, inventory, plan, every bundle file into tmpfs
 *   with its sha256 verified and a progress event each, result → precached; boot 2 is the hub's
 *   iPXE script, which edgeboot fetches server-side (the boot-order-control redirect with the
 *   MAC, then initrd --name / kernel / boot with api_key) and serves rewritten, the hub's
 *   initrd and kernel coming through edgeboot's cache; its installer reports booted to edgeboot
 *   and done to the hub, and the hub posts install-done → installed; boot 3 is served the
 *   local-disk script.
 * - UEFI, OVMF's own PXE (no option ROM): DHCP, TFTP of ipxe.efi from edgeboot, iPXE's DHCP,
 *   HTTP. Profile assisted, hub without the install-done report: boot 1 installs, boot 2 finds
 *   the hub answering 404 (the host is installed): edgeboot serves the local disk and marks
 *   the machine installed.
 * - An unregistered BIOS guest under `boot.unknownMachines: wait` becomes discovered, re-checks
 *   every 5 s, and boots the profile the test then assigns, without a power cycle.
 *
 * Each timeline is read back from GET /api/v1/machines/{mac}/events and its order asserted.
 * Every QEMU runs under a hard timeout; a failure prints the consoles and edgeboot's log.
 * Needs root, iproute2, qemu-system-x86, ipxe-qemu, ovmf, ipxe, linux-image-amd64,
 * busybox-static, cpio, kmod, radvd and curl (.ci/run installs them) and a built dist/.
 */
import { statSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { assertOrder, createBootLab, describeTimeline, ev } from '../helpers/boot-lab.js';
import { netnsList, netnsSkip } from '../helpers/netns.js';
import { prebuildBundle } from '../helpers/prebuilt-bundle.js';
import { tempDir } from '../helpers/process.js';
import type { Inventory, PrecacheProgress } from '../../src/machines/model.js';

const skip = netnsSkip();
t.setTimeout(420_000);

const GiB = 2 ** 30;

const MAC = { bios: '52:54:00:eb:05:01', uefi: '52:54:00:eb:05:02', unknown: '52:54:00:eb:05:03' } as const;

t.test('full mode: BIOS, UEFI and an unknown machine boot from edgeboot', { skip }, async (t) => {
  const dataDir = tempDir(t, 'edgeboot-qf-data-');
  const bundle = await prebuildBundle(t, { dataDir, cacheDir: join(dataDir, 'cache') });
  t.comment(`bundle ${bundle.id}: ${bundle.manifest.files.length} files, ${bundle.manifest.bytes} bytes`);
  const bl = await createBootLab(t, 'qf', {
    mode: 'full',
    unknownMachines: 'wait',
    recheckSeconds: 5,
    dataDir,
    cacheDir: bundle.cacheDir,
    // The 2 GiB disk holds the 1 GiB data partition with no room kept for the install.
    precache: { installReserveGiB: 0 },
  });
  const prefix = bl.lab.prefix;

  await t.test('BIOS: the precache live environment fetches its plan, the hub installer, then the local disk', async (t) => {
    bl.explainOnFailure(t);
    const hub = await bl.startHub({ notify: true });
    t.teardown(() => hub.stop());
    const put = await bl.api('PUT', `/api/v1/machines/${MAC.bios}`, {
      hostname: 'bios-1',
      profile: 'precache-assisted',
      assisted: { ipxeScriptUrl: hub.scriptUrl },
      precache: { liveProfile: 'e2e-live', bundle: bundle.id, sizeGiB: 1 },
    });
    if (!t.equal(put.status, 201, 'registered')) {
      t.comment(`PUT answered ${JSON.stringify(put.body)}: not booting`);
      return;
    }
    const files = bundle.manifest.files;
    const vm = bl.vm('bios', 'bios', MAC.bios, 240_000, { disk: bl.disk('bios', 2 * GiB) });
    await vm.waitConsole(/eb-init: role=live/, 90_000);
    await vm.waitConsole(/eb-init: result posted/, 90_000);
    await vm.waitConsole(/eb-init: role=installer/, 90_000);
    await bl.waitEvent(MAC.bios, (e) => e.type === 'script-served' && e.data?.kind === 'local', 60_000, 'the local-disk script');
    // iPXE tries the first disk, blank here (the stand-in wrote only to tmpfs), and leaves.
    await vm.waitConsole(/Boot from SAN device 0x80 failed/, 30_000);
    t.comment(`three boots took ${Math.round((Date.now() - vm.startedAt) / 1000)} s`);
    await vm.stop();
    const events = await bl.events(MAC.bios);
    t.comment(describeTimeline(events));
    const boot1 = [
      ev('dhcp-offer', { ipxe: true, yiaddr: '10.77.0.160' }),
      ev('dhcp-ack', { ipxe: true }),
      ev('entry-script-served'),
      ev('state-changed', {}, { from: 'registered', to: 'precaching' }),
      ev('script-served', { kind: 'boot', stage: 'precache', profile: 'e2e-live' }),
      ev('asset-served', { profile: 'e2e-live', artifact: 'kernel', status: 200 }),
      ev('asset-served', { profile: 'e2e-live', artifact: 'initramfs', status: 200 }),
      ev('booted', { role: 'live' }),
      ev('inventory', { disks: 1 }),
      ev('precache-plan', { disk: '/dev/vda', sizeGiB: 1, bundle: bundle.id, files: files.length, bytes: bundle.manifest.bytes }),
      ev('precache-progress', { filesDone: 0, filesTotal: files.length, bytesDone: 0, bytesTotal: bundle.manifest.bytes }),
      ...files.map((_, i) => ev('precache-progress', { step: 'download', filesDone: i + 1, filesTotal: files.length })),
      ev('precache-result', { ok: true }),
      ev('state-changed', { cause: 'precache-succeeded' }, { from: 'precaching', to: 'precached' }),
    ];
    const boot2 = [
      ev('dhcp-offer', { ipxe: true }),
      ev('entry-script-served'),
      ev('state-changed', {}, { from: 'precached', to: 'installing' }),
      ev('script-served', { kind: 'boot', stage: 'install', profile: 'assisted', hub: 'rewritten' }),
      ev('asset-served', { profile: 'hub', artifact: 'initrd', status: 200 }),
      ev('asset-served', { profile: 'hub', artifact: 'kernel', status: 200 }),
      ev('booted', { role: 'installer' }),
      ev('install-done'),
      ev('state-changed', {}, { from: 'installing', to: 'installed' }),
    ];
    const boot3 = [ev('dhcp-offer', { ipxe: true }), ev('entry-script-served'), ev('script-served', { kind: 'local' })];
    assertOrder(t, events, [...boot1, ...boot2, ...boot3]);
    const assets = events.filter((e) => e.type === 'asset-served');
    t.equal(assets[0]?.data?.bytes, statSync(bl.images.kernel).size, 'the kernel was served whole');
    t.equal(events.filter((e) => e.type === 'script-served').length, 3, 'one script per boot');
    const progress = events.filter((e) => e.type === 'precache-progress' && e.data?.file !== undefined);
    t.same(progress.map((e) => e.data?.file).sort(), files.map((f) => f.name).sort(), 'one progress event for each file of the bundle');
    t.equal(progress.at(-1)?.data?.bytesDone, bundle.manifest.bytes, 'the last progress event counts every byte');
    t.notOk(
      events.some((e) => e.type === 'precache-done'),
      'no precache-done event: the result moved the state',
    );
    const downloads = assets.filter((e) => e.data?.profile === `bundles/${bundle.id}`);
    t.same(
      downloads.map((e) => [e.data?.artifact, e.data?.status, e.data?.bytes]).sort(),
      files.map((f) => [f.name, 200, f.size]).sort(),
      'edgeboot served each file of the bundle once, whole',
    );

    const consoleText = vm.console();
    t.match(
      consoleText,
      `eb-init: plan: disk /dev/vda, bundle ${bundle.id}, ${files.length} files, ${bundle.manifest.bytes} bytes, then reboot`,
      'the plan the live environment read',
    );
    const verified = [...consoleText.matchAll(/eb-init: verified (\S+) \((\d+) bytes/g)].map((v) => [v[1], Number(v[2])]);
    t.same(verified.sort(), files.map((f) => [f.name, f.size]).sort(), 'the console shows every file of the bundle verified (size and sha256), once each');

    const m = await bl.api('GET', `/api/v1/machines/${MAC.bios}`);
    const machine = m.body as { state: string; inventory?: Inventory; precacheProgress?: PrecacheProgress };
    t.equal(machine.state, 'installed', 'the machine is installed');
    t.match(
      machine.precacheProgress,
      {
        boots: 1,
        filesDone: files.length,
        filesTotal: files.length,
        bytesDone: bundle.manifest.bytes,
        bytesTotal: bundle.manifest.bytes,
        disk: '/dev/vda',
        bundle: bundle.id,
        outcome: 'precached',
      },
      'precacheProgress: every file of the bundle done, in one precache boot',
    );
    t.match(
      machine.inventory,
      { disks: [{ path: '/dev/vda', name: 'vda', sizeBytes: 2 * GiB, type: 'disk', removable: false, readOnly: false }], macs: [MAC.bios] },
      'the inventory has the blank disk and the NIC',
    );
    t.ok((machine.inventory?.memoryBytes ?? 0) > 256 * 2 ** 20, `and the memory from /proc/meminfo (${machine.inventory?.memoryBytes} bytes)`);

    const reqs = hub.requests();
    const scripts = reqs.filter((r) => r.path.endsWith('/downloads/files'));
    t.same(
      scripts.map((r) => [r.status, r.query?.mac ?? null]),
      [
        [200, null],
        [200, MAC.bios],
      ],
      'edgeboot fetched the redirect, then the boot script for this MAC, server-side',
    );
    t.equal(
      reqs.filter((r) => r.path === '/boot-artifacts/kernel' && r.method === 'GET').length,
      1,
      "the installer kernel came from the hub, once, into edgeboot's cache",
    );
    t.ok(
      reqs.some((r) => r.path.endsWith('/pxe-initrd') && r.status === 200 && r.query?.api_key === hub.apiKey),
      'the per-InfraEnv initrd was fetched with its api_key',
    );
    t.ok(
      reqs.some((r) => r.path.endsWith('/hosts/progress') && r.status === 204),
      'the installer told the hub it is done',
    );
    t.notOk(JSON.stringify(bl.server.logLines).includes(hub.apiKey), "the hub's api_key is in no edgeboot log line");
    t.match(consoleText, /10\.77\.0\.1:8080\/assets\/hub\/[0-9a-f]{16}\/initrd/, "the console shows iPXE fetching the hub's initrd from edgeboot");
    t.notMatch(consoleText, /10\.77\.0\.1:8090/, 'and nothing from the hub itself');
  });

  await t.test('UEFI: OVMF PXE, ipxe.efi over TFTP, the hub installer, then the hub says 404: the local disk', async (t) => {
    bl.explainOnFailure(t);
    const hub = await bl.startHub({ notify: false });
    t.teardown(() => hub.stop());
    const put = await bl.api('PUT', `/api/v1/machines/${MAC.uefi}`, { profile: 'assisted', assisted: { ipxeScriptUrl: hub.scriptUrl } });
    t.equal(put.status, 201, 'registered');
    const vm = bl.vm('uefi', 'uefi', MAC.uefi, 200_000);
    await vm.waitConsole(/eb-init: hub told done/, 150_000);
    const deadline = Date.now() + 120_000;
    while (!hub.requests().some((r) => r.status === 404) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 500));
    t.comment(`two boots took ${Math.round((Date.now() - vm.startedAt) / 1000)} s`);
    await vm.stop();
    const scripts = hub.requests().filter((r) => r.path.endsWith('/downloads/files'));
    t.same(
      scripts.map((r) => [r.status, r.query?.mac ?? null]),
      [
        [200, null],
        [200, MAC.uefi],
        [200, null],
        [404, MAC.uefi],
      ],
      "boot 1: redirect and script; boot 2: redirect, then 404 for the installed host (edgeboot's requests)",
    );
    const events = await bl.events(MAC.uefi);
    t.comment(describeTimeline(events));
    const firmware = [ev('dhcp-offer', { ipxe: false }), ev('dhcp-ack', { ipxe: false }), ev('tftp-transfer', { file: 'ipxe.efi', outcome: 'complete' })];
    const ipxe = [ev('dhcp-offer', { ipxe: true }), ev('dhcp-ack', { ipxe: true }), ev('entry-script-served')];
    assertOrder(t, events, [
      ...firmware,
      ...ipxe,
      ev('state-changed', {}, { from: 'registered', to: 'installing' }),
      ev('script-served', { kind: 'boot', stage: 'install', profile: 'assisted', hub: 'rewritten' }),
      ev('asset-served', { profile: 'hub', artifact: 'initrd', status: 200 }),
      ev('asset-served', { profile: 'hub', artifact: 'kernel', status: 200 }),
      ev('booted', { role: 'installer' }),
      ...firmware,
      ...ipxe,
      ev('state-changed', {}, { from: 'installing', to: 'installed' }),
      ev('script-served', { kind: 'local' }),
    ]);
    const tftp = events.find((e) => e.type === 'tftp-transfer');
    t.equal(tftp?.data?.blksize, 1468, 'OVMF asked for blksize 1468');
    const m = await bl.api('GET', `/api/v1/machines/${MAC.uefi}`);
    t.equal((m.body as { state: string }).state, 'installed', "no one reported install-done: the hub's 404 made it installed");
  });

  await t.test('an unknown machine waits, then boots the profile assigned to it without a power cycle', async (t) => {
    bl.explainOnFailure(t);
    const vm = bl.vm('unknown', 'bios', MAC.unknown, 120_000);
    await bl.waitEvent(MAC.unknown, (e) => e.type === 'script-served' && e.data?.kind === 'wait', 60_000, 'a wait script');
    const m = await bl.api('GET', `/api/v1/machines/${MAC.unknown}`);
    t.equal((m.body as { state: string }).state, 'discovered', 'discovered');
    // Two re-checks (5 s apart) before the admin assigns a profile.
    await vm.waitConsole(/checking again in 5 s[\s\S]*checking again in 5 s/, 30_000);
    const put = await bl.api('PUT', `/api/v1/machines/${MAC.unknown}`, { profile: 'e2e-report' });
    t.equal(put.status, 200, 'the admin assigns a profile to the discovered machine');
    const done = await vm.exited;
    t.equal(done.signal, null, `the guest powered off by itself after its report, not killed at the VM's timeout (${Math.round(done.ms / 1000)} s)`);
    t.match(vm.console(), /eb-init: reported booted/, 'the initramfs reported');
    const events = await bl.events(MAC.unknown);
    t.comment(describeTimeline(events));
    assertOrder(t, events, [
      ev('discovered'),
      ev('dhcp-offer', { ipxe: true }),
      ev('entry-script-served'),
      ev('script-served', { kind: 'wait' }),
      ev('entry-script-served'),
      ev('script-served', { kind: 'wait' }),
      ev('state-changed', {}, { from: 'discovered', to: 'registered' }),
      ev('entry-script-served'),
      ev('state-changed', {}, { from: 'registered', to: 'installing' }),
      ev('script-served', { kind: 'boot', profile: 'e2e-report' }),
      ev('asset-served', { artifact: 'kernel' }),
      ev('asset-served', { artifact: 'initramfs' }),
      ev('booted', { role: 'report' }),
    ]);
    t.equal(events.filter((e) => e.type === 'dhcp-offer').length, 1, 'one DHCP exchange: the re-checks and the boot happened in the same power-on');
  });

  // The lab's teardown does the same if anything above throws.
  bl.lab.cleanup();
  t.same(
    netnsList().filter((n) => n.startsWith(prefix)),
    [],
    'no namespace, tap or VM is left behind',
  );
});
