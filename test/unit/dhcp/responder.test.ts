import t from 'tap';
import { LAB_SUBNET } from '../../helpers/fixtures.js';
import type { DhcpPacket } from '../../../src/dhcp/codec.js';
import { LeasePool, parseSubnet, type Lease, type Subnet } from '../../../src/dhcp/leases.js';
import { DEFAULT_BINARIES } from '../../../src/dhcp/pxe.js';
import type { PxeAnswer } from '../../../src/boot/planner.js';
import { respond, type Arrival, type ClientReservation, type Outcome, type ResponderConfig } from '../../../src/dhcp/responder.js';
import {
  DHCP_TYPE,
  decodeOrThrow,
  fixedField,
  ipOption,
  ipsOption,
  mainOptionCodes,
  opt,
  request,
  subOptionsOf,
  textOption,
  u32Option,
  u8Option,
  type RequestSpec,
} from '../../helpers/dhcp-packets.js';

const SERVER = '10.77.0.1';
const OTHER_SERVER = '10.77.0.2';
const RELAY = '10.88.0.1';
const HTTP_BASE = 'http://10.77.0.1:8080';
const NOW = Date.UTC(2024, 0, 1, 12, 0, 0);
const SEC = 1000;
const BROADCAST = { address: '255.255.255.255', port: 68, broadcast: true };

const A = '52:54:00:00:00:0a';
const B = '52:54:00:00:00:0b';
const C = '52:54:00:00:00:0c';

const labSubnet = (): Subnet => parseSubnet(LAB_SUBNET);
const twoAddressLab = (): Subnet => parseSubnet({ ...LAB_SUBNET, pool: ['10.77.0.100', '10.77.0.101'] });
const relayed = (): Subnet =>
  parseSubnet({ cidr: '10.88.0.0/24', pool: ['10.88.0.50', '10.88.0.60'], router: '10.88.0.1', dns: ['10.77.0.1'], domain: 'far.example', leaseSeconds: 7200 });

/** The UEFI x86-64 binary is configurable (dhcp.efiBinary): use the non-default one to see it is read. */
const FULL: ResponderConfig = {
  mode: 'full',
  pxeLeaseSeconds: 600,
  declineSeconds: 900,
  boot: { binaries: { ...DEFAULT_BINARIES, 'efi-x86-64': 'snponly.efi' }, httpBinariesPath: '/ipxe-bin' },
};
const PROXY: ResponderConfig = { ...FULL, mode: 'proxy' };

function arrival(over: Partial<Arrival> = {}): Arrival {
  return { listener: 'dhcp', serverAddress: SERVER, subnet: labSubnet(), httpBase: HTTP_BASE, from: { address: '0.0.0.0', port: 68 }, ...over };
}

/** What the boot planner answers for a machine edgeboot boots, and for one it leaves to its disk. */
const BOOTED: PxeAnswer = { answer: true };
const NOT_BOOTED: PxeAnswer = { answer: false, reason: 'not booted by edgeboot: no profile assigned (boot.unknownMachines: exit)' };

type Reply = Extract<Outcome, { kind: 'reply' }>;
type Silent = Extract<Outcome, { kind: 'silent' }>;

function asReply(o: Outcome): { out: Reply; p: DhcpPacket } {
  if (o.kind !== 'reply') throw new Error(`expected a reply, got silence: ${o.reason}`);
  return { out: o, p: decodeOrThrow(o.packet) };
}

function asSilent(o: Outcome): Silent {
  if (o.kind !== 'silent') throw new Error(`expected silence, got a ${o.type}`);
  return o;
}

/** One client, one server: sends a request, applies the lease changes as the server shell does. */
class Lab {
  readonly pool: LeasePool;
  constructor(
    readonly subnet: Subnet = labSubnet(),
    leases: Lease[] = [],
    readonly cfg: ResponderConfig = FULL,
  ) {
    this.pool = new LeasePool(leases);
  }

  /** `pxe`: the planner's answer for the client; default BOOTED, a machine edgeboot boots. */
  send(spec: RequestSpec, o: { at?: Partial<Arrival>; reservation?: ClientReservation; pxe?: PxeAnswer | null; now?: number } = {}): Outcome {
    const pxe = o.pxe === null ? undefined : (o.pxe ?? BOOTED);
    const out = respond(request(spec), arrival({ subnet: this.subnet, ...o.at }), this.cfg, this.pool, { reservation: o.reservation, pxe }, o.now ?? NOW);
    for (const ip of out.remove) this.pool.remove(ip);
    for (const l of out.save) this.pool.put(l);
    return out;
  }

  /** DISCOVER, then REQUEST in SELECTING for what was offered: the bound address. */
  dora(mac: string, o: { reservation?: ClientReservation; now?: number; options?: [number, Buffer][] } = {}): string {
    const offer = asReply(this.send({ type: DHCP_TYPE.discover, mac, options: o.options ?? [] }, o));
    const ip = offer.p.yiaddr;
    const ack = asReply(this.send({ type: DHCP_TYPE.request, mac, options: [[50, opt.ip(ip)], [54, opt.ip(SERVER)], ...(o.options ?? [])] }, o));
    if (ack.out.type !== 'ack') throw new Error(`DORA for ${mac} ended in ${ack.out.type}`);
    return ip;
  }
}

const msgType = (p: DhcpPacket) => u8Option(p, 53);

// Client option sets.
const UUID = opt.bytes(0, ...Array.from({ length: 16 }, (_, i) => 0x10 + i));
const BIOS_PXE: [number, Buffer][] = [
  [60, opt.text('PXEClient:Arch:00000:UNDI:002001')],
  [93, opt.u16(0)],
  [94, opt.bytes(1, 2, 1)],
  [97, UUID],
  [55, opt.bytes(1, 3, 6, 15, 43, 60, 66, 67, 97)],
];
const UEFI_PXE: [number, Buffer][] = [
  [60, opt.text('PXEClient:Arch:00007:UNDI:003016')],
  [93, opt.u16(7)],
  [94, opt.bytes(1, 3, 16)],
  [97, UUID],
];
const IPXE: [number, Buffer][] = [
  [60, opt.text('PXEClient:Arch:00000:UNDI:002001')],
  [77, opt.text('iPXE')],
  [93, opt.u16(0)],
  [175, opt.subs([19, opt.u8(1)], [17, opt.u8(1)])],
];
const UEFI_HTTP: [number, Buffer][] = [
  [60, opt.text('HTTPClient:Arch:00016:UNDI:003016')],
  [93, opt.u16(16)],
];

// ---------------------------------------------------------------------------------------------
// Full mode, a plain client

