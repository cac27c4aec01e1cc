/**
 * Zero touch through the BMC service, over the API, against Redfish emulators: provision (the
 * override consumed by the power-on's boot), the run booted by the machine's `/ipxe`, the
 * network boot re-armed for the install stage, retries and the failure after them, an
 * unreachable BMC and a wrong password (502, the machine untouched), and no password anywhere.
 */
import t from 'tap';
import { BmcService } from '../../src/bmc/service.js';
import { createLogger } from '../../src/log.js';
import type { Mac } from '../../src/machines/mac.js';
import type { EventBody } from '../helpers/app.js';
import { BMC_PASSWORD, bmcLab, bmcTypes, waitFor } from '../helpers/bmc-lab.js';

interface BmcView {
  passwordSet: boolean;
  reachable?: boolean;
  powerState?: string;
  vendor?: string;
  lastError?: string;
  macs?: string[];
  run?: { phase: string; attempts: number; startedAt: string; deadlineAt?: string };
}
interface MachineBody {
  mac: string;
  state: string;
  bmc?: BmcView;
}
interface ProvisionBody {
  machine: MachineBody;
  override: { target: string; mode?: string; attempts: number; kept: Record<string, string> };
  power: { action: string; resetTypes: string[]; powerBefore?: string; busyRetries: number };
}

const MAC = '52:54:00:10:00:01';
const IP = '10.77.0.51';

t.test('provision: override, power on, the run booted by /ipxe, the network boot armed again for the install stage', async (t) => {
  const lab = await bmcLab(t);
  const emu = await lab.emulator({ macs: [MAC], serial: 'SN-0001', model: 'Emulated 1U', manufacturer: 'Lab' });
  const put = await lab.register(MAC, IP, emu);
  t.equal(put.statusCode, 201, put.body);
  const inventory = await waitFor('the inventory read', async () => (await lab.events(MAC)).find((e) => e.type === 'bmc-inventory'));
  t.match(inventory.message, /Lab Emulated 1U, serial SN-0001, NICs 52:54:00:10:00:01/);
  t.notOk(
    (await lab.events(MAC)).some((e) => e.type === 'bmc-mac-mismatch'),
    "the reservation's MAC is a NIC of the system",
  );

  const res = await lab.inject('POST', `/api/v1/machines/${MAC}/provision`);
  t.equal(res.statusCode, 200, res.body);
  const p = res.json<ProvisionBody>();
  t.equal(p.override.target, 'Pxe');
  t.equal(p.override.kept.enabled, 'Once');
  t.same(p.power.resetTypes, ['On'], 'the machine was off: On');
  t.equal(p.power.powerBefore, 'Off');
  t.equal(p.machine.state, 'registered', 'the state moves when the machine boots, not before');
  t.equal(p.machine.bmc?.run?.phase, 'powered');
  t.equal(p.machine.bmc?.run?.attempts, 1);
  const boot = await waitFor('the power-on boot', () => emu.boots[0]);
  t.equal(boot.networkFirst, true, 'the power-on boot consumed the one-time network boot');
  t.equal(emu.system().boot.enabled, 'Disabled', 'and the override is spent');
  t.same(bmcTypes(await lab.events(MAC)), ['bmc-inventory', 'bmc-boot-override', 'bmc-power'], 'the events, in order');

  // The machine asks /ipxe from its own address: the precache stage; the run is booted.
  const resets = emu.requests.filter((r) => r.method === 'POST' && r.path.endsWith('ComputerSystem.Reset')).length;
  const served = await lab.ipxe(MAC, IP);
  t.equal(served.statusCode, 200);
  t.match(served.body, /rhcos-live\/kernel/, 'the precache live environment');
  const booted = await waitFor('the run booted', async () => {
    const m = (await lab.inject('GET', `/api/v1/machines/${MAC}`)).json<MachineBody>();
    return m.bmc?.run?.phase === 'booted' ? m : undefined;
  });
  t.equal(booted.state, 'precaching');
  t.equal(booted.bmc?.run?.deadlineAt, undefined, 'no deadline once booted');
  const rearmed = await waitFor('the override armed again', async () =>
    (await lab.events(MAC)).filter((e) => e.type === 'bmc-boot-override').find((e) => e.data?.reason === 'next boot: install stage'),
  );
  t.match(rearmed.message, /next boot: install stage/);
  t.match(emu.system().boot, { target: 'Pxe', enabled: 'Once' }, 'the emulator holds a pending Pxe Once');
  t.equal(emu.requests.filter((r) => r.method === 'POST' && r.path.endsWith('ComputerSystem.Reset')).length, resets, 'and no power change');

  // The live environment reboots itself: that boot goes to the network.
  emu.guestReboot();
  const second = await waitFor('the reboot', () => emu.boots[1]);
  t.equal(second.networkFirst, true);

  const run = (await lab.inject('GET', `/api/v1/machines/${MAC}/provision`)).json<{ run?: { phase: string } }>();
  t.equal(run.run?.phase, 'booted', 'GET …/provision shows the run');
  t.notOk(lab.answers.some((a) => a.includes(BMC_PASSWORD)) || lab.logText().includes(BMC_PASSWORD), 'the password is in no answer and no log line');
});

