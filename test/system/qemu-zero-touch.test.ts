/**
 * End to end, zero touch: edgeboot drives each machine through its BMC (Redfish) and nobody
 * touches the machine. Each BMC is the Redfish emulator (test/helpers/redfish/emulator.ts) in this
 * process, listening on a unix socket, whose power is a real QEMU guest (BIOS, QEMU's iPXE ROM)
 * driven over QMP (test/helpers/redfish/qemu-power.ts): a one-time network boot the BMC consumes
 * starts QEMU with the NIC first, no override with the disk first. edgeboot runs in the lab's
 * server namespace and reaches each BMC at redfish+http://127.0.0.1:<port> through a TCP → unix
 * relay there (test/vm/tcp-unix-relay.mjs).
 *
 *   switch namespace: br0 ─┬─ server  10.77.0.1  edgeboot (DHCP, TFTP, HTTP :8080), the assisted
 *                          │                     hub stand-in (:8090), the relay (127.0.0.1:91xx)
 *                          └─ ztN                one QEMU per machine, started and stopped by its BMC
 *
 * - The driver alone: the test PATCHes a one-time Pxe override with curl and resets the system On;
 *   the VM PXE-boots from edgeboot, reports and reboots itself; with no override left the new boot
 *   is the disk's (a boot sector that prints a line on COM1); a second override and ForceRestart
 *   PXE-boot it again; ForceOff quits QEMU.
 * - The whole flow: a machine registered with its MAC, the precache-assisted profile over the
 *   CoreOS-live stand-in (test/vm/live-standin) and a small prebuilt bundle, the hub's
 *   ipxeScriptUrl and a BMC address is provisioned with ONE API call. edgeboot sets the override
 *   and powers the VM on; the stand-in partitions the sparse disk, downloads the bundle and reboots
 *   itself; edgeboot re-armed the override when it served the precache stage, so that boot goes to
 *   the network and chains into the hub's installer (test/vm/init, role installer), which writes a
 *   boot sector (eb.bootsector=1), tells the hub done (the hub posts install-done) and reboots; no
 *   override is pending, so the VM boots its disk: "booted from disk".
 * - That flow behind the generic BMC and each vendor profile (supermicro, ami, idrac, ilo): five
 *   machines side by side in the same lab, each to its disk boot, with what each BMC saw checked
 *   against its quirk (Supermicro's reverted override PATCHed again, AMI's If-Match, iDRAC's and iLO's
 *   Reset tasks followed). Five guests share the two cores, so their waits are three times as long.
 * - The BMC unreachable (a port nothing listens on, and an emulator closed behind the relay):
 *   provision answers 502 bmc_unreachable, the timeline has bmc-unreachable and the machine is
 *   untouched (registered, no VM ever started).
 * The BMC password appears in no API answer, timeline event or edgeboot log line.
 *
 * Every QEMU run is killed after its hard limit; a failure prints the consoles and edgeboot's log.
 * Needs root, the VM tools of qemu-precache.test.ts, docker-registry, skopeo and a built dist/.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t, { type Test } from 'tap';
import { assertOrder, describeTimeline, ev, startHub, type Hub } from '../helpers/boot-lab.js';
import type { MachineEvent } from '../helpers/dhcp-system.js';
import { netnsList, netnsSkip, type Background } from '../helpers/netns.js';
import { prebuildBundle, type PrebuiltBundle } from '../helpers/prebuilt-bundle.js';
import { tempDir } from '../helpers/process.js';
import { startRedfishEmulator, type RedfishEmulator, type VendorProfile } from '../helpers/redfish/emulator.js';
import { QemuPower } from '../helpers/redfish/qemu-power.js';
import { createPrecacheLab, STANDIN_PROFILE, type PrecacheLab } from '../helpers/standin.js';
import { buildBootImages, CONSOLE_FAILURE, consoleTail, sparseDisk, VM_DIR, type BootImages } from '../helpers/vm.js';

const run = promisify(execFile);
const skip = netnsSkip();
t.setTimeout(540_000);

const GiB = 2 ** 30;
/** How much longer each wait is when the five guests share the two cores. */
const SIDE_BY_SIDE = 3;
const USER = 'root';
/** Random per run, so that a grep for it finds only leaks. */
const PASSWORD = `zt-${randomBytes(12).toString('base64url')}`;
const DISK_LINE = /edgeboot-test: booted from disk/;
const PROFILES = ['generic', 'supermicro', 'ami', 'idrac', 'ilo'] as const satisfies readonly VendorProfile[];
/** The relay's ports in the server namespace; UNUSED has nothing listening. */
const PORT = { generic: 9101, supermicro: 9102, ami: 9103, idrac: 9104, ilo: 9105, closed: 9106 } as const;
const UNUSED_PORT = 9199;
const MAC = {
  proof: '52:54:00:eb:18:01',
  generic: '52:54:00:eb:18:02',
  supermicro: '52:54:00:eb:18:03',
  ami: '52:54:00:eb:18:04',
  idrac: '52:54:00:eb:18:05',
  ilo: '52:54:00:eb:18:06',
  refused: '52:54:00:eb:18:07',
  closed: '52:54:00:eb:18:08',
} as const;
/** How each vendor's BMC address is written: two by their alias (the vendor named), the others detected. */
const SCHEME: Record<VendorProfile, string> = {
  generic: 'redfish+http',
  supermicro: 'redfish+http',
  ami: 'redfish+http',
  idrac: 'idrac-redfish+http',
  ilo: 'ilo5-redfish+http',
};

