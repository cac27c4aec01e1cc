import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { golden } from '../../helpers/golden.js';
import {
  buildReply,
  decodeDhcp,
  encodeDhcp,
  fieldText,
  hardwareAddress,
  ipv4Bytes,
  MAGIC_COOKIE,
  type DhcpPacket,
  type ReplyHeader,
} from '../../../src/dhcp/codec.js';
import {
  clientArchs,
  clientUuid,
  hostName,
  ipxeOptions,
  maxMessageSize,
  messageType,
  Opt,
  parameterRequestList,
  relayAgent,
  requestedIp,
  serverId,
  subOptions,
  userClasses,
  vendorClass,
} from '../../../src/dhcp/options.js';
import { DHCP_CAPTURES, TESTDATA_DIR, captureDatagrams, dhcpDatagrams, mustDecode, type DhcpCapture } from '../../helpers/dhcp.js';
import { LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2, parseCapture, type UdpPacket } from '../../helpers/pcap.js';

/**
 * The DHCP codec against real captures (decode, exact re-encode, golden summaries under
 * test/golden/dhcp/; `UPDATE_GOLDEN=1 npx tap test/unit/dhcp/codec.test.ts` rewrites them),
 * crafted packets for every drop reason and for overload and RFC 3396, and reply building.
 */
const GOLDEN_DIR = fileURLToPath(new URL('../../golden/dhcp/', import.meta.url));

/** A subtest's `t` (the last overload of t.test takes the callback alone). */
type Test = Parameters<Parameters<typeof t.test>[0]>[0];

const hex = (b: Buffer | undefined): string | undefined => b?.toString('hex');
const latin1 = (b: Buffer | undefined): string | undefined => b?.toString('latin1');
const nonEmpty = <T>(a: T[]): T[] | undefined => (a.length > 0 ? a : undefined);
const wireCodes = (area: DhcpPacket['layout']['main'] | undefined): number[] | undefined =>
  area?.options.filter((o) => o.code !== 0 && o.code !== 255).map((o) => o.code);

/** What a golden file records of one captured DHCP datagram. */
function summary(u: UdpPacket, p: DhcpPacket) {
  const relay = relayAgent(p.options);
  const ipxe = ipxeOptions(p.options);
  return {
    frame: u.frame,
    from: `${u.srcIp}:${u.srcPort}`,
    to: `${u.dstIp}:${u.dstPort}`,
    bytes: u.payload.length,
    type: messageType(p.options),
    op: p.op,
    xid: p.xid.toString(16).padStart(8, '0'),
    chaddr: hardwareAddress(p),
    flags: p.flags,
    ciaddr: p.ciaddr,
    yiaddr: p.yiaddr,
    siaddr: p.siaddr,
    giaddr: p.giaddr,
    sname: fieldText(p.sname),
    file: fieldText(p.file),
    options: wireCodes(p.layout.main),
    fileOptions: wireCodes(p.layout.file),
    snameOptions: wireCodes(p.layout.sname),
    ended: p.layout.main.ended,
    trailerBytes: p.layout.main.trailer.length,
    vendorClass: vendorClass(p.options),
    archs: nonEmpty(clientArchs(p.options)),
    uuid: clientUuid(p.options),
    userClasses: nonEmpty(userClasses(p.options)),
    ipxe: ipxe && [...ipxe.keys()],
    circuitId: hex(relay?.circuitId),
    remoteId: hex(relay?.remoteId),
    serverId: serverId(p.options),
    bootfile: latin1(p.options.get(Opt.BootfileName)),
    tftpServer: latin1(p.options.get(Opt.TftpServerName)),
  };
}

/** JSON with 2-space indent, arrays of numbers on one line (strings never hold a raw newline). */
const goldenJson = (v: unknown): string =>
  `${JSON.stringify(v, null, 2).replace(/\[\n[\d,\n ]+\]/g, (m) => `[${m.slice(1, -1).trim().split(/,\s*/).join(', ')}]`)}\n`;

t.test('captures: every DHCP datagram decodes, re-encodes byte for byte, and matches its golden summary', async (t) => {
  for (const capture of DHCP_CAPTURES) {
    t.test(capture, async (t) => {
      const datagrams = dhcpDatagrams(capture);
      t.ok(datagrams.length >= 4, `${capture} holds DHCP (${datagrams.length} datagrams)`);
      const summaries = [];
      for (const u of datagrams) {
        const r = decodeDhcp(u.payload);
        if (!r.ok) {
          t.fail(`frame ${u.frame} does not decode: ${r.reason}`);
          continue;
        }
        const again = encodeDhcp(r.value);
        t.ok(again.equals(u.payload), `frame ${u.frame} (${u.payload.length} bytes) re-encodes byte for byte`);
        summaries.push(summary(u, r.value));
      }
      golden(t, GOLDEN_DIR, capture.replace(/\.pcap$/, '.json'), goldenJson(summaries));
    });
  }
});

