/**
 * What every Store implementation must do, run against each (SQLite on a temp file, the
 * in-memory fake; PostgreSQL next). `open` gives a fresh, empty store and a second handle on
 * the same database, as a second host would have.
 */
import type { Test } from 'tap';
import type { Mac } from '../../../src/machines/mac.js';
import type { Machine } from '../../../src/machines/model.js';
import {
  eachMachine,
  MACHINE_SORTS,
  StaleMachineError,
  StoreConflictError,
  type MachineChange,
  type MachineSearch,
  type MachineSort,
  type Store,
} from '../../../src/store/store.js';
import type { Lease } from '../../../src/store/lease.js';

export interface ContractSubject {
  store: Store;
  /** Another handle on the same database. */
  second: () => Store;
}

const T0 = '2026-01-01T00:00:00.000Z';
const mac = (n: number): Mac => `52:54:00:00:00:${n.toString(16).padStart(2, '0')}` as Mac;

function machine(n: number, extra: Partial<Machine> = {}): Machine {
  return { mac: mac(n), macs: [], labels: {}, state: 'discovered', observed: {}, createdAt: T0, updatedAt: T0, ...extra };
}

const save = (m: Machine): MachineChange => ({ kind: 'save', machine: m });
const create = (store: Store, m: Machine) => store.mutateMachine(m.mac, () => save(m));

