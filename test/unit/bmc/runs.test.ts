import t from 'tap';
import type { DrivenMachine } from '../../../src/bmc/driver.js';
import { macMismatch } from '../../../src/bmc/poller.js';
import { networkTarget, overrideEvent, powerEvent } from '../../../src/bmc/runs.js';
import type { SystemView } from '../../../src/bmc/types.js';
import type { Mac } from '../../../src/machines/mac.js';

const view = (bootTargets: string[], macs: string[] = []): SystemView => ({
  id: '1',
  path: '/redfish/v1/Systems/1',
  macs,
  vendor: 'generic',
  boot: {},
  bootTargets,
  modeSupported: true,
  resetTypes: [],
});

const machine = (bootMode: 'uefi' | 'legacy' | 'auto', macs: string[] = []): DrivenMachine => ({
  mac: '52:54:00:00:00:01' as Mac,
  macs: macs as Mac[],
  labels: {},
  state: 'registered',
  observed: {},
  createdAt: '',
  updatedAt: '',
  bmc: { address: 'redfish://bmc', username: 'root', passwordSealed: 'v1.x.y.z', verifyTls: true, bootMode },
});

const URI = 'http://10.0.0.1:8080/ipxe-bin/ipxe.efi';

t.test('networkTarget: pxe always Pxe; uefi-http unless the BMC lists targets without it; auto only when listed; never legacy', async (t) => {
  const uefi = { target: 'UefiHttp', httpBootUri: URI };
  t.same(networkTarget(view(['Pxe', 'UefiHttp']), machine('uefi'), 'pxe', URI), { target: 'Pxe' });
  t.same(networkTarget(view(['Pxe', 'UefiHttp']), machine('uefi'), 'uefi-http', URI), uefi);
  t.same(networkTarget(view([]), machine('auto'), 'uefi-http', URI), uefi, 'a BMC that does not say: try it');
  t.same(networkTarget(view(['Pxe', 'Hdd']), machine('uefi'), 'uefi-http', URI), { target: 'Pxe' }, 'listed without UefiHttp');
  t.same(networkTarget(view(['Pxe', 'UefiHttp']), machine('auto'), 'auto', URI), uefi);
  t.same(networkTarget(view([]), machine('auto'), 'auto', URI), { target: 'Pxe' }, 'auto needs the BMC to say so');
  t.same(networkTarget(view(['Pxe', 'UefiHttp']), machine('legacy'), 'uefi-http', URI), { target: 'Pxe' }, 'no UEFI HTTP Boot in legacy mode');
});

t.test('events: what was sent and kept, in words and data', async (t) => {
  const o = overrideEvent({ target: 'Pxe', mode: 'UEFI', attempts: 2, kept: { target: 'Pxe', enabled: 'Once', mode: 'UEFI' } }, 'next boot: install stage');
  t.equal(o.message, 'one-time Pxe boot set (UEFI) after 2 attempts: next boot: install stage');
  t.same(o.data, { target: 'Pxe', mode: 'UEFI', attempts: 2, kept: { target: 'Pxe', enabled: 'Once', mode: 'UEFI' }, reason: 'next boot: install stage' });
  const p = powerEvent({ action: 'restart', resetTypes: ['ForceOff', 'On'], powerBefore: 'On', busyRetries: 1 });
  t.equal(p.message, 'restart: ForceOff then On (power was On)');
  t.same(p.data, { action: 'restart', resetTypes: ['ForceOff', 'On'], powerBefore: 'On', busyRetries: 1 });
});

t.test("macMismatch: only when the system lists NICs and none is the machine's", async (t) => {
  t.equal(macMismatch(machine('auto'), view([], [])), undefined, 'no NICs listed: no warning');
  t.equal(macMismatch(machine('auto'), view([], ['52:54:00:00:00:01'])), undefined);
  t.equal(macMismatch(machine('auto', ['52:54:00:00:00:02']), view([], ['52:54:00:00:00:02'])), undefined, 'a further MAC counts');
  const e = macMismatch(machine('auto'), view([], ['52:54:00:aa:aa:01']));
  t.equal(e?.type, 'bmc-mac-mismatch');
  t.equal(e?.message, "the BMC's system has NICs 52:54:00:aa:aa:01; this reservation's MAC 52:54:00:00:00:01 is not one of them: wrong machine?");
});