/** Independent of the goldens: what test/fixtures/README.md says each capture holds. */
t.test('captures hold what test/fixtures/README.md says', async (t) => {
  const decoded = (c: DhcpCapture) => dhcpDatagrams(c).map((u) => ({ u, p: mustDecode(u.payload) }));

  t.test('netboot-dhcp4.pcap: Intel UNDI DISCOVER, proxy OFFER with 43, router OFFER, relayed REQUEST', async (t) => {
    const all = decoded('netboot-dhcp4.pcap');
    t.same(
      all.map(({ p }) => messageType(p.options)),
      ['discover', 'offer', 'offer', 'request'],
    );
    const [discover, proxy, router, relayed] = all;
    if (!discover || !proxy || !router || !relayed) throw new Error('unreachable');
    t.same(clientArchs(discover.p.options), [0]);
    t.equal(vendorClass(discover.p.options), 'PXEClient:Arch:00000:UNDI:002001');
    t.equal(discover.p.options.get(Opt.ClientUuid)?.length, 17, 'a GUID in 97');
    t.equal(discover.p.layout.main.trailer.length, 200, 'a 548-byte DISCOVER: 200 bytes after END');
    t.equal(vendorClass(proxy.p.options), 'PXEClient');
    t.ok(proxy.p.options.has(Opt.VendorSpecific), 'the proxy OFFER carries option 43');
    t.equal(proxy.p.yiaddr, '0.0.0.0', 'a proxy offers no address');
    t.equal(router.p.yiaddr, '192.168.16.12');
    t.equal(relayed.p.giaddr, '192.168.40.1');
    t.equal(relayed.u.srcPort, 67, 'relay to server: 67 → 67');
    t.equal(relayed.u.dstPort, 67);
  });

  t.test('qemu-ovmf-full-boot.pcap: OVMF arch 7 then iPXE with user class and 175', async (t) => {
    const all = decoded('qemu-ovmf-full-boot.pcap');
    const requests = all.filter(({ p }) => p.op === 1);
    const firmware = requests.filter(({ p }) => !userClasses(p.options).includes('iPXE') && vendorClass(p.options)?.startsWith('PXEClient'));
    const ipxe = requests.filter(({ p }) => userClasses(p.options).includes('iPXE'));
    t.same(
      firmware.map(({ p }) => messageType(p.options)),
      ['discover', 'request'],
    );
    for (const { p } of firmware) t.same(clientArchs(p.options), [7]);
    t.ok(ipxe.length >= 2, 'iPXE DISCOVER and REQUEST');
    for (const { p } of ipxe) {
      t.same(clientArchs(p.options), [7]);
      t.ok(ipxeOptions(p.options)?.has(19), 'iPXE announces HTTP (175.19)');
    }
    const bootfiles = all.map(({ p }) => latin1(p.options.get(Opt.BootfileName))).filter((b) => b !== undefined);
    t.same([...new Set(bootfiles)], ['snponly.efi\0', 'http://10.77.0.1:8080/boot.ipxe\0']);
  });

  t.test('qemu-ovmf-proxy-boot.pcap: two offers, the 4011 exchange from source port 4011', async (t) => {
    const all = decoded('qemu-ovmf-proxy-boot.pcap');
    const firstOffers = all.filter(({ p }) => messageType(p.options) === 'offer').slice(0, 2);
    t.same(firstOffers.map(({ u }) => u.srcIp).sort(), ['10.77.0.1', '10.77.0.2']);
    const proxyOffer = firstOffers.find(({ u }) => u.srcIp === '10.77.0.1');
    t.equal(proxyOffer && vendorClass(proxyOffer.p.options), 'PXEClient');
    const at4011 = all.filter(({ u }) => u.dstPort === 4011 || u.srcPort === 4011);
    t.same(
      at4011.map(({ u, p }) => `${u.srcPort}>${u.dstPort} ${messageType(p.options)}`),
      ['4011>4011 request', '4011>4011 ack', '68>4011 request', '4011>68 ack'],
    );
    t.same(
      at4011.filter(({ p }) => p.op === 2).map(({ p }) => fieldText(p.file)),
      ['snponly.efi', 'http://10.77.0.1:8080/boot.ipxe'],
    );
  });

  t.test('qemu-ipxe-bios-full-boot.pcap: iPXE ROM, arch 0, user class iPXE and 175', async (t) => {
    const ipxe = decoded('qemu-ipxe-bios-full-boot.pcap').filter(({ p }) => userClasses(p.options).includes('iPXE'));
    t.ok(ipxe.length >= 2);
    for (const { p } of ipxe) {
      t.same(clientArchs(p.options), [0]);
      t.ok(ipxeOptions(p.options)?.has(19));
    }
  });
});