/**
 * The boot sector test/vm/init writes with eb.bootsector=1 (org 0x7c00): xor ax,ax; mov ds,ax;
 * mov si,0x7c16; mov dx,0x3f8; lodsb; test al,al; jz +3; out dx,al; jmp lodsb; cli; hlt; jmp cli;
 * then the text at 0x16.
 */
const BOOT_CODE = Buffer.concat([
  Buffer.from('31c08ed8be167cbaf803ac84c07403eeebf8faf4ebfc', 'hex'),
  Buffer.from('edgeboot-test: booted from disk\r\n\0', 'latin1'),
]);

interface Lab {
  pl: PrecacheLab;
  bundle: PrebuiltBundle;
  images: BootImages;
  hub: Hub;
  relay: Background;
  dir: string;
  /** Every API answer the test read, for the password grep. */
  answers: unknown[];
  powers: { name: string; power: QemuPower }[];
}

/** A BMC emulator behind the relay whose power is a QEMU guest on its own tap and disk. */
interface Machine {
  name: string;
  mac: string;
  emu: RedfishEmulator;
  power: QemuPower;
  address: string;
}

async function startMachine(
  t: Test,
  lab: Lab,
  name: string,
  profile: VendorProfile,
  mac: string,
  port: number,
  diskBytes: number,
  slower = 1,
): Promise<Machine> {
  const vmDir = join(lab.dir, 'vms');
  mkdirSync(vmDir, { recursive: true });
  const disk = sparseDisk(join(vmDir, `${name}.img`), diskBytes);
  const power = new QemuPower({
    lab: lab.pl.lab,
    ns: lab.pl.switchNs,
    bridge: 'br0',
    tap: `zt-${name}`.slice(0, 15),
    mac,
    disk,
    dir: vmDir,
    bootTimeoutMs: 240_000 * slower,
  });
  lab.powers.push({ name, power });
  t.teardown(() => power.close());
  const emu = await startRedfishEmulator({ profile, username: USER, password: PASSWORD, macs: [mac], power, listen: { path: socketPath(lab.dir, name) } });
  t.teardown(() => emu.close());
  return { name, mac, emu, power, address: `${SCHEME[profile]}://127.0.0.1:${port}` };
}

const socketPath = (dir: string, name: string): string => join(dir, `bmc-${name}.sock`);

async function apiCall(lab: Lab, method: 'GET' | 'PUT' | 'POST', path: string, body?: unknown): Promise<{ status: number; body: unknown }> {
  const r = await lab.pl.api(method, path, body);
  lab.answers.push(r.body);
  return r;
}

async function events(lab: Lab, mac: string): Promise<MachineEvent[]> {
  const list = await lab.pl.events(mac);
  lab.answers.push(list);
  return list;
}

