/**
 * The Redfish client (src/bmc/) against the Redfish BMC emulator: every vendor profile's quirk met,
 * sessions made and deleted, the Basic fallback, a session renewed after a 401, wrong credentials,
 * unreachable and silent BMCs, and TLS with and without verification.
 */
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { withBmc } from '../../src/bmc/redfish.js';
import type { BmcClientOptions, BmcTarget } from '../../src/bmc/types.js';
import { bmcError } from '../helpers/bmc-error.js';
import { selfSignedCert, startRedfishEmulator, type EmulatorOptions, type RedfishEmulator, type VendorProfile } from '../helpers/redfish/emulator.js';

const PASSWORD = 'calvin-Secret-7';
const OPTS: BmcClientOptions = { timeoutMs: 3000 };

async function emulator(t: Test, o: EmulatorOptions = {}): Promise<RedfishEmulator> {
  const emu = await startRedfishEmulator({ password: PASSWORD, transitionMs: 60, ...o });
  t.teardown(() => emu.close());
  return emu;
}

function targetOf(emu: { address: string }, o: Partial<BmcTarget> = {}): BmcTarget {
  return { address: emu.address, username: 'root', password: PASSWORD, verifyTls: true, bootMode: 'uefi', ...o };
}

async function until(what: string, check: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const PROFILES: { profile: VendorProfile; vendor: string; patches: number }[] = [
  { profile: 'generic', vendor: 'generic', patches: 1 },
  { profile: 'supermicro', vendor: 'supermicro', patches: 2 },
  { profile: 'ami', vendor: 'ami', patches: 1 },
  { profile: 'idrac', vendor: 'dell', patches: 1 },
  { profile: 'ilo', vendor: 'hpe', patches: 1 },
];

for (const { profile, vendor, patches } of PROFILES) {
  t.test(`${profile}: inventory, a one-time PXE boot kept, On from Off, ForceRestart from On, the session deleted`, async (t) => {
    const emu = await emulator(t, { profile, macs: ['52:54:00:AB:CD:01', '52-54-00-ab-cd-02'] });
    const result = await withBmc(targetOf(emu), OPTS, async (s) => {
      const system = await s.system();
      const override = await s.setOneTimeBoot({ target: 'Pxe' });
      const on = await s.reset('on');
      await until('power on', () => emu.system().powerState === 'On');
      const restart = await s.reset('restart');
      return { system, override, on, restart };
    });
    t.equal(result.system.vendor, vendor, 'the vendor profile detected');
    t.same(result.system.macs, ['52:54:00:ab:cd:01', '52:54:00:ab:cd:02'], 'the NICs, lower-case colon form');
    t.equal(result.system.powerState, 'Off');
    t.ok(result.system.uuid && result.system.serial && result.system.model, 'uuid, serial and model read');
    t.ok(result.system.resetTypes.includes('ForceRestart'));
    t.equal(result.system.modeSupported, true);
    t.same(result.override, { target: 'Pxe', mode: 'UEFI', attempts: patches, kept: { target: 'Pxe', enabled: 'Once', mode: 'UEFI' } });
    t.equal(emu.requests.filter((r) => r.method === 'PATCH').length, patches, 'PATCHes sent');
    t.same(result.on, { action: 'on', resetTypes: ['On'], powerBefore: 'Off', busyRetries: 0 });
    t.same(result.restart.resetTypes, ['ForceRestart']);
    t.equal(result.restart.powerBefore, 'On');
    t.equal(emu.boots[0]?.networkFirst, true, 'the first boot consumed the PXE override');
    const tasks = emu.requests.filter((r) => r.path.includes('/TaskMonitors/'));
    if (profile === 'idrac' || profile === 'ilo') t.ok(tasks.length > 0 && tasks.at(-1)?.status === 200, "the resets' tasks followed to their end");
    else t.equal(tasks.length, 0, 'no tasks: the resets answered 204');
    t.equal(emu.counter.created, 1, 'one session');
    t.equal(emu.counter.open, 0, 'deleted at the end');
    const unauthenticated = emu.requests.filter(
      (r) => r.auth !== 'session' && !r.path.startsWith('/redfish/v1/SessionService/Sessions') && r.path !== '/redfish/v1',
    );
    t.same(unauthenticated, [], 'every request but the root and the login used the session');
  });
}

t.test('ami: every PATCH carries If-Match (the BMC answers 428 without it)', async (t) => {
  const emu = await emulator(t, { profile: 'ami' });
  await withBmc(targetOf(emu), OPTS, (s) => s.setOneTimeBoot({ target: 'Pxe' }));
  t.same(
    emu.requests.filter((r) => r.method === 'PATCH').map((r) => r.status),
    [200],
    'no 428',
  );
});

t.test('idrac: On right after a power-off is 409 for a while; retried with back-off, the task monitor followed', async (t) => {
  // The guest powers off (Off at once): iDRAC answers 409 to On for 3 transitions (600 ms), the back-off waits 1 s.
  const emu = await emulator(t, { profile: 'idrac', powerState: 'On', transitionMs: 200 });
  const on = await withBmc(targetOf(emu), OPTS, async (s) => {
    emu.guestPowerOff();
    return s.reset('on');
  });
  t.same(on.resetTypes, ['On']);
  t.equal(on.powerBefore, 'Off');
  t.ok(on.busyRetries >= 1, `busy retries: ${on.busyRetries}`);
  const resets = emu.requests.filter((r) => r.path.endsWith('/Actions/ComputerSystem.Reset')).map((r) => r.status);
  t.equal(resets[0], 409, 'busy at first');
  t.equal(resets.at(-1), 202, 'accepted in the end, as a task');
  t.ok(
    emu.requests.some((r) => r.path.includes('/TaskMonitors/') && r.status === 200),
    'the task monitor polled to its end',
  );
  t.equal(emu.system().powerState, 'On', 'on once the task ended');
});

t.test('ilo: a PATCH during POST is refused (UnableToModifyDuringSystemPOST), waited out and sent again', async (t) => {
  // The guest reboots: POST lasts 2 transitions (600 ms), the back-off waits 1 s.
  const emu = await emulator(t, { profile: 'ilo', powerState: 'On', transitionMs: 300 });
  const override = await withBmc(targetOf(emu), OPTS, async (s) => {
    emu.guestReboot();
    return s.setOneTimeBoot({ target: 'Pxe' });
  });
  t.same(override.kept, { target: 'Pxe', enabled: 'Once', mode: 'UEFI' });
  t.equal(override.attempts, 1, 'one PATCH taken: the refused ones are retries of it');
  const patches = emu.requests.filter((r) => r.method === 'PATCH').map((r) => r.status);
  t.equal(patches[0], 400, 'the first PATCH landed in POST');
  t.equal(patches.at(-1), 200, 'the last one was taken');
});

t.test('restart falls back: GracefulRestart without ForceRestart, then ForceOff + On without either', async (t) => {
  const graceful = await emulator(t, { powerState: 'On', resetTypes: ['On', 'ForceOff', 'GracefulRestart'] });
  const first = await withBmc(targetOf(graceful), OPTS, (s) => s.reset('restart'));
  t.same(first.resetTypes, ['GracefulRestart']);

  const cycle = await emulator(t, { powerState: 'On', resetTypes: ['On', 'ForceOff'] });
  const second = await withBmc(targetOf(cycle), OPTS, (s) => s.reset('restart'));
  t.same(second.resetTypes, ['ForceOff', 'On'], 'off, waited for Off, then on');
  await until('power on again', () => cycle.system().powerState === 'On');

  const none = await emulator(t, { powerState: 'On', resetTypes: ['GracefulShutdown'] });
  const error = await bmcError(withBmc(targetOf(none), OPTS, (s) => s.reset('restart')));
  t.equal(error.kind, 'refused');
  t.match(error.message, /allows no ResetType to restart.*GracefulShutdown/);
});

t.test('off: nothing sent when already off; on: nothing sent when already on', async (t) => {
  const emu = await emulator(t, { profile: 'idrac' });
  const off = await withBmc(targetOf(emu), OPTS, (s) => s.reset('off'));
  t.same(off, { action: 'off', resetTypes: [], powerBefore: 'Off', busyRetries: 0 });
  t.notOk(
    emu.requests.some((r) => r.method === 'POST' && r.path.includes('Reset')),
    'no Reset POST (iDRAC would answer 409 "already off")',
  );
});

t.test('UefiHttp with HttpBootUri; Mode left out when the Boot object has none, or for bootMode auto', async (t) => {
  const http = await emulator(t);
  const uefiHttp = await withBmc(targetOf(http), OPTS, (s) => s.setOneTimeBoot({ target: 'UefiHttp', httpBootUri: 'http://10.0.0.1:8080/ipxe-bin/ipxe.efi' }));
  t.same(uefiHttp.kept, { target: 'UefiHttp', enabled: 'Once', mode: 'UEFI', httpBootUri: 'http://10.0.0.1:8080/ipxe-bin/ipxe.efi' });

  const old = await emulator(t, { modeSupported: false });
  const noMode = await withBmc(targetOf(old), OPTS, (s) => s.setOneTimeBoot({ target: 'Pxe' }));
  t.equal(noMode.mode, undefined);
  t.same(old.requests.find((r) => r.method === 'PATCH')?.body, { Boot: { BootSourceOverrideTarget: 'Pxe', BootSourceOverrideEnabled: 'Once' } });

  const auto = await emulator(t);
  await withBmc(targetOf(auto, { bootMode: 'auto' }), OPTS, (s) => s.setOneTimeBoot({ target: 'Pxe' }));
  t.same(auto.requests.find((r) => r.method === 'PATCH')?.body, { Boot: { BootSourceOverrideTarget: 'Pxe', BootSourceOverrideEnabled: 'Once' } });

  const legacy = await emulator(t);
  const legacyBoot = await withBmc(targetOf(legacy, { bootMode: 'legacy' }), OPTS, (s) => s.setOneTimeBoot({ target: 'Pxe' }));
  t.equal(legacyBoot.kept.mode, 'Legacy');

  const legacyHttp = await bmcError(withBmc(targetOf(legacy, { bootMode: 'legacy' }), OPTS, (s) => s.setOneTimeBoot({ target: 'UefiHttp' })));
  t.equal(legacyHttp.kind, 'refused');
  t.match(legacyHttp.message, /UEFI HTTP boot needs the machine's bmc bootMode uefi or auto, not legacy/);

  const noHttp = await emulator(t, { bootTargets: ['None', 'Pxe', 'Hdd'] });
  const error = await bmcError(withBmc(targetOf(noHttp), OPTS, (s) => s.setOneTimeBoot({ target: 'UefiHttp' })));
  t.equal(error.kind, 'refused');
  t.match(error.message, /does not offer BootSourceOverrideTarget UefiHttp \(it offers None, Pxe, Hdd\)/);
});

t.test('systemId and the address path pick the system; a wrong one is a clear 404', async (t) => {
  const emu = await emulator(t, { profile: 'idrac' });
  const byId = await withBmc(targetOf(emu, { systemId: 'System.Embedded.1' }), OPTS, (s) => s.system());
  t.equal(byId.path, '/redfish/v1/Systems/System.Embedded.1');
  const byPath = await withBmc(targetOf({ address: `${emu.address}/redfish/v1/Systems/System.Embedded.1` }), OPTS, (s) => s.system());
  t.equal(byPath.id, 'System.Embedded.1');
  const error = await bmcError(withBmc(targetOf(emu, { systemId: 'System.Embedded.2' }), OPTS, (s) => s.system()));
  t.equal(error.kind, 'refused');
  t.match(error.message, /no system at \/redfish\/v1\/Systems\/System.Embedded.2 \(HTTP 404\): check systemId "System.Embedded.2"/);
  t.equal(emu.counter.open, 0, 'the session deleted after the failure too');
});

t.test('no SessionService: HTTP Basic on every request, no session made', async (t) => {
  const emu = await emulator(t, { sessionService: false });
  await withBmc(targetOf(emu), OPTS, async (s) => {
    await s.system();
    await s.setOneTimeBoot({ target: 'Pxe' });
  });
  t.equal(emu.counter.created, 0);
  const authed = emu.requests.filter((r) => r.path !== '/redfish/v1');
  t.ok(authed.length > 3);
  t.same(new Set(authed.map((r) => r.auth)), new Set(['basic']));
});

t.test('a session deleted behind the client: the 401 logs in again once and the request goes through', async (t) => {
  const emu = await emulator(t);
  const basic = `Basic ${Buffer.from(`root:${PASSWORD}`).toString('base64')}`;
  const system = await withBmc(targetOf(emu), OPTS, async (s) => {
    await s.system();
    const listing = (await (await fetch(`${emu.url}/redfish/v1/SessionService/Sessions`, { headers: { Authorization: basic } })).json()) as {
      Members: { '@odata.id': string }[];
    };
    for (const member of listing.Members) await fetch(`${emu.url}${member['@odata.id']}`, { method: 'DELETE', headers: { Authorization: basic } });
    t.equal(emu.counter.open, 0, 'the session is gone');
    return s.system();
  });
  t.equal(system.id, '1');
  t.equal(emu.counter.created, 2, 'a second session made');
  t.equal(emu.counter.open, 0, 'and deleted at the end');
  t.ok(
    emu.requests.some((r) => r.status === 401),
    'the 401 was seen',
  );
});

t.test('a wrong password: an auth BmcError that names the user, never a password', async (t) => {
  const emu = await emulator(t);
  const wrong = 'Wr0ng-Pa55word-xyz';
  const error = await bmcError(withBmc(targetOf(emu, { password: wrong }), OPTS, (s) => s.system()));
  t.equal(error.kind, 'auth');
  t.equal(error.status, 401);
  t.match(error.message, /refused user "root"/);
  t.notMatch(error.message, wrong);
  t.notMatch(error.message, PASSWORD);
  t.notMatch(error.message, Buffer.from(`root:${wrong}`).toString('base64'), 'nor its Basic form');
  t.equal(emu.counter.open, 0);
});

t.test('a closed port: unreachable, at once', async (t) => {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  await new Promise((resolve) => server.close(resolve));
  const started = Date.now();
  const error = await bmcError(withBmc(targetOf({ address: `redfish+http://127.0.0.1:${port}` }), OPTS, (s) => s.system()));
  t.equal(error.kind, 'unreachable');
  t.match(error.message, /ECONNREFUSED/);
  t.ok(Date.now() - started < 1000, `${Date.now() - started} ms`);
});

async function silentServer(t: Test): Promise<number> {
  const sockets: Socket[] = [];
  const server: Server = createServer((socket) => sockets.push(socket));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => {
    for (const socket of sockets) socket.destroy();
    server.close();
  });
  const address = server.address();
  return typeof address === 'object' && address ? address.port : 0;
}

t.test('a BMC that accepts and never answers: unreachable within the timeout, over HTTP and HTTPS', async (t) => {
  const port = await silentServer(t);
  for (const scheme of ['redfish+http', 'redfish']) {
    const started = Date.now();
    const error = await bmcError(withBmc(targetOf({ address: `${scheme}://127.0.0.1:${port}` }), { timeoutMs: 700 }, (s) => s.system()));
    const took = Date.now() - started;
    t.equal(error.kind, 'unreachable', scheme);
    t.match(error.message, /no answer within 700 ms/, scheme);
    // A TLS handshake that never ends is bounded by undici's connect timer, which ticks coarsely (±0.3 s).
    t.ok(took >= 350 && took < 1300, `${scheme}: ${took} ms`);
  }
});

t.test('HTTPS: a self-signed certificate fails verification, works with verifyTls false or its CA given', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bmc-tls-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const cert = await selfSignedCert(dir, 'bmc.test', '127.0.0.1');
  const emu = await emulator(t, { tls: { key: cert.key, cert: cert.cert } });
  t.match(emu.address, /^redfish:\/\//);

  const error = await bmcError(withBmc(targetOf(emu), OPTS, (s) => s.system()));
  t.equal(error.kind, 'unreachable');
  t.match(error.message, /TLS certificate is not trusted \(DEPTH_ZERO_SELF_SIGNED_CERT\).*bmc.caFile.*verifyTls/);

  const insecure = await withBmc(targetOf(emu, { verifyTls: false }), OPTS, (s) => s.system());
  t.equal(insecure.id, '1');
  const trusted = await withBmc(targetOf(emu), { ...OPTS, ca: cert.cert }, (s) => s.system());
  t.equal(trusted.id, '1');
  const byName = await bmcError(withBmc(targetOf({ address: `redfish://localhost:${emu.port}` }), { ...OPTS, ca: cert.cert }, (s) => s.system()));
  t.equal(byName.kind, 'unreachable');
  t.match(byName.message, /certificate does not name this host \(ERR_TLS_CERT_ALTNAME_INVALID\)/, 'a name the certificate does not list');
  t.equal(emu.counter.open, 0);
});

t.test('a BmcError thrown by the callback still deletes the session; the callback error passes through', async (t) => {
  const emu = await emulator(t);
  const thrown = new Error('the caller gave up');
  await t.rejects(
    withBmc(targetOf(emu), OPTS, async () => {
      await Promise.resolve();
      throw thrown;
    }),
    thrown,
  );
  t.equal(emu.counter.created, 1);
  t.equal(emu.counter.open, 0);
});