t.test('capture reader', async (t) => {
  const ETH_DST = Buffer.from('ffffffffffff', 'hex');
  const ETH_SRC = Buffer.from('525400770001', 'hex');
  const u16 = (n: number) => Buffer.from([n >> 8, n & 255]);
  const ipv4 = (proto: number, payload: Buffer, opts: { frag?: number; ihl?: number } = {}) => {
    const ihl = opts.ihl ?? 5;
    const h = Buffer.alloc(ihl * 4);
    h[0] = 0x40 | ihl;
    h.writeUInt16BE(h.length + payload.length, 2);
    h.writeUInt16BE(opts.frag ?? 0, 6);
    h[8] = 64;
    h[9] = proto;
    ipv4Bytes('10.0.0.1').copy(h, 12);
    ipv4Bytes('10.0.0.2').copy(h, 16);
    return Buffer.concat([h, payload]);
  };
  const udp = (sport: number, dport: number, payload: Buffer) => Buffer.concat([u16(sport), u16(dport), u16(8 + payload.length), u16(0), payload]);
  const ethernet = (type: number, body: Buffer, vlan = false) => Buffer.concat([ETH_DST, ETH_SRC, ...(vlan ? [u16(0x8100), u16(42)] : []), u16(type), body]);

  interface Rec {
    sec: number;
    frac: number;
    data: Buffer;
  }
  /** 32- and 16-bit writers in the capture's byte order. */
  const writers = (be: boolean) => ({
    w32: (n: number) => {
      const b = Buffer.alloc(4);
      if (be) b.writeUInt32BE(n);
      else b.writeUInt32LE(n);
      return b;
    },
    w16: (n: number) => {
      const b = Buffer.alloc(2);
      if (be) b.writeUInt16BE(n);
      else b.writeUInt16LE(n);
      return b;
    },
  });
  function classic(recs: Rec[], o: { be: boolean; nano: boolean; link: number }): Buffer {
    const { w32, w16 } = writers(o.be);
    const head = Buffer.concat([w32(o.nano ? 0xa1b23c4d : 0xa1b2c3d4), w16(2), w16(4), w32(0), w32(0), w32(65535), w32(o.link)]);
    return Buffer.concat([head, ...recs.flatMap((r) => [w32(r.sec), w32(r.frac), w32(r.data.length), w32(r.data.length), r.data])]);
  }
  function pcapng(recs: Rec[], o: { be: boolean; link: number; tsresol?: number; simple?: boolean }): Buffer {
    const { w32, w16 } = writers(o.be);
    const block = (type: number, body: Buffer) => {
      const padded = Buffer.concat([body, Buffer.alloc((4 - (body.length % 4)) % 4)]);
      return Buffer.concat([w32(type), w32(padded.length + 12), padded, w32(padded.length + 12)]);
    };
    const shb = block(0x0a0d0d0a, Buffer.concat([w32(0x1a2b3c4d), w16(1), w16(0), Buffer.alloc(8, 0xff)]));
    const idbOpts = o.tsresol === undefined ? Buffer.alloc(0) : Buffer.concat([w16(9), w16(1), Buffer.from([o.tsresol, 0, 0, 0]), w16(0), w16(0)]);
    const idb = block(1, Buffer.concat([w16(o.link), w16(0), w32(0), idbOpts]));
    const units = o.tsresol === undefined ? 1e6 : 10 ** o.tsresol;
    const epbs = recs.map((r) => {
      // A simple packet block (type 3) has no interface and no timestamp.
      if (o.simple) return block(3, Buffer.concat([w32(r.data.length), r.data]));
      const ts = BigInt(r.sec) * BigInt(units) + BigInt(r.frac);
      return block(6, Buffer.concat([w32(0), w32(Number(ts >> 32n)), w32(Number(ts & 0xffffffffn)), w32(r.data.length), w32(r.data.length), r.data]));
    });
    // A name-resolution block (type 4) between packets: skipped.
    return Buffer.concat([shb, idb, epbs[0] ?? Buffer.alloc(0), block(4, Buffer.alloc(4)), ...epbs.slice(1)]);
  }

  const p1 = Buffer.from('first datagram');
  const p2 = Buffer.from('second, odd length');
  const eth: Rec[] = [
    { sec: 1700000000, frac: 250000, data: ethernet(0x0800, ipv4(17, udp(68, 67, p1))) },
    { sec: 1700000001, frac: 0, data: ethernet(0x0806, Buffer.alloc(28)) }, // ARP
    { sec: 1700000002, frac: 0, data: ethernet(0x0800, ipv4(6, Buffer.alloc(20))) }, // TCP
    { sec: 1700000003, frac: 0, data: ethernet(0x86dd, Buffer.alloc(48)) }, // IPv6
    { sec: 1700000004, frac: 0, data: ethernet(0x0800, ipv4(17, udp(1, 2, p1), { frag: 0x2000 })) }, // first fragment
    { sec: 1700000005, frac: 0, data: ethernet(0x0800, ipv4(17, udp(1, 2, p1), { frag: 100 })) }, // later fragment
    { sec: 1700000006, frac: 500000, data: ethernet(0x0800, ipv4(17, udp(4011, 68, p2), { ihl: 6 }), true) },
    // Ethernet padding after a short IP packet is not payload.
    { sec: 1700000007, frac: 0, data: Buffer.concat([ethernet(0x0800, ipv4(17, udp(69, 50000, Buffer.from('x')))), Buffer.alloc(17)]) },
  ];
  const expected = [
    { frame: 0, timestamp: 1700000000.25, srcIp: '10.0.0.1', srcPort: 68, dstIp: '10.0.0.2', dstPort: 67, payload: p1 },
    { frame: 6, timestamp: 1700000006.5, srcIp: '10.0.0.1', srcPort: 4011, dstIp: '10.0.0.2', dstPort: 68, payload: p2 },
    { frame: 7, timestamp: 1700000007, srcIp: '10.0.0.1', srcPort: 69, dstIp: '10.0.0.2', dstPort: 50000, payload: Buffer.from('x') },
  ];

  for (const be of [false, true]) {
    t.same(parseCapture(classic(eth, { be, nano: false, link: LINKTYPE_ETHERNET })), expected, `classic pcap, ${be ? 'big' : 'little'}-endian, µs`);
    const nano = eth.map((r) => ({ ...r, frac: r.frac * 1000 }));
    t.same(parseCapture(classic(nano, { be, nano: true, link: LINKTYPE_ETHERNET })), expected, `classic pcap, ${be ? 'big' : 'little'}-endian, ns`);
    t.same(parseCapture(pcapng(eth, { be, link: LINKTYPE_ETHERNET })), expected, `pcapng, ${be ? 'big' : 'little'}-endian section`);
    t.same(parseCapture(pcapng(nano, { be, link: LINKTYPE_ETHERNET, tsresol: 9 })), expected, `pcapng, if_tsresol 9`);
    t.same(
      parseCapture(pcapng(eth, { be, link: LINKTYPE_ETHERNET, simple: true })),
      expected.map((e) => ({ ...e, timestamp: 0 })),
      'pcapng simple packet blocks',
    );
  }

  const ip = ipv4(17, udp(68, 67, p1));
  const sll = Buffer.concat([u16(0), u16(1), u16(6), ETH_SRC, Buffer.alloc(2), u16(0x0800), ip]);
  const sll2 = Buffer.concat([u16(0x0800), u16(0), Buffer.alloc(4), u16(1), Buffer.from([0, 6]), ETH_SRC, Buffer.alloc(2), ip]);
  t.same(
    parseCapture(classic([{ sec: 1, frac: 0, data: sll }], { be: false, nano: false, link: LINKTYPE_LINUX_SLL })),
    [{ ...expected[0], timestamp: 1 }],
    'Linux cooked (SLL)',
  );
  t.same(
    parseCapture(pcapng([{ sec: 1, frac: 0, data: sll2 }], { be: false, link: LINKTYPE_LINUX_SLL2 })),
    [{ ...expected[0], timestamp: 1 }],
    'Linux cooked v2 (SLL2)',
  );
  t.same(parseCapture(classic([{ sec: 1, frac: 0, data: ip }], { be: false, nano: false, link: 147 })), [], 'an unknown link type yields nothing');
  t.throws(() => parseCapture(Buffer.from('not a capture at all')), 'a file that is no capture throws');
  t.throws(() => parseCapture(classic(eth, { be: false, nano: false, link: 1 }).subarray(0, 50)), 'a truncated record throws');

  t.test('real captures', async (t) => {
    const netboot = captureDatagrams('netboot-dhcp4.pcap');
    t.equal(netboot.length, 4);
    // Nanosecond magic: 1456640678 s + 50080883 ns.
    t.equal(netboot[0]?.timestamp, 1456640678 + 50080883 / 1e9, 'nanosecond timestamps');
    const ovmf = readFileSync(join(TESTDATA_DIR, 'qemu-ovmf-full-boot.pcap'));
    // The same file with every header field byte-swapped reads the same.
    const swapped = Buffer.from(ovmf);
    for (const at of [0, 8, 12, 16, 20]) swapped.writeUInt32BE(ovmf.readUInt32LE(at), at);
    for (const at of [4, 6]) swapped.writeUInt16BE(ovmf.readUInt16LE(at), at);
    for (let at = 24; at < ovmf.length; at += 16 + ovmf.readUInt32LE(at + 8)) {
      for (let k = 0; k < 16; k += 4) swapped.writeUInt32BE(ovmf.readUInt32LE(at + k), at + k);
    }
    t.same(parseCapture(swapped), parseCapture(ovmf), 'big-endian copy of a real capture');
    // Real pcapng (the TFTP captures): read without error, starting with a TFTP request.
    for (const name of ['intel-efi-tftp.pcapng', 'ipxe-tftp.pcapng']) {
      const u = captureDatagrams(name);
      t.ok(u.length > 0, `${name}: ${u.length} UDP datagrams`);
      t.equal(u[0]?.dstPort, 69, `${name}: starts with a request to port 69`);
    }
  });
});

