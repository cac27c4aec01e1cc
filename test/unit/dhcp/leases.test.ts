import t from 'tap';
import { LeasePool, inSubnet, maskText, parseSubnet, type Lease, type Subnet } from '../../../src/dhcp/leases.js';
import { intToIp, ipToInt } from '../../../src/net/ipv4.js';
import { LAB_SUBNET } from '../../helpers/fixtures.js';

const NOW = Date.UTC(2024, 0, 1, 12, 0, 0);
const HOUR = 3_600_000;
const A = '52:54:00:00:00:0a';
const B = '52:54:00:00:00:0b';
const C = '52:54:00:00:00:0c';

const lab = (): Subnet => parseSubnet(LAB_SUBNET);
/** A subnet whose pool is `first`..`last` in 10.77.0.0/24. */
const small = (first: number, last: number): Subnet => parseSubnet({ ...LAB_SUBNET, pool: [`10.77.0.${first}`, `10.77.0.${last}`] });

const bound = (ip: string, mac: string, expiresAt = NOW + HOUR): Lease => ({ ip, mac, state: 'bound', expiresAt });
const declined = (ip: string, expiresAt = NOW + 600_000): Lease => ({ ip, mac: '', state: 'declined', expiresAt });

/** Counts the addresses `choose` looks at. */
class CountingPool extends LeasePool {
  probes = 0;
  override isFreeFor(ip: string, mac: string, now: number): boolean {
    this.probes++;
    return super.isFreeFor(ip, mac, now);
  }
}

t.test('ipToInt and intToIp are inverse and big-endian', async (t) => {
  t.equal(ipToInt('10.77.0.1'), 0x0a4d0001);
  t.equal(ipToInt('255.255.255.255'), 0xffffffff);
  t.equal(ipToInt('0.0.0.0'), 0);
  t.equal(intToIp(0x0a4d00c7), '10.77.0.199');
  for (const ip of ['10.77.0.100', '192.168.255.1', '255.255.255.255', '0.0.0.0']) t.equal(intToIp(ipToInt(ip)), ip);
});

t.test('parseSubnet reads the network, mask, pool and options', async (t) => {
  const s = lab();
  t.equal(s.cidr, '10.77.0.0/24');
  t.equal(s.network, ipToInt('10.77.0.0'));
  t.equal(s.mask, 0xffffff00);
  t.equal(maskText(s), '255.255.255.0');
  t.same(s.pool, { first: ipToInt('10.77.0.100'), last: ipToInt('10.77.0.199') });
  t.equal(s.router, '10.77.0.1');
  t.same(s.dns, ['10.77.0.1']);
  t.equal(s.domain, 'lab.example');
  t.equal(s.leaseSeconds, 3600);

  const loose = parseSubnet({ cidr: '10.88.3.7/16', leaseSeconds: 60 });
  t.equal(loose.network, ipToInt('10.88.0.0'), 'host bits of the CIDR are masked off');
  t.equal(maskText(loose), '255.255.0.0');
  t.equal(loose.pool, undefined);
  t.equal(loose.router, undefined);
  t.equal(loose.dns, undefined);
  t.equal(loose.domain, undefined);

  t.equal(parseSubnet({ cidr: '0.0.0.0/0', leaseSeconds: 60 }).mask, 0, '/0 has an empty mask');
  t.equal(parseSubnet({ cidr: '10.1.2.3/32', leaseSeconds: 60 }).mask, 0xffffffff);
});

t.test('inSubnet holds for the whole prefix and nothing else', async (t) => {
  const s = lab();
  for (const ip of ['10.77.0.0', '10.77.0.1', '10.77.0.150', '10.77.0.255']) t.ok(inSubnet(s, ip), ip);
  for (const ip of ['10.77.1.0', '10.76.255.255', '10.88.0.1', '192.168.1.50', '0.0.0.0']) t.notOk(inSubnet(s, ip), ip);
  const narrow = parseSubnet({ cidr: '10.77.0.64/26', leaseSeconds: 60 });
  t.ok(inSubnet(narrow, '10.77.0.64'));
  t.ok(inSubnet(narrow, '10.77.0.127'));
  t.notOk(inSubnet(narrow, '10.77.0.63'));
  t.notOk(inSubnet(narrow, '10.77.0.128'));
});

