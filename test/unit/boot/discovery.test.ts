/**
 * The discovery limiter's pure parts on a hand-moved clock: the per-address token bucket
 * (boot.discoverPerMinute), the bound on remembered addresses, and the gate that turns a
 * store change creating a record into a `keep` when the bucket is empty.
 */
import t from 'tap';
import { DiscoveryLimiter } from '../../../src/boot/discovery.js';
import type { Mac } from '../../../src/machines/mac.js';
import type { Machine } from '../../../src/machines/model.js';
import type { MachineChange } from '../../../src/store/store.js';

function clock(start = 1_000_000) {
  let now = start;
  return { now: () => now, advance: (ms: number) => (now += ms) };
}

const discovered = (mac: string): Machine => ({ mac: mac as Mac, macs: [], labels: {}, state: 'discovered', observed: {}, createdAt: 't', updatedAt: 't' });

t.test("one address gets a minute's worth at once, then one every 60/perMinute seconds", async (t) => {
  const c = clock();
  const l = new DiscoveryLimiter({ perMinute: 60, maxDiscovered: 0, now: c.now });
  let allowed = 0;
  for (let i = 0; i < 3000; i++) if (l.allowNew('10.0.0.5')) allowed++;
  t.equal(allowed, 60, 'a burst of 3,000 from one address: 60 pass');
  t.equal(l.stats.refused.rate_limit, 2940, 'the rest are counted');
  t.equal(l.allowNew('10.0.0.6'), true, 'another address has its own bucket');
  c.advance(999);
  t.equal(l.allowNew('10.0.0.5'), false, 'under a second later: still empty');
  c.advance(1);
  t.equal(l.allowNew('10.0.0.5'), true, 'one second refills one');
  t.equal(l.allowNew('10.0.0.5'), false);
  c.advance(3_600_000);
  let again = 0;
  for (let i = 0; i < 100; i++) if (l.allowNew('10.0.0.5')) again++;
  t.equal(again, 60, 'an hour later: a full bucket, never more');
});

t.test('perMinute 0 is no limit', async (t) => {
  const l = new DiscoveryLimiter({ perMinute: 0, maxDiscovered: 0, now: clock().now });
  for (let i = 0; i < 1000; i++) if (!l.allowNew('10.0.0.5')) return t.fail(`refused at ${i}`);
  t.same(l.stats.refused, {});
});

t.test('remembered addresses are bounded; the least recently used is forgotten first', async (t) => {
  const c = clock();
  const l = new DiscoveryLimiter({ perMinute: 1, maxDiscovered: 0, now: c.now, maxSources: 3 });
  for (const a of ['a', 'b', 'c']) t.equal(l.allowNew(a), true, `${a} takes its one`);
  t.equal(l.allowNew('a'), false, 'a is empty (and now the most recently used)');
  t.equal(l.allowNew('d'), true, 'd pushes out b, the least recently used');
  t.equal(l.allowNew('a'), false, 'a is still remembered: still empty');
  t.equal(l.allowNew('c'), false, 'c is still remembered');
  t.equal(l.allowNew('b'), true, 'b was forgotten: a fresh bucket');
});

t.test('the gate turns a creating save into keep when refused, and lets updates through', async (t) => {
  const l = new DiscoveryLimiter({ perMinute: 0, maxDiscovered: 0 });
  const create = (cur: Machine | undefined): MachineChange => ({ kind: 'save', machine: cur ?? discovered('52:54:00:00:00:01') });

  const no = l.gate(() => false);
  t.same(no.admit(undefined, create(undefined)), { change: { kind: 'keep' }, creation: 'refused' }, 'refused: nothing written');

  const existing = discovered('52:54:00:00:00:02');
  const update = l.gate(() => false);
  t.same(
    update.admit(existing, create(existing)),
    { change: { kind: 'save', machine: existing }, creation: 'none' },
    'an existing record is updated whatever the rate',
  );

  let allowed = 0;
  const yes = l.gate(() => (allowed++, true));
  t.same(yes.admit(undefined, create(undefined)), { change: create(undefined), creation: 'made' }, 'made: the caller prunes');
  t.equal(yes.admit(undefined, create(undefined)).creation, 'made', 'a retry of the same change (optimistic store)');
  t.equal(allowed, 1, 'asks its allowance once');

  let asked = 0;
  const keep = l.gate(() => (asked++, true));
  t.same(keep.admit(undefined, { kind: 'keep' }), { change: { kind: 'keep' }, creation: 'none' });
  t.equal(asked, 0, 'a change that creates nothing does not spend the allowance');
});