/** Registers `m` with its MAC, the precache-assisted profile, the hub's script URL and its BMC; nothing else. */
async function register(t: Test, lab: Lab, m: Machine): Promise<void> {
  const put = await apiCall(lab, 'PUT', `/api/v1/machines/${m.mac}`, {
    profile: 'precache-assisted',
    assisted: { ipxeScriptUrl: lab.hub.scriptUrl },
    precache: { liveProfile: STANDIN_PROFILE, bundle: lab.bundle.id, sizeGiB: 1 },
    bmc: { address: m.address, username: USER, password: PASSWORD },
  });
  t.equal(put.status, 201, `${m.name}: registered with its MAC, profile, hub URL and BMC address`);
  if (put.status !== 201) throw new Error(`PUT ${m.mac}: ${put.status} ${JSON.stringify(put.body)}`);
}

/**
 * Waits until the guest's console shows `re` (cheap: a file read every 250 ms), checking the
 * machine's state every 5 s so that a failed machine stops the wait at once.
 */
async function untilConsole(lab: Lab, m: Machine, re: RegExp, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let checked = Date.now();
  for (let text = m.power.console(); !re.test(text); text = m.power.console()) {
    const broken = CONSOLE_FAILURE.exec(text);
    if (broken) throw new Error(`${m.name}: the console shows "${broken[0]}" before ${re}`);
    if (Date.now() > deadline) throw new Error(`${m.name}: the console did not show ${re} within ${timeoutMs} ms`);
    if (Date.now() - checked > 5_000) {
      checked = Date.now();
      const r = await lab.pl.api('GET', `/api/v1/machines/${m.mac}`);
      const state = (r.body as { state?: string }).state;
      if (state === 'failed') throw new Error(`${m.name} failed: ${describeTimeline(await lab.pl.events(m.mac))}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

const boots = (emu: RedfishEmulator): string[] => emu.boots.map((b) => (b.networkFirst ? 'network' : 'disk'));

/** The provision call, the one thing done by hand; answers 2xx. */
async function provision(t: Test, lab: Lab, m: Machine): Promise<void> {
  const r = await apiCall(lab, 'POST', `/api/v1/machines/${m.mac}/provision`);
  const override = (r.body as { override?: { target?: string; kept?: unknown } }).override;
  t.ok(r.status >= 200 && r.status < 300, `${m.name}: POST provision answers ${r.status} (override ${JSON.stringify(override)})`);
  if (r.status >= 300) throw new Error(`${m.name}: provision ${r.status} ${JSON.stringify(r.body)}`);
}

/** The whole zero-touch flow of `m` after its provision call, asserted. */
async function wholeFlow(t: Test, lab: Lab, m: Machine, slower = 1): Promise<void> {
  const started = Date.now();
  await provision(t, lab, m);
  await untilConsole(lab, m, /standin: starting edgeboot-precache\.service/, 150_000 * slower);
  await untilConsole(lab, m, /eb-init: role=installer/, 200_000 * slower);
  await untilConsole(lab, m, DISK_LINE, 120_000 * slower);
  const s = (at: number | undefined): string => (at === undefined ? '-' : `${Math.round((at - started) / 1000)} s`);
  const [precacheBoot, installBoot, diskBoot] = m.power.boots;
  t.comment(
    `${m.name}: provisioned; QEMU started for the precache boot at ${s(precacheBoot?.at)}, the install boot at ${s(installBoot?.at)}, the disk boot at ${s(diskBoot?.at)}; "booted from disk" by ${s(Date.now())}`,
  );

  const list = await events(lab, m.mac);
  t.comment(`${m.name}: ${describeTimeline(list)}`);
  t.comment(`${m.name}: ${phases(list)}`);
  assertOrder(t, list, [
    ev('bmc-boot-override'),
    ev('bmc-power'),
    ev('state-changed', {}, { from: 'registered', to: 'precaching' }),
    ev('script-served', { kind: 'boot', stage: 'precache', profile: STANDIN_PROFILE }),
    ev('bmc-boot-override'),
    ev('precache-result', { ok: true }),
    ev('state-changed', { cause: 'precache-succeeded' }, { from: 'precaching', to: 'precached' }),
    ev('script-served', { kind: 'boot', stage: 'install', profile: 'assisted' }),
    ev('booted', { role: 'installer' }),
    ev('install-done'),
    ev('state-changed', {}, { from: 'installing', to: 'installed' }),
  ]);
  // The override for the boot after precache is set while the precache stage is served, before the stand-in reboots.
  const precacheServed = list.findIndex((e) => e.type === 'script-served' && e.data?.stage === 'precache');
  const installServed = list.findIndex((e) => e.type === 'script-served' && e.data?.stage === 'install');
  const overrides = list.flatMap((e, i) => (e.type === 'bmc-boot-override' ? [i] : []));
  t.equal(overrides.length, 2, `${m.name}: two one-time overrides: the provision's and the one re-armed for the install boot`);
  const rearmed = overrides[1] ?? -1;
  t.ok(rearmed > (overrides[0] ?? -1) && rearmed < installServed, `${m.name}: the second override came before the install boot was served`);
  const rebootOffer = list.findIndex((e, i) => i > precacheServed && e.type === 'dhcp-offer');
  t.ok(rearmed < rebootOffer, `${m.name}: and before the guest rebooted into it (event #${list[rearmed]?.id} < #${list[rebootOffer]?.id})`);
  t.notOk(
    list.some((e) => e.type === 'bmc-error'),
    `${m.name}: no bmc-error`,
  );
  t.equal(list.filter((e) => e.type === 'bmc-power').length, 1, `${m.name}: one power action: the guest rebooted itself after that`);
  t.same(boots(m.emu), ['network', 'network', 'disk'], `${m.name}: the BMC saw three boots: network, network, disk`);
  t.same(
    m.power.boots.map((b) => b.ended ?? 'running'),
    ['guest-reset', 'guest-reset', 'running'],
    `${m.name}: both network boots ended in the guest's own reboot; the disk boot runs`,
  );
  const machine = await apiCall(lab, 'GET', `/api/v1/machines/${m.mac}`);
  t.equal((machine.body as { state?: string }).state, 'installed', `${m.name}: installed`);
  t.equal(m.emu.system().boot.enabled, 'Disabled', `${m.name}: no override left on the BMC`);
}

/** How long each part of the flow took, from the timeline's times. */
function phases(list: MachineEvent[]): string {
  const at = (match: (e: MachineEvent) => boolean): number | undefined => {
    const e = list.find(match);
    return e ? Date.parse(e.time) : undefined;
  };
  const marks: [string, number | undefined][] = [
    ['provision', at((e) => e.type === 'bmc-boot-override')],
    ['precache boot served', at((e) => e.type === 'script-served' && e.data?.stage === 'precache')],
    ['live environment up', at((e) => e.type === 'booted')],
    ['precached', at((e) => e.type === 'state-changed' && e.to === 'precached')],
    ['install boot served', at((e) => e.type === 'script-served' && e.data?.stage === 'install')],
    ['installed', at((e) => e.type === 'state-changed' && e.to === 'installed')],
  ];
  const start = marks[0]?.[1] ?? 0;
  return marks.map(([what, time]) => `${what} ${time === undefined ? '-' : `+${((time - start) / 1000).toFixed(1)} s`}`).join(', ');
}

/**
 * The whole flow of a machine beside four others, then what its BMC saw: each vendor's quirks meet
 * the provision's override, its power-on and the override re-armed on a machine that is on.
 */
async function flowAndQuirks(t: Test, lab: Lab, m: Machine): Promise<void> {
  await wholeFlow(t, lab, m, SIDE_BY_SIDE);
  const calls = m.emu.requests
    .filter((r) => r.method !== 'GET' || r.path.includes('/TaskMonitors/'))
    .map((r) => `${r.method} ${r.path.replace(/^\/redfish\/v1\//, '')} ${r.status}`);
  t.comment(`${m.name}: the BMC's changes and task polls: ${calls.join(', ')}`);
  const patches = m.emu.requests.filter((r) => r.method === 'PATCH');
  if (m.name === 'supermicro') t.ok(patches.length >= 4, `supermicro: each override PATCHed again after the BMC reverted it (${patches.length} PATCHes)`);
  if (m.name === 'ami') t.ok(patches.length > 0 && patches.every((r) => r.status === 200), 'ami: every PATCH carried If-Match (no 428)');
  if (m.name === 'idrac' || m.name === 'ilo') {
    t.ok(
      m.emu.requests.some((r) => r.path.includes('/TaskMonitors/')),
      `${m.name}: the Reset's task monitor was followed`,
    );
  }
  await m.power.close();
}

t.test('zero touch: edgeboot provisions QEMU machines through emulated Redfish BMCs', { skip }, async (t) => {
  const timings: string[] = [];
  const since = Date.now();
  const mark = (what: string): void => void timings.push(`${what} ${Math.round((Date.now() - since) / 1000)} s`);
  const dir = tempDir(t, 'edgeboot-zt-');
  const dataDir = join(dir, 'data');
  const bundle = await prebuildBundle(t, { dataDir, cacheDir: join(dataDir, 'cache') });
  const images = buildBootImages(join(dir, 'images'));
  const pl = await createPrecacheLab(t, 'zt', {
    dataDir,
    cacheDir: bundle.cacheDir,
    // The 2 GiB disk holds the 1 GiB data partition with no room kept for the install.
    precache: { installReserveGiB: 0, after: 'reboot' },
    config: { bmc: { pollSeconds: 30, bootTimeoutSeconds: 300, maxRetries: 0 } },
    profiles: { 'zt-reboot': rebootProfile(images) },
  });
  const hub = await startHub(pl.lab, pl.serverNs, pl.server, images, { notify: true, kargs: ['eb.bootsector=1', 'no_timer_check'] });
  t.teardown(() => hub.stop());
  const pairs = Object.entries(PORT).flatMap(([name, port]) => [`127.0.0.1:${port}`, socketPath(dir, name)]);
  const relay = pl.lab.start(pl.serverNs, [process.execPath, join(VM_DIR, 'tcp-unix-relay.mjs'), ...pairs]);
  await relay.waitFor(/"ready"/, 5_000);
  const lab: Lab = { pl, bundle, images, hub, relay, dir, answers: [], powers: [] };
  const prefix = pl.lab.prefix;
  mark('lab up');
  t.teardown(() => {
    if (t.passing()) return;
    for (const { name, power } of lab.powers) console.error(`--- console of ${name} (${power.consoleFile}):\n${consoleTail(power.console(), 60)}`);
    console.error(pl.explain());
  });

  await t.test('the driver alone: an override with curl, Reset On, a PXE boot, the guest reboots into its disk', async (t) => {
    const m = await startMachine(t, lab, 'proof', 'generic', MAC.proof, 0, 64 << 20);
    writeBootSector(join(lab.dir, 'vms', 'proof.img'));
    const put = await apiCall(lab, 'PUT', `/api/v1/machines/${MAC.proof}`, { profile: 'zt-reboot' });
    t.equal(put.status, 201, 'registered with a profile that reports and reboots');
    const redfish = (method: string, path: string, body?: unknown) => curlRedfish(socketPath(dir, 'proof'), method, path, body);
    const systems = await redfish('GET', '/redfish/v1/Systems');
    const system = (JSON.parse(systems.body) as { Members: { '@odata.id': string }[] }).Members[0]?.['@odata.id'] ?? '';
    const patch = await redfish('PATCH', system, { Boot: { BootSourceOverrideTarget: 'Pxe', BootSourceOverrideEnabled: 'Once' } });
    t.equal(patch.status, 200, `curl PATCH ${system}: a one-time Pxe override`);
    const reset = await redfish('POST', `${system}/Actions/ComputerSystem.Reset`, { ResetType: 'On' });
    t.ok(reset.status === 204 || reset.status === 200, `curl POST Reset On: ${reset.status}`);
    await m.power.waitConsole(/eb-init: reported booted/, 120_000);
    await m.power.waitConsole(DISK_LINE, 60_000);
    mark('driver: PXE boot, then the disk');
    t.same(boots(m.emu), ['network', 'disk'], 'the BMC consumed the override: network, then the disk');
    t.equal(m.power.boots[0]?.ended, 'guest-reset', "the first QEMU ended with the guest's reboot");
    t.equal(m.emu.system().boot.enabled, 'Disabled', 'the override reads Disabled after its boot');
    const list = await events(lab, MAC.proof);
    assertOrder(t, list, [ev('script-served', { kind: 'boot', profile: 'zt-reboot' }), ev('booted', { role: 'report' })]);

    // A second override and a warm reset while the disk's boot sector halts: system_reset, the network again.
    const offers = list.filter((e) => e.type === 'dhcp-offer').length;
    t.equal((await redfish('PATCH', system, { Boot: { BootSourceOverrideTarget: 'Pxe', BootSourceOverrideEnabled: 'Once' } })).status, 200, 'another override');
    const restart = await redfish('POST', `${system}/Actions/ComputerSystem.Reset`, { ResetType: 'ForceRestart' });
    t.ok(restart.status === 204 || restart.status === 200, `curl POST Reset ForceRestart: ${restart.status}`);
    const deadline = Date.now() + 60_000;
    let again = offers;
    while (again <= offers && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 1_000));
      again = (await lab.pl.events(MAC.proof)).filter((e) => e.type === 'dhcp-offer').length;
    }
    t.ok(again > offers, 'the reset QEMU asked edgeboot for an address again: a network boot');
    t.equal(m.power.boots[1]?.ended, 'host-qmp-system-reset', "the disk boot ended in the BMC's system_reset");
    const off = await redfish('POST', `${system}/Actions/ComputerSystem.Reset`, { ResetType: 'ForceOff' });
    t.ok(off.status === 204 || off.status === 200, `curl POST Reset ForceOff: ${off.status}`);
    const offBy = Date.now() + 15_000;
    while ((m.power.running || m.emu.system().powerState !== 'Off') && Date.now() < offBy) await new Promise((r) => setTimeout(r, 200));
    t.notOk(m.power.running, 'ForceOff quit QEMU');
    t.equal(m.power.boots[2]?.ended, 'host-qmp-quit', 'with a QMP quit');
    t.equal(m.emu.system().powerState, 'Off', 'and the BMC reads Off');
    t.same(boots(m.emu), ['network', 'disk', 'network'], 'three boots in all');
    await m.power.close();
    mark('driver: reset and off');
  });

  await t.test('the whole flow from one provision call, the generic BMC and each vendor profile side by side, and the BMC unreachable', async (t) => {
    const machines = await Promise.all(PROFILES.map((v) => startMachine(t, lab, v, v, MAC[v], PORT[v], 2 * GiB, SIDE_BY_SIDE)));
    for (const m of machines) await register(t, lab, m);
    // All run to their end before a failure of any is reported.
    const results = await Promise.allSettled([...machines.map((m) => flowAndQuirks(t, lab, m)), unreachable(t, lab)]);
    for (const r of results) if (r.status === 'rejected') t.fail(r.reason instanceof Error ? (r.reason.stack ?? r.reason.message) : String(r.reason));
    mark('whole flows');
  });

  await t.test('the BMC password is in no API answer, timeline event or edgeboot log line', async (t) => {
    const macs = [...PROFILES.map((v) => MAC[v]), MAC.refused, MAC.closed];
    for (const mac of macs) await events(lab, mac);
    for (const mac of macs) await apiCall(lab, 'GET', `/api/v1/machines/${mac}`);
    await apiCall(lab, 'GET', '/api/v1/machines');
    t.notOk(JSON.stringify(lab.answers).includes(PASSWORD), `not in the ${lab.answers.length} API answers`);
    t.notOk(JSON.stringify(pl.server.logLines).includes(PASSWORD), `not in the ${pl.server.logLines.length} log lines`);
    t.notOk(pl.server.stderr().includes(PASSWORD), 'not on its stderr');
    t.ok(JSON.stringify(lab.answers).includes('bmc'), 'the answers did show the machines’ BMCs');
  });

  t.comment(`timings: ${timings.join(', ')}`);
  pl.lab.cleanup();
  t.same(
    netnsList().filter((n) => n.startsWith(prefix)),
    [],
    'no namespace, tap or VM is left behind',
  );
});

/** Two machines whose BMC cannot be reached: nothing listens on the port; the emulator behind the relay is closed. */
async function unreachable(t: Test, lab: Lab): Promise<void> {
  const closed = await startRedfishEmulator({ username: USER, password: PASSWORD, macs: [MAC.closed], listen: { path: socketPath(lab.dir, 'closed') } });
  await closed.close();
  const cases = [
    { mac: MAC.refused, address: `redfish+http://127.0.0.1:${UNUSED_PORT}`, what: 'a port nothing listens on' },
    { mac: MAC.closed, address: `redfish+http://127.0.0.1:${PORT.closed}`, what: 'an emulator closed behind the relay' },
  ];
  for (const c of cases) {
    const put = await apiCall(lab, 'PUT', `/api/v1/machines/${c.mac}`, {
      profile: 'precache-assisted',
      assisted: { ipxeScriptUrl: lab.hub.scriptUrl },
      precache: { liveProfile: STANDIN_PROFILE, bundle: lab.bundle.id, sizeGiB: 1 },
      bmc: { address: c.address, username: USER, password: PASSWORD },
    });
    t.equal(put.status, 201, `${c.what}: registered`);
    const r = await apiCall(lab, 'POST', `/api/v1/machines/${c.mac}/provision`);
    t.equal(r.status, 502, `${c.what}: provision answers 502`);
    t.match(r.body, { error: 'bmc_unreachable' }, `${c.what}: bmc_unreachable`);
    const list = await events(lab, c.mac);
    t.ok(
      list.some((e) => e.type === 'bmc-unreachable'),
      `${c.what}: bmc-unreachable on the timeline (${describeTimeline(list)})`,
    );
    const m = await apiCall(lab, 'GET', `/api/v1/machines/${c.mac}`);
    t.equal((m.body as { state?: string }).state, 'registered', `${c.what}: the machine is untouched: registered`);
    t.notOk(
      list.some((e) => e.type === 'bmc-power' || e.type === 'bmc-boot-override' || e.type === 'dhcp-offer'),
      `${c.what}: no override, no power action, no boot`,
    );
  }
  t.same(closed.boots, [], 'the closed BMC never started a boot');
}

/** A profile over the busybox initramfs (test/vm/init) that reports booted and reboots. */
function rebootProfile(images: BootImages): string {
  const artifacts = `  kernel: { url: "file://${images.kernel}" }\n  initramfs: { url: "file://${images.initramfs}" }`;
  // no_timer_check: a guest emulated without KVM on a busy host can miss the kernel's IO-APIC timer check and panic.
  const args = 'console=ttyS0 no_timer_check quiet eb.role=report eb.events={{ machine.eventsUrl }} eb.after=reboot';
  return `name: zt-reboot\ndescription: reports booted, then reboots\nartifacts:\n${artifacts}\nboot: { kernel: kernel, initrds: [initramfs], args: "${args}" }\n`;
}

/** Writes BOOT_CODE and the 0x55AA signature into the first sector of a disk image. */
function writeBootSector(disk: string): void {
  const fd = openSync(disk, 'r+');
  try {
    writeSync(fd, BOOT_CODE, 0, BOOT_CODE.length, 0);
    writeSync(fd, Buffer.from([0x55, 0xaa]), 0, 2, 510);
  } finally {
    closeSync(fd);
  }
}

/** One Redfish request with curl over the emulator's unix socket, Basic auth. */
async function curlRedfish(socket: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: string }> {
  const argv = ['-sS', '--max-time', '10', '--unix-socket', socket, '-u', `${USER}:${PASSWORD}`, '-X', method, '-w', '\n%{http_code}'];
  if (body !== undefined) argv.push('-H', 'content-type: application/json', '--data-binary', JSON.stringify(body));
  const { stdout } = await run('curl', [...argv, `http://bmc${path}`], { timeout: 15_000 });
  const nl = stdout.lastIndexOf('\n');
  return { status: Number(stdout.slice(nl + 1)), body: stdout.slice(0, nl) };
}