t.test('DISCOVER without option 55: OFFER from the pool with every configured option, broadcast', async (t) => {
  const lab = new Lab();
  const { out, p } = asReply(lab.send({ type: DHCP_TYPE.discover, mac: A, xid: 0xcafe0001, flags: 0x8000 }));
  t.equal(out.type, 'offer');
  t.equal(msgType(p), DHCP_TYPE.offer);
  t.equal(p.op, 2);
  t.equal(p.xid, 0xcafe0001);
  t.equal(p.flags, 0x8000, 'flags copied');
  t.same([...p.chaddr.subarray(0, 6)], [0x52, 0x54, 0, 0, 0, 0x0a]);
  t.equal(p.yiaddr, '10.77.0.100');
  t.equal(out.yiaddr, '10.77.0.100');
  t.equal(p.ciaddr, '0.0.0.0');
  t.equal(p.siaddr, '0.0.0.0', 'no boot file, no next server');
  t.equal(p.giaddr, '0.0.0.0');
  t.equal(ipOption(p, 54), SERVER);
  t.equal(u32Option(p, 51), 3600);
  t.equal(u32Option(p, 58), 1800);
  t.equal(u32Option(p, 59), 3150);
  t.equal(ipOption(p, 1), '255.255.255.0');
  t.same(ipsOption(p, 3), ['10.77.0.1']);
  t.same(ipsOption(p, 6), ['10.77.0.1']);
  t.equal(textOption(p, 15), 'lab.example');
  for (const code of [12, 43, 50, 56, 60, 61, 66, 67, 82, 97, 175]) t.notOk(p.options.has(code), `no option ${code}`);
  t.equal(mainOptionCodes(p)[0], 53, 'message type first');
  t.same(out.to, BROADCAST);
  t.same(out.save, [{ ip: '10.77.0.100', mac: A, state: 'offered', expiresAt: NOW + 60 * SEC }]);
  t.same(out.remove, []);
  t.equal(lab.pool.get('10.77.0.100')?.state, 'offered');
});

t.test('DISCOVER with option 55: only the requested configuration options', async (t) => {
  const { p } = asReply(new Lab().send({ type: DHCP_TYPE.discover, mac: A, options: [[55, opt.bytes(1, 3)]] }));
  t.equal(ipOption(p, 1), '255.255.255.0');
  t.same(ipsOption(p, 3), ['10.77.0.1']);
  t.notOk(p.options.has(6), 'DNS not requested');
  t.notOk(p.options.has(15), 'domain not requested');
  t.equal(ipOption(p, 54), SERVER, 'server identifier regardless');
  t.equal(u32Option(p, 51), 3600, 'lease time regardless');
  t.ok(p.options.has(58) && p.options.has(59));

  const dnsOnly = asReply(new Lab().send({ type: DHCP_TYPE.discover, mac: A, options: [[55, opt.bytes(6, 15)]] })).p;
  t.notOk(dnsOnly.options.has(1));
  t.notOk(dnsOnly.options.has(3));
  t.same(ipsOption(dnsOnly, 6), ['10.77.0.1']);
  t.equal(textOption(dnsOnly, 15), 'lab.example');
});

t.test('DORA: REQUEST in SELECTING with our server id is ACKed and the lease saved bound', async (t) => {
  const lab = new Lab();
  const offer = asReply(lab.send({ type: DHCP_TYPE.discover, mac: A, xid: 7 })).p;
  const { out, p } = asReply(
    lab.send(
      {
        type: DHCP_TYPE.request,
        mac: A,
        xid: 7,
        options: [
          [50, opt.ip(offer.yiaddr)],
          [54, opt.ip(SERVER)],
        ],
      },
      { now: NOW + 2 * SEC },
    ),
  );
  t.equal(out.type, 'ack');
  t.equal(msgType(p), DHCP_TYPE.ack);
  t.equal(p.xid, 7);
  t.equal(p.yiaddr, offer.yiaddr);
  t.equal(ipOption(p, 54), SERVER);
  t.equal(u32Option(p, 51), 3600);
  t.equal(u32Option(p, 58), 1800);
  t.equal(u32Option(p, 59), 3150);
  t.equal(ipOption(p, 1), '255.255.255.0');
  t.same(out.to, BROADCAST);
  t.same(out.save, [{ ip: offer.yiaddr, mac: A, state: 'bound', expiresAt: NOW + 2 * SEC + 3600 * SEC }]);
  t.same(out.remove, []);
  t.same(lab.pool.get(offer.yiaddr), { ip: offer.yiaddr, mac: A, state: 'bound', expiresAt: NOW + 2 * SEC + 3600 * SEC });
});

t.test('SELECTING another server: silent, and our offer is withdrawn', async (t) => {
  const lab = new Lab();
  const offered = asReply(lab.send({ type: DHCP_TYPE.discover, mac: A })).p.yiaddr;
  const out = asSilent(
    lab.send({
      type: DHCP_TYPE.request,
      mac: A,
      options: [
        [50, opt.ip('10.77.0.42')],
        [54, opt.ip(OTHER_SERVER)],
      ],
    }),
  );
  t.match(out.reason, OTHER_SERVER);
  t.same(out.remove, [offered]);
  t.same(out.save, []);
  t.equal(lab.pool.get(offered), undefined);
  t.equal(
    asReply(lab.send({ type: DHCP_TYPE.discover, mac: B })).p.yiaddr,
    offered === '10.77.0.100' ? '10.77.0.101' : '10.77.0.100',
    'scan has moved on; the address is free again',
  );
  t.ok(lab.pool.isFreeFor(offered, C, NOW), 'free for anyone');

  const boundLab = new Lab();
  const ip = boundLab.dora(A);
  const again = asSilent(
    boundLab.send({
      type: DHCP_TYPE.request,
      mac: A,
      options: [
        [50, opt.ip('10.77.0.42')],
        [54, opt.ip(OTHER_SERVER)],
      ],
    }),
  );
  t.same(again.remove, [], 'a bound lease is not withdrawn by a choice of another server');
  t.equal(boundLab.pool.get(ip)?.state, 'bound');
});

