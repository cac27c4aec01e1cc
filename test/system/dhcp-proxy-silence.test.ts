/**
 * A fresh edgeboot in proxy mode answers no PXE boot until a machine is registered (issue 16):
 * proxy DHCP answers only the machines edgeboot will boot, as the boot planner says.
 *
 *   switch namespace: br0 ─┬─ server  eth0 10.77.0.1/24   `node dist/main.js serve`, dhcp.mode proxy
 *                          └─ rom     eth0 (fixed MAC)    a PXE ROM: hand-made packets from a UDP peer
 *
 * The probe is what a PXE ROM sends: a broadcast DISCOVER from port 68 with option 60
 * `PXEClient:Arch:…`, 93 (arch), 94 (UNDI) and 97 (UUID), and, from the same ROM once it has an
 * address, the unicast REQUEST of the boot-server exchange on port 4011. (busybox udhcpc cannot
 * be the probe: with no DHCP server beside, it would take the proxy OFFER's yiaddr 0.0.0.0.)
 *
 * Proves: with the default boot.unknownMachines (exit) and no machines, three DISCOVERs and a
 * port-4011 REQUEST get nothing back within a bounded wait, while the server logs each one as
 * not answered with the planner's reason and puts `dhcp-ignored` with that reason on the
 * client's timeline. Once the MAC is registered through the HTTP API, the same probe gets a
 * proxy OFFER with the boot file and the boot server's ACK: the probe itself works. A server
 * with `boot.unknownMachines: wait` answers an unregistered ROM at once.
 *
 * Needs root, iproute2 and curl, and a built dist/. Namespaces are eb-ds-<pid>-<n>; they and
 * every process in them are removed at teardown, even on failure.
 */
import t from 'tap';
import { DHCP_TYPE, encodeRequest, opt } from '../helpers/dhcp-packets.js';
import {
  api,
  dhcpTools,
  ipText,
  machineEvents,
  parseDhcp,
  sleep,
  startDhcpServer,
  udpPeer,
  type Datagram,
  type DhcpServer,
  type UdpPeer,
} from '../helpers/dhcp-system.js';
import { createLab, netnsList, netnsSkip, requireTools, type Lab } from '../helpers/netns.js';

const skip = netnsSkip();
const SERVER = '10.77.0.1';
const ROM_ADDRESS = '10.77.0.150';
const MAC = '02:eb:5e:00:00:01';
const UUID = Buffer.from('00aabbccddeeff00112233445566778899', 'hex');
/** How long a silence is waited for: a PXE ROM gives up on proxy offers in about 4 s. */
const SILENCE_MS = 1_500;

/** A PXE ROM's options after 53: BIOS (arch 0, UNDI 2.1) or UEFI x86-64 (arch 7, UNDI 3.16). */
function romOptions(firmware: 'bios' | 'uefi'): [number, Buffer][] {
  const [arch, undi] = firmware === 'bios' ? [0, [2, 1]] : [7, [3, 16]];
  return [
    [57, opt.u16(1464)],
    [55, opt.bytes(1, 3, 6, 43, 60, 66, 67, 97)],
    [97, UUID],
    [94, opt.bytes(1, undi[0] as number, undi[1] as number)],
    [93, opt.u16(arch)],
    [60, opt.text(`PXEClient:Arch:${String(arch).padStart(5, '0')}:UNDI:${undi.map((n) => String(n).padStart(3, '0')).join('')}`)],
  ];
}

const fromServer = (xid: number, type: number) => (d: Datagram) => {
  if (d.from !== SERVER) return false;
  try {
    const p = parseDhcp(d.data);
    return p.op === 2 && p.xid === xid && p.type === type;
  } catch {
    return false;
  }
};

/** Waits (bounded) until the server has logged a line that `match` accepts. */
async function logged(server: DhcpServer, match: (l: Record<string, unknown>) => boolean, timeoutMs = 3_000): Promise<Record<string, unknown> | undefined> {
  const deadline = Date.now() + timeoutMs;
  let line = server.logLines.find(match);
  while (!line && Date.now() < deadline) {
    await sleep(25);
    line = server.logLines.find(match);
  }
  return line;
}

/** Broadcasts a PXE DISCOVER from port 68. */
const discover = (peer: UdpPeer, xid: number) =>
  peer.send(encodeRequest({ type: DHCP_TYPE.discover, mac: MAC, xid, flags: 0x8000, options: romOptions('bios') }), '255.255.255.255', 67);
/** The ROM's unicast REQUEST to the boot server, from its address, from port 4011. */
const bootServerRequest = (peer: UdpPeer, xid: number) =>
  peer.send(encodeRequest({ type: DHCP_TYPE.request, mac: MAC, xid, ciaddr: ROM_ADDRESS, options: romOptions('uefi') }), SERVER, 4011);

function buildLab(lab: Lab): { srv: string; rom: string } {
  const sw = lab.netns('switch');
  lab.bridge(sw, 'br0');
  const srv = lab.netns('server');
  lab.veth({ ns: sw, dev: 'ps' }, { ns: srv, dev: 'eth0' });
  lab.attach(sw, 'ps', 'br0');
  lab.ipIn(srv, 'addr', 'add', `${SERVER}/24`, 'dev', 'eth0');
  const rom = lab.netns('rom');
  lab.veth({ ns: sw, dev: 'pr' }, { ns: rom, dev: 'eth0', mac: MAC });
  lab.attach(sw, 'pr', 'br0');
  // The ROM broadcasts with no address (source 0.0.0.0) first: that needs a route.
  lab.ipIn(rom, 'route', 'add', 'default', 'dev', 'eth0');
  return { srv, rom };
}