/** A BOOTREQUEST with `main` as its options field and optional raw file and sname fields. */
function craft(main: readonly number[], o: { hlen?: number; cookie?: number; file?: readonly number[]; sname?: readonly number[] } = {}): Buffer {
  const b = Buffer.alloc(240);
  b[0] = 1;
  b[1] = 1;
  b[2] = o.hlen ?? 6;
  b.writeUInt32BE(0x11223344, 4);
  Buffer.from('525400123456', 'hex').copy(b, 28);
  if (o.sname) Buffer.from(o.sname).copy(b, 44);
  if (o.file) Buffer.from(o.file).copy(b, 108);
  b.writeUInt32BE(o.cookie ?? MAGIC_COOKIE, 236);
  return Buffer.concat([b, Buffer.from(main)]);
}
const ascii = (s: string): number[] => [...Buffer.from(s, 'latin1')];
const DISCOVER = [53, 1, 1];

function decodeOk(tt: Test, b: Buffer, what: string): DhcpPacket | undefined {
  const r = decodeDhcp(b);
  if (!r.ok) {
    tt.fail(`${what}: dropped as ${r.reason}`);
    return undefined;
  }
  tt.ok(encodeDhcp(r.value).equals(b), `${what}: re-encodes byte for byte`);
  return r.value;
}