t.test('no /ipxe within the timeout: override and power cycle again, then failed with the reason', async (t) => {
  const lab = await bmcLab(t, { bootTimeoutSeconds: 5, maxRetries: 1 });
  const emu = await lab.emulator({ macs: [MAC] });
  t.equal((await lab.register(MAC, IP, emu)).statusCode, 201);
  t.equal((await lab.inject('POST', `/api/v1/machines/${MAC}/provision`)).statusCode, 200);
  const timeout = await waitFor('the first timeout', async () => (await lab.events(MAC)).find((e) => e.type === 'bmc-boot-timeout'), 9000);
  t.match(timeout.message, /no network boot within 5 s/);
  await waitFor('the second power cycle', () => emu.boots[1], 3000);
  t.equal(emu.boots[1]?.networkFirst, true, 'the second cycle boots the network too');
  const failed = await waitFor(
    'the machine failed',
    async () => {
      const m = (await lab.inject('GET', `/api/v1/machines/${MAC}`)).json<MachineBody>();
      return m.state === 'failed' ? m : undefined;
    },
    9000,
  );
  t.equal(failed.bmc?.run?.phase, 'failed');
  t.equal(failed.bmc?.run?.attempts, 2);
  const events = await lab.events(MAC);
  const moved = events.find((e) => e.type === 'state-changed' && e.to === 'failed');
  t.equal(moved?.message, 'no network boot within 5 s after 2 power cycles through the BMC');
  t.same(
    bmcTypes(events).filter((x) => x !== 'bmc-inventory'),
    ['bmc-boot-override', 'bmc-power', 'bmc-boot-timeout', 'bmc-boot-override', 'bmc-power', 'bmc-boot-timeout'],
  );
  t.equal(emu.boots.length, 2, 'no third power cycle');
});

t.test('an unreachable BMC: 502 bmc_unreachable, one event, the machine untouched', async (t) => {
  const lab = await bmcLab(t);
  const emu = await lab.emulator({ macs: [MAC] });
  t.equal((await lab.register(MAC, IP, emu)).statusCode, 201);
  await waitFor('the inventory read', async () => (await lab.events(MAC)).find((e) => e.type === 'bmc-inventory'));
  await emu.close();
  const res = await lab.inject('POST', `/api/v1/machines/${MAC}/provision`);
  t.equal(res.statusCode, 502, res.body);
  t.equal(res.json<{ error: string }>().error, 'bmc_unreachable');
  t.match(res.json<{ message: string }>().message, /the BMC of 52:54:00:10:00:01 is unreachable/);
  const m = (await lab.inject('GET', `/api/v1/machines/${MAC}`)).json<MachineBody>();
  t.equal(m.state, 'registered', 'state unchanged');
  t.equal(m.bmc?.run, undefined, 'no run');
  t.equal(m.bmc?.reachable, false);
  t.ok(m.bmc?.lastError);
  const events = await lab.events(MAC);
  t.same(bmcTypes(events), ['bmc-inventory', 'bmc-unreachable']);
  t.notOk(events.some((e) => e.type === 'state-changed' && e.source === 'bmc'));
});