t.test('inPool is the inclusive pool range; a subnet without a pool has none', async (t) => {
  const pool = new LeasePool();
  const s = lab();
  t.ok(pool.inPool(s, '10.77.0.100'));
  t.ok(pool.inPool(s, '10.77.0.199'));
  t.notOk(pool.inPool(s, '10.77.0.99'));
  t.notOk(pool.inPool(s, '10.77.0.200'));
  t.notOk(pool.inPool(parseSubnet({ cidr: '10.77.0.0/24', leaseSeconds: 60 }), '10.77.0.150'));
});

t.test('choose: a fixed address comes first, whatever else the client has or asks for', async (t) => {
  const s = lab();
  const pool = new LeasePool([bound('10.77.0.150', A)]);
  t.equal(pool.choose(s, A, NOW, '10.77.0.20', '10.77.0.160'), '10.77.0.20', 'fixed outside the pool beats own and requested');
  t.equal(pool.choose(s, A, NOW, '10.77.0.150'), '10.77.0.150', 'fixed equal to the own address');
  t.equal(pool.choose(s, B, NOW, '10.77.0.150'), undefined, 'fixed address held by another client: nothing, not a pool address');
  t.equal(pool.choose(s, B, NOW + 2 * HOUR, '10.77.0.150'), '10.77.0.150', 'fixed address whose other holder expired');
  t.equal(pool.choose(s, A, NOW, '10.88.0.20'), undefined, 'fixed address on another subnet');
});

t.test('choose: the own address comes before a requested one', async (t) => {
  const s = lab();
  const pool = new LeasePool([bound('10.77.0.150', A)]);
  t.equal(pool.choose(s, A, NOW, undefined, '10.77.0.160'), '10.77.0.150');
  t.equal(pool.choose(s, A, NOW + 5 * HOUR, undefined, '10.77.0.160'), '10.77.0.150', 'also when it expired and nobody took it');
  const offered = new LeasePool([{ ip: '10.77.0.151', mac: A, state: 'offered', expiresAt: NOW + 60_000 }]);
  t.equal(offered.choose(s, A, NOW), '10.77.0.151', 'an offered address is the client’s own too');
});

t.test('choose: an own address outside the pool or the subnet is not reused', async (t) => {
  const s = lab();
  const fixedBefore = new LeasePool([bound('10.77.0.20', A)]);
  t.equal(fixedBefore.choose(s, A, NOW), '10.77.0.100', 'old fixed address, reservation gone: a pool address');
  const elsewhere = new LeasePool([bound('10.88.0.150', A)]);
  t.equal(elsewhere.choose(s, A, NOW), '10.77.0.100', 'moved to another subnet');
});

t.test('choose: a requested address is honoured when free and in the pool', async (t) => {
  const s = lab();
  const pool = new LeasePool([bound('10.77.0.160', B)]);
  t.equal(pool.choose(s, A, NOW, undefined, '10.77.0.150'), '10.77.0.150');
  t.equal(pool.choose(s, A, NOW, undefined, '10.77.0.160'), '10.77.0.100', 'held by another client: scan');
  t.equal(pool.choose(s, A, NOW + 2 * HOUR, undefined, '10.77.0.160'), '10.77.0.160', 'its holder expired');
  t.equal(new LeasePool().choose(s, A, NOW, undefined, '10.77.0.20'), '10.77.0.100', 'outside the pool: scan');
  t.equal(new LeasePool().choose(s, A, NOW, undefined, '10.88.0.150'), '10.77.0.100', 'on another subnet: scan');
});