t.test('crafted packets: drop reasons', async (t) => {
  const reason = (b: Buffer) => {
    const r = decodeDhcp(b);
    return r.ok ? 'ok' : r.reason;
  };
  t.equal(reason(Buffer.alloc(0)), 'short');
  t.equal(reason(craft(DISCOVER).subarray(0, 239)), 'short', 'one byte short of the cookie');
  t.equal(reason(craft([])), 'ok', 'header and cookie alone: an empty options field');
  t.equal(reason(craft(DISCOVER, { cookie: 0x63825364 })), 'bad_magic');
  t.equal(reason(craft(DISCOVER, { cookie: 0 })), 'bad_magic', 'BOOTP with an empty vend field');
  t.equal(reason(craft(DISCOVER, { hlen: 17 })), 'bad_hlen');
  t.equal(reason(craft(DISCOVER, { hlen: 16 })), 'ok', 'hlen 16 fills chaddr');
  t.equal(reason(craft(DISCOVER, { hlen: 0 })), 'ok', 'hlen 0 (RFC 4390)');
  t.equal(reason(craft([...DISCOVER, 12, 10, ...ascii('ab')])), 'option_overrun', 'a length past the end');
  t.equal(reason(craft([...DISCOVER, 12, 3, ...ascii('ab')])), 'option_overrun', 'a length one byte past the end');
  t.equal(reason(craft([...DISCOVER, 12])), 'option_overrun', 'a code with no length byte');
  t.equal(reason(craft([...DISCOVER, 12, 2, ...ascii('ab')])), 'ok', 'a length exactly to the end');
  for (const [what, o52] of [
    ['value 0', [52, 1, 0]],
    ['value 4', [52, 1, 4]],
    ['value 255', [52, 1, 255]],
    ['2 bytes', [52, 2, 1, 1]],
    ['no bytes', [52, 0]],
  ] as const) {
    t.equal(reason(craft([...DISCOVER, ...o52, 255])), 'bad_overload', `option 52 with ${what}`);
  }
  t.equal(reason(craft([...DISCOVER, 52, 1, 1, 255], { file: [12, 200] })), 'option_overrun', 'an overrun inside an overloaded file field');
  t.equal(reason(craft([...DISCOVER, 52, 1, 2, 255], { sname: [12, 70] })), 'option_overrun', 'an overrun inside an overloaded sname field');
  t.equal(reason(craft([...DISCOVER, 52, 1, 1, 255], { sname: [12, 70] })), 'ok', 'sname is not read when only file is overloaded');
  t.equal(reason(craft([...DISCOVER, 52, 1, 2, 255], { file: [12, 200] })), 'ok', 'file is not read when only sname is overloaded');
});

t.test('crafted packets: accepted layouts', async (t) => {
  t.test('missing END', async (t) => {
    const p = decodeOk(t, craft([...DISCOVER, 12, 3, ...ascii('abc')]), 'no END');
    t.equal(p?.layout.main.ended, false);
    t.equal(p && messageType(p.options), 'discover');
    t.equal(latin1(p?.options.get(12)), 'abc');
  });

  t.test('pads and a trailer after END', async (t) => {
    const p = decodeOk(t, craft([0, 0, ...DISCOVER, 0, 12, 1, 0x41, 255, 0, 7, 0]), 'pads');
    if (!p) return;
    t.same([...p.options.keys()], [53, 12], 'pads are not options');
    t.same(
      p.layout.main.options.map((o) => o.code),
      [0, 0, 53, 0, 12, 255],
    );
    t.same([...p.layout.main.trailer], [0, 7, 0], 'bytes after END are kept as they were');
    t.equal(p.layout.main.ended, true);
  });

  t.test('RFC 3396: pieces of one option are concatenated in order', async (t) => {
    const p = decodeOk(t, craft([...DISCOVER, 43, 3, ...ascii('abc'), 1, 4, 255, 255, 255, 0, 43, 2, ...ascii('de'), 43, 0, 255]), 'split 43');
    t.equal(latin1(p?.options.get(43)), 'abcde');
    t.same(p?.options.get(1), Buffer.from([255, 255, 255, 0]));
    t.same(
      p?.layout.main.options.filter((o) => o.code === 43).map((o) => o.data.length),
      [3, 2, 0],
      'the layout keeps the pieces',
    );
  });

  t.test('overload into file and sname: main, then file, then sname', async (t) => {
    const b = craft([...DISCOVER, 52, 1, 3, 12, 2, ...ascii('ma'), 255], {
      file: [12, 2, ...ascii('fi'), 60, 3, ...ascii('vcx'), 0, 255],
      sname: [12, 2, ...ascii('sn'), 66, 4, ...ascii('tftp'), 255],
    });
    const p = decodeOk(t, b, 'overload 3');
    if (!p) return;
    t.equal(latin1(p.options.get(12)), 'mafisn', 'RFC 3396 order across fields');
    t.equal(latin1(p.options.get(60)), 'vcx');
    t.equal(latin1(p.options.get(66)), 'tftp');
    t.same(p.options.get(52), Buffer.from([3]));
    t.same(wireCodes(p.layout.file), [12, 60]);
    t.same(wireCodes(p.layout.sname), [12, 66]);
    t.same([...p.options.keys()], [53, 52, 12, 60, 66]);
  });

  t.test('overload into file only, without END in file', async (t) => {
    const file = [12, 124, ...Array.from({ length: 124 }, () => 0x7a), 0, 0];
    const p = decodeOk(t, craft([...DISCOVER, 52, 1, 1, 255], { file, sname: ascii('server.example') }), 'overload 1');
    t.equal(p?.options.get(12)?.length, 124);
    t.equal(p?.layout.file?.ended, false, 'the file area ends with its field');
    t.equal(p && fieldText(p.sname), 'server.example', 'sname still holds a name');
    t.equal(p?.layout.sname, undefined);
  });

  t.test('an overload option inside file is ignored (no loop, sname not read)', async (t) => {
    const p = decodeOk(t, craft([...DISCOVER, 52, 1, 1, 255], { file: [52, 1, 2, 12, 1, 0x78, 255], sname: [12, 70, 1] }), 'nested 52');
    if (!p) return;
    t.same(p.options.get(52), Buffer.from([1]), 'the value is the main field’s');
    t.equal(p.layout.sname, undefined, 'sname not parsed');
    t.equal(latin1(p.options.get(12)), 'x');
    t.same(wireCodes(p.layout.file), [52, 12], 'the layout keeps it for re-encoding');
  });
});

