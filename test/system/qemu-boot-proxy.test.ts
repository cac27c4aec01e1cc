/**
 * End to end, proxy mode: edgeboot as proxyDHCP beside a dnsmasq that only hands out addresses
 * (10.77.0.100-150, no boot options), on the bridge of test/helpers/boot-lab.ts. Real QEMU
 * guests boot the busybox initramfs through edgeboot and report:
 *
 * - BIOS, QEMU's iPXE NIC ROM: its address from dnsmasq, the HTTP entry script from edgeboot's
 *   proxy offer, then /ipxe, the kernel and initramfs from /assets, the report.
 * - UEFI, OVMF's own PXE: its address from dnsmasq, the boot file from edgeboot's port-4011
 *   answer, ipxe.efi over edgeboot's TFTP, then the same HTTP chain.
 *
 * The timeline (GET /api/v1/machines/{mac}/events) must show the proxy offer, the TFTP
 * transfer, the scripts, the artifacts and the report in that order, though edgeboot leases
 * no address: it finds the machine of a TFTP or HTTP client in the kernel's neighbour table.
 * Needs what qemu-boot-full.test.ts needs, and dnsmasq-base.
 */
import t, { type Test } from 'tap';
import { assertOrder, createBootLab, describeTimeline, ev, type BootLab } from '../helpers/boot-lab.js';
import { inRange } from '../helpers/dhcp-system.js';
import { netnsList, netnsSkip } from '../helpers/netns.js';
import type { Firmware } from '../helpers/vm.js';

const skip = netnsSkip();
t.setTimeout(240_000);

const MAC: Record<Firmware, string> = { bios: '52:54:00:eb:06:01', uefi: '52:54:00:eb:06:02' };

async function bootOnce(t: Test, bl: BootLab, firmware: Firmware): Promise<void> {
  const mac = MAC[firmware];
  const put = await bl.api('PUT', `/api/v1/machines/${mac}`, { profile: 'e2e-report' });
  t.equal(put.status, 201, 'registered');
  bl.explainOnFailure(t);
  const vm = bl.vm(firmware, firmware, mac, 150_000);
  const done = await vm.exited;
  t.match(vm.console(), /eb-init: reported booted/, `the initramfs reported and the guest powered off (${Math.round(done.ms / 1000)} s)`);
  const events = await bl.events(mac);
  t.comment(describeTimeline(events));
  const booted = events.find((e) => e.type === 'booted');
  const reported = booted?.data?.address;
  const address = (typeof reported === 'string' ? reported : '').split('/')[0];
  t.ok(inRange(address, '10.77.0.100', '10.77.0.150'), `the kernel's own DHCP got ${address} from dnsmasq`);
  const proxyOffer = ev('dhcp-offer', { listener: 'dhcp', yiaddr: '0.0.0.0' });
  const firmwareSteps =
    firmware === 'uefi'
      ? [
          { ...proxyOffer, what: `${proxyOffer.what} (firmware)` },
          ev('dhcp-ack', { listener: 'proxy', ipxe: false }),
          ev('tftp-transfer', { file: 'ipxe.efi', outcome: 'complete' }),
        ]
      : [];
  assertOrder(t, events, [
    ...firmwareSteps,
    ev('dhcp-offer', { listener: 'dhcp', yiaddr: '0.0.0.0', ipxe: true }),
    ev('entry-script-served'),
    ev('state-changed', {}, { from: 'registered', to: 'installing' }),
    ev('script-served', { kind: 'boot', stage: 'install', profile: 'e2e-report' }),
    ev('asset-served', { artifact: 'kernel', status: 200 }),
    ev('asset-served', { artifact: 'initramfs', status: 200 }),
    ev('booted', { role: 'report' }),
  ]);
  t.notOk(
    events.some((e) => e.type.startsWith('dhcp-') && e.data?.yiaddr !== undefined && e.data.yiaddr !== '0.0.0.0'),
    'edgeboot offered no address: every reply of its own is a proxy reply',
  );
}

t.test('proxy mode beside dnsmasq: BIOS and UEFI boot from edgeboot', { skip }, async (t) => {
  const bl = await createBootLab(t, 'qx', { mode: 'proxy' });
  await t.test('BIOS, iPXE ROM', (t) => bootOnce(t, bl, 'bios'));
  await t.test('UEFI, OVMF PXE and ipxe.efi over TFTP', (t) => bootOnce(t, bl, 'uefi'));
  bl.lab.cleanup();
  t.same(
    netnsList().filter((n) => n.startsWith(bl.lab.prefix)),
    [],
    'no namespace, tap or VM is left behind',
  );
});