t.test('a wrong password: 502 bmc_error, the password nowhere', async (t) => {
  const lab = await bmcLab(t);
  const emu = await lab.emulator({ macs: [MAC], password: 'the-real-one-8d2a' });
  t.equal((await lab.register(MAC, IP, emu)).statusCode, 201);
  const failedRead = await waitFor('the failed inventory read', async () => (await lab.events(MAC)).find((e) => e.type === 'bmc-error'));
  t.equal(failedRead.data?.during, 'inventory');
  const res = await lab.inject('POST', `/api/v1/machines/${MAC}/provision`);
  t.equal(res.statusCode, 502, res.body);
  t.equal(res.json<{ error: string }>().error, 'bmc_error');
  const m = (await lab.inject('GET', `/api/v1/machines/${MAC}`)).json<MachineBody>();
  t.equal(m.state, 'registered');
  t.equal(m.bmc?.run, undefined);
  t.equal(m.bmc?.reachable, true, 'the BMC answered');
  const everything = [...lab.answers, lab.logText(), JSON.stringify(await lab.events(MAC))].join('\n');
  t.notOk(everything.includes(BMC_PASSWORD), 'no answer, event or log line has the password');
  t.notOk(everything.includes('the-real-one-8d2a'));
});

t.test('refusals: 404, no BMC, a state whose next boot is not the network', async (t) => {
  const lab = await bmcLab(t);
  let res = await lab.inject('POST', '/api/v1/machines/52:54:00:99:99:99/provision');
  t.equal(res.statusCode, 404);
  res = await lab.inject('PUT', `/api/v1/machines/${MAC}`, { profile: 'precache-assisted', assisted: { ipxeScriptUrl: 'https://hub.example.com/x' }, ip: IP });
  t.equal(res.statusCode, 201);
  res = await lab.inject('POST', `/api/v1/machines/${MAC}/provision`);
  t.equal(res.statusCode, 409);
  t.equal(res.json<{ error: string }>().error, 'no_bmc');
  res = await lab.inject('POST', `/api/v1/machines/${MAC}/power`, { action: 'on' });
  t.equal(res.json<{ error: string }>().error, 'no_bmc');
  const emu = await lab.emulator({ macs: [MAC] });
  t.equal((await lab.register(MAC, IP, emu)).statusCode, 200);
  t.equal((await lab.ipxe(MAC, IP)).statusCode, 200, 'the machine boots by itself: precaching');
  res = await lab.inject('POST', `/api/v1/machines/${MAC}/provision`);
  t.equal(res.statusCode, 409);
  t.equal(res.json<{ error: string }>().error, 'not_provisionable');
  t.match(res.json<{ message: string }>().message, /is precaching: .*reset it first/);
  res = await lab.inject('POST', `/api/v1/machines/${MAC}/power`, { action: 'reboot' });
  t.equal(res.statusCode, 400, 'an unknown action');
});

t.test('power: on, pxe-once, restart, off answer the power state after', async (t) => {
  const lab = await bmcLab(t);
  const emu = await lab.emulator({ macs: [MAC] });
  t.equal((await lab.register(MAC, IP, emu)).statusCode, 201);
  const power = async (action: string) => {
    const res = await lab.inject('POST', `/api/v1/machines/${MAC}/power`, { action });
    t.equal(res.statusCode, 200, `${action}: ${res.body}`);
    return res.json<{ action: string; powerState?: string; override?: { target: string }; power?: { resetTypes: string[] } }>();
  };
  const on = await power('on');
  t.same(on.power?.resetTypes, ['On']);
  const once = await power('pxe-once');
  t.equal(once.override?.target, 'Pxe');
  t.equal(once.power, undefined, 'pxe-once leaves the power');
  t.match(emu.system().boot, { target: 'Pxe', enabled: 'Once' });
  await new Promise((resolve) => setTimeout(resolve, 120));
  const restart = await power('restart');
  t.ok(restart.power?.resetTypes.length);
  const off = await power('off');
  t.same(off.power?.resetTypes, ['ForceOff']);
  const types = bmcTypes(await lab.events(MAC));
  t.same(
    types.filter((x) => x !== 'bmc-inventory'),
    ['bmc-power', 'bmc-boot-override', 'bmc-power', 'bmc-power'],
  );
  const events: EventBody[] = (await lab.events(MAC)).filter((e) => e.type === 'bmc-power');
  t.ok(
    events.every((e) => e.data?.actor === 'admin'),
    'the timeline names who acted',
  );
});