t.test('typed option accessors on crafted packets', async (t) => {
  const circuit = ascii('eth0/1:vlan40');
  const remote = [0x00, 0x24, 0xd7, 0xba, 0x0b, 0x20];
  const p = mustDecode(
    craft([
      ...DISCOVER,
      82,
      2 + circuit.length + 2 + remote.length + 3,
      1,
      circuit.length,
      ...circuit,
      2,
      remote.length,
      ...remote,
      9,
      1,
      7,
      50,
      4,
      10,
      77,
      0,
      130,
      54,
      4,
      10,
      77,
      0,
      1,
      57,
      2,
      0x05,
      0xc0,
      55,
      4,
      1,
      3,
      67,
      175,
      12,
      6,
      ...ascii('host\0\0'),
      255,
    ]),
  );
  const relay = relayAgent(p.options);
  t.equal(latin1(relay?.circuitId), 'eth0/1:vlan40');
  t.equal(hex(relay?.remoteId), '0024d7ba0b20');
  t.equal(relay?.raw.length, 2 + circuit.length + 2 + remote.length + 3, 'raw keeps every sub-option');
  t.equal(requestedIp(p.options), '10.77.0.130');
  t.equal(serverId(p.options), '10.77.0.1');
  t.equal(maxMessageSize(p.options), 1472);
  t.same(parameterRequestList(p.options), [1, 3, 67, 175]);
  t.equal(hostName(p.options), 'host', 'a NUL-terminated text option');

  const odd = mustDecode(craft([...DISCOVER, 82, 4, 1, 9, 0x41, 0x42, 57, 2, 0x01, 0xf4, 54, 3, 10, 0, 0, 93, 1, 0, 255]));
  const badRelay = relayAgent(odd.options);
  t.same(
    badRelay && { raw: hex(badRelay.raw), circuitId: badRelay.circuitId, remoteId: badRelay.remoteId },
    { raw: '01094142', circuitId: undefined, remoteId: undefined },
    'an overrunning sub-option: raw only',
  );
  t.equal(maxMessageSize(odd.options), undefined, 'a maximum below 576 is ignored');
  t.equal(serverId(odd.options), undefined, 'a 3-byte address is no address');
  t.same(clientArchs(odd.options), [], 'an odd-length 93');
  t.equal(relayAgent(mustDecode(craft(DISCOVER)).options), undefined, 'no 82');
  t.same(subOptions(Buffer.from([0, 0, 1, 1, 0x41, 255, 9, 9])), new Map([[1, Buffer.from('A')]]), 'pads skipped, END stops');
  t.equal(subOptions(Buffer.from([1])), undefined, 'a code without a length');
  t.equal(subOptions(undefined), undefined);
  t.equal(messageType(mustDecode(craft([53, 1, 9])).options), undefined, 'an unknown message type');
  t.equal(messageType(mustDecode(craft([53, 2, 1, 1])).options), undefined, 'a 2-byte message type');
});

t.test('fieldText', async (t) => {
  t.equal(fieldText(Buffer.alloc(128)), undefined);
  t.equal(fieldText(Buffer.concat([Buffer.from('pxelinux.0'), Buffer.alloc(118)])), 'pxelinux.0');
  t.equal(fieldText(Buffer.alloc(64, 0x61)), 'a'.repeat(64), 'no NUL: the whole field');
  t.equal(fieldText(Buffer.from([0x61, 0, 0x62])), 'a', 'stops at the first NUL');
});

const CHADDR = Buffer.concat([Buffer.from('525400770001', 'hex'), Buffer.alloc(10)]);
const HEADER: ReplyHeader = {
  op: 2,
  htype: 1,
  hlen: 6,
  hops: 0,
  xid: 0x77c68067,
  secs: 0,
  flags: 0x8000,
  ciaddr: '0.0.0.0',
  yiaddr: '10.77.0.130',
  siaddr: '10.77.0.1',
  giaddr: '0.0.0.0',
  chaddr: CHADDR,
};
/** Bytes 0, 1, 2, … (mod 251) tagged with `tag` so that different options differ. */
const filler = (n: number, tag: number) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 7 + tag) % 251));
const BASIC: [number, Buffer][] = [
  [53, Buffer.from([2])],
  [54, ipv4Bytes('10.77.0.1')],
  [51, Buffer.from([0, 0, 14, 16])],
  [1, ipv4Bytes('255.255.255.0')],
  [3, ipv4Bytes('10.77.0.1')],
  [6, ipv4Bytes('10.77.0.1')],
];

/** Decodes a built reply and checks it against the header and the option list. */
function checkReply(tt: Test, r: ReturnType<typeof buildReply>, options: readonly [number, Buffer][], limit: number): DhcpPacket | undefined {
  if (!r.ok) {
    tt.fail(`reply not built: ${r.reason}`);
    return undefined;
  }
  tt.ok(r.packet.length <= limit, `${r.packet.length} bytes ≤ ${limit}`);
  tt.ok(r.packet.length >= 300, `${r.packet.length} bytes ≥ 300`);
  const p = decodeOk(tt, r.packet, 'reply');
  if (!p) return undefined;
  tt.equal(p.op, 2);
  tt.equal(p.xid, HEADER.xid);
  tt.equal(hardwareAddress(p), '52:54:00:77:00:01');
  tt.equal(p.yiaddr, HEADER.yiaddr);
  tt.equal(p.siaddr, HEADER.siaddr);
  tt.equal(p.flags, HEADER.flags);
  const got = new Map([...p.options].filter(([code]) => code !== 52));
  tt.same(got, new Map(options), 'decodes back to every option');
  tt.same(
    [...got.keys()],
    options.map(([c]) => c),
    'in order',
  );
  return p;
}