t.test('REQUEST for an address another client holds: NAK, broadcast, with a message', async (t) => {
  const lab = new Lab();
  const held = lab.dora(B);
  const before = lab.pool.all();
  for (const [name, spec] of [
    [
      'SELECTING',
      {
        type: DHCP_TYPE.request,
        mac: A,
        options: [
          [50, opt.ip(held)],
          [54, opt.ip(SERVER)],
        ],
      },
    ],
    ['INIT-REBOOT', { type: DHCP_TYPE.request, mac: A, options: [[50, opt.ip(held)]] }],
    ['RENEWING', { type: DHCP_TYPE.request, mac: A, ciaddr: held }],
  ] as const) {
    const { out, p } = asReply(lab.send(spec));
    t.equal(out.type, 'nak', name);
    t.equal(msgType(p), DHCP_TYPE.nak, name);
    t.equal(ipOption(p, 54), SERVER, name);
    t.ok((textOption(p, 56) ?? '').length > 0, `${name}: option 56 explains`);
    t.equal(out.reason, `${held} is not available to this client`, `${name}: the outcome carries the reason`);
    t.equal(textOption(p, 56), out.reason, `${name}: the same reason as option 56`);
    t.equal(p.yiaddr, '0.0.0.0', name);
    t.equal(p.ciaddr, '0.0.0.0', name);
    t.equal(p.siaddr, '0.0.0.0', name);
    for (const code of [1, 3, 6, 15, 51, 58, 59, 67]) t.notOk(p.options.has(code), `${name}: no option ${code}`);
    t.same(out.to, BROADCAST, `${name}: broadcast even with ciaddr set`);
    t.same(out.save, [], name);
    t.same(out.remove, [], name);
  }
  t.same(lab.pool.all(), before, 'the holder keeps its lease');
});

t.test('INIT-REBOOT for an address on another network: NAK', async (t) => {
  const { out, p } = asReply(new Lab().send({ type: DHCP_TYPE.request, mac: A, options: [[50, opt.ip('192.168.1.50')]] }));
  t.equal(out.type, 'nak');
  t.equal(msgType(p), DHCP_TYPE.nak);
  t.match(textOption(p, 56) ?? '', '192.168.1.50');
  t.equal(out.reason, '192.168.1.50 is not on 10.77.0.0/24', 'the outcome carries the reason');
  t.same(out.to, BROADCAST);
});

t.test('every NAK carries its reason out of the responder; other replies carry none', async (t) => {
  const lab = new Lab();
  const held = lab.dora(B);
  const reserved = { ip: '10.77.0.20' };
  const cases: [string, RequestSpec, ClientReservation | undefined, string][] = [
    ['no requested address', { type: DHCP_TYPE.request, mac: A, options: [[54, opt.ip(SERVER)]] }, undefined, 'no requested address'],
    ['another network', { type: DHCP_TYPE.request, mac: A, options: [[50, opt.ip('10.1.2.3')]] }, undefined, '10.1.2.3 is not on 10.77.0.0/24'],
    [
      'a reserved client asking for another address',
      { type: DHCP_TYPE.request, mac: C, options: [[50, opt.ip('10.77.0.150')]] },
      reserved,
      "this client's address is 10.77.0.20",
    ],
    [
      'an address another client holds',
      {
        type: DHCP_TYPE.request,
        mac: A,
        options: [
          [50, opt.ip(held)],
          [54, opt.ip(SERVER)],
        ],
      },
      undefined,
      `${held} is not available to this client`,
    ],
  ];
  for (const [name, spec, reservation, reason] of cases) {
    const { out, p } = asReply(lab.send(spec, { reservation }));
    t.equal(out.type, 'nak', name);
    t.equal(out.reason, reason, `${name}: the reason`);
    t.equal(textOption(p, 56), reason, `${name}: and option 56`);
  }
  const offer = asReply(lab.send({ type: DHCP_TYPE.discover, mac: C }));
  t.equal(offer.out.reason, undefined, 'an OFFER has no NAK reason');
});

t.test('INIT-REBOOT with no record of an address outside the pool: silent', async (t) => {
  const lab = new Lab();
  const out = asSilent(lab.send({ type: DHCP_TYPE.request, mac: A, options: [[50, opt.ip('10.77.0.20')]] }));
  t.match(out.reason, /no record/);
  t.same(out.save, []);
  t.same(out.remove, []);
  const renew = asSilent(lab.send({ type: DHCP_TYPE.request, mac: A, ciaddr: '10.77.0.20' }));
  t.match(renew.reason, /no record/, 'RENEWING likewise');
  t.same(lab.pool.all(), []);
});

t.test('RENEWING with ciaddr: ACK unicast to ciaddr:68 and the lease extended', async (t) => {
  const lab = new Lab();
  const ip = lab.dora(A);
  const later = NOW + 1800 * SEC;
  const { out, p } = asReply(lab.send({ type: DHCP_TYPE.request, mac: A, ciaddr: ip }, { now: later }));
  t.equal(out.type, 'ack');
  t.equal(p.yiaddr, ip);
  t.equal(u32Option(p, 51), 3600);
  t.same(out.to, { address: ip, port: 68, broadcast: false });
  t.same(out.save, [{ ip, mac: A, state: 'bound', expiresAt: later + 3600 * SEC }]);
  t.equal(lab.pool.get(ip)?.expiresAt, later + 3600 * SEC);
});

t.test('the same client gets the same address again', async (t) => {
  const lab = new Lab();
  const ip = lab.dora(A);
  const other = lab.dora(B);
  t.not(other, ip);
  const again = asReply(lab.send({ type: DHCP_TYPE.discover, mac: A }, { now: NOW + 10 * SEC }));
  t.equal(again.p.yiaddr, ip);
  t.same(again.out.save, [], 'a bound lease stays bound while offered again');
  t.equal(lab.pool.get(ip)?.state, 'bound');
  const afterExpiry = asReply(lab.send({ type: DHCP_TYPE.discover, mac: A }, { now: NOW + 5 * 3600 * SEC }));
  t.equal(afterExpiry.p.yiaddr, ip, 'after the lease expired, nobody having taken it');
  t.same(afterExpiry.out.save, [{ ip, mac: A, state: 'offered', expiresAt: NOW + 5 * 3600 * SEC + 60 * SEC }]);
  t.equal(
    asReply(lab.send({ type: DHCP_TYPE.discover, mac: A, options: [[50, opt.ip('10.77.0.150')]] }, { now: NOW + 10 * SEC })).p.yiaddr,
    ip,
    'its own address beats one it asks for',
  );
});

t.test('requested address (50) honoured when free, not when another client holds it', async (t) => {
  const lab = new Lab();
  const { out, p } = asReply(lab.send({ type: DHCP_TYPE.discover, mac: A, options: [[50, opt.ip('10.77.0.150')]] }));
  t.equal(p.yiaddr, '10.77.0.150');
  t.equal(out.save[0]?.ip, '10.77.0.150');
  const ack = asReply(
    lab.send({
      type: DHCP_TYPE.request,
      mac: A,
      options: [
        [50, opt.ip('10.77.0.150')],
        [54, opt.ip(SERVER)],
      ],
    }),
  );
  t.equal(ack.out.type, 'ack');
  const b = asReply(lab.send({ type: DHCP_TYPE.discover, mac: B, options: [[50, opt.ip('10.77.0.150')]] }));
  t.not(b.p.yiaddr, '10.77.0.150');
  t.equal(b.p.yiaddr, '10.77.0.100');
  const outside = asReply(lab.send({ type: DHCP_TYPE.discover, mac: C, options: [[50, opt.ip('10.77.0.20')]] }));
  t.equal(outside.p.yiaddr, '10.77.0.101', 'outside the pool: a pool address');
});

