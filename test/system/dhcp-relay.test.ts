/**
 * edgeboot in full mode serving a subnet behind a DHCP relay (Debian's ISC dhcrelay), inside
 * network namespaces.
 *
 *   client  eth0 ──veth── dn0 10.78.0.1/24  relay  up0 10.77.0.2/24 ──veth── s0 10.77.0.1/24  server
 *                                   dhcrelay -a -D                          route 10.78.0.0/24 via 10.77.0.2
 *
 * Proves: requests relayed with giaddr 10.78.0.1 are served from the 10.78.0.0/24 subnet (its
 * pool, router, DNS, domain and lease time), never from the server's own 10.77.0.0/24; replies
 * go back to the relay (unicast to giaddr, port 67) through the route; a PXE ROM behind the
 * relay gets its boot file with next-server 10.77.0.1. Option 82: `dhcrelay -a` appends Relay
 * Agent Information (circuit id = its interface name) to each request and, with `-D`, drops
 * any reply whose option 82 does not carry a circuit id of its own (ISC dhcrelay's
 * strip_relay_agent_options: a reply without a matching 82 counts as missing_agent_option and
 * is discarded under -D). So a lease obtained through `dhcrelay -a -D` proves edgeboot echoed
 * option 82. The relay of our own then checks the echo byte for byte: option 82 comes back
 * unchanged and as the last option, in an OFFER and in a NAK (which a relay must broadcast).
 *
 * Needs root, iproute2, isc-dhcp-relay, udhcpc and curl, and a built dist/. Namespaces are
 * eb-dr-<pid>-<n>; they and every process in them are removed at teardown, even on failure.
 */
import t from 'tap';
import { DHCP_TYPE, encodeRequest, opt } from '../helpers/dhcp-packets.js';
import { dhcpTools, inRange, ipText, machineEvents, parseDhcp, scratchDir, sleep, startDhcpServer, udhcpc, udpPeer } from '../helpers/dhcp-system.js';
import { createLab, netnsList, netnsSkip, requireTools } from '../helpers/netns.js';

const skip = netnsSkip();
const SERVER = '10.77.0.1';
const RELAY_UP = '10.77.0.2';
const GIADDR = '10.78.0.1';
const POOL: [string, string] = ['10.78.0.100', '10.78.0.199'];
const SUBNETS = [
  { cidr: '10.77.0.0/24', pool: ['10.77.0.100', '10.77.0.199'] as [string, string], router: SERVER, leaseSeconds: 3600 },
  { cidr: '10.78.0.0/24', pool: POOL, router: GIADDR, dns: [GIADDR], domain: 'relayed.example', leaseSeconds: 1800 },
];
const MAC = { plain: '02:eb:0d:00:00:01', rom: '02:eb:0d:00:00:02', ours: '02:eb:0d:00:00:03' } as const;

