/**
 * The BMC service across vendors and fleets, against Redfish emulators: each vendor profile
 * provisions (Supermicro's revert retried, AMI's If-Match, iDRAC's 409 and task, iLO's POST
 * wait); provision of 40 machines keeps at most bmc.parallel sessions open; the inventory read
 * warns of a reservation whose MAC is not the system's; the poller marks a BMC that goes away
 * unreachable once, and reachable again when it is back.
 */
import t from 'tap';
import { BMC_PASSWORD, bmcLab, bmcTypes, waitFor, type BmcLab } from '../helpers/bmc-lab.js';
import { SessionCounter, type RedfishEmulator, type VendorProfile } from '../helpers/redfish/emulator.js';

interface ProvisionBody {
  override: { target: string; attempts: number; kept: Record<string, string> };
  power: { action: string; resetTypes: string[]; busyRetries: number };
}

const macOf = (i: number): string => `52:54:00:20:00:${i.toString(16).padStart(2, '0')}`;
const ipOf = (i: number): string => `10.77.0.${100 + i}`;

async function provision(lab: BmcLab, mac: string): Promise<ProvisionBody> {
  const res = await lab.inject('POST', `/api/v1/machines/${mac}/provision`);
  if (res.statusCode !== 200) throw new Error(`provision ${mac}: ${res.statusCode} ${res.body}`);
  return res.json<ProvisionBody>();
}

const patches = (emu: RedfishEmulator) => emu.requests.filter((r) => r.method === 'PATCH');

t.test('each vendor profile provisions', async (t) => {
  const lab = await bmcLab(t);
  const profiles: VendorProfile[] = ['generic', 'supermicro', 'ami', 'idrac', 'ilo'];
  for (const [i, profile] of profiles.entries()) {
    await t.test(profile, async (t) => {
      const mac = macOf(i + 1);
      // iDRAC's busy window and iLO's POST are a few transitions long: long enough here to land the next request in them.
      const transitionMs = profile === 'idrac' ? 400 : profile === 'ilo' ? 1500 : 50;
      const emu = await lab.emulator({ profile, macs: [mac], transitionMs });
      t.equal((await lab.register(mac, ipOf(i + 1), emu)).statusCode, 201);
      await waitFor('the inventory read', async () => (await lab.events(mac)).find((e) => e.type === 'bmc-inventory'));
      if (profile === 'idrac') {
        // Just powered off: iDRAC answers On with 409 for a while.
        t.equal((await lab.inject('POST', `/api/v1/machines/${mac}/power`, { action: 'on' })).statusCode, 200);
        await new Promise((resolve) => setTimeout(resolve, 900));
        t.equal((await lab.inject('POST', `/api/v1/machines/${mac}/power`, { action: 'off' })).statusCode, 200);
      }
      const p = await provision(lab, mac);
      t.equal(p.override.target, 'Pxe');
      t.equal(p.override.kept.enabled, 'Once');
      const boot = await waitFor('the boot', () => emu.boots.at(-1), 5000);
      t.equal(boot.networkFirst, true, 'the boot after the power action takes the network');
      if (profile === 'supermicro') t.equal(p.override.attempts, 2, 'the reverted PATCH was sent again');
      if (profile === 'ami') t.ok(patches(emu).length > 0 && patches(emu).every((r) => r.status !== 428), 'If-Match from the first PATCH: no 428');
      if (profile === 'idrac') {
        t.ok(p.power.busyRetries > 0, `409 to On retried after a back-off (${p.power.busyRetries})`);
        t.ok(
          emu.requests.some((r) => r.method === 'GET' && /Task/i.test(r.path)),
          'the task monitor was polled',
        );
      }
      if (profile === 'ilo') {
        // The machine asks /ipxe while iLO is still in POST: the re-arm's PATCH is refused (400) until POST ends, then sent again.
        t.equal((await lab.ipxe(mac, ipOf(i + 1))).statusCode, 200);
        await waitFor('the re-arm', async () => (await lab.events(mac)).find((e) => e.data?.reason === 'next boot: install stage'), 8000);
        t.ok(
          patches(emu).some((r) => r.status === 400),
          'a PATCH during POST was refused and sent again',
        );
        t.match(emu.system().boot, { target: 'Pxe', enabled: 'Once' });
      }
      t.notOk(lab.answers.some((a) => a.includes(BMC_PASSWORD)));
    });
  }
  t.notOk(lab.logText().includes(BMC_PASSWORD), 'no log line has the password');
});