t.test('choose: the scan goes up from a cursor, skipping held addresses', async (t) => {
  const s = lab();
  const pool = new LeasePool([bound('10.77.0.100', B), bound('10.77.0.101', C)]);
  t.equal(pool.choose(s, A, NOW), '10.77.0.102');
  // The cursor moved past .102 even though nothing was recorded: the next client gets .103.
  t.equal(pool.choose(s, '52:54:00:00:00:0d', NOW), '10.77.0.103');
});

t.test('choose: the scan wraps from the end of the pool to its start', async (t) => {
  const s = small(100, 102);
  const pool = new LeasePool();
  for (const [mac, want] of [
    [A, '10.77.0.100'],
    [B, '10.77.0.101'],
    [C, '10.77.0.102'],
  ] as const) {
    const ip = pool.choose(s, mac, NOW);
    t.equal(ip, want);
    if (ip) pool.put(bound(ip, mac));
  }
  pool.remove('10.77.0.101');
  // The cursor is back at .100 (wrapped); .100 is held, .101 is free.
  t.equal(pool.choose(s, '52:54:00:00:00:0d', NOW), '10.77.0.101');
  pool.put(bound('10.77.0.101', '52:54:00:00:00:0d'));
  pool.remove('10.77.0.100');
  // Cursor at .102 now: .102 held, wraps to .100.
  t.equal(pool.choose(s, '52:54:00:00:00:0e', NOW), '10.77.0.100');
});

t.test('choose: an exhausted pool gives nothing after looking at each address once', async (t) => {
  const two = small(100, 101);
  const pool = new CountingPool([bound('10.77.0.100', B), bound('10.77.0.101', C)]);
  t.equal(pool.choose(two, A, NOW), undefined);
  t.equal(pool.probes, 2, 'two addresses, two probes');

  const full = new CountingPool();
  const s = lab();
  for (let n = 100; n <= 199; n++) full.put(bound(`10.77.0.${n}`, `52:54:00:00:01:${n.toString(16).padStart(2, '0')}`));
  full.probes = 0;
  t.equal(full.choose(s, A, NOW), undefined);
  t.equal(full.probes, 100, 'a 100-address pool is scanned once, not in a loop');
  t.equal(full.choose(s, A, NOW + 2 * HOUR), '10.77.0.100', 'once the leases expire it allocates again');

  t.equal(new LeasePool().choose(parseSubnet({ cidr: '10.77.0.0/24', leaseSeconds: 60 }), A, NOW), undefined, 'no pool, no address');
  t.equal(new LeasePool().choose(small(150, 140), A, NOW), undefined, 'an inverted pool is empty');
});

t.test('isFreeFor: unused, own, or expired', async (t) => {
  const pool = new LeasePool([bound('10.77.0.100', B, NOW + 1000)]);
  t.ok(pool.isFreeFor('10.77.0.101', A, NOW), 'unused');
  t.ok(pool.isFreeFor('10.77.0.100', B, NOW), 'own');
  t.notOk(pool.isFreeFor('10.77.0.100', A, NOW), 'another client’s, not expired');
  t.notOk(pool.isFreeFor('10.77.0.100', A, NOW + 999));
  t.ok(pool.isFreeFor('10.77.0.100', A, NOW + 1000), 'expired at expiresAt');
  t.ok(pool.isFreeFor('10.77.0.100', A, NOW + HOUR));
});

t.test('expired leases of other clients are handed out again by the scan', async (t) => {
  const s = small(100, 101);
  const pool = new LeasePool([bound('10.77.0.100', B, NOW - 1), bound('10.77.0.101', C, NOW + HOUR)]);
  t.equal(pool.choose(s, A, NOW), '10.77.0.100');
  const { saved, removed } = pool.put(bound('10.77.0.100', A));
  t.equal(saved.mac, A);
  t.equal(removed, undefined, 'A had no older address');
  t.equal(pool.ofMac(B), undefined, 'the expired holder no longer owns it');
  t.equal(pool.get('10.77.0.100')?.mac, A);
});