t.test('proxy DHCP is silent for machines edgeboot will not boot', { skip }, async (t) => {
  requireTools(dhcpTools('curl'));
  const lab = createLab(t, 'ds');
  const { srv, rom } = buildLab(lab);

  await t.test('default policy: no answer until the machine is registered, then the boot file', async (t) => {
    const server = await startDhcpServer(t, srv, { mode: 'proxy', logLevel: 'debug', subnets: [{ cidr: '10.77.0.0/24' }] });
    const machines = await api(lab, server, 'GET', '/api/v1/machines');
    t.match(machines.body, { machines: [] }, 'a fresh server: no machines');
    const peer = await udpPeer(lab, rom, '0.0.0.0', 68);
    const reason = 'not booted by edgeboot: no profile assigned (boot.unknownMachines: exit)';

    // A ROM's first attempts, as firmware retries them.
    const xids = [0x51e70001, 0x51e70002, 0x51e70003];
    for (const xid of xids) await discover(peer, xid);
    const heard = await peer.collect(SILENCE_MS);
    t.same(
      heard.filter((d) => d.from === SERVER),
      [],
      `no answer to ${xids.length} PXE DISCOVERs within ${SILENCE_MS} ms`,
    );
    const notAnswered = () => server.logLines.filter((l) => l.msg === 'dhcp request not answered' && l.mac === MAC && l.listener === 'dhcp');
    await logged(server, () => notAnswered().length >= xids.length);
    t.equal(notAnswered().length, xids.length, 'the server saw each DISCOVER and chose silence');
    t.same([...new Set(notAnswered().map((l) => l.reason))], [reason], "with the planner's reason");
    const events = await machineEvents(lab, server, MAC);
    t.equal(
      events.filter((e) => e.type === 'dhcp-ignored' && e.message === reason).length,
      xids.length,
      'each silence is on the timeline as dhcp-ignored with the reason',
    );
    t.match(events[0], { type: 'discovered' }, 'the ROM is recorded as a discovered machine, for an admin to register');

    // The boot-server exchange on port 4011 is silent too.
    lab.ipIn(rom, 'addr', 'add', `${ROM_ADDRESS}/24`, 'dev', 'eth0');
    const rom4011 = await udpPeer(lab, rom, '0.0.0.0', 4011);
    await bootServerRequest(rom4011, 0x51e74011);
    t.same(
      (await rom4011.collect(SILENCE_MS)).filter((d) => d.from === SERVER),
      [],
      'no answer on port 4011',
    );
    t.ok(
      await logged(server, (l) => l.msg === 'dhcp request not answered' && l.mac === MAC && l.listener === 'proxy' && l.reason === reason),
      'seen on 4011 and not answered',
    );

    // Registered through the API: the same probe is answered.
    const put = await api(lab, server, 'PUT', `/api/v1/machines/${MAC}`, { profile: 'local-disk' });
    t.equal(put.status, 200, 'registered (200: it replaces the discovered record)');
    const before = peer.received.length;
    await discover(peer, 0x51e70010);
    const offerD = await peer.next(fromServer(0x51e70010, DHCP_TYPE.offer), 5_000, before);
    const offer = parseDhcp(offerD.data);
    t.equal(offer.yiaddr, '0.0.0.0', 'a proxy OFFER: no address');
    t.equal(offer.file, 'undionly.kpxe', 'with the boot file');
    t.equal(offer.siaddr, SERVER, 'and next-server');
    t.equal(offer.opt(60)?.toString(), 'PXEClient', 'option 60 PXEClient');
    t.equal(ipText(offer.opt(54)), SERVER, 'server identifier');
    const before4011 = rom4011.received.length;
    await bootServerRequest(rom4011, 0x51e74012);
    const ack = parseDhcp((await rom4011.next(fromServer(0x51e74012, DHCP_TYPE.ack), 5_000, before4011)).data);
    t.equal(ack.file, 'ipxe.efi', "the boot server's ACK carries ipxe.efi");
    const after = await machineEvents(lab, server, MAC);
    t.ok(after.some((e) => e.type === 'dhcp-offer') && after.some((e) => e.type === 'dhcp-ack'), 'the answers are on the timeline');
    await rom4011.close();
    await peer.close();
    await server.stop();
  });

  await t.test('boot.unknownMachines: wait answers an unregistered ROM', async (t) => {
    // A fresh data dir: the ROM is unknown to this server.
    const server = await startDhcpServer(t, srv, {
      mode: 'proxy',
      logLevel: 'debug',
      subnets: [{ cidr: '10.77.0.0/24' }],
      config: { boot: { unknownMachines: 'wait' } },
    });
    t.equal((await api(lab, server, 'GET', `/api/v1/machines/${MAC}`)).status, 404, 'the ROM is not registered');
    const peer = await udpPeer(lab, rom, '0.0.0.0', 68);
    await discover(peer, 0x51e70020);
    const offer = parseDhcp((await peer.next(fromServer(0x51e70020, DHCP_TYPE.offer), 5_000)).data);
    t.equal(offer.file, 'undionly.kpxe', 'a proxy OFFER with the boot file');
    await peer.close();
    await server.stop();
  });
});

t.test('no namespace of this test is left', { skip }, async (t) => {
  const left = netnsList().filter((name) => name.startsWith(`eb-ds-${process.pid}-`));
  t.same(left, [], '`ip netns list` shows none of ours');
});
