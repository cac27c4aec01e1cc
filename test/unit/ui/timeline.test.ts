import t from 'tap';
import type { MachineEvent } from '../../../src/machines/model.js';
import { timelineSteps } from '../../../src/ui/timeline.js';
import { poolUse } from '../../../src/ui/overview.js';
import { ago, bytes, duration, firmware } from '../../../src/ui/format.js';

const ev = (id: number, time: string, e: Partial<MachineEvent>): MachineEvent =>
  ({ id, time, mac: '52:54:00:00:00:01', type: 'x', source: 'http', ...e }) as MachineEvent;

t.test('steps: the time since the one before, summaries of transfers, moves, failures, secrets cut', async (t) => {
  const steps = timelineSteps([
    ev(1, '2026-12-07T10:00:00.000Z', { type: 'dhcp-offer', source: 'dhcp', data: { yiaddr: '10.0.0.5', bootFile: 'undionly.kpxe' } }),
    ev(2, '2026-12-07T10:00:01.250Z', {
      type: 'tftp-transfer',
      source: 'tftp',
      data: { file: 'undionly.kpxe', bytes: 1048576, durationMs: 500, blksize: 1468, windowsize: 16 },
    }),
    ev(3, '2026-12-07T10:00:03.000Z', {
      type: 'asset-served',
      data: { profile: 'p', artifact: 'kernel', bytes: 10 * 1048576, durationMs: 2000, client: '10.0.0.5' },
    }),
    ev(4, '2026-12-07T10:01:03.000Z', { type: 'state-changed', from: 'precaching', to: 'failed', message: 'x?token=abc', data: { password: 'pw' } }),
  ]);
  t.same(
    steps.map((s) => s.sinceMs),
    [undefined, 1250, 1750, 60000],
  );
  t.equal(steps[0]?.summary, 'address 10.0.0.5, boot file undionly.kpxe');
  t.equal(steps[1]?.summary, 'undionly.kpxe: 1.00 MiB in 500 ms, 2.00 MiB/s (blksize 1468, windowsize 16)');
  t.equal(steps[2]?.summary, 'p/kernel: 10.0 MiB in 2.00 s, 5.00 MiB/s');
  t.equal(steps[3]?.move, 'precaching → failed');
  t.ok(steps[3]?.failed);
  t.equal(steps[3]?.message, 'x?token=*redacted*');
  t.notMatch(steps[3]?.data ?? '', /pw/);
});

t.test('pool use counts the leases not yet expired inside each pool', async (t) => {
  const now = 1000;
  const use = poolUse(
    [{ cidr: '10.0.0.0/24', pool: ['10.0.0.100', '10.0.0.199'] }, { cidr: '10.1.0.0/24' }],
    [
      { ip: '10.0.0.100', mac: 'a', state: 'bound', expiresAt: 2000 },
      { ip: '10.0.0.150', mac: 'b', state: 'offered', expiresAt: 2000 },
      { ip: '10.0.0.160', mac: '', state: 'declined', expiresAt: 2000 },
      { ip: '10.0.0.170', mac: 'c', state: 'bound', expiresAt: 500 },
      { ip: '10.0.0.5', mac: 'd', state: 'bound', expiresAt: 2000 },
    ],
    now,
  );
  t.same(use, [{ cidr: '10.0.0.0/24', first: '10.0.0.100', last: '10.0.0.199', size: 100, used: 3 }]);
});

t.test('formatters', async (t) => {
  t.equal(bytes(0), '0 B');
  t.equal(bytes(1536), '1.50 KiB');
  t.equal(bytes(undefined), '—');
  t.equal(duration(61_000), '1 min 1 s');
  t.equal(duration(3 * 86_400_000), '3 d');
  t.equal(ago(undefined, new Date()), 'never');
  t.equal(ago('2026-12-07T10:00:00Z', new Date('2026-12-07T10:00:05Z')), '5 s ago');
  t.equal(ago('2026-12-07T10:00:00Z', new Date('2026-12-07T10:11:31Z')), '12 min ago');
  t.equal(ago('2026-12-07T10:00:00Z', new Date('2026-12-07T13:10:00Z')), '3 h ago');
  t.equal(ago('2026-12-07T10:00:00Z', new Date('2026-12-10T10:00:00Z')), '3 d ago');
  t.equal(ago('2026-12-07T10:00:03Z', new Date('2026-12-07T10:00:00Z')), 'just now', 'a clock a little behind');
  t.equal(firmware({ observed: { platform: 'efi', arch: 'x86_64' } }), 'UEFI x86_64');
  t.equal(firmware({ observed: {} }), '—');
});