t.test('a reservation’s fixed address (outside the pool) is offered and ACKed, with its host name', async (t) => {
  const lab = new Lab();
  const reservation = { ip: '10.77.0.20', hostname: 'node-a' };
  const offer = asReply(lab.send({ type: DHCP_TYPE.discover, mac: A }, { reservation }));
  t.equal(offer.p.yiaddr, '10.77.0.20');
  t.equal(textOption(offer.p, 12), 'node-a', 'no 55: host name sent');
  t.same(offer.out.save, [{ ip: '10.77.0.20', mac: A, state: 'offered', expiresAt: NOW + 60 * SEC, hostname: 'node-a' }]);
  const ack = asReply(
    lab.send(
      {
        type: DHCP_TYPE.request,
        mac: A,
        options: [
          [50, opt.ip('10.77.0.20')],
          [54, opt.ip(SERVER)],
        ],
      },
      { reservation },
    ),
  );
  t.equal(ack.out.type, 'ack');
  t.equal(ack.p.yiaddr, '10.77.0.20');
  t.equal(textOption(ack.p, 12), 'node-a');
  t.same(lab.pool.get('10.77.0.20'), { ip: '10.77.0.20', mac: A, state: 'bound', expiresAt: NOW + 3600 * SEC, hostname: 'node-a' });

  const reboot = asReply(lab.send({ type: DHCP_TYPE.request, mac: A, options: [[50, opt.ip('10.77.0.20')]] }, { reservation: { ip: '10.77.0.21' } }));
  t.equal(reboot.out.type, 'nak', 'reservation moved: the old address is NAKed');

  const fresh = new Lab();
  const direct = asReply(fresh.send({ type: DHCP_TYPE.request, mac: A, options: [[50, opt.ip('10.77.0.20')]] }, { reservation }));
  t.equal(direct.out.type, 'ack', 'INIT-REBOOT for the fixed address with no record: ACK (it is this client’s)');
});

t.test('host name (12) only when requested in 55 or 55 is absent', async (t) => {
  const reservation = { hostname: 'node-a' };
  const asked = asReply(new Lab().send({ type: DHCP_TYPE.discover, mac: A, options: [[55, opt.bytes(1, 12)]] }, { reservation })).p;
  t.equal(textOption(asked, 12), 'node-a');
  const notAsked = asReply(new Lab().send({ type: DHCP_TYPE.discover, mac: A, options: [[55, opt.bytes(1, 3)]] }, { reservation })).p;
  t.notOk(notAsked.options.has(12));
  const noIp = asReply(new Lab().send({ type: DHCP_TYPE.discover, mac: A }, { reservation })).p;
  t.equal(noIp.yiaddr, '10.77.0.100', 'a reservation without an address: a pool address');
});

t.test('a reserved client asking for another address is NAKed', async (t) => {
  const lab = new Lab();
  const reservation = { ip: '10.77.0.20' };
  for (const spec of [
    {
      type: DHCP_TYPE.request,
      mac: A,
      options: [
        [50, opt.ip('10.77.0.150')],
        [54, opt.ip(SERVER)],
      ],
    },
    { type: DHCP_TYPE.request, mac: A, options: [[50, opt.ip('10.77.0.150')]] },
    { type: DHCP_TYPE.request, mac: A, ciaddr: '10.77.0.150' },
  ] satisfies RequestSpec[]) {
    const { out, p } = asReply(lab.send(spec, { reservation }));
    t.equal(out.type, 'nak');
    t.match(textOption(p, 56) ?? '', '10.77.0.20');
  }
  t.same(lab.pool.all(), []);
});

t.test('a fixed address held by another client is not offered, nor is a pool address', async (t) => {
  const lab = new Lab(labSubnet(), [{ ip: '10.77.0.20', mac: B, state: 'bound', expiresAt: NOW + 3600 * SEC }]);
  const out = asSilent(lab.send({ type: DHCP_TYPE.discover, mac: A }, { reservation: { ip: '10.77.0.20' } }));
  t.match(out.reason, '10.77.0.20');
  t.same(out.save, []);
});

t.test('a reservation on another subnet does not stop a client from getting an address here', async (t) => {
  const lab = new Lab();
  const reservation = { ip: '10.88.0.20', hostname: 'node-a' };
  const offer = asReply(lab.send({ type: DHCP_TYPE.discover, mac: A }, { reservation }));
  t.equal(offer.p.yiaddr, '10.77.0.100');
  const ack = asReply(
    lab.send(
      {
        type: DHCP_TYPE.request,
        mac: A,
        options: [
          [50, opt.ip('10.77.0.100')],
          [54, opt.ip(SERVER)],
        ],
      },
      { reservation },
    ),
  );
  t.equal(ack.out.type, 'ack', 'consistent with REQUEST, which ignores a reservation on another subnet');
});

t.test('pool exhaustion: silent with a reason, and it terminates', async (t) => {
  const lab = new Lab(twoAddressLab());
  t.equal(lab.dora(A), '10.77.0.100');
  t.equal(lab.dora(B), '10.77.0.101');
  const out = asSilent(lab.send({ type: DHCP_TYPE.discover, mac: C }));
  t.match(out.reason, /exhausted/);
  t.match(out.reason, '10.77.0.0/24');
  t.same(out.save, []);
  t.same(out.remove, []);
  t.match(
    asSilent(lab.send({ type: DHCP_TYPE.discover, mac: C, options: [[50, opt.ip('10.77.0.100')]] })).reason,
    /exhausted/,
    'asking for a held address changes nothing',
  );
  const nak = asReply(
    lab.send({
      type: DHCP_TYPE.request,
      mac: C,
      options: [
        [50, opt.ip('10.77.0.100')],
        [54, opt.ip(SERVER)],
      ],
    }),
  );
  t.equal(nak.out.type, 'nak', 'and a REQUEST for a held address is NAKed');
  t.equal(asReply(lab.send({ type: DHCP_TYPE.discover, mac: C }, { now: NOW + 3601 * SEC })).p.yiaddr, '10.77.0.100', 'allocates again once leases expire');
});