export function storeContract(t: Test, open: () => Promise<ContractSubject>): void {
  const subject = async (t: Test): Promise<ContractSubject> => {
    const s = await open();
    t.teardown(() => s.store.close());
    return s;
  };

  t.test('machines: found by any MAC and by a UUID only one machine has', async (t) => {
    const { store } = await subject(t);
    await create(store, machine(1, { macs: [mac(11), mac(12)], uuid: 'u-1' as Machine['uuid'] }));
    await create(store, machine(2, { uuid: 'u-dup' as Machine['uuid'] }));
    await create(store, machine(3, { uuid: 'u-dup' as Machine['uuid'] }));
    t.equal((await store.getMachine(mac(12)))?.mac, mac(1), 'secondary MAC');
    t.equal(await store.getMachine(mac(99)), undefined);
    t.equal((await store.findMachine({ macs: [mac(99), mac(11)] }))?.mac, mac(1), 'first MAC that has a machine');
    t.equal((await store.findMachine({ macs: [mac(99)], uuid: 'u-1' as Machine['uuid'] }))?.mac, mac(1), 'by UUID');
    t.equal(await store.findMachine({ macs: [], uuid: 'u-dup' as Machine['uuid'] }), undefined, 'a UUID two machines share names neither');
  });

  t.test('machines: listed in MAC order, filtered, paged; counted by state', async (t) => {
    const { store } = await subject(t);
    for (let n = 1; n <= 9; n++) {
      const state = n % 3 === 0 ? 'registered' : 'discovered';
      await create(store, machine(10 - n, { state, ...(n % 2 === 0 && { profile: 'p', labels: { rack: `r${n % 4}` } }) }));
    }
    t.same(
      (await store.listMachines()).map((m) => m.mac),
      [1, 2, 3, 4, 5, 6, 7, 8, 9].map(mac),
    );
    t.same(
      (await store.listMachines({ state: 'registered' })).map((m) => m.mac),
      [1, 4, 7].map(mac),
    );
    t.same(
      (await store.listMachines({ profile: 'p', labels: { rack: 'r0' } })).map((m) => m.mac),
      [2, 6].map(mac),
    );
    t.same(
      (await store.listMachines({}, { after: mac(3), limit: 2 })).map((m) => m.mac),
      [4, 5].map(mac),
    );
    const all: Mac[] = [];
    for await (const m of eachMachine(store, {}, 4)) all.push(m.mac);
    t.equal(all.length, 9, 'eachMachine pages through every machine');
    t.same(await store.countMachinesByState(), { discovered: 6, registered: 3 });
  });

  /** Five machines whose fields cover every filter and sort, and the ones the sorts find missing. */
  const searchable = async (t: Test): Promise<Store> => {
    const { store } = await subject(t);
    const bmc = (powerState: string) => ({ reachable: true, powerState, checkedAt: T0 });
    const seen = (day: number) => `2026-01-0${day}T00:00:00.000Z`;
    await create(
      store,
      machine(1, {
        hostname: 'web-01',
        ip: '10.0.0.10',
        state: 'registered',
        profile: 'p',
        labels: { rack: 'r1' },
        observed: { platform: 'efi', arch: 'x86_64', serial: 'SN-A1', lastSeenAt: seen(2) },
        bmcStatus: bmc('On'),
      }),
    );
    await create(
      store,
      machine(2, {
        hostname: 'db-02',
        ip: '10.0.0.9',
        macs: ['0a:1b:2c:3d:4e:5f' as Mac],
        observed: { platform: 'pcbios', arch: 'x86_64', lastSeenAt: seen(3) },
        inventory: { disks: [], macs: [], serial: 'INV_77', reportedAt: T0 },
        bmcStatus: bmc('Off'),
      }),
    );
    await create(store, machine(3, { ip: '10.0.1.1', state: 'installed', profile: 'q', observed: { platform: 'efi', arch: 'arm64', serial: '100%_ok' } }));
    await create(
      store,
      machine(4, { hostname: 'node-4', ip: '9.200.0.1', profile: 'p', labels: { rack: 'r1', role: 'db' }, observed: { platform: 'efi', lastSeenAt: seen(1) } }),
    );
    await create(store, machine(5, { observed: { serial: 'X\\Y' } }));
    return store;
  };
  const found = async (store: Store, search: Partial<MachineSearch>) => {
    const page = await store.searchMachines({ offset: 0, limit: 100, ...search });
    return { macs: page.machines.map((m) => m.mac), total: page.total };
  };
  const macsOf = (search: Partial<MachineSearch>) => async (store: Store) => (await found(store, search)).macs;

  t.test('machines: search filters by state, profile and labels', async (t) => {
    const store = await searchable(t);
    const search = (s: Partial<MachineSearch>) => macsOf(s)(store);
    t.same(await search({}), [1, 2, 3, 4, 5].map(mac), 'no filter: every machine, by MAC');
    t.same(await search({ state: 'discovered' }), [2, 4, 5].map(mac));
    t.same(await search({ profile: 'p' }), [1, 4].map(mac));
    t.same(await search({ labels: { rack: 'r1' } }), [1, 4].map(mac));
    t.same(await search({ labels: { rack: 'r1', role: 'db' } }), [mac(4)], 'every label must match');
    t.same(await search({ labels: { rack: 'r' } }), [], 'a label matches exactly');
    t.same(await search({ state: 'discovered', profile: 'p', text: 'node' }), [mac(4)], 'filters combine');
  });

  t.test('machines: search text matches hostname, IP, serials and every MAC in any form, ignoring case', async (t) => {
    const store = await searchable(t);
    const search = (text: string) => macsOf({ text })(store);
    t.same(await search('WEB'), [mac(1)], 'hostname, case-insensitive');
    t.same(await search('  web  '), [mac(1)], 'trimmed');
    t.same(await search(''), [1, 2, 3, 4, 5].map(mac), 'empty: no filter');
    t.same(await search('10.0.0.1'), [mac(1)], 'IP');
    t.same(await search('sn-a'), [mac(1)], 'observed serial');
    t.same(await search('inv'), [mac(2)], 'inventory serial');
    t.same(await search('52:54:00:00:00:03'), [mac(3)], 'primary MAC');
    t.same(await search('52-54-00-00-00-03'), [mac(3)], 'primary MAC, hyphens');
    t.same(await search('525400000003'), [mac(3)], 'primary MAC, bare hex');
    t.same(await search('00:00:0'), [1, 2, 3, 4, 5].map(mac), 'part of a MAC');
    t.same(await search('2C:3d'), [mac(2)], 'another MAC of the machine, any case');
    t.same(await search('1b-2c-3'), [mac(2)], 'part of a MAC, hyphens');
    t.same(await search('1b2c3d4e'), [mac(2)], 'part of a MAC, bare hex');
    t.same(await search('b2c3'), [mac(2)], 'bare hex across octets');
    t.same(await search('b2-c3'), [], 'hyphens fix where the octets are');
    t.same(await search('nothing-like-it'), []);
  });

  t.test('machines: search text takes LIKE wildcards and the escape literally', async (t) => {
    const store = await searchable(t);
    const search = (text: string) => macsOf({ text })(store);
    t.same(await search('%'), [mac(3)]);
    t.same(await search('_'), [2, 3].map(mac));
    t.same(await search('0%_'), [mac(3)]);
    t.same(await search('inv_7'), [mac(2)]);
    t.same(await search('in%7'), []);
    t.same(await search('i_v'), []);
    t.same(await search('\\'), [mac(5)]);
    t.same(await search('x\\y'), [mac(5)]);
  });

  t.test('machines: search sorts by each key both ways, missing values last, ties by MAC', async (t) => {
    const store = await searchable(t);
    const ascending: Record<MachineSort, number[]> = {
      hostname: [2, 4, 1, 3, 5],
      ip: [4, 2, 1, 3, 5],
      mac: [1, 2, 3, 4, 5],
      state: [2, 4, 5, 3, 1],
      profile: [1, 4, 3, 2, 5],
      firmware: [3, 1, 4, 2, 5],
      power: [2, 1, 3, 4, 5],
      lastSeen: [4, 1, 2, 3, 5],
    };
    for (const sort of MACHINE_SORTS) {
      const expected = ascending[sort].map(mac);
      t.same(await macsOf({ sort })(store), expected, `${sort} ascending`);
      t.same(await macsOf({ sort, descending: true })(store), [...expected].reverse(), `${sort} descending: the reverse`);
    }
    t.same(await macsOf({ text: '10.0.' })(store), [1, 2, 3].map(mac), 'sort defaults to MAC');
  });

  t.test('machines: search pages with offset and limit, and counts every match', async (t) => {
    const store = await searchable(t);
    t.same(await found(store, { sort: 'ip', offset: 1, limit: 2 }), { macs: [2, 1].map(mac), total: 5 });
    t.same(await found(store, { sort: 'ip', descending: true, offset: 1, limit: 2 }), { macs: [3, 1].map(mac), total: 5 });
    t.same(await found(store, { sort: 'state', offset: 1, limit: 2 }), { macs: [4, 5].map(mac), total: 5 }, 'ties keep MAC order across pages');
    t.same(await found(store, { offset: 4, limit: 10 }), { macs: [mac(5)], total: 5 });
    t.same(await found(store, { offset: 10, limit: 10 }), { macs: [], total: 5 }, 'past the end: the total still');
    t.same(await found(store, { limit: 0 }), { macs: [], total: 5 });
    t.same(await found(store, { state: 'discovered', limit: 1 }), { macs: [mac(2)], total: 3 }, 'the total of the matches');
    t.same(await found(store, { text: 'no-such-machine' }), { macs: [], total: 0 });
    const full = await store.searchMachines({ text: 'web', offset: 0, limit: 1 });
    t.same(full.machines[0]?.bmcStatus, { reachable: true, powerState: 'On', checkedAt: T0 }, 'whole machines');
    await t.rejects(store.searchMachines({ offset: 0, limit: 1001 }), RangeError, 'limit at most 1000');
    await t.rejects(store.searchMachines({ offset: -1, limit: 10 }), RangeError);
    await t.rejects(store.searchMachines({ offset: 0, limit: 1.5 }), RangeError);
  });

  t.test('machines: pruneDiscovered deletes the least recently seen unreserved ones only', async (t) => {
    const { store } = await subject(t);
    for (let n = 1; n <= 5; n++) await create(store, machine(n, { observed: { lastSeenAt: `2026-01-0${n}T00:00:00.000Z` } }));
    await create(store, machine(6, { labels: { keep: 'yes' } }));
    await create(store, machine(7, { hostname: 'named' }));
    t.same(await store.pruneDiscovered(10), [], 'under the limit: nothing');
    t.same((await store.pruneDiscovered(5, 2)).sort(), [1, 2, 3].map(mac), 'the oldest unreserved, until `keep` of those are left');
    t.same(
      (await store.listMachines()).map((m) => m.mac),
      [4, 5, 6, 7].map(mac),
    );
  });

  t.test('machines: mutate keeps, saves with events, deletes; the primary MAC stays', async (t) => {
    const { store } = await subject(t);
    const kept = await store.mutateMachine(mac(1), () => ({ kind: 'keep' }));
    t.same(kept, { machine: undefined, events: [] }, 'keep of an absent machine writes nothing');
    const saved = await store.mutateMachine(mac(1), () => ({ ...save(machine(1)), events: [{ type: 'created', source: 'api' }] }));
    t.equal(saved.events.length, 1);
    t.equal(saved.events[0]?.mac, mac(1));
    const withEvent = await store.mutateMachine(mac(1), () => ({ kind: 'keep', events: [{ type: 'seen', source: 'dhcp' }] }));
    t.equal(withEvent.machine?.mac, mac(1), 'keep hands back the current machine');
    t.same(
      (await store.listEvents(mac(1))).map((e) => e.type),
      ['created', 'seen'],
    );
    await t.rejects(
      store.mutateMachine(mac(1), () => save(machine(2))),
      /primary MAC/,
    );
    const thrown = new Error('callback refused');
    await t.rejects(
      store.mutateMachine(mac(1), () => {
        throw thrown;
      }),
      thrown,
      'a throwing callback reaches the caller',
    );
    const deleted = await store.mutateMachine(mac(1), () => ({ kind: 'delete' }));
    t.equal(deleted.machine, undefined);
    t.equal(await store.getMachine(mac(1)), undefined);
    t.same(await store.listEvents(mac(1)), [], 'its events went with it');
  });

  t.test('machines: updateMachine hands back the value of the run that committed', async (t) => {
    const { store } = await subject(t);
    const r = await store.updateMachine(mac(1), (current) => ({ change: save(machine(1)), result: current === undefined ? 'created' : 'updated' }));
    t.equal(r.result, 'created');
    t.equal(r.machine?.mac, mac(1));
    const again = await store.updateMachine(mac(1), (current) => ({ change: { kind: 'keep' }, result: current?.state }));
    t.equal(again.result, 'discovered');
  });

  t.test('machines: a MAC of another machine is a conflict', async (t) => {
    const { store } = await subject(t);
    await create(store, machine(1, { macs: [mac(11)] }));
    const err = await create(store, machine(2, { macs: [mac(11)] })).catch((e: unknown) => e);
    t.ok(err instanceof StoreConflictError);
    if (err instanceof StoreConflictError) {
      t.equal(err.owner, mac(1));
      t.equal(err.conflicting, mac(11));
    }
    t.equal(await store.getMachine(mac(2)), undefined, 'nothing of the refused save was written');
  });

  t.test('machines: versions start at 1 and count saves; a stale save is refused', async (t) => {
    const { store, second } = await subject(t);
    await create(store, machine(1));
    t.equal((await store.readMachine(mac(1)))?.version, 1);
    await store.mutateMachine(mac(1), (m) => save({ ...machine(1), ...m, hostname: 'a' }));
    const read = await store.readMachine(mac(1));
    t.equal(read?.version, 2);
    t.equal(read?.machine.hostname, 'a');
    if (!read) return;
    t.equal(await second().saveMachine({ ...read.machine, hostname: 'b' }, read.version), 3, 'the other host saves first');
    const stale = await store.saveMachine({ ...read.machine, hostname: 'c' }, read.version).catch((e: unknown) => e);
    t.ok(stale instanceof StaleMachineError, 'a save from version 2 is refused at version 3');
    t.equal((await store.getMachine(mac(1)))?.hostname, 'b');
    await t.rejects(store.saveMachine(machine(1), undefined), StaleMachineError, 'a create of a machine that exists');
  });

  t.test('machines: mutate runs the callback again on the row another writer changed', async (t) => {
    const { store, second } = await subject(t);
    const other = second();
    await create(store, machine(1, { labels: { n: '0' } }));
    const seen: (string | undefined)[] = [];
    let interfered: Promise<unknown> | undefined;
    const r = await store.updateMachine(mac(1), (m) => {
      seen.push(m?.labels.n);
      // The other host writes between this read and this commit.
      interfered ??= other.mutateMachine(mac(1), (o) => (o ? save({ ...o, labels: { n: '1' } }) : { kind: 'keep' }));
      return { change: save({ ...machine(1), ...m, labels: { n: `${m?.labels.n}+` } }), result: seen.length };
    });
    await interfered;
    t.same(seen, ['0', '1'], 'the second run saw the other writer’s row');
    t.equal(r.result, 2);
    t.same((await store.getMachine(mac(1)))?.labels, { n: '1+' }, 'neither write is lost');
    t.equal((await store.readMachine(mac(1)))?.version, 3);
  });

  t.test('events: ids increase per machine and page forward', async (t) => {
    const { store } = await subject(t);
    await create(store, machine(1));
    await create(store, machine(2));
    t.same(await store.appendEvents(mac(9), [{ type: 'x', source: 'api' }]), [], 'no machine, no events');
    for (let i = 0; i < 3; i++) {
      await store.appendEvents(mac(1), [{ type: `a${i}`, source: 'http', data: { i } }]);
      await store.appendEvents(mac(2), [{ type: `b${i}`, source: 'tftp' }]);
    }
    const a = await store.listEvents(mac(1));
    t.same(
      a.map((e) => e.type),
      ['a0', 'a1', 'a2'],
    );
    t.same(a[1]?.data, { i: 1 });
    t.ok(
      a.every((e, i) => i === 0 || e.id > (a[i - 1]?.id ?? Infinity)),
      'ids increase',
    );
    t.same(
      (await store.listEvents(mac(1), { afterId: a[0]?.id ?? 0, limit: 1 })).map((e) => e.type),
      ['a1'],
    );
    t.same(
      (await store.listEvents(mac(1), { newest: true, limit: 2 })).map((e) => e.type),
      ['a1', 'a2'],
      'newest: the last events, oldest first',
    );
    t.same(
      (await store.listEvents(mac(1), { newest: true, limit: 5, afterId: a[1]?.id ?? 0 })).map((e) => e.type),
      ['a2'],
      'newest after an id',
    );
  });

  t.test('leases: journal writes, one address per client, removal', async (t) => {
    const { store } = await subject(t);
    const lease = (ip: string, m: string, expiresAt = 1000): Lease => ({ ip, mac: m, state: 'bound', expiresAt });
    await store.writeLeases([lease('10.0.0.5', 'aa'), { ...lease('10.0.0.6', 'bb'), hostname: 'h' }], []);
    await store.writeLeases([lease('10.0.0.7', 'aa')], ['10.0.0.6']);
    t.same(await store.listLeases(), [lease('10.0.0.7', 'aa')], "a new binding ends the client's older one");
  });

  t.test('leases: a claim wins only on a free, expired or own address, and exactly one of two claimants wins', async (t) => {
    const { store, second } = await subject(t);
    const other = second();
    const lease = (ip: string, m: string, expiresAt: number): Lease => ({ ip, mac: m, state: 'bound', expiresAt });
    t.equal(await store.claimLease(lease('10.0.0.5', 'aa', 2000), 1000), true, 'free');
    t.equal(await other.claimLease(lease('10.0.0.5', 'bb', 2000), 1000), false, 'held by another client');
    t.equal(await store.claimLease(lease('10.0.0.5', 'aa', 3000), 1000), true, 'renewal by its holder');
    t.equal(await other.claimLease(lease('10.0.0.5', 'bb', 5000), 3000), true, 'expired');
    t.same(await store.listLeases(), [lease('10.0.0.5', 'bb', 5000)]);
    t.equal(await store.claimLease(lease('10.0.0.9', 'bb', 5000), 3000), true, 'a client moving to another address');
    t.same(await store.listLeases(), [lease('10.0.0.9', 'bb', 5000)], 'ends its older lease');
    const results = await Promise.all([store.claimLease(lease('10.0.0.20', 'cc', 9000), 3000), other.claimLease(lease('10.0.0.20', 'dd', 9000), 3000)]);
    t.same(results.sort(), [false, true], 'two claimants of one address: one wins');
    t.equal((await store.listLeases()).filter((l) => l.ip === '10.0.0.20').length, 1);
  });

  t.test('cache index: entries, touches, LRU order, hub artifacts', async (t) => {
    const { store } = await subject(t);
    const entry = (key: string, lastUsedAt: string) => ({ key, digest: 'd'.repeat(64), size: 3, createdAt: T0, lastUsedAt });
    await store.putCacheEntry({ ...entry('a', '2026-01-03'), etag: '"e"', mediaType: 'text/plain' });
    await store.putCacheEntry(entry('b', '2026-01-02'));
    t.same(await store.getCacheEntry('a'), { ...entry('a', '2026-01-03'), etag: '"e"', mediaType: 'text/plain' });
    t.same(
      (await store.listCacheEntries()).map((e) => e.key),
      ['b', 'a'],
      'least recently used first',
    );
    await store.touchCacheEntries([
      { key: 'b', time: '2026-01-04' },
      { key: 'gone', time: '2026-01-04' },
    ]);
    t.same(
      (await store.listCacheEntries()).map((e) => e.key),
      ['a', 'b'],
    );
    await store.deleteCacheEntry('a');
    t.equal(await store.getCacheEntry('a'), undefined);
    await store.putHubArtifact('old', '{"u":1}', '2026-01-01', '2026-01-01');
    await store.putHubArtifact('new', '{"u":2}', '2026-01-05', '2026-01-02');
    t.equal(await store.getHubArtifact('new'), '{"u":2}');
    t.equal(await store.getHubArtifact('old'), undefined, 'not registered since keepSince: dropped');
  });

  t.test('registry index: manifests keep their first record; tags and tag lists replace', async (t) => {
    const { store } = await subject(t);
    const m = { digest: 'sha256:aa', mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 10, createdAt: T0 };
    await store.putRegistryManifest(m);
    await store.putRegistryManifest({ ...m, size: 99 });
    t.same(await store.getRegistryManifest('sha256:aa'), m);
    await store.putRegistryTag('quay.io', 'x/y', 'v1', 'sha256:aa', T0);
    await store.putRegistryTag('quay.io', 'x/y', 'v1', 'sha256:bb', T0);
    t.equal(await store.getRegistryTag('quay.io', 'x/y', 'v1'), 'sha256:bb');
    t.equal(await store.getRegistryTag('quay.io', 'x/z', 'v1'), undefined);
    await store.putRegistryTagList('quay.io', 'x/y', { tags: ['v1', 'v2'], updatedAt: T0 });
    t.same(await store.getRegistryTagList('quay.io', 'x/y'), { tags: ['v1', 'v2'], updatedAt: T0 });
  });

  t.test('settings: initSetting sets once, and every host reads the first value', async (t) => {
    const { store, second } = await subject(t);
    t.equal(await store.getSetting('k'), undefined);
    t.equal(await store.initSetting('k', 'first'), 'first');
    t.equal(await second().initSetting('k', 'second'), 'first');
    t.equal(await store.getSetting('k'), 'first');
    await second().putSetting('k', 'replaced');
    t.equal(await store.getSetting('k'), 'replaced', 'putSetting replaces, for every host');
    await store.putSetting('new', 'v');
    t.equal(await second().getSetting('new'), 'v');
    await store.ping();
  });
}
