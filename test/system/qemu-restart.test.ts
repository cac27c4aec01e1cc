/**
 * A crash must not lose a boot (issue 15 §1): a real edgeboot (DHCP, TFTP and HTTP in the QEMU
 * boot lab, test/helpers/boot-lab.ts) is SIGKILLed while a machine is downloading its precache
 * live environment, and brought back by the test supervisor (test/helpers/supervisor.ts) the
 * way the shipped systemd unit's Restart=on-failure would: same config, data dir and ports,
 * after the unit's RestartSec. The machine's iPXE fetches its kernel and initrd again in place
 * (src/boot/render.ts, fetchAndBoot), boots the live environment, which runs the whole precache
 * protocol against the restarted server: booted, inventory, plan, the bundle, result.
 *
 * What shows nothing was lost:
 * - the timeline holds the events from before the crash (DHCP, entry script, the state move to
 *   precaching, the script, the kernel served) and after it (the kernel and initrd served again
 *   by the new process, booted, … precached), in order;
 * - the machine asked for its script once: one entry script, one script served, one state move
 *   into precaching; `precacheProgress.boots` is 1, as it would be without the crash (on the
 *   code before the retry, iPXE asked the server again and the crash cost a precache boot);
 * - the events token and Ignition URL in the script, issued before the crash, still work after it.
 * The kill lands on the initrd download: the initramfs is padded with 96 MiB of zeros (the
 * kernel skips zero padding between cpio archives), and the kill follows the kernel's
 * `asset-served` event; the console's retry line proves a download was cut.
 * A kill during a state write is covered by test/integration/persistence.test.ts (SIGKILL with
 * writes in flight loses no acknowledged write and half-writes nothing).
 * Needs root and what test/system/qemu-boot-full.test.ts needs (.ci/run installs it).
 */