t.test('DECLINE quarantines the address until declineSeconds pass', async (t) => {
  const lab = new Lab(twoAddressLab());
  const ip = lab.dora(A);
  t.equal(ip, '10.77.0.100');
  const out = asSilent(
    lab.send({
      type: DHCP_TYPE.decline,
      mac: A,
      options: [
        [50, opt.ip(ip)],
        [54, opt.ip(SERVER)],
      ],
    }),
  );
  t.match(out.reason, /quarantined/);
  t.same(out.save, [{ ip, mac: '', state: 'declined', expiresAt: NOW + 900 * SEC }]);
  t.same(lab.pool.get(ip), { ip, mac: '', state: 'declined', expiresAt: NOW + 900 * SEC });
  t.equal(lab.pool.ofMac(A), undefined, 'the decliner no longer holds it');

  t.equal(asReply(lab.send({ type: DHCP_TYPE.discover, mac: A })).p.yiaddr, '10.77.0.101', 'the decliner gets another address');
  t.equal(
    asReply(
      lab.send({
        type: DHCP_TYPE.request,
        mac: A,
        options: [
          [50, opt.ip('10.77.0.101')],
          [54, opt.ip(SERVER)],
        ],
      }),
    ).out.type,
    'ack',
  );
  t.match(asSilent(lab.send({ type: DHCP_TYPE.discover, mac: B }, { now: NOW + 899 * SEC })).reason, /exhausted/, 'not offered to others while quarantined');
  t.match(
    asSilent(lab.send({ type: DHCP_TYPE.discover, mac: B, options: [[50, opt.ip(ip)]] }, { now: NOW + 899 * SEC })).reason,
    /exhausted/,
    'nor when asked for',
  );
  t.equal(
    asReply(lab.send({ type: DHCP_TYPE.request, mac: B, options: [[50, opt.ip(ip)]] }, { now: NOW + 10 * SEC })).out.type,
    'nak',
    'an INIT-REBOOT for it is NAKed',
  );
  const later = asReply(lab.send({ type: DHCP_TYPE.discover, mac: B }, { now: NOW + 900 * SEC }));
  t.equal(later.p.yiaddr, ip, 'offered again once the quarantine ends');
});

t.test('DECLINE naming another server or no address is ignored', async (t) => {
  const lab = new Lab();
  const ip = lab.dora(A);
  for (const options of [
    [
      [50, opt.ip(ip)],
      [54, opt.ip(OTHER_SERVER)],
    ],
    [[50, opt.ip(ip)]],
    [[54, opt.ip(SERVER)]],
  ] satisfies [number, Buffer][][]) {
    const out = asSilent(lab.send({ type: DHCP_TYPE.decline, mac: A, options }));
    t.same(out.save, []);
    t.same(out.remove, []);
  }
  t.equal(lab.pool.get(ip)?.state, 'bound');
});

t.test('RELEASE frees only the releasing client’s address', async (t) => {
  const lab = new Lab();
  const a = lab.dora(A);
  const b = lab.dora(B);
  const wrong = asSilent(lab.send({ type: DHCP_TYPE.release, mac: B, ciaddr: a, options: [[54, opt.ip(SERVER)]] }));
  t.same(wrong.remove, [], 'B cannot release A’s address');
  t.equal(lab.pool.get(a)?.mac, A);
  t.same(asSilent(lab.send({ type: DHCP_TYPE.release, mac: C, ciaddr: '10.77.0.150', options: [[54, opt.ip(SERVER)]] })).remove, [], 'unknown address');
  const ok = asSilent(lab.send({ type: DHCP_TYPE.release, mac: A, ciaddr: a, options: [[54, opt.ip(SERVER)]] }));
  t.same(ok.remove, [a]);
  t.same(ok.save, []);
  t.equal(lab.pool.get(a), undefined);
  t.equal(lab.pool.ofMac(A), undefined);
  t.equal(lab.pool.get(b)?.mac, B, 'B keeps its lease');
});

t.test('INFORM: ACK with configuration, no yiaddr, no lease times, unicast to ciaddr', async (t) => {
  const lab = new Lab();
  const { out, p } = asReply(lab.send({ type: DHCP_TYPE.inform, mac: A, ciaddr: '10.77.0.20' }));
  t.equal(out.type, 'ack');
  t.equal(msgType(p), DHCP_TYPE.ack);
  t.equal(p.yiaddr, '0.0.0.0');
  t.equal(p.ciaddr, '10.77.0.20');
  for (const code of [51, 58, 59]) t.notOk(p.options.has(code), `no option ${code}`);
  t.equal(ipOption(p, 54), SERVER);
  t.equal(ipOption(p, 1), '255.255.255.0');
  t.same(ipsOption(p, 3), ['10.77.0.1']);
  t.same(ipsOption(p, 6), ['10.77.0.1']);
  t.equal(textOption(p, 15), 'lab.example');
  t.same(out.to, { address: '10.77.0.20', port: 68, broadcast: false });
  t.same(out.save, []);
  t.same(out.remove, []);
  t.same(lab.pool.all(), []);
});

t.test('INFORM without ciaddr is not answered (nowhere to send it)', async (t) => {
  const out = asSilent(new Lab().send({ type: DHCP_TYPE.inform, mac: A }));
  t.match(out.reason, /ciaddr/);
});

t.test('non-requests and BOOTP are not answered; server messages are ignored', async (t) => {
  const lab = new Lab();
  t.match(asSilent(lab.send({ op: 2, type: DHCP_TYPE.discover, mac: A })).reason, /op 2/);
  t.match(asSilent(lab.send({ mac: A })).reason, /BOOTP/);
  for (const type of [DHCP_TYPE.offer, DHCP_TYPE.ack, DHCP_TYPE.nak]) t.match(asSilent(lab.send({ type, mac: A })).reason, /server message/);
  t.match(asSilent(lab.send({ type: DHCP_TYPE.discover, mac: A }, { at: { subnet: undefined } })).reason, /subnet/);
  t.same(lab.pool.all(), []);
});

// ---------------------------------------------------------------------------------------------
// PXE in full mode

t.test('full mode, BIOS PXE: undionly.kpxe over TFTP from us, a short lease', async (t) => {
  const lab = new Lab();
  const { out, p } = asReply(lab.send({ type: DHCP_TYPE.discover, mac: A, options: BIOS_PXE }));
  t.equal(out.type, 'offer');
  t.equal(p.yiaddr, '10.77.0.100');
  t.equal(fixedField(p.file), 'undionly.kpxe');
  t.equal(textOption(p, 67), 'undionly.kpxe');
  t.equal(p.siaddr, SERVER);
  t.equal(textOption(p, 66), SERVER);
  t.equal(textOption(p, 60), 'PXEClient');
  t.same(subOptionsOf(p, 43)?.get(6), [8], 'discovery control: boot the file in this packet');
  t.same(p.options.get(97), UUID);
  t.equal(u32Option(p, 51), 600);
  t.equal(u32Option(p, 58), 300);
  t.equal(u32Option(p, 59), 525);
  t.same(out.bootFile, { kind: 'tftp', file: 'undionly.kpxe' });
  t.ok(out.client.pxe);
  t.equal(out.client.firmware, 'bios');

  const ack = asReply(lab.send({ type: DHCP_TYPE.request, mac: A, options: [[50, opt.ip(p.yiaddr)], [54, opt.ip(SERVER)], ...BIOS_PXE] }));
  t.equal(ack.out.type, 'ack');
  t.equal(textOption(ack.p, 67), 'undionly.kpxe');
  t.equal(ack.p.siaddr, SERVER);
  t.equal(u32Option(ack.p, 51), 600);
  t.same(ack.out.save, [{ ip: p.yiaddr, mac: A, state: 'bound', expiresAt: NOW + 600 * SEC }]);
});

