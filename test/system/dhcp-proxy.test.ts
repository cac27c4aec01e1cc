/**
 * edgeboot as proxyDHCP beside a real DHCP server (Debian's dnsmasq), inside network namespaces.
 *
 *   switch namespace: br0 ─┬─ server   eth0 10.77.0.1/24   edgeboot, dhcp.mode proxy
 *                          ├─ dnsmasq  eth0 10.77.0.2/24   the site's DHCP server (10.77.0.100-150)
 *                          ├─ bios     eth0 (no address)   a BIOS PXE ROM (hand-made packets)
 *                          ├─ uefi     eth0 (no address)   a UEFI PXE ROM (hand-made packets)
 *                          └─ plain    eth0 (no address)   busybox udhcpc, not a PXE client
 *
 * The PXE ROMs are raw UDP peers driven by the test, not udhcpc: udhcpc takes the first OFFER
 * it sees, and a proxyDHCP OFFER carries yiaddr 0.0.0.0 (PXE spec §2.2.4), so udhcpc would
 * select "0.0.0.0" from edgeboot and never get a lease. A PXE ROM instead collects the offers,
 * takes its address from the DHCP server's and its boot file from the proxy's, and (UEFI)
 * asks the boot server on port 4011. That is what the peers here do.
 *
 * Proves: the BIOS ROM gets its address from dnsmasq (offer, request, ack) while edgeboot's
 * proxy OFFER (yiaddr 0.0.0.0, option 60 PXEClient, next-server, undionly.kpxe, 43.6 = 8, no
 * lease time) arrives beside dnsmasq's; edgeboot stays silent on the REQUEST meant for dnsmasq;
 * the machine is recorded with a dhcp-offer event of yiaddr 0.0.0.0. The UEFI ROM gets a proxy
 * OFFER without a boot file, then edgeboot's port-4011 ACK carries ipxe.efi (from source port
 * 4011 as OVMF sends, and from 68). A client that is not PXE gets dnsmasq's lease and edgeboot
 * answers nothing, logs nothing at info and makes no machine for it.
 *
 * The ROMs are unregistered machines: the server runs with `boot.unknownMachines: wait`, under
 * which proxy DHCP answers every PXE client (with the default `exit` it answers only registered
 * machines: dhcp-proxy-silence.test.ts).
 *
 * Needs root, iproute2, dnsmasq-base, udhcpc and curl, and a built dist/. Namespaces are
 * eb-dp-<pid>-<n>; they and every process in them are removed at teardown, even on failure.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { DHCP_TYPE, encodeRequest, opt } from '../helpers/dhcp-packets.js';
import {
  api,
  dhcpTools,
  inRange,
  ipText,
  machineEvents,
  parseDhcp,
  scratchDir,
  sleep,
  startDhcpServer,
  udhcpc,
  udpPeer,
  type Datagram,
  type DhcpServer,
  type ParsedDhcp,
} from '../helpers/dhcp-system.js';
import { createLab, netnsList, netnsSkip, requireTools, type Lab } from '../helpers/netns.js';

const skip = netnsSkip();
const EDGEBOOT = '10.77.0.1';
const DNSMASQ = '10.77.0.2';
const RANGE: [string, string] = ['10.77.0.100', '10.77.0.150'];
const MAC = { bios: '02:eb:0e:00:00:01', uefi: '02:eb:0e:00:00:02', plain: '02:eb:0e:00:00:03' } as const;
const UUID = Buffer.from('00112233445566778899aabbccddeeff00', 'hex');
const PRL = opt.bytes(1, 3, 6, 12, 15, 43, 54, 60, 66, 67, 97, 128, 129, 130, 131, 132, 133, 134, 135);

/** The options a PXE ROM sends, after 53: max size, parameters, UUID, UNDI, arch, vendor class. */
function romOptions(arch: number, undi: [number, number], extra: [number, Buffer][] = []): [number, Buffer][] {
  const archName = String(arch).padStart(5, '0');
  return [
    [57, opt.u16(1464)],
    [55, PRL],
    [97, UUID],
    [94, opt.bytes(1, undi[0], undi[1])],
    [93, opt.u16(arch)],
    ...extra,
    [60, opt.text(`PXEClient:Arch:${archName}:UNDI:${String(undi[0]).padStart(3, '0')}${String(undi[1]).padStart(3, '0')}`)],
  ];
}