t.test('declined addresses are skipped until the quarantine ends', async (t) => {
  const s = small(100, 101);
  const pool = new LeasePool([declined('10.77.0.100', NOW + 600_000)]);
  t.equal(pool.choose(s, A, NOW), '10.77.0.101');
  t.equal(pool.choose(s, B, NOW, undefined, '10.77.0.100'), '10.77.0.101', 'even when requested');
  t.equal(pool.choose(s, B, NOW, '10.77.0.100'), undefined, 'even when it is a fixed address');
  pool.put(bound('10.77.0.101', A));
  t.equal(pool.choose(s, B, NOW + 599_999), undefined, 'quarantined and the rest taken: exhausted');
  t.equal(pool.choose(s, B, NOW + 600_000), '10.77.0.100', 'after the quarantine');
  t.equal(pool.ofMac(''), undefined, 'a declined address belongs to no client');
});

t.test('put: a client’s new address replaces its older one', async (t) => {
  const pool = new LeasePool([bound('10.77.0.100', A), bound('10.77.0.101', B)]);
  const r = pool.put(bound('10.77.0.150', A));
  t.same(r.removed, bound('10.77.0.100', A));
  t.same(r.saved, bound('10.77.0.150', A));
  t.equal(pool.get('10.77.0.100'), undefined);
  t.equal(pool.ofMac(A)?.ip, '10.77.0.150');
  t.equal(pool.get('10.77.0.101')?.mac, B, 'other clients untouched');
  t.equal(pool.all().length, 2);

  const same = pool.put({ ...bound('10.77.0.150', A), expiresAt: NOW + 2 * HOUR });
  t.equal(same.removed, undefined, 'renewing the same address removes nothing');
  t.equal(pool.get('10.77.0.150')?.expiresAt, NOW + 2 * HOUR);
});

t.test('put: a lease over another client’s address detaches that client', async (t) => {
  const pool = new LeasePool([bound('10.77.0.100', B, NOW - 1)]);
  pool.put(bound('10.77.0.100', A));
  t.equal(pool.ofMac(B), undefined);
  t.equal(pool.ofMac(A)?.ip, '10.77.0.100');
  const q = new LeasePool([bound('10.77.0.100', B)]);
  q.put(declined('10.77.0.100'));
  t.equal(q.ofMac(B), undefined, 'declining detaches the holder');
  t.equal(q.get('10.77.0.100')?.state, 'declined');
  t.equal(q.all().length, 1);
});

t.test('remove: deletes by address and forgets the client', async (t) => {
  const pool = new LeasePool([bound('10.77.0.100', A), bound('10.77.0.101', B), declined('10.77.0.102')]);
  t.same(pool.remove('10.77.0.100'), bound('10.77.0.100', A));
  t.equal(pool.get('10.77.0.100'), undefined);
  t.equal(pool.ofMac(A), undefined);
  t.equal(pool.ofMac(B)?.ip, '10.77.0.101', 'other clients untouched');
  t.equal(pool.remove('10.77.0.100'), undefined, 'twice: nothing');
  t.equal(pool.remove('10.77.0.150'), undefined, 'unknown: nothing');
  t.equal(pool.remove('10.77.0.102')?.state, 'declined');
  t.same(
    pool.all().map((l) => l.ip),
    ['10.77.0.101'],
  );
});

t.test('the constructor loads leases by address and by client', async (t) => {
  const pool = new LeasePool([bound('10.77.0.100', A), declined('10.77.0.101')]);
  t.equal(pool.get('10.77.0.100')?.mac, A);
  t.equal(pool.ofMac(A)?.ip, '10.77.0.100');
  t.equal(pool.get('10.77.0.101')?.state, 'declined');
  t.equal(pool.all().length, 2);
  t.same(new LeasePool().all(), []);
});