t.test('full mode, the PXE lease never exceeds the subnet’s', async (t) => {
  const shortLab = new Lab(parseSubnet({ ...LAB_SUBNET, leaseSeconds: 300 }));
  t.equal(u32Option(asReply(shortLab.send({ type: DHCP_TYPE.discover, mac: A, options: BIOS_PXE })).p, 51), 300);
});

t.test('full mode, UEFI x86-64 PXE: the EFI binary from the configuration', async (t) => {
  const { out, p } = asReply(new Lab().send({ type: DHCP_TYPE.discover, mac: A, options: UEFI_PXE }));
  t.equal(fixedField(p.file), 'snponly.efi');
  t.equal(textOption(p, 67), 'snponly.efi');
  t.equal(p.siaddr, SERVER);
  t.equal(textOption(p, 66), SERVER);
  t.equal(textOption(p, 60), 'PXEClient');
  // Without 43.6 = 8 OVMF takes PXEClient as "discover a boot server" and asks port 4011,
  // which full mode does not answer: PXE-E16 after a minute (seen with a QEMU guest).
  t.same(subOptionsOf(p, 43)?.get(6), [8], 'discovery control: boot the file in this packet');
  t.same(p.options.get(97), UUID);
  t.equal(u32Option(p, 51), 600);
  t.equal(out.client.firmware, 'efi-x86-64');
  const ack = asReply(new Lab().send({ type: DHCP_TYPE.request, mac: A, options: [[50, opt.ip(p.yiaddr)], [54, opt.ip(SERVER)], ...UEFI_PXE] })).p;
  t.same(subOptionsOf(ack, 43)?.get(6), [8], 'the ACK too');
});

t.test('full mode, iPXE: the boot script over HTTP and no-pxedhcp', async (t) => {
  const { out, p } = asReply(new Lab().send({ type: DHCP_TYPE.discover, mac: A, options: IPXE }));
  t.equal(textOption(p, 67), `${HTTP_BASE}/boot.ipxe`);
  t.equal(fixedField(p.file), `${HTTP_BASE}/boot.ipxe`);
  t.notOk(p.options.has(66), 'no TFTP server for an HTTP URL');
  t.notOk(p.options.has(43), 'no PXE discovery control for iPXE');
  t.same(subOptionsOf(p, 175)?.get(176), [1]);
  t.equal(u32Option(p, 51), 600);
  t.ok(out.client.ipxe);
  t.same(out.bootFile, { kind: 'http', url: `${HTTP_BASE}/boot.ipxe`, vendorClass: undefined });

  const bare = asReply(new Lab().send({ type: DHCP_TYPE.discover, mac: A, options: [[77, opt.text('iPXE')]] })).p;
  t.equal(textOption(bare, 67), `${HTTP_BASE}/boot.ipxe`, 'user class alone is enough');
  t.same(subOptionsOf(bare, 175)?.get(176), [1]);
});

t.test('full mode, iPXE without HTTP: an address, no boot file, still no-pxedhcp', async (t) => {
  const { p } = asReply(
    new Lab().send({
      type: DHCP_TYPE.discover,
      mac: A,
      options: [
        [77, opt.text('iPXE')],
        [175, opt.subs([17, opt.u8(1)])],
      ],
    }),
  );
  t.equal(p.yiaddr, '10.77.0.100');
  t.notOk(p.options.has(67));
  t.equal(fixedField(p.file), undefined);
  t.equal(p.siaddr, '0.0.0.0');
  t.same(subOptionsOf(p, 175)?.get(176), [1]);
});

t.test('full mode, UEFI HTTP Boot: an http URL of the binary and HTTPClient echoed', async (t) => {
  const { out, p } = asReply(new Lab().send({ type: DHCP_TYPE.discover, mac: A, options: UEFI_HTTP }));
  const url = `${HTTP_BASE}/ipxe-bin/snponly.efi`;
  t.equal(textOption(p, 67), url);
  t.equal(fixedField(p.file), url);
  t.equal(textOption(p, 60), 'HTTPClient');
  t.notOk(p.options.has(66));
  t.same(out.bootFile, { kind: 'http', url, vendorClass: 'HTTPClient' });
});

// ---------------------------------------------------------------------------------------------
// Proxy mode

t.test('proxy mode: a non-PXE DISCOVER is not answered', async (t) => {
  const lab = new Lab(labSubnet(), [], PROXY);
  const out = asSilent(lab.send({ type: DHCP_TYPE.discover, mac: A }));
  t.match(out.reason, /PXE/);
  t.same(out.save, []);
  t.same(lab.pool.all(), []);
});

t.test('proxy mode, BIOS PXE DISCOVER: OFFER without an address, with the file and 43.6 = 8', async (t) => {
  const lab = new Lab(labSubnet(), [], PROXY);
  const { out, p } = asReply(lab.send({ type: DHCP_TYPE.discover, mac: A, xid: 99, options: BIOS_PXE }));
  t.equal(out.type, 'offer');
  t.equal(msgType(p), DHCP_TYPE.offer);
  t.equal(p.xid, 99);
  t.equal(p.yiaddr, '0.0.0.0');
  t.equal(ipOption(p, 54), SERVER);
  t.equal(textOption(p, 60), 'PXEClient');
  t.same(p.options.get(97), UUID);
  t.same(subOptionsOf(p, 43)?.get(6), [8]);
  t.equal(fixedField(p.file), 'undionly.kpxe');
  t.equal(textOption(p, 67), 'undionly.kpxe');
  t.equal(textOption(p, 66), SERVER);
  t.equal(p.siaddr, SERVER);
  for (const code of [1, 3, 6, 15, 51, 58, 59]) t.notOk(p.options.has(code), `no option ${code}: the other server configures the address`);
  t.same(out.to, BROADCAST);
  t.same(out.save, []);
  t.same(out.remove, []);
  t.same(lab.pool.all(), []);
});