const isType = (from: string, type: number, xid: number) => (d: Datagram) => {
  if (d.from !== from) return false;
  try {
    const p = parseDhcp(d.data);
    return p.op === 2 && p.xid === xid && p.type === type;
  } catch {
    return false;
  }
};

interface Ctx {
  lab: Lab;
  dir: string;
  server: DhcpServer;
  ns: Record<keyof typeof MAC, string>;
  dnsmasqLeases: string;
}

/** Waits (bounded) until the server has logged a line that `match` accepts. */
async function logged(server: DhcpServer, match: (l: Record<string, unknown>) => boolean, timeoutMs = 3_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (server.logLines.some(match)) return true;
    await sleep(25);
  }
  return server.logLines.some(match);
}

/**
 * A PXE ROM's DHCP: broadcast DISCOVER (broadcast flag set: it has no address), collect the
 * offers of both servers, REQUEST the DHCP server's address, take the ACK.
 */
async function romDhcp(t: Test, ctx: Ctx, who: 'bios' | 'uefi', arch: number, xid: number) {
  const peer = await udpPeer(ctx.lab, ctx.ns[who], '0.0.0.0', 68);
  const options = romOptions(arch, arch === 0 ? [2, 1] : [3, 16]);
  await peer.send(encodeRequest({ type: DHCP_TYPE.discover, mac: MAC[who], xid, flags: 0x8000, options }), '255.255.255.255', 67);
  const [proxyOffer, dhcpOffer] = await Promise.all([
    peer.next(isType(EDGEBOOT, DHCP_TYPE.offer, xid), 5_000),
    peer.next(isType(DNSMASQ, DHCP_TYPE.offer, xid), 5_000),
  ]);
  const proxy = parseDhcp(proxyOffer.data);
  const offer = parseDhcp(dhcpOffer.data);
  t.equal(proxyOffer.port, 67, 'the proxy offer comes from port 67');
  t.ok(inRange(offer.yiaddr, ...RANGE), `dnsmasq offers ${offer.yiaddr} from its range`);
  t.equal(ipText(offer.opt(54)), DNSMASQ, "dnsmasq's offer names dnsmasq");

  const before = peer.received.length;
  const requestXid = xid + 1;
  await peer.send(
    encodeRequest({
      type: DHCP_TYPE.request,
      mac: MAC[who],
      xid: requestXid,
      flags: 0x8000,
      options: [[50, opt.ip(offer.yiaddr)], [54, opt.ip(DNSMASQ)], ...options],
    }),
    '255.255.255.255',
    67,
  );
  const ackD = await peer.next(isType(DNSMASQ, DHCP_TYPE.ack, requestXid), 5_000, before);
  const ack = parseDhcp(ackD.data);
  t.equal(ack.yiaddr, offer.yiaddr, `dnsmasq acks ${ack.yiaddr}: the address comes from the site's DHCP server`);
  // edgeboot sees the REQUEST too and must not answer it (never an ACK, never a NAK on 67).
  const silent = await logged(
    ctx.server,
    (l) => l.msg === 'dhcp request not answered' && l.mac === MAC[who] && l.listener === 'dhcp' && String(l.reason).includes('only DISCOVER'),
  );
  t.ok(silent, 'edgeboot saw the REQUEST for dnsmasq and chose not to answer it');
  await sleep(200);
  t.same(
    peer.received.slice(before).filter((d) => d.from === EDGEBOOT),
    [],
    'nothing from edgeboot after the REQUEST',
  );
  return { peer, proxy, address: ack.yiaddr };
}