t.test('buildReply', async (t) => {
  t.test('a short reply is zero-padded to 300 bytes', async (t) => {
    const r = buildReply(HEADER, BASIC);
    const p = checkReply(t, r, BASIC, 548);
    t.equal(r.ok && r.packet.length, 300);
    t.equal(p?.layout.main.ended, true);
    t.ok(
      p?.layout.main.trailer.every((b) => b === 0),
      'padding is zeros',
    );
    t.equal(p?.layout.file, undefined, 'no overload');
    t.equal(r.ok && r.packet.readUInt32BE(236), MAGIC_COOKIE);
    t.same(r.ok && [...r.packet.subarray(240, 243)], [53, 1, 2], 'options start after the cookie in list order');
  });

  t.test('file and sname text', async (t) => {
    const r = buildReply({ ...HEADER, file: 'ipxe.efi', sname: '10.77.0.1' }, BASIC);
    const p = checkReply(t, r, BASIC, 548);
    t.equal(p && fieldText(p.file), 'ipxe.efi');
    t.equal(p && fieldText(p.sname), '10.77.0.1');
    t.same(buildReply({ ...HEADER, file: 'f'.repeat(128) }, BASIC), { ok: false, reason: 'file or sname too long for its field' }, 'a file name needs its NUL');
    t.equal(buildReply({ ...HEADER, file: 'f'.repeat(127) }, BASIC).ok, true);
    t.equal(buildReply({ ...HEADER, sname: 's'.repeat(64) }, BASIC).ok, false);
    t.equal(buildReply({ ...HEADER, sname: 's'.repeat(63) }, BASIC).ok, true);
  });

  t.test('a 600-byte option is split into pieces (RFC 3396) and decodes back', async (t) => {
    const big = filler(600, 43);
    const options: [number, Buffer][] = [...BASIC, [43, big], [67, Buffer.from('ipxe.efi')]];
    const r = buildReply(HEADER, options, 1500);
    const p = checkReply(t, r, options, 1472);
    t.same(
      p?.layout.main.options.filter((o) => o.code === 43).map((o) => o.data.length),
      [255, 255, 90],
    );
    t.same(
      p?.layout.main.options.map((o) => o.code),
      [53, 54, 51, 1, 3, 6, 43, 43, 43, 67, 255],
      'pieces are consecutive',
    );
    t.equal(r.ok && r.packet.length, 240 + 3 + 5 * 6 + 3 * 2 + 600 + 10 + 1);
    const at576 = buildReply(HEADER, options);
    t.equal(at576.ok, false, 'at 576 bytes it cannot fit: a 255-byte piece fits neither file nor sname');
    t.match(!at576.ok && at576.reason, /576-byte message/);
  });

  // At 576: 548 bytes of DHCP, 308 of options field (307 with END).
  const OVERFLOW: [number, Buffer][] = [
    ...BASIC, // 33 bytes
    [15, Buffer.from('a-rather-long-domain-name.lab.example.com')], // 43
    [224, filler(199, 224)], // 201: 277 so far
    [225, filler(50, 225)], // 52: 329 > 307, spills
    [226, filler(70, 226)], // 72
    [227, filler(40, 227)], // 42
  ];

  t.test('at 576 bytes, options beyond the options field go to file, then sname (option 52)', async (t) => {
    const r = buildReply(HEADER, OVERFLOW, 576);
    const p = checkReply(t, r, OVERFLOW, 548);
    if (!p) return;
    t.same(p.options.get(52), Buffer.from([3]), 'file and sname both used');
    t.same(wireCodes(p.layout.main), [52, 53, 54, 51, 1, 3, 6, 15, 224]);
    t.same(wireCodes(p.layout.file), [225, 226]);
    t.same(wireCodes(p.layout.sname), [227]);
    t.equal(r.ok && r.packet.length, 240 + 3 + 277 + 1);
    t.same(buildReply(HEADER, OVERFLOW, 300), r, 'a smaller maximum than 576 counts as 576');
    t.same(buildReply(HEADER, OVERFLOW), r, '576 is the default');
  });

  t.test('with a boot file name set, only sname takes options', async (t) => {
    const options = OVERFLOW.filter(([c]) => c !== 226 && c !== 227);
    const r = buildReply({ ...HEADER, file: 'ipxe.efi' }, options, 576);
    const p = checkReply(t, r, options, 548);
    t.same(p?.options.get(52), Buffer.from([2]));
    t.equal(p && fieldText(p.file), 'ipxe.efi');
    t.same(wireCodes(p?.layout.sname), [225]);
    t.equal(buildReply({ ...HEADER, file: 'ipxe.efi' }, OVERFLOW, 576).ok, false, '225, 226 and 227 do not all fit in sname');
    t.equal(buildReply({ ...HEADER, file: 'ipxe.efi', sname: 'boot' }, options, 576).ok, false, 'neither field free');
  });

  t.test('the options field exactly full, and one byte more', async (t) => {
    // 33 + 202 + 72 = 307 bytes: with END exactly 548.
    const exact: [number, Buffer][] = [...BASIC, [224, filler(200, 1)], [225, filler(70, 2)]];
    const r = buildReply(HEADER, exact, 576);
    const p = checkReply(t, r, exact, 548);
    t.equal(r.ok && r.packet.length, 548);
    t.equal(p?.options.has(52), false, 'no overload');
    // One more byte: 225 goes to file.
    const over: [number, Buffer][] = [...BASIC, [224, filler(200, 1)], [225, filler(71, 2)]];
    const p1 = checkReply(t, buildReply(HEADER, over, 576), over, 548);
    t.same(p1?.options.get(52), Buffer.from([1]));
    t.same(wireCodes(p1?.layout.file), [225]);
    // A small option after a full field: the last main option (225) makes room for option 52.
    const small: [number, Buffer][] = [...exact, [226, filler(10, 3)]];
    const p2 = checkReply(t, buildReply(HEADER, small, 576), small, 548);
    t.same(wireCodes(p2?.layout.main), [52, 53, 54, 51, 1, 3, 6, 224]);
    t.same(wireCodes(p2?.layout.file), [225, 226], 'the moved option keeps its place in the order');
    // When the option that has to move is too long for file, the reply cannot be built.
    const stuck: [number, Buffer][] = [...BASIC, [224, filler(130, 1)], [225, filler(140, 2)], [226, filler(10, 3)]];
    t.equal(buildReply(HEADER, stuck, 576).ok, false);
  });

  t.test('a split option may continue in file (RFC 3396 across fields)', async (t) => {
    const split: [number, Buffer][] = [...BASIC, [224, filler(272, 1)]];
    const p = checkReply(t, buildReply(HEADER, split, 576), split, 548);
    t.same(
      p?.layout.main.options.filter((o) => o.code === 224).map((o) => o.data.length),
      [255],
    );
    t.same(
      p?.layout.file?.options.filter((o) => o.code === 224).map((o) => o.data.length),
      [17],
    );
  });

  t.test('fails cleanly when file and sname are not enough', async (t) => {
    const tooMuch: [number, Buffer][] = [...OVERFLOW, [228, filler(60, 228)], [229, filler(60, 229)]];
    const r = buildReply(HEADER, tooMuch, 576);
    t.same(r, { ok: false, reason: 'options need more than the 576-byte message the client accepts' });
    t.same(buildReply(HEADER, tooMuch, 400), r, 'a maximum below 576 is reported as the 576 used');
    t.equal(buildReply(HEADER, tooMuch, 1500).ok, true, 'a larger maximum fits it');
  });

  t.test('never exceeds the limit (seeded random option lists)', async (t) => {
    let seed = 0x5eed1234;
    const rnd = (n: number) => {
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return (seed >>> 0) % n;
    };
    let built = 0;
    let overloaded = 0;
    let refused = 0;
    const problems: string[] = [];
    for (let i = 0; i < 3000; i++) {
      const codes = new Set<number>();
      const options: [number, Buffer][] = [];
      const count = 1 + rnd(14);
      while (options.length < count) {
        const code = 1 + rnd(254);
        if (code === 52 || codes.has(code)) continue;
        codes.add(code);
        const len = rnd(4) === 0 ? rnd(700) : rnd(60);
        options.push([code, filler(len, code)]);
      }
      const max = [undefined, 0, 576, 577, 600, 1000, 1500][rnd(7)];
      const limit = Math.max(max ?? 576, 576) - 28;
      const file = rnd(4) === 0 ? 'ipxe.efi' : undefined;
      const r = buildReply({ ...HEADER, ...(file && { file }) }, options, max);
      const wireBytes = options.reduce((n, [, d]) => n + d.length + 2 * Math.max(1, Math.ceil(d.length / 255)), 0);
      if (!r.ok) {
        refused++;
        if (240 + wireBytes + 1 <= limit) problems.push(`#${i}: refused ${wireBytes} bytes of options under ${limit}`);
        continue;
      }
      built++;
      if (r.packet.length > limit || r.packet.length < 300) problems.push(`#${i}: ${r.packet.length} bytes, limit ${limit}`);
      const d = decodeDhcp(r.packet);
      if (!d.ok) {
        problems.push(`#${i}: does not decode: ${d.reason}`);
        continue;
      }
      if (d.value.options.has(52)) overloaded++;
      const got = [...d.value.options].filter(([c]) => c !== 52);
      if (got.length !== options.length || got.some(([c, v], k) => options[k]?.[0] !== c || !options[k][1].equals(v)))
        problems.push(`#${i}: options differ after decoding`);
      if (file && fieldText(d.value.file) !== file) problems.push(`#${i}: file name lost`);
    }
    t.same(problems.slice(0, 10), [], 'every reply fits, decodes back, and only too-large lists are refused');
    t.ok(built > 1000 && overloaded > 100 && refused > 100, `built ${built} (${overloaded} overloaded), refused ${refused}`);
  });
});