t.test('a machine that asks /ipxe before its run is saved still has it booted', async (t) => {
  const lab = await bmcLab(t);
  // iDRAC answers the reset with a task the client polls: the machine boots, and asks /ipxe, while the session is still open.
  const emu = await lab.emulator({ profile: 'idrac', macs: [MAC], transitionMs: 300, onBoot: () => void lab.ipxe(MAC, IP) });
  t.equal((await lab.register(MAC, IP, emu)).statusCode, 201);
  const res = await lab.inject('POST', `/api/v1/machines/${MAC}/provision`);
  t.equal(res.statusCode, 200, res.body);
  t.equal(res.json<ProvisionBody>().machine.bmc?.run?.phase, 'booted', 'the answer shows the run booted');
  const m = (await lab.inject('GET', `/api/v1/machines/${MAC}`)).json<MachineBody>();
  t.equal(m.bmc?.run?.phase, 'booted');
  t.equal(m.state, 'precaching');
});

t.test('runs survive a restart: a BMC service started on the store follows the powered runs on record', async (t) => {
  const lab = await bmcLab(t, { maxRetries: 0 });
  const { ta } = lab;
  const emu = await lab.emulator({ macs: [MAC] });
  t.equal((await lab.register(MAC, IP, emu)).statusCode, 201);
  await ta.bmc.stop();
  const startedAt = new Date(Date.now() - 60_000).toISOString();
  await ta.store.mutateMachine(MAC as Mac, (cur) =>
    cur ? { kind: 'save', machine: { ...cur, bmcRun: { phase: 'powered', attempts: 1, startedAt, deadlineAt: startedAt } } } : { kind: 'keep' },
  );
  const restarted = new BmcService({
    store: ta.store,
    machines: ta.machines,
    box: ta.box,
    config: ta.config.bmc,
    log: createLogger('silent'),
    bootBaseUrl: () => 'http://127.0.0.1:1',
  });
  t.teardown(() => restarted.stop());
  await restarted.start();
  await restarted.sweep();
  const m = (await lab.inject('GET', `/api/v1/machines/${MAC}`)).json<MachineBody>();
  t.equal(m.state, 'failed');
  t.equal(m.bmc?.run?.phase, 'failed');
  t.equal(emu.boots.length, 0, 'out of retries: no power cycle');
});

t.test('bmc.bootTarget uefi-http: UefiHttp pointed at the iPXE binary over HTTP', async (t) => {
  const lab = await bmcLab(t, { bootTarget: 'uefi-http' });
  const emu = await lab.emulator({ macs: [MAC] });
  t.equal((await lab.register(MAC, IP, emu, { bootMode: 'uefi' })).statusCode, 201);
  const p = (await lab.inject('POST', `/api/v1/machines/${MAC}/provision`)).json<ProvisionBody>();
  t.equal(p.override.target, 'UefiHttp');
  t.match(p.override.kept.httpBootUri, /^http:\/\/[0-9.]+:\d+\/ipxe-bin\/ipxe\.efi$/, "edgeboot's /ipxe-bin/ URL");
  const boot = await waitFor('the boot', () => emu.boots[0]);
  t.match(boot, { networkFirst: true, target: 'UefiHttp' });
});