t.test('proxy mode, UEFI: no file on port 67; the port-4011 REQUEST gets it, unicast back', async (t) => {
  const lab = new Lab(labSubnet(), [], PROXY);
  const offer = asReply(lab.send({ type: DHCP_TYPE.discover, mac: A, options: UEFI_PXE }));
  t.equal(offer.out.type, 'offer');
  t.equal(offer.p.yiaddr, '0.0.0.0');
  t.equal(textOption(offer.p, 60), 'PXEClient');
  t.same(offer.p.options.get(97), UUID);
  t.equal(fixedField(offer.p.file), undefined, 'no file in the offer');
  t.notOk(offer.p.options.has(67));
  t.notOk(offer.p.options.has(43), 'no 43.6 = 8: it goes on to the boot server');
  t.equal(offer.p.siaddr, '0.0.0.0');

  const from = { address: '10.77.0.130', port: 4011 };
  const { out, p } = asReply(lab.send({ type: DHCP_TYPE.request, mac: A, ciaddr: '10.77.0.130', options: UEFI_PXE }, { at: { listener: 'proxy', from } }));
  t.equal(out.type, 'ack');
  t.equal(msgType(p), DHCP_TYPE.ack);
  t.equal(textOption(p, 67), 'snponly.efi');
  t.equal(fixedField(p.file), 'snponly.efi');
  t.equal(textOption(p, 66), SERVER);
  t.equal(p.siaddr, SERVER);
  t.equal(ipOption(p, 54), SERVER);
  t.equal(p.yiaddr, '0.0.0.0');
  t.notOk(p.options.has(51));
  t.same(out.to, { address: '10.77.0.130', port: 4011, broadcast: false });
  t.same(out.save, []);
});

t.test('proxy mode, iPXE on the boot-server port: ACK with the script URL to its source port', async (t) => {
  const lab = new Lab(labSubnet(), [], PROXY);
  const from = { address: '10.77.0.130', port: 68 };
  const { out, p } = asReply(lab.send({ type: DHCP_TYPE.request, mac: A, ciaddr: '10.77.0.130', options: IPXE }, { at: { listener: 'proxy', from } }));
  t.equal(out.type, 'ack');
  t.equal(textOption(p, 67), `${HTTP_BASE}/boot.ipxe`);
  t.same(out.to, { address: '10.77.0.130', port: 68, broadcast: false });
  t.match(
    asSilent(lab.send({ type: DHCP_TYPE.discover, mac: A, options: IPXE }, { at: { listener: 'proxy', from } })).reason,
    /REQUESTs only/,
    'the boot server answers REQUESTs only',
  );
});

t.test('proxy mode answers only a client the boot planner boots, on both ports', async (t) => {
  const lab = new Lab(labSubnet(), [], PROXY);
  const from = { address: '10.77.0.130', port: 4011 };
  const cases: [string, RequestSpec, Partial<Arrival>][] = [
    ['BIOS DISCOVER on 67', { type: DHCP_TYPE.discover, mac: A, options: BIOS_PXE }, {}],
    ['UEFI DISCOVER on 67', { type: DHCP_TYPE.discover, mac: A, options: UEFI_PXE }, {}],
    ['iPXE DISCOVER on 67', { type: DHCP_TYPE.discover, mac: A, options: IPXE }, {}],
    ['UEFI REQUEST on 4011', { type: DHCP_TYPE.request, mac: A, ciaddr: from.address, options: UEFI_PXE }, { listener: 'proxy', from }],
    ['iPXE REQUEST on 4011', { type: DHCP_TYPE.request, mac: A, ciaddr: from.address, options: IPXE }, { listener: 'proxy', from }],
  ];
  for (const [name, spec, at] of cases) {
    t.equal(asReply(lab.send(spec, { at, pxe: BOOTED })).out.kind, 'reply', `${name}: answered for a machine edgeboot boots`);
    const silent = asSilent(lab.send(spec, { at, pxe: NOT_BOOTED }));
    t.equal(silent.reason, NOT_BOOTED.reason, `${name}: silence with the planner's reason`);
    t.ok(silent.client?.pxe, `${name}: the PXE client is still classified (its timeline gets the silence)`);
    t.same([silent.save, silent.remove], [[], []], `${name}: no lease change`);
    t.match(asSilent(lab.send(spec, { at, pxe: null })).reason, /no boot decision/, `${name}: no answer asked: silence (fails closed)`);
  }
  t.match(asSilent(lab.send({ type: DHCP_TYPE.discover, mac: A }, { pxe: BOOTED })).reason, /PXE clients only/, 'a non-PXE client is not answered either way');
});

t.test('full mode gives a client the planner does not boot its address and boot file as before', async (t) => {
  const lab = new Lab();
  const booted = asReply(lab.send({ type: DHCP_TYPE.discover, mac: A, options: BIOS_PXE }, { pxe: BOOTED }));
  const other = asReply(new Lab().send({ type: DHCP_TYPE.discover, mac: A, options: BIOS_PXE }, { pxe: NOT_BOOTED }));
  const unasked = asReply(new Lab().send({ type: DHCP_TYPE.discover, mac: A, options: BIOS_PXE }, { pxe: null }));
  for (const [name, r] of [
    ['not booted', other],
    ['not asked', unasked],
  ] as const) {
    t.same(r.out.packet, booted.out.packet, `${name}: the same OFFER, byte for byte`);
    t.equal(fixedField(r.p.file), 'undionly.kpxe', `${name}: with the boot file`);
  }
});

t.test('proxy mode: REQUESTs on port 67 are never answered and never NAKed', async (t) => {
  const lab = new Lab(labSubnet(), [], PROXY);
  for (const [name, spec] of [
    ['SELECTING us', { type: DHCP_TYPE.request, mac: A, options: [[50, opt.ip('10.77.0.150')], [54, opt.ip(SERVER)], ...BIOS_PXE] }],
    ['SELECTING another server', { type: DHCP_TYPE.request, mac: A, options: [[50, opt.ip('10.77.0.150')], [54, opt.ip(OTHER_SERVER)], ...BIOS_PXE] }],
    ['INIT-REBOOT on the wrong network', { type: DHCP_TYPE.request, mac: A, options: [[50, opt.ip('192.168.1.50')], ...BIOS_PXE] }],
    ['RENEWING', { type: DHCP_TYPE.request, mac: A, ciaddr: '10.77.0.150', options: UEFI_PXE }],
    ['non-PXE INIT-REBOOT on the wrong network', { type: DHCP_TYPE.request, mac: A, options: [[50, opt.ip('192.168.1.50')]] }],
    ['DECLINE', { type: DHCP_TYPE.decline, mac: A, options: [[50, opt.ip('10.77.0.150')], [54, opt.ip(SERVER)], ...BIOS_PXE] }],
    ['RELEASE', { type: DHCP_TYPE.release, mac: A, ciaddr: '10.77.0.150', options: BIOS_PXE }],
    ['INFORM', { type: DHCP_TYPE.inform, mac: A, ciaddr: '10.77.0.150', options: BIOS_PXE }],
  ] satisfies [string, RequestSpec][]) {
    const out = asSilent(lab.send(spec));
    t.same(out.save, [], name);
    t.same(out.remove, [], name);
  }
  t.same(lab.pool.all(), []);
});

