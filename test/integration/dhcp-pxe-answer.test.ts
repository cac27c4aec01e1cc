/**
 * The DHCP shell over the real boot service and SQLite store: in proxy mode it answers a PXE
 * client only when the boot planner boots it (asked through BootService.pxeAnswer), on port 67
 * and on the port-4011 boot-server exchange; the silence is counted, logged at debug with the
 * planner's reason and put on the client's timeline as `dhcp-ignored`, under the bound of
 * boot.maxDiscovered. In full mode an unknown PXE client still gets its address and boot file,
 * and every NAK carries its reason in the log line and on a known machine's timeline.
 *
 * Datagrams go in and out through the server's `openSocket` seam (the system tests
 * dhcp-proxy-silence and dhcp-full drive the same paths over real sockets, with real clients).
 */
import { Writable } from 'node:stream';
import t, { type Test } from 'tap';
import { createDhcpServer, type DhcpServer } from '../../src/dhcp/server.js';
import type { PktinfoMessage, PktinfoSend } from '../../src/net/pktinfo-socket.js';

/** A reply as the fake socket keeps it: its bytes as a Buffer, for decodeDhcp. */
type Sent = PktinfoSend & { data: Buffer };
import { createLogger } from '../../src/log.js';
import type { Mac } from '../../src/machines/mac.js';
import type { MachineEvent } from '../../src/machines/model.js';
import { testApp, type TestApp } from '../helpers/app.js';
import { DHCP_TYPE, decodeOrThrow, encodeRequest, fixedField, opt, textOption, u8Option, type RequestSpec } from '../helpers/dhcp-packets.js';

const SERVER = '10.77.0.1';
const SUBNETS = [{ cidr: '10.77.0.0/24', pool: ['10.77.0.100', '10.77.0.199'], router: SERVER }];
const UUID = opt.bytes(0, ...Array.from({ length: 16 }, (_, i) => 0x20 + i));
const BIOS_PXE: [number, Buffer][] = [
  [60, opt.text('PXEClient:Arch:00000:UNDI:002001')],
  [93, opt.u16(0)],
  [97, UUID],
];
const UEFI_PXE: [number, Buffer][] = [
  [60, opt.text('PXEClient:Arch:00007:UNDI:003016')],
  [93, opt.u16(7)],
  [97, UUID],
];

interface Harness {
  ta: TestApp;
  dhcp: DhcpServer;
  logs: Record<string, unknown>[];
  /** Sends one request to `port` and waits (bounded) until the server has handled it; returns what it sent. */
  exchange(spec: RequestSpec, port?: number, from?: { address: string; port: number }): Promise<Sent[]>;
  /** The machine's events once one of `type` is there (observeDhcp runs after the reply); bounded. */
  eventsWith(mac: string, type: string): Promise<MachineEvent[]>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function harness(t: Test, mode: 'proxy' | 'full', config: Record<string, unknown> = {}): Promise<Harness> {
  const ta = await testApp(t, { config: { ...config, dhcp: { mode, subnets: SUBNETS } } });
  const logs: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line !== '') logs.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const listeners = new Map<number, (m: PktinfoMessage) => void>();
  const sent: Sent[] = [];
  const dhcp = createDhcpServer(ta.config.dhcp, {
    boot: ta.boot,
    store: ta.store,
    log: createLogger('debug', sink),
    openSocket: (address, port, onMessage) => {
      listeners.set(port, onMessage);
      return {
        send: (out) => void sent.push({ ...out, data: Buffer.from(out.data) }),
        close: () => listeners.delete(port),
        localPort: port,
        localAddress: address,
      };
    },
    interfaces: () => [{ ifindex: 2, name: 'eth0', address: SERVER }],
    httpPort: () => 8080,
    advertiseAddress: 'auto',
  });
  await dhcp.start();
  t.teardown(() => dhcp.stop());
  const handled = () => {
    const s = dhcp.stats();
    const sum = (r: Record<string, number | undefined>) => Object.values(r).reduce<number>((a, b) => a + (b ?? 0), 0);
    return sum(s.sent) + s.ignored + sum(s.dropped);
  };
  return {
    ta,
    dhcp,
    logs,
    async exchange(spec, port = ta.config.dhcp.listenPort, from = { address: '0.0.0.0', port: 68 }) {
      const onMessage = listeners.get(port);
      if (!onMessage) throw new Error(`nothing listens on port ${port} in ${mode} mode`);
      const before = handled();
      const sentBefore = sent.length;
      onMessage({ data: encodeRequest(spec), from, ifindex: 2, to: '255.255.255.255', local: SERVER, truncated: false });
      for (let i = 0; i < 300 && handled() === before; i++) await sleep(10);
      if (handled() === before) throw new Error('the server did not handle the request within 3 s');
      return sent.slice(sentBefore);
    },
    async eventsWith(mac, type) {
      let events: MachineEvent[] = [];
      for (let i = 0; i < 300; i++) {
        events = await ta.store.listEvents(mac as Mac);
        if (events.some((e) => e.type === type)) break;
        await sleep(10);
      }
      return events;
    },
  };
}

