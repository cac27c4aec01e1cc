/**
 * edgeboot's DHCP server on a multi-homed host, inside network namespaces: one server namespace
 * on two subnets, one client namespace on each.
 *
 *   client A  eth0 ──veth── a0 ─ br1 10.81.1.1/24 ┐
 *                                                  ├ server: edgeboot, dhcp.mode full, both subnets
 *   client B  eth0 ──veth──────── s2 10.81.2.1/24 ┘ (no default route: only IP_PKTINFO steers replies)
 *
 * Proves: each client, asking at the same time as the other, gets a lease from ITS subnet (the
 * subnet of the interface the request arrived on: a bridge on one side, a plain veth on the
 * other), with the server identifier, router and, for PXE and iPXE, the next-server and the
 * HTTP entry-script host set to the server's address on that subnet; and each client's exchange
 * is recorded with the interface it came in on.
 *
 * Needs root, iproute2, udhcpc and curl, and a built dist/. Namespaces are eb-dm-<pid>-<n>; they
 * and every process in them are removed at teardown, even on failure.
 */
import t from 'tap';
import { dhcpTools, inRange, machineEvents, scratchDir, sleep, startDhcpServer, udhcpc, type ClientRun } from '../helpers/dhcp-system.js';
import { createLab, netnsList, netnsSkip, requireTools } from '../helpers/netns.js';

const skip = netnsSkip();
const SIDES = {
  a: { server: '10.81.1.1', pool: ['10.81.1.100', '10.81.1.199'] as [string, string], iface: 'br1', mac: '02:eb:0c:00:00:01' },
  b: { server: '10.81.2.1', pool: ['10.81.2.100', '10.81.2.199'] as [string, string], iface: 's2', mac: '02:eb:0c:00:00:02' },
} as const;
const SUBNETS = Object.values(SIDES).map((s) => ({
  cidr: `${s.server.replace(/\.1$/, '.0')}/24`,
  pool: s.pool,
  router: s.server,
  dns: [s.server],
  leaseSeconds: 3600,
}));

const describe = (c: ClientRun): string => `exit ${c.run.code ?? c.run.signal}: ${c.run.stdout}${c.run.stderr}`;

t.test('two subnets, one server', { skip }, async (t) => {
  const started = Date.now();
  requireTools(dhcpTools('udhcpc', 'curl'));
  const lab = createLab(t, 'dm');
  const dir = scratchDir(t);
  const srv = lab.netns('server');
  const nsA = lab.netns('client-a');
  const nsB = lab.netns('client-b');
  lab.bridge(srv, 'br1');
  lab.veth({ ns: srv, dev: 'a0' }, { ns: nsA, dev: 'eth0', mac: SIDES.a.mac });
  lab.attach(srv, 'a0', 'br1');
  lab.veth({ ns: srv, dev: 's2' }, { ns: nsB, dev: 'eth0', mac: SIDES.b.mac });
  lab.ipIn(srv, 'addr', 'add', `${SIDES.a.server}/24`, 'dev', 'br1');
  lab.ipIn(srv, 'addr', 'add', `${SIDES.b.server}/24`, 'dev', 's2');
  const server = await startDhcpServer(t, srv, { mode: 'full', subnets: SUBNETS });
  t.comment(`namespaces and edgeboot up in ${Date.now() - started} ms`);

  await t.test('plain clients on both sides at once: each from its own subnet', async (t) => {
    const [a, b] = await Promise.all([udhcpc(lab, dir, nsA, 'eth0'), udhcpc(lab, dir, nsB, 'eth0')]);
    for (const [side, c] of [
      ['a', a],
      ['b', b],
    ] as const) {
      const s = SIDES[side];
      t.equal(c.run.code, 0, `client ${side} got a lease: ${describe(c)}`);
      t.ok(inRange(c.lease?.ip, ...s.pool), `client ${side}: ${c.lease?.ip} from ${s.pool.join('-')}`);
      t.equal(c.lease?.serverid, s.server, `client ${side}: server identifier is the server's address on its subnet`);
      t.equal(c.lease?.router, s.server, `client ${side}: router of its subnet`);
      t.equal(c.lease?.dns, s.server, `client ${side}: DNS of its subnet`);
    }
  });

  await t.test('PXE on side A, iPXE on side B, at once: next-server and entry script per side', async (t) => {
    const [a, b] = await Promise.all([
      udhcpc(lab, dir, nsA, 'eth0', { vendor: 'PXEClient:Arch:00000:UNDI:002001', options: ['0x5d:0000'] }),
      udhcpc(lab, dir, nsB, 'eth0', { vendor: 'PXEClient:Arch:00007:UNDI:003016', options: ['0x5d:0007', '0x4d:69505845'] }),
    ]);
    t.equal(a.run.code, 0, `client a got a lease: ${describe(a)}`);
    t.equal(b.run.code, 0, `client b got a lease: ${describe(b)}`);
    t.equal(a.lease?.serverid, SIDES.a.server, 'A: server identifier 10.81.1.1');
    t.equal(a.lease?.siaddr, SIDES.a.server, 'A: next-server 10.81.1.1');
    t.equal(a.lease?.boot_file, 'undionly.kpxe', 'A: BIOS boot file');
    t.ok(inRange(a.lease?.ip, ...SIDES.a.pool), `A: ${a.lease?.ip} from its pool`);
    t.equal(b.lease?.serverid, SIDES.b.server, 'B: server identifier 10.81.2.1');
    t.equal(b.lease?.boot_file, `http://${SIDES.b.server}:${server.port}/boot.ipxe`, 'B: the entry script on the server’s address on subnet 2');
    t.ok(inRange(b.lease?.ip, ...SIDES.b.pool), `B: ${b.lease?.ip} from its pool`);

    for (const side of ['a', 'b'] as const) {
      const s = SIDES[side];
      let events = await machineEvents(lab, server, s.mac);
      for (let i = 0; i < 30 && !events.some((e) => e.type === 'dhcp-ack'); i++) {
        await sleep(100);
        events = await machineEvents(lab, server, s.mac);
      }
      t.match(
        events.find((e) => e.type === 'dhcp-ack'),
        { data: { interface: s.iface } },
        `${side.toUpperCase()}: recorded as arriving on ${s.iface}`,
      );
    }
  });

  t.comment(`multi-homed tests done in ${Date.now() - started} ms`);
});

t.test('no namespace of this test is left', { skip }, async (t) => {
  const left = netnsList().filter((name) => name.startsWith(`eb-dm-${process.pid}-`));
  t.same(left, [], '`ip netns list` shows none of ours');
});