// ---------------------------------------------------------------------------------------------
// Relays

const AGENT = opt.subs([1, opt.text('eth1/0/7:vlan88')], [2, opt.bytes(0x00, 0x1b, 0x21, 0xaa, 0xbb, 0xcc)]);

t.test('relayed DISCOVER and REQUEST: served from giaddr’s subnet, sent to the relay, 82 echoed last', async (t) => {
  const lab = new Lab(relayed());
  const at = { subnet: relayed(), from: { address: RELAY, port: 67 } };
  const offer = asReply(lab.send({ type: DHCP_TYPE.discover, mac: A, giaddr: RELAY, options: [[82, AGENT]] }, { at }));
  t.equal(offer.out.type, 'offer');
  t.equal(offer.p.yiaddr, '10.88.0.50');
  t.equal(offer.p.giaddr, RELAY);
  t.equal(ipOption(offer.p, 1), '255.255.255.0');
  t.same(ipsOption(offer.p, 3), ['10.88.0.1']);
  t.equal(textOption(offer.p, 15), 'far.example');
  t.equal(u32Option(offer.p, 51), 7200);
  t.equal(ipOption(offer.p, 54), SERVER);
  t.same(offer.out.to, { address: RELAY, port: 67, broadcast: false });
  t.same(offer.p.options.get(82), AGENT);
  t.equal(mainOptionCodes(offer.p).at(-1), 82, '82 is the last option');

  const ack = asReply(
    lab.send(
      {
        type: DHCP_TYPE.request,
        mac: A,
        giaddr: RELAY,
        options: [
          [50, opt.ip('10.88.0.50')],
          [54, opt.ip(SERVER)],
          [82, AGENT],
        ],
      },
      { at },
    ),
  );
  t.equal(ack.out.type, 'ack');
  t.same(ack.out.to, { address: RELAY, port: 67, broadcast: false });
  t.same(ack.p.options.get(82), AGENT);
  t.equal(mainOptionCodes(ack.p).at(-1), 82);
  t.same(ack.out.save, [{ ip: '10.88.0.50', mac: A, state: 'bound', expiresAt: NOW + 7200 * SEC }]);

  const noAgent = asReply(lab.send({ type: DHCP_TYPE.discover, mac: B, giaddr: RELAY }, { at }));
  t.notOk(noAgent.p.options.has(82), 'no 82 in, no 82 out');
});

t.test('relayed PXE client: 82 still last, after the boot options', async (t) => {
  const at = { subnet: relayed(), from: { address: RELAY, port: 67 } };
  const { out, p } = asReply(new Lab(relayed()).send({ type: DHCP_TYPE.discover, mac: A, giaddr: RELAY, options: [...BIOS_PXE, [82, AGENT]] }, { at }));
  t.equal(textOption(p, 67), 'undionly.kpxe');
  t.same(p.options.get(82), AGENT);
  t.equal(mainOptionCodes(p).at(-1), 82);
  t.same(out.to, { address: RELAY, port: 67, broadcast: false });
});

t.test('relayed REQUEST for an address of another subnet: NAK to the relay, broadcast bit set, 82 last', async (t) => {
  const at = { subnet: relayed(), from: { address: RELAY, port: 67 } };
  const { out, p } = asReply(
    new Lab(relayed()).send(
      {
        type: DHCP_TYPE.request,
        mac: A,
        giaddr: RELAY,
        flags: 0,
        options: [
          [50, opt.ip('10.77.0.150')],
          [82, AGENT],
        ],
      },
      { at },
    ),
  );
  t.equal(out.type, 'nak');
  t.same(out.to, { address: RELAY, port: 67, broadcast: false });
  t.equal(p.giaddr, RELAY);
  t.equal(p.flags & 0x8000, 0x8000, 'RFC 2131 §4.3.2: the relay must broadcast it to the client');
  t.same(p.options.get(82), AGENT);
  t.equal(mainOptionCodes(p).at(-1), 82);

  const direct = asReply(new Lab().send({ type: DHCP_TYPE.request, mac: A, flags: 0, options: [[50, opt.ip('192.168.1.50')]] })).p;
  t.equal(direct.flags, 0, 'a NAK sent by us directly keeps the client’s flags');
});

// ---------------------------------------------------------------------------------------------
// Sizes

/** A reply whose options need 342 bytes: more than the 307 a 576-byte message holds in its options field. */
function bigReply(maxSize: number | undefined): { out: Reply; p: DhcpPacket } {
  const subnet = parseSubnet({ ...LAB_SUBNET, dns: Array.from({ length: 40 }, (_, i) => `10.77.0.${i + 2}`), domain: 'a-rather-long-domain-name.lab.example' });
  const options: [number, Buffer][] = maxSize === undefined ? [] : [[57, opt.u16(maxSize)]];
  return asReply(new Lab(subnet).send({ type: DHCP_TYPE.discover, mac: A, options }, { reservation: { hostname: `node-${'x'.repeat(95)}` } }));
}

t.test('max message size 576: the reply stays within 548 bytes of DHCP payload and keeps every option', async (t) => {
  const large = bigReply(1500);
  t.ok(large.out.packet.length > 548, `the options need more than 576 bytes (${large.out.packet.length})`);
  t.notOk(large.p.options.has(52), 'room enough: no overload');
  for (const size of [576, undefined, 300]) {
    const { out, p } = bigReply(size);
    t.ok(out.packet.length <= 548, `57 = ${size}: ${out.packet.length} bytes`);
    t.ok(p.options.has(52), `57 = ${size}: overloaded into file/sname`);
    for (const code of [1, 3, 6, 12, 15, 51, 53, 54, 58, 59]) t.same(p.options.get(code), large.p.options.get(code), `57 = ${size}: option ${code} intact`);
  }
});

t.test('replies are at least 300 bytes', async (t) => {
  const nak = asReply(new Lab().send({ type: DHCP_TYPE.request, mac: A, options: [[50, opt.ip('192.168.1.50')]] }));
  t.ok(nak.out.packet.length >= 300, `NAK: ${nak.out.packet.length}`);
  const offer = asReply(new Lab().send({ type: DHCP_TYPE.discover, mac: A, options: [[55, opt.bytes(1)]] }));
  t.ok(offer.out.packet.length >= 300, `OFFER: ${offer.out.packet.length}`);
  const proxyOffer = asReply(new Lab(labSubnet(), [], PROXY).send({ type: DHCP_TYPE.discover, mac: A, options: UEFI_PXE }));
  t.ok(proxyOffer.out.packet.length >= 300, `proxy OFFER: ${proxyOffer.out.packet.length}`);
});
