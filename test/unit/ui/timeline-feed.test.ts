import t from 'tap';
import type { Mac } from '../../../src/machines/mac.js';
import { feedingStore, TimelineFeed, type TimelineChange } from '../../../src/machines/timeline-feed.js';
import { openSqliteStore } from '../../../src/store/sqlite.js';

const MAC = '52:54:00:00:00:01' as Mac;

t.test('the store tells the feed what it committed, after it committed', async (t) => {
  const plain = openSqliteStore({ path: ':memory:' });
  t.teardown(() => plain.close());
  const feed = new TimelineFeed();
  const heard: TimelineChange[] = [];
  const errors: unknown[] = [];
  const store = feedingStore(plain, feed, (e) => errors.push(e));
  const stop = feed.subscribe((c) => heard.push(c));
  const now = new Date().toISOString();
  await store.mutateMachine(MAC, () => ({
    kind: 'save',
    machine: { mac: MAC, macs: [], labels: {}, state: 'registered', observed: {}, createdAt: now, updatedAt: now },
    events: [{ type: 'reservation-created', source: 'api' }],
  }));
  await store.appendEvents(MAC, [{ type: 'booted', source: 'machine' }]);
  await store.appendEvents('52:54:00:00:00:99' as Mac, [{ type: 'lost', source: 'machine' }]);
  await store.mutateMachine('52:54:00:00:00:98' as Mac, () => ({ kind: 'keep' }));
  await store.mutateMachine(MAC, () => ({ kind: 'keep' }));
  await store.mutateMachine(MAC, () => ({ kind: 'delete' }));
  t.same(
    heard.map((c) => [c.mac, c.state, c.deleted, c.events.map((e) => e.type)]),
    [
      [MAC, 'registered', undefined, ['reservation-created']],
      [MAC, undefined, undefined, ['booted']],
      [MAC, undefined, true, []],
    ],
    'nothing told for an event nobody could take, nor for a change that kept the row',
  );
  t.equal((await plain.listEvents(MAC)).length, 0, 'the events went with the machine');

  feed.subscribe(() => {
    throw new Error('a broken listener');
  });
  await store.appendEvents(MAC, []);
  const now2 = new Date().toISOString();
  const saved = await store.mutateMachine(MAC, () => ({
    kind: 'save',
    machine: { mac: MAC, macs: [], labels: {}, state: 'registered', observed: {}, createdAt: now2, updatedAt: now2 },
  }));
  t.ok(saved.machine, 'a listener that throws does not undo or fail the write');
  t.equal(errors.length, 1);
  t.ok(await plain.getMachine(MAC));
  stop();
  t.equal(feed.listenerCount, 1);
  t.equal(typeof store.ping, 'function', 'everything else is the store itself');
  await store.ping();
});