t.test('full mode behind dhcrelay', { skip }, async (t) => {
  const started = Date.now();
  requireTools(dhcpTools('udhcpc', 'dhcrelay', 'curl'));
  const lab = createLab(t, 'dr');
  const dir = scratchDir(t);
  const srv = lab.netns('server');
  const relay = lab.netns('relay');
  const client = lab.netns('client');
  const client2 = lab.netns('client2');
  lab.veth({ ns: srv, dev: 's0' }, { ns: relay, dev: 'up0' });
  // The client side of the relay is a bridge with two client ports.
  lab.bridge(relay, 'dn0');
  lab.veth({ ns: relay, dev: 'c1' }, { ns: client, dev: 'eth0', mac: MAC.plain });
  lab.veth({ ns: relay, dev: 'c2' }, { ns: client2, dev: 'eth0', mac: MAC.rom });
  lab.attach(relay, 'c1', 'dn0');
  lab.attach(relay, 'c2', 'dn0');
  lab.ipIn(srv, 'addr', 'add', `${SERVER}/24`, 'dev', 's0');
  lab.ipIn(relay, 'addr', 'add', `${RELAY_UP}/24`, 'dev', 'up0');
  lab.ipIn(relay, 'addr', 'add', `${GIADDR}/24`, 'dev', 'dn0');
  lab.ipIn(srv, 'route', 'add', '10.78.0.0/24', 'via', RELAY_UP);

  const server = await startDhcpServer(t, srv, { mode: 'full', subnets: SUBNETS });
  // -a: add option 82 (circuit id = interface name); -D: drop replies without our 82.
  // -id/-iu: the client-side and the server-side interface; --no-pid: no /run file.
  const dhcrelay = lab.start(relay, ['dhcrelay', '-4', '-d', '-a', '-D', '--no-pid', '-id', 'dn0', '-iu', 'up0', SERVER]);
  await dhcrelay.waitFor(/Sending on\s+Socket\/fallback/, 5_000);
  t.comment(`namespaces, edgeboot and dhcrelay up in ${Date.now() - started} ms`);

  await t.test('a plain client behind the relay gets a lease of the relayed subnet', async (t) => {
    const c = await udhcpc(lab, dir, client, 'eth0');
    t.equal(
      c.run.code,
      0,
      `udhcpc got a lease through dhcrelay -a -D, so edgeboot echoed option 82: ${c.run.stdout}${c.run.stderr}\nrelay: ${dhcrelay.output()}`,
    );
    const l = c.lease ?? {};
    t.ok(inRange(l.ip, ...POOL), `address ${l.ip} from the 10.78.0.0/24 pool`);
    t.equal(l.router, GIADDR, 'router 10.78.0.1');
    t.equal(l.subnet, '255.255.255.0', 'mask');
    t.equal(l.dns, GIADDR, 'the relayed subnet’s DNS');
    t.equal(l.domain, 'relayed.example', 'and domain');
    t.equal(l.lease, '1800', 'and lease time');
    t.equal(l.serverid, SERVER, 'server identifier: the server’s address the relay sent to');
    const out = dhcrelay.output();
    t.match(out, /Adding \d+-byte relay agent option/, 'dhcrelay added option 82');
    t.match(out, /Forwarded BOOTREPLY for 02:eb:0d:00:00:01/, 'and forwarded the replies');
    t.ok(
      server.logLines.some((x) => x.msg === 'dhcp reply' && x.mac === MAC.plain && x.type === 'ack' && x.yiaddr === l.ip && x.interface === 's0'),
      'edgeboot logged the ack, received on s0',
    );
  });

  await t.test('a PXE ROM behind the relay gets its boot file', async (t) => {
    const c = await udhcpc(lab, dir, client2, 'eth0', { vendor: 'PXEClient:Arch:00000:UNDI:002001', options: ['0x5d:0000'] });
    t.equal(c.run.code, 0, `udhcpc got a lease: ${c.run.stdout}${c.run.stderr}`);
    t.ok(inRange(c.lease?.ip, ...POOL), `address ${c.lease?.ip} from the relayed pool`);
    t.equal(c.lease?.boot_file, 'undionly.kpxe', 'boot file');
    t.equal(c.lease?.siaddr, SERVER, 'next-server: the server');
    t.equal(c.lease?.lease, '600', 'PXE lease time (below the subnet’s 1800)');
    let events = await machineEvents(lab, server, MAC.rom);
    for (let i = 0; i < 30 && !events.some((e) => e.type === 'dhcp-ack'); i++) {
      await sleep(100);
      events = await machineEvents(lab, server, MAC.rom);
    }
    t.match(
      events.find((e) => e.type === 'dhcp-ack'),
      { data: { interface: 's0', yiaddr: c.lease?.ip } },
      'recorded with the relayed address',
    );
  });

  // Our own relay below binds port 67 in the relay namespace, as dhcrelay's fallback socket did.
  await dhcrelay.stop();

  await t.test('option 82 comes back unchanged and last (a relay of our own)', async (t) => {
    // What dhcrelay would do, by hand: from the relay, port 67, giaddr set, hops 1, option 82
    // with a circuit id and a remote id.
    const agent = opt.subs([1, opt.text('eb-circuit-7')], [2, opt.bytes(0x02, 0xeb, 0x52, 0x45, 0x4d, 0x4f, 0x54, 0x45)]);
    const peer = await udpPeer(lab, relay, '0.0.0.0', 67);
    const discover = Buffer.from(
      encodeRequest({
        type: DHCP_TYPE.discover,
        mac: MAC.ours,
        xid: 0x82820001,
        giaddr: GIADDR,
        options: [
          [55, opt.bytes(1, 3, 6, 15, 51, 54)],
          [82, agent],
        ],
      }),
    );
    discover[3] = 1; // hops
    await peer.send(discover, SERVER, 67);
    const offerD = await peer.next((d) => d.from === SERVER && parseDhcp(d.data).xid === 0x82820001, 5_000);
    const offer = parseDhcp(offerD.data);
    t.equal(offerD.port, 67, 'the OFFER comes to the relay’s port 67 (unicast to giaddr)');
    t.equal(offer.type, DHCP_TYPE.offer, 'an OFFER');
    t.equal(offer.giaddr, GIADDR, 'giaddr kept');
    t.ok(inRange(offer.yiaddr, ...POOL), `address ${offer.yiaddr} of the relayed subnet`);
    t.equal(ipText(offer.opt(3)), GIADDR, 'router of the relayed subnet');
    const last = offer.options[offer.options.length - 1];
    t.equal(last?.code, 82, `option 82 is the last option (${offer.options.map((o) => o.code).join(' ')})`);
    t.same(last?.data, agent, 'option 82 echoed byte for byte');
    t.equal(offer.options.filter((o) => o.code === 82).length, 1, 'exactly once');

    // A REQUEST for an address of another subnet: a NAK, broadcast bit set for the relay.
    const before = peer.received.length;
    await peer.send(
      encodeRequest({
        type: DHCP_TYPE.request,
        mac: MAC.ours,
        xid: 0x82820002,
        giaddr: GIADDR,
        options: [
          [50, opt.ip('10.77.0.150')],
          [82, agent],
        ],
      }),
      SERVER,
      67,
    );
    const nakD = await peer.next((d) => d.from === SERVER && parseDhcp(d.data).xid === 0x82820002, 5_000, before);
    const nak = parseDhcp(nakD.data);
    t.equal(nak.type, DHCP_TYPE.nak, 'a NAK for 10.77.0.150 asked from the 10.78.0.0/24 link');
    t.equal(nak.flags & 0x8000, 0x8000, 'with the broadcast bit, so the relay broadcasts it (RFC 2131 §4.3.2)');
    t.equal(nak.giaddr, GIADDR, 'sent back to the relay');
    t.same(nak.options[nak.options.length - 1], { code: 82, data: agent }, 'option 82 echoed, last, in the NAK too');
    await peer.close();
  });

  t.comment(`relay tests done in ${Date.now() - started} ms`);
});

t.test('no namespace of this test is left', { skip }, async (t) => {
  const left = netnsList().filter((name) => name.startsWith(`eb-dr-${process.pid}-`));
  t.same(left, [], '`ip netns list` shows none of ours');
});