t.test('buildReply keeps the relay agent option last in the options field, even when others spill', async (t) => {
  const agent: [number, Buffer] = [82, Buffer.from([1, 4, 0x65, 0x74, 0x68, 0x30, 2, 3, 1, 2, 3])];
  const big: [number, Buffer][] = [...BASIC, [43, Buffer.alloc(200, 7)], [125, Buffer.alloc(90, 9)]];
  const r = buildReply(HEADER, big, 576, agent);
  if (!r.ok) return t.fail(r.reason);
  t.ok(r.packet.length <= 548, 'within 576 - 28');
  const p = decodeOk(t, r.packet, 'reply');
  if (!p) return;
  t.ok(p.layout.file !== undefined, 'something spilled into file');
  const main = p.layout.main.options.filter((o) => o.code !== 0);
  t.equal(main.at(-2)?.code, 82, 'option 82 is the last option before END in the options field');
  t.same(p.options.get(82), agent[1], 'echoed unchanged');
  t.same(p.options.get(43), Buffer.alloc(200, 7), 'the spilled option reads back');
});

t.test('buildReply refuses the codes the encoder writes itself', async (t) => {
  for (const code of [0, 52, 255]) {
    const r = buildReply(HEADER, [...BASIC, [code, Buffer.from([1])]]);
    t.equal(r.ok, false, `option ${code} refused`);
  }
});