const put = (h: Harness, mac: string, body: Record<string, unknown>) =>
  h.ta.app.inject({
    method: 'PUT',
    url: `/api/v1/machines/${mac}`,
    headers: { ...h.ta.auth, 'content-type': 'application/json' },
    payload: JSON.stringify(body),
  });

t.test('proxy mode, boot.unknownMachines exit: silence for strangers, answers once registered', async (t) => {
  const h = await harness(t, 'proxy');
  const stranger = '02:eb:5a:00:00:01';
  t.same(await h.exchange({ type: DHCP_TYPE.discover, mac: stranger, options: BIOS_PXE }), [], 'an unregistered PXE DISCOVER gets nothing');
  t.equal(h.dhcp.stats().ignored, 1, 'counted as ignored');
  const reason = 'not booted by edgeboot: no profile assigned (boot.unknownMachines: exit)';
  t.match(
    h.logs.find((l) => l.msg === 'dhcp request not answered' && l.mac === stranger),
    { level: 20, reason, listener: 'dhcp' },
    "the debug line gives the planner's reason",
  );
  const events = await h.eventsWith(stranger, 'dhcp-ignored');
  t.match(
    events.map((e) => e.type),
    ['discovered', 'dhcp-ignored'],
    'the stranger is recorded, as discovered, with the silence',
  );
  t.match(
    events.find((e) => e.type === 'dhcp-ignored'),
    { source: 'dhcp', message: reason, data: { listener: 'dhcp', interface: 'eth0' } },
    'dhcp-ignored names the reason',
  );

  // Its port-4011 request is silent too.
  const from = { address: '10.77.0.130', port: 4011 };
  t.same(
    await h.exchange({ type: DHCP_TYPE.request, mac: stranger, ciaddr: from.address, options: UEFI_PXE }, h.ta.config.dhcp.proxyPort, from),
    [],
    'the boot server is silent for it too',
  );

  // Registered, even with a profile that boots the local disk, it is answered on both ports.
  t.equal((await put(h, stranger, { profile: 'local-disk' })).statusCode, 200, 'registered through the API (200: it replaces the discovered record)');
  const [offer] = await h.exchange({ type: DHCP_TYPE.discover, mac: stranger, options: BIOS_PXE });
  if (!offer) throw new Error('no OFFER after registration');
  const p = decodeOrThrow(offer.data);
  t.equal(u8Option(p, 53), DHCP_TYPE.offer, 'a proxy OFFER');
  t.equal(p.yiaddr, '0.0.0.0', 'with no address');
  t.equal(fixedField(p.file), 'undionly.kpxe', 'and the boot file');
  const [ack] = await h.exchange({ type: DHCP_TYPE.request, mac: stranger, ciaddr: from.address, options: UEFI_PXE }, h.ta.config.dhcp.proxyPort, from);
  t.equal(ack && textOption(decodeOrThrow(ack.data), 67), 'ipxe.efi', 'the boot server ACKs with ipxe.efi');
  t.equal(h.dhcp.stats().ignored, 2, 'nothing more ignored');
});

t.test('proxy mode: a registered machine is answered on any of its NICs, and by its UUID', async (t) => {
  const h = await harness(t, 'proxy');
  t.equal((await put(h, '02:eb:5a:00:01:01', { profile: 'local-disk', macs: ['02:eb:5a:00:01:02'] })).statusCode, 201);
  const [second] = await h.exchange({ type: DHCP_TYPE.discover, mac: '02:eb:5a:00:01:02', options: BIOS_PXE });
  t.ok(second, 'a DISCOVER from its second NIC is answered');
  const uuid = '23222120-2524-2726-2829-2a2b2c2d2e2f';
  t.equal((await put(h, '02:eb:5a:00:01:03', { profile: 'local-disk', uuid })).statusCode, 201);
  const [byUuid] = await h.exchange({ type: DHCP_TYPE.discover, mac: '02:eb:5a:00:01:04', options: BIOS_PXE });
  t.ok(byUuid, 'a DISCOVER from an unknown NIC with the UUID of a registered machine is answered (as /ipxe finds it)');
  const [none] = await h.exchange({
    type: DHCP_TYPE.discover,
    mac: '02:eb:5a:00:01:05',
    options: [
      [60, opt.text('PXEClient:Arch:00000:UNDI:002001')],
      [93, opt.u16(0)],
    ],
  });
  t.equal(none, undefined, 'another unknown NIC without that UUID is not');
});