t.test('provision of 40 machines against 40 BMCs: every override set, never more than bmc.parallel sessions', async (t) => {
  const lab = await bmcLab(t, { parallel: 4 });
  const counter = new SessionCounter();
  const emus: RedfishEmulator[] = [];
  for (let i = 1; i <= 40; i++) {
    const emu = await lab.emulator({ macs: [macOf(i)], counter, latencyMs: 5 });
    emus.push(emu);
    const res = await lab.register(macOf(i), ipOf(i), emu);
    t.equal(res.statusCode, 201, `register ${i}`);
  }
  const bare = macOf(99);
  t.equal(
    (await lab.inject('PUT', `/api/v1/machines/${bare}`, { profile: 'precache-assisted', assisted: { ipxeScriptUrl: 'https://hub.example.com/x' } }))
      .statusCode,
    201,
  );
  const res = await lab.inject('POST', '/api/v1/machines/provision', { allRegistered: true, macs: ['52:54:00:77:77:77', macOf(1)] });
  t.equal(res.statusCode, 202, res.body);
  const body = res.json<{ accepted: string[]; skipped: { mac: string; reason: string }[] }>();
  t.equal(body.accepted.length, 40);
  t.same(body.skipped, [
    { mac: '52:54:00:77:77:77', reason: 'no such machine' },
    { mac: bare, reason: 'it has no BMC' },
  ]);
  await waitFor('every override consumed by a network boot', () => (emus.every((e) => e.boots[0]?.networkFirst === true) ? true : undefined), 30000);
  t.ok(counter.maxOpen <= 4, `at most 4 sessions at once (${counter.maxOpen})`);
  t.ok(counter.maxOpen >= 2, `and the work did run in parallel (${counter.maxOpen})`);
  await waitFor('every run powered', async () => {
    for (let i = 1; i <= 40; i++) if (!bmcTypes(await lab.events(macOf(i))).includes('bmc-power')) return undefined;
    return true;
  });
  await waitFor('every session closed', () => (counter.open === 0 ? true : undefined));
  const again = await lab.inject('POST', '/api/v1/machines/provision', { macs: [macOf(1)] });
  t.same(again.json<{ skipped: unknown[] }>().skipped, [{ mac: macOf(1), reason: 'a provisioning run is already waiting for its network boot' }]);
});

t.test("the inventory read warns when none of the reservation's MACs is a NIC of the system", async (t) => {
  const lab = await bmcLab(t);
  const emu = await lab.emulator({ macs: ['52:54:00:aa:aa:01', '52:54:00:aa:aa:02'] });
  const mac = macOf(1);
  t.equal((await lab.register(mac, ipOf(1), emu)).statusCode, 201);
  const mismatch = await waitFor('the mismatch', async () => (await lab.events(mac)).find((e) => e.type === 'bmc-mac-mismatch'));
  t.equal(mismatch.message, `the BMC's system has NICs 52:54:00:aa:aa:01, 52:54:00:aa:aa:02; this reservation's MAC ${mac} is not one of them: wrong machine?`);
  t.match(lab.logText(), /wrong machine\?/, 'a warning in the log too');
  const m = (await lab.inject('GET', `/api/v1/machines/${mac}`)).json<{ bmc?: { macs?: string[]; reachable?: boolean } }>();
  t.same(m.bmc?.macs, ['52:54:00:aa:aa:01', '52:54:00:aa:aa:02'], "the system's NICs on the status");
  t.equal(m.bmc?.reachable, true);
});

t.test('the poller: a BMC that goes away is unreachable once, and reachable when it is back', async (t) => {
  let offset = 0;
  const lab = await bmcLab(t, {}, { now: () => new Date(Date.now() + offset) });
  const first = await lab.emulator({ macs: [macOf(1)] });
  const mac = macOf(1);
  t.equal((await lab.register(mac, ipOf(1), first)).statusCode, 201);
  await waitFor('the inventory read', async () => (await lab.events(mac)).find((e) => e.type === 'bmc-inventory'));
  await first.close();
  for (let round = 0; round < 3; round++) {
    offset += 10_000;
    await lab.ta.bmc.pollRound();
  }
  t.same(bmcTypes(await lab.events(mac)), ['bmc-inventory', 'bmc-unreachable'], 'one event over three polls');
  const m = (await lab.inject('GET', `/api/v1/machines/${mac}`)).json<{ bmc?: { reachable?: boolean; lastError?: string } }>();
  t.equal(m.bmc?.reachable, false);
  t.match(m.bmc?.lastError, /unreachable/);
  offset += 1000;
  t.equal(await lab.ta.bmc.pollRound(), 0, 'a status fresher than half the interval is not polled again');

  const back = await lab.emulator({ macs: [mac], listen: { port: first.port } });
  offset += 10_000;
  await lab.ta.bmc.pollRound();
  t.same(bmcTypes(await lab.events(mac)), ['bmc-inventory', 'bmc-unreachable', 'bmc-reachable']);
  t.equal(back.requests.length > 0, true);
});

t.test('provision of many: a machine that moved on while it waited for its turn is not power-cycled, and its timeline says why', async (t) => {
  const lab = await bmcLab(t, { parallel: 1 });
  const slow = await lab.emulator({ macs: [macOf(1)], latencyMs: 150 });
  const other = await lab.emulator({ macs: [macOf(2)] });
  t.equal((await lab.register(macOf(1), ipOf(1), slow)).statusCode, 201);
  t.equal((await lab.register(macOf(2), ipOf(2), other)).statusCode, 201);
  for (const mac of [macOf(1), macOf(2)]) await waitFor('the inventory read', async () => (await lab.events(mac)).find((e) => e.type === 'bmc-inventory'));
  const res = await lab.inject('POST', '/api/v1/machines/provision', { macs: [macOf(1), macOf(2)] });
  t.same(res.json<{ accepted: string[] }>().accepted, [macOf(1), macOf(2)]);
  // The second machine boots by itself while the first holds the only session.
  t.equal((await lab.ipxe(macOf(2), ipOf(2))).statusCode, 200);
  const refused = await waitFor('the refusal on the timeline', async () =>
    (await lab.events(macOf(2))).find((e) => e.type === 'bmc-error' && e.data?.during === 'provision'),
  );
  t.match(refused.message, /^not provisioned: machine 52:54:00:20:00:02 is precaching/);
  t.equal(other.boots.length, 0, 'no power action on it');
  await waitFor('the first one booted', () => slow.boots[0], 8000);
});
