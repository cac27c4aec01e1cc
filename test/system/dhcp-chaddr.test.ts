/**
 * A PXE DISCOVER whose chaddr is all-zero, broadcast or multicast is a counted drop
 * (`edgeboot_dhcp_dropped_total{reason="bad_chaddr"}`): no OFFER, no machine recorded, and
 * the server goes on answering; the same DISCOVER from a unicast MAC is offered.
 *
 *   client  eth0 ──veth── s0 10.77.0.1/24  server: edgeboot, dhcp.mode full
 *
 * Needs root, iproute2 and curl, and a built dist/. Namespaces are eb-dc-<pid>-<n>, removed
 * at teardown even on failure.
 */
import t from 'tap';
import { DHCP_TYPE, encodeRequest, opt } from '../helpers/dhcp-packets.js';
import { dhcpTools, parseDhcp, startDhcpServer, udpPeer, type Datagram } from '../helpers/dhcp-system.js';
import { createLab, netnsList, netnsSkip, requireTools } from '../helpers/netns.js';

const skip = netnsSkip();
const PXE: [number, Buffer][] = [
  [93, opt.u16(0)],
  [60, opt.text('PXEClient:Arch:00000:UNDI:002001')],
];

t.test('DISCOVERs from group or all-zero chaddrs are dropped and counted; a unicast one is offered', { skip, timeout: 60_000 }, async (t) => {
  requireTools(dhcpTools('curl'));
  const lab = createLab(t, 'dc');
  const srv = lab.netns('server');
  const cli = lab.netns('client');
  lab.veth({ ns: srv, dev: 's0' }, { ns: cli, dev: 'eth0', mac: '02:eb:0d:00:00:01' });
  lab.ipIn(srv, 'addr', 'add', '10.77.0.1/24', 'dev', 's0');
  lab.ipIn(cli, 'route', 'add', 'default', 'dev', 'eth0');
  const server = await startDhcpServer(t, srv, {
    mode: 'full',
    subnets: [{ cidr: '10.77.0.0/24', pool: ['10.77.0.100', '10.77.0.199'], router: '10.77.0.1' }],
  });
  const peer = await udpPeer(lab, cli, '0.0.0.0', 68);
  const offerFor = (xid: number) => (d: Datagram) => {
    const p = parseDhcp(d.data);
    return p.op === 2 && p.xid === xid && p.type === DHCP_TYPE.offer;
  };

  const refused = ['00:00:00:00:00:00', 'ff:ff:ff:ff:ff:ff', '01:00:5e:00:00:fb', '33:33:00:00:00:01'];
  let xid = 0x0dc00000;
  for (const mac of refused) {
    await peer.send(encodeRequest({ type: DHCP_TYPE.discover, mac, xid: ++xid, flags: 0x8000, options: PXE }), '255.255.255.255', 67);
  }
  const answers = await peer.collect(1_500);
  t.same(
    answers.map((d) => parseDhcp(d.data).xid),
    [],
    'no OFFER to any of them',
  );

  const good = xid + 1;
  await peer.send(encodeRequest({ type: DHCP_TYPE.discover, mac: '02:eb:0d:00:00:01', xid: good, flags: 0x8000, options: PXE }), '255.255.255.255', 67);
  const offer = parseDhcp((await peer.next(offerFor(good), 5_000)).data);
  t.match(offer.yiaddr, /^10\.77\.0\.1\d\d$/, `the unicast client is offered ${offer.yiaddr}`);
  t.equal(server.process.exitCode, null, 'the server is running');

  const metrics = await lab.run(srv, ['curl', '-sS', '--max-time', '5', `${server.url}/metrics`], { timeoutMs: 8_000 });
  t.match(metrics.stdout, /^edgeboot_dhcp_dropped_total\{reason="bad_chaddr"\} 4$/m, 'four drops, by reason bad_chaddr');
  const list = await lab.run(srv, ['curl', '-sS', '--max-time', '5', '-H', `authorization: Bearer ${server.token}`, `${server.url}/api/v1/machines`], {
    timeoutMs: 8_000,
  });
  t.same(
    (JSON.parse(list.stdout) as { machines: { mac: string }[] }).machines.map((m) => m.mac),
    ['02:eb:0d:00:00:01'],
    'only the unicast client is recorded',
  );
  await peer.close();
  lab.cleanup();
  t.same(
    netnsList().filter((n) => lab.names().includes(n)),
    [],
    'no namespace of this test is left',
  );
});