t.test('proxy mode, boot.unknownMachines wait or a profile: every PXE client is answered', async (t) => {
  for (const unknownMachines of ['wait', 'rhcos-live'] as const) {
    const h = await harness(t, 'proxy', { boot: { unknownMachines } });
    const [offer] = await h.exchange({ type: DHCP_TYPE.discover, mac: '02:eb:5a:00:02:01', options: BIOS_PXE });
    t.equal(offer && fixedField(decodeOrThrow(offer.data).file), 'undionly.kpxe', `${unknownMachines}: an unregistered PXE client gets the boot file`);
    t.equal(h.dhcp.stats().ignored, 0, `${unknownMachines}: nothing ignored`);
  }
  const h = await harness(t, 'proxy', { boot: { unknownMachines: 'local-disk' } });
  t.same(await h.exchange({ type: DHCP_TYPE.discover, mac: '02:eb:5a:00:02:02', options: BIOS_PXE }), [], 'a profile that boots the local disk: silence');
  t.match(
    h.logs.find((l) => l.msg === 'dhcp request not answered'),
    { reason: /local-disk boots the local disk/ },
  );
});

t.test('proxy mode: the records silent strangers leave stay within boot.maxDiscovered', async (t) => {
  const h = await harness(t, 'proxy', { boot: { maxDiscovered: 16 } });
  for (let i = 0; i < 40; i++) {
    const mac = `02:eb:5a:00:03:${i.toString(16).padStart(2, '0')}`;
    t.same(await h.exchange({ type: DHCP_TYPE.discover, mac, options: BIOS_PXE }), [], `stranger ${i}: silence`);
    await h.eventsWith(mac, 'dhcp-ignored');
  }
  const discovered = await h.ta.store.listMachines({ state: 'discovered' });
  t.ok(discovered.length <= 16, `${discovered.length} discovered records, at most boot.maxDiscovered (16)`);
  t.ok(h.ta.boot.discovery.stats.pruned >= 24, `the least recently seen pruned (${h.ta.boot.discovery.stats.pruned})`);
});

t.test('full mode: an unknown PXE client still gets an address and its boot file; every NAK has its reason', async (t) => {
  const h = await harness(t, 'full');
  const [offer] = await h.exchange({ type: DHCP_TYPE.discover, mac: '02:eb:5a:00:04:01', options: BIOS_PXE });
  if (!offer) throw new Error('no OFFER in full mode');
  const p = decodeOrThrow(offer.data);
  t.equal(p.yiaddr, '10.77.0.100', 'an address from the pool (boot.unknownMachines: exit)');
  t.equal(fixedField(p.file), 'undionly.kpxe', 'and the boot file, as before');

  // A known machine that is no PXE client (its installed OS, say) asks for an address of another network.
  const known = '02:eb:5a:00:04:02';
  t.equal((await put(h, known, { profile: 'local-disk' })).statusCode, 201);
  const [nak] = await h.exchange({ type: DHCP_TYPE.request, mac: known, options: [[50, opt.ip('10.77.1.50')]] });
  t.equal(nak && u8Option(decodeOrThrow(nak.data), 53), DHCP_TYPE.nak, 'NAKed');
  const reason = '10.77.1.50 is not on 10.77.0.0/24';
  t.match(
    h.logs.find((l) => l.msg === 'dhcp reply' && l.mac === known),
    { level: 30, type: 'nak', reason },
    'the log line gives the reason',
  );
  const events = await h.eventsWith(known, 'dhcp-nak');
  t.match(
    events.find((e) => e.type === 'dhcp-nak'),
    { source: 'dhcp', message: reason },
    'and the timeline',
  );

  // An unknown plain client's NAK is logged with its reason; no machine is made for it.
  const plain = '02:eb:5a:00:04:03';
  const [plainNak] = await h.exchange({ type: DHCP_TYPE.request, mac: plain, options: [[50, opt.ip('192.168.9.9')]] });
  t.ok(plainNak, 'NAKed');
  t.match(
    h.logs.find((l) => l.msg === 'dhcp reply' && l.mac === plain),
    { type: 'nak', reason: '192.168.9.9 is not on 10.77.0.0/24' },
  );
  await sleep(50);
  t.equal(await h.ta.store.getMachine(plain as Mac), undefined, 'no machine for an unknown plain client');
});