import { statSync, truncateSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { assertOrder, createBootLab, describeTimeline, ev } from '../helpers/boot-lab.js';
import type { DhcpServer } from '../helpers/dhcp-system.js';
import { netnsList, netnsSkip } from '../helpers/netns.js';
import { prebuildBundle } from '../helpers/prebuilt-bundle.js';
import { tempDir } from '../helpers/process.js';
import { policyFromUnit, supervise } from '../helpers/supervisor.js';
import type { PrecacheProgress } from '../../src/machines/model.js';

const skip = netnsSkip();
t.setTimeout(420_000);

const GiB = 2 ** 30;
const MiB = 2 ** 20;
const MAC = '52:54:00:eb:15:01';
/** Zeros after the busybox initramfs: a download long enough to be cut in the middle. */
const PADDING = 96 * MiB;

t.test('edgeboot SIGKILLed mid-boot and restarted as systemd would: the boot completes, nothing lost', { skip }, async (t) => {
  const dataDir = tempDir(t, 'edgeboot-qr-data-');
  const bundle = await prebuildBundle(t, { dataDir, cacheDir: join(dataDir, 'cache') });
  const bl = await createBootLab(t, 'qr', {
    mode: 'full',
    recheckSeconds: 5,
    dataDir,
    cacheDir: bundle.cacheDir,
    precache: { installReserveGiB: 0, after: 'poweroff' },
  });
  const prefix = bl.lab.prefix;
  bl.explainOnFailure(t);
  const policy = policyFromUnit();
  const sup = supervise<DhcpServer>(t, bl.server, () => bl.startServerAgain(), policy);
  t.teardown(() => {
    if (!t.passing()) {
      for (const r of sup.restarts())
        console.error(
          `--- restarted edgeboot log:\n${r.process.logLines
            .slice(-40)
            .map((l) => JSON.stringify(l))
            .join('\n')}\n${r.process.stderr().slice(-2000)}`,
        );
    }
  });

  truncateSync(bl.images.initramfs, statSync(bl.images.initramfs).size + PADDING);
  const initrdBytes = statSync(bl.images.initramfs).size;

  const put = await bl.api('PUT', `/api/v1/machines/${MAC}`, {
    hostname: 'restart-1',
    profile: 'precache-assisted',
    // The install stage is not reached: the live environment powers off after its result.
    assisted: { ipxeScriptUrl: 'http://10.77.0.1:8090/ipxe-script?api_key=not-used' },
    precache: { liveProfile: 'e2e-live', bundle: bundle.id, sizeGiB: 1 },
  });
  if (!t.equal(put.status, 201, 'registered')) {
    t.comment(`PUT answered ${JSON.stringify(put.body)}: not booting`);
    return;
  }

  const vm = bl.vm('restart', 'bios', MAC, 300_000, { disk: bl.disk('restart', 2 * GiB), memoryMiB: 768 });
  await bl.waitEvent(MAC, (e) => e.type === 'asset-served' && e.data?.artifact === 'kernel', 120_000, 'the kernel served');
  const victim = sup.current();
  victim.process.kill('SIGKILL');
  const killedAt = Date.now();
  const died = await victim.exited;
  t.equal(died.signal, 'SIGKILL', 'edgeboot died of SIGKILL while the initrd was on its way');

  const restart = await sup.restarted(1, 60_000);
  t.same([restart.exit.code, restart.exit.signal], [null, 'SIGKILL'], 'the supervisor restarted it after the SIGKILL (Restart=on-failure)');
  t.ok(
    restart.servingAt - restart.diedAt >= policy.restartDelayMs,
    `after RestartSec (${policy.restartDelayMs} ms; serving again ${restart.servingAt - killedAt} ms after the kill)`,
  );

  await vm.waitConsole(/eb-init: result posted/, 240_000);
  const off = await vm.exited;
  t.comment(`the boot took ${Math.round(off.ms / 1000)} s, the restart included`);
  t.match(vm.console(), /try 1 of \d+\), fetching again in 5 s/, "iPXE's download was cut and fetched again in place");

  const events = await bl.events(MAC);
  t.comment(describeTimeline(events));
  const killedIso = new Date(killedAt).toISOString();
  const files = bundle.manifest.files;
  assertOrder(t, events, [
    ev('dhcp-offer', { ipxe: true }),
    ev('entry-script-served'),
    ev('state-changed', {}, { from: 'registered', to: 'precaching' }),
    ev('script-served', { kind: 'boot', stage: 'precache', profile: 'e2e-live' }),
    ev('asset-served', { profile: 'e2e-live', artifact: 'kernel', status: 200 }),
    // The restarted process from here on.
    ev('asset-served', { profile: 'e2e-live', artifact: 'kernel', status: 200 }),
    ev('asset-served', { profile: 'e2e-live', artifact: 'initramfs', status: 200, bytes: initrdBytes }),
    ev('booted', { role: 'live' }),
    ev('inventory', { disks: 1 }),
    ev('precache-plan', { bundle: bundle.id, files: files.length }),
    ev('precache-result', { ok: true }),
    ev('state-changed', { cause: 'precache-succeeded' }, { from: 'precaching', to: 'precached' }),
  ]);
  const kernels = events.filter((e) => e.type === 'asset-served' && e.data?.artifact === 'kernel');
  t.ok(
    kernels.length === 2 && (kernels[0]?.time ?? '') < killedIso && (kernels[1]?.time ?? '') > killedIso,
    'one kernel served before the crash, one after the restart',
  );
  t.equal(
    events.filter((e) => e.type === 'asset-served' && e.data?.artifact === 'initramfs').length,
    1,
    'the initrd was served whole once: by the restarted process',
  );
  t.equal(events.filter((e) => e.type === 'entry-script-served').length, 1, 'the machine asked for the entry script once');
  t.equal(events.filter((e) => e.type === 'script-served').length, 1, 'and for its script once: the crash cost no second boot');
  t.equal(events.filter((e) => e.to === 'precaching').length, 1, 'one move into precaching');

  const m = await bl.api('GET', `/api/v1/machines/${MAC}`);
  const machine = m.body as { state: string; precacheProgress?: PrecacheProgress };
  t.equal(machine.state, 'precached', 'the machine is precached');
  t.match(
    machine.precacheProgress,
    { boots: 1, filesDone: files.length, filesTotal: files.length, outcome: 'precached' },
    'in one precache boot, as without the crash',
  );

  await sup.stop();
  bl.lab.cleanup();
  t.same(
    netnsList().filter((n) => n.startsWith(prefix)),
    [],
    'no namespace, tap or VM is left behind',
  );
});