t.test('proxy mode beside dnsmasq', { skip }, async (t) => {
  const started = Date.now();
  requireTools(dhcpTools('udhcpc', 'dnsmasq', 'curl'));
  const lab = createLab(t, 'dp');
  const dir = scratchDir(t);
  const sw = lab.netns('switch');
  lab.bridge(sw, 'br0');
  const attach = (ns: string, port: string, mac?: string) => {
    lab.veth({ ns: sw, dev: port }, { ns, dev: 'eth0', ...(mac && { mac }) });
    lab.attach(sw, port, 'br0');
  };
  const srv = lab.netns('server');
  attach(srv, 'ps');
  lab.ipIn(srv, 'addr', 'add', `${EDGEBOOT}/24`, 'dev', 'eth0');
  const dns = lab.netns('dnsmasq');
  attach(dns, 'pd');
  lab.ipIn(dns, 'addr', 'add', `${DNSMASQ}/24`, 'dev', 'eth0');
  const ns = { bios: lab.netns('bios'), uefi: lab.netns('uefi'), plain: lab.netns('plain') };
  attach(ns.bios, 'p1', MAC.bios);
  attach(ns.uefi, 'p2', MAC.uefi);
  attach(ns.plain, 'p3', MAC.plain);
  // The raw peers broadcast with no address yet (source 0.0.0.0): that needs a route.
  for (const c of [ns.bios, ns.uefi]) lab.ipIn(c, 'route', 'add', 'default', 'dev', 'eth0');

  const dnsmasqLeases = join(dir, 'dnsmasq.leases');
  const dnsmasq = lab.start(dns, [
    'dnsmasq',
    '--no-daemon',
    '--conf-file=/dev/null',
    '--port=0',
    '--no-resolv',
    '--no-hosts',
    '--no-ping',
    `--dhcp-range=${RANGE[0]},${RANGE[1]},1h`,
    '--interface=eth0',
    '--bind-interfaces',
    `--dhcp-leasefile=${dnsmasqLeases}`,
    `--pid-file=${join(dir, 'dnsmasq.pid')}`,
    '--user=root',
    '--log-facility=-',
    '--log-dhcp',
  ]);
  await dnsmasq.waitFor(/DHCP, IP range 10\.77\.0\.100 -- 10\.77\.0\.150/, 5_000);
  const server = await startDhcpServer(t, srv, {
    mode: 'proxy',
    logLevel: 'debug',
    subnets: [{ cidr: '10.77.0.0/24' }],
    config: { boot: { unknownMachines: 'wait' } },
  });
  t.same(server.logLines.find((l) => l.msg === 'DHCP serving')?.ports, [67, 4011], 'edgeboot serves ports 67 and 4011');
  const ctx: Ctx = { lab, dir, server, ns, dnsmasqLeases };
  t.comment(`dnsmasq and edgeboot up in ${Date.now() - started} ms`);

  await t.test('a BIOS PXE ROM: address from dnsmasq, boot file from the proxy offer', async (t) => {
    const { peer, proxy, address } = await romDhcp(t, ctx, 'bios', 0, 0x0b105001);
    t.equal(proxy.yiaddr, '0.0.0.0', 'proxy offer: yiaddr 0.0.0.0 (it offers no address)');
    t.equal(proxy.siaddr, EDGEBOOT, 'proxy offer: next-server is edgeboot');
    t.equal(proxy.file, 'undionly.kpxe', 'proxy offer: the BIOS iPXE binary in the file field');
    t.equal(proxy.opt(67)?.toString(), 'undionly.kpxe', 'and as option 67');
    t.equal(proxy.opt(66)?.toString(), EDGEBOOT, 'option 66: the TFTP server');
    t.equal(proxy.opt(60)?.toString(), 'PXEClient', 'option 60 PXEClient');
    t.equal(ipText(proxy.opt(54)), EDGEBOOT, 'server identifier');
    t.same([...(proxy.opt(43) ?? [])], [6, 1, 8], 'option 43: discovery control 8 (boot from this offer)');
    t.same(proxy.opt(97), UUID, 'the client UUID echoed');
    t.equal(proxy.opt(51), undefined, 'no lease time: a proxy offers no lease');
    t.equal(proxy.opt(1), undefined, 'no subnet mask');
    t.equal(proxy.mac, MAC.bios, 'chaddr');
    t.equal(proxy.flags & 0x8000, 0x8000, 'broadcast flag kept');
    await peer.close();

    const m = await api(lab, server, 'GET', `/api/v1/machines/${MAC.bios}`);
    t.match(m.body, { state: 'discovered', observed: { arch: 'x86-bios' } }, 'the PXE client is recorded');
    const events = await machineEvents(lab, server, MAC.bios);
    t.match(
      events.find((e) => e.type === 'dhcp-offer'),
      { source: 'dhcp', data: { listener: 'dhcp', interface: 'eth0', yiaddr: '0.0.0.0', bootFile: { kind: 'tftp', file: 'undionly.kpxe' } } },
      `a dhcp-offer event with yiaddr 0.0.0.0 (${events.map((e) => e.type).join(', ')})`,
    );
    t.match(
      events.find((e) => e.type === 'dhcp-ignored'),
      { message: /only DISCOVER/ },
      'the REQUEST for dnsmasq is recorded as ignored',
    );
    t.match(readFileSync(dnsmasqLeases, 'utf8'), new RegExp(`${MAC.bios} ${address.replace(/\./g, '\\.')} `), "dnsmasq's lease file holds the ROM's lease");
  });

  await t.test('a UEFI PXE ROM: proxy offer without a file, then ipxe.efi from port 4011', async (t) => {
    const { peer, proxy, address } = await romDhcp(t, ctx, 'uefi', 7, 0x0e7f1001);
    t.equal(proxy.yiaddr, '0.0.0.0', 'proxy offer: yiaddr 0.0.0.0');
    t.equal(proxy.opt(60)?.toString(), 'PXEClient', 'option 60 PXEClient');
    t.equal(proxy.file, '', 'no boot file on port 67: UEFI asks the boot server on 4011');
    t.equal(proxy.opt(67), undefined, 'no option 67');

    // The ROM configures its address and asks the boot server, unicast.
    lab.ipIn(ns.uefi, 'addr', 'add', `${address}/24`, 'dev', 'eth0');
    const rom4011 = await udpPeer(lab, ns.uefi, '0.0.0.0', 4011);
    const ask = async (p: typeof peer, xid: number, fromPort: number): Promise<ParsedDhcp> => {
      const before = p.received.length;
      await p.send(encodeRequest({ type: DHCP_TYPE.request, mac: MAC.uefi, xid, ciaddr: address, options: romOptions(7, [3, 16]) }), EDGEBOOT, 4011);
      const d = await p.next(isType(EDGEBOOT, DHCP_TYPE.ack, xid), 5_000, before);
      t.equal(d.port, 4011, `from source port ${fromPort}: the ACK comes from port 4011`);
      return parseDhcp(d.data);
    };
    for (const [p, xid, port] of [
      [rom4011, 0x4011a001, 4011],
      [peer, 0x4011a002, 68],
    ] as const) {
      const ack = await ask(p, xid, port);
      t.equal(ack.file, 'ipxe.efi', `port-4011 ACK (client port ${port}): ipxe.efi in the file field`);
      t.equal(ack.opt(67)?.toString(), 'ipxe.efi', 'and as option 67');
      t.equal(ack.siaddr, EDGEBOOT, 'next-server');
      t.equal(ack.yiaddr, '0.0.0.0', 'no address from the boot server');
      t.equal(ack.ciaddr, address, 'ciaddr echoed');
      t.equal(ipText(ack.opt(54)), EDGEBOOT, 'server identifier');
      t.equal(ack.opt(60)?.toString(), 'PXEClient', 'option 60 PXEClient');
      t.same(ack.opt(97), UUID, 'UUID echoed');
    }
    await rom4011.close();
    await peer.close();
    const events = await machineEvents(lab, server, MAC.uefi);
    t.match(
      events.find((e) => e.type === 'dhcp-ack'),
      { data: { listener: 'proxy', yiaddr: '0.0.0.0', bootFile: { kind: 'tftp', file: 'ipxe.efi' } } },
      `the boot-server ACK is recorded (${events.map((e) => e.type).join(', ')})`,
    );
  });

  await t.test('a client that does not PXE-boot gets dnsmasq’s lease and nothing from edgeboot', async (t) => {
    const c = await udhcpc(lab, dir, ns.plain, 'eth0');
    t.equal(c.run.code, 0, `udhcpc got a lease: ${c.run.stdout}${c.run.stderr}`);
    t.equal(c.lease?.serverid, DNSMASQ, 'from dnsmasq');
    t.ok(inRange(c.lease?.ip, ...RANGE), `address ${c.lease?.ip} from dnsmasq's range`);
    t.equal(c.lease?.boot_file, '', 'no boot file');
    const seen = await logged(
      server,
      (l) => l.msg === 'dhcp request not answered' && l.mac === MAC.plain && l.reason === 'proxy mode answers PXE clients only',
    );
    t.ok(seen, 'edgeboot saw the client and decided not to answer');
    const m = await api(lab, server, 'GET', `/api/v1/machines/${MAC.plain}`);
    t.equal(m.status, 404, 'no machine was made');
    t.same(
      server.logLines.filter((l) => l.level >= 30 && JSON.stringify(l).includes(MAC.plain)),
      [],
      'nothing about it at info level or above',
    );
  });

  await dnsmasq.stop();
  t.comment(`proxy tests done in ${Date.now() - started} ms`);
});

t.test('no namespace of this test is left', { skip }, async (t) => {
  const left = netnsList().filter((name) => name.startsWith(`eb-dp-${process.pid}-`));
  t.same(left, [], '`ip netns list` shows none of ours');
});
