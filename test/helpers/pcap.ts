/**
 * A small reader of packet captures for tests: classic pcap (either byte order, microsecond or
 * nanosecond timestamps) and pcapng (SHB, IDB, EPB and SPB blocks, any section byte order).
 * It returns the UDP datagrams of IPv4 frames on Ethernet (with 802.1Q tags), Linux cooked
 * (SLL and SLL2) and raw-IP links; everything else (ARP, IPv6, TCP, non-first fragments) is
 * skipped. Malformed input throws: fixtures are expected to be well formed.
 */
import { readFileSync } from 'node:fs';

export interface UdpPacket {
  /** Index of the frame in the capture (0-based, counting every frame, UDP or not). */
  frame: number;
  /** Seconds since the epoch, with the capture's fractional precision. */
  timestamp: number;
  srcIp: string;
  srcPort: number;
  dstIp: string;
  dstPort: number;
  /** The UDP payload (a copy, not a view of the file). */
  payload: Buffer;
}

export const LINKTYPE_NULL = 0;
export const LINKTYPE_ETHERNET = 1;
export const LINKTYPE_RAW = 101;
export const LINKTYPE_LINUX_SLL = 113;
export const LINKTYPE_IPV4 = 228;
export const LINKTYPE_LINUX_SLL2 = 276;

interface Frame {
  timestamp: number;
  linkType: number;
  data: Buffer;
}

const ETHERTYPE_IPV4 = 0x0800;
const ETHERTYPE_VLAN = [0x8100, 0x88a8, 0x9100];

/** The IPv4 packet inside a link-layer frame, or undefined when it carries something else. */
function ipv4Of(linkType: number, d: Buffer): Buffer | undefined {
  switch (linkType) {
    case LINKTYPE_ETHERNET: {
      let at = 12;
      if (d.length < at + 2) return undefined;
      let type = d.readUInt16BE(at);
      while (ETHERTYPE_VLAN.includes(type) && d.length >= at + 6) {
        at += 4;
        type = d.readUInt16BE(at);
      }
      return type === ETHERTYPE_IPV4 ? d.subarray(at + 2) : undefined;
    }
    case LINKTYPE_LINUX_SLL:
      return d.length >= 16 && d.readUInt16BE(14) === ETHERTYPE_IPV4 ? d.subarray(16) : undefined;
    case LINKTYPE_LINUX_SLL2:
      return d.length >= 20 && d.readUInt16BE(0) === ETHERTYPE_IPV4 ? d.subarray(20) : undefined;
    case LINKTYPE_RAW:
    case LINKTYPE_IPV4:
      return d.length >= 1 && d[0] !== undefined && d[0] >> 4 === 4 ? d : undefined;
    case LINKTYPE_NULL:
      // The address family in the capturing host's byte order; 2 is AF_INET everywhere.
      return d.length >= 4 && (d.readUInt32LE(0) === 2 || d.readUInt32BE(0) === 2) ? d.subarray(4) : undefined;
    default:
      return undefined;
  }
}

function udpOf(frame: Frame, index: number): UdpPacket | undefined {
  const ip = ipv4Of(frame.linkType, frame.data);
  if (!ip || ip.length < 20) return undefined;
  const first = ip[0] as number;
  if (first >> 4 !== 4) return undefined;
  const ihl = (first & 15) * 4;
  if (ihl < 20 || ip.length < ihl) return undefined;
  if (ip[9] !== 17) return undefined;
  // Fragments: only an unfragmented datagram holds a whole UDP payload.
  const frag = ip.readUInt16BE(6);
  if ((frag & 0x2000) !== 0 || (frag & 0x1fff) !== 0) return undefined;
  const total = Math.min(ip.readUInt16BE(2), ip.length);
  const udp = ip.subarray(ihl, total);
  if (udp.length < 8) return undefined;
  const udpLen = Math.min(udp.readUInt16BE(4), udp.length);
  if (udpLen < 8) return undefined;
  const ipStr = (at: number) => `${ip[at]}.${ip[at + 1]}.${ip[at + 2]}.${ip[at + 3]}`;
  return {
    frame: index,
    timestamp: frame.timestamp,
    srcIp: ipStr(12),
    srcPort: udp.readUInt16BE(0),
    dstIp: ipStr(16),
    dstPort: udp.readUInt16BE(2),
    payload: Buffer.from(udp.subarray(8, udpLen)),
  };
}

const PCAP_MICRO = 0xa1b2c3d4;
const PCAP_NANO = 0xa1b23c4d;

function classicFrames(b: Buffer): Frame[] {
  const le = b.readUInt32LE(0);
  const little = le === PCAP_MICRO || le === PCAP_NANO;
  const magic = little ? le : b.readUInt32BE(0);
  if (magic !== PCAP_MICRO && magic !== PCAP_NANO) throw new Error('not a classic pcap file');
  const u32 = (at: number) => (little ? b.readUInt32LE(at) : b.readUInt32BE(at));
  const divisor = magic === PCAP_NANO ? 1e9 : 1e6;
  if (b.length < 24) throw new Error('pcap: short global header');
  // The link type is the low 16 bits (the upper ones may carry FCS information).
  const linkType = u32(20) & 0xffff;
  const frames: Frame[] = [];
  let at = 24;
  while (at < b.length) {
    if (at + 16 > b.length) throw new Error(`pcap: short record header at ${at}`);
    const sec = u32(at);
    const frac = u32(at + 4);
    const incl = u32(at + 8);
    if (at + 16 + incl > b.length) throw new Error(`pcap: record at ${at} runs past the end`);
    frames.push({ timestamp: sec + frac / divisor, linkType, data: b.subarray(at + 16, at + 16 + incl) });
    at += 16 + incl;
  }
  return frames;
}

const SHB = 0x0a0d0d0a;
const IDB = 0x00000001;
const SPB = 0x00000003;
const EPB = 0x00000006;
const BYTE_ORDER_MAGIC = 0x1a2b3c4d;

interface Interface {
  linkType: number;
  /** Timestamp units per second (if_tsresol, default 10^6). */
  unitsPerSecond: number;
  snapLen: number;
}

/** The if_tsresol option (code 9) of an IDB's options, as units per second. */
function tsResolution(opts: Buffer, little: boolean): number {
  let at = 0;
  while (at + 4 <= opts.length) {
    const code = little ? opts.readUInt16LE(at) : opts.readUInt16BE(at);
    const len = little ? opts.readUInt16LE(at + 2) : opts.readUInt16BE(at + 2);
    if (code === 0) break;
    if (code === 9 && len >= 1) {
      const v = opts[at + 4] as number;
      return v & 0x80 ? 2 ** (v & 0x7f) : 10 ** v;
    }
    at += 4 + Math.ceil(len / 4) * 4;
  }
  return 1e6;
}

function pcapngFrames(b: Buffer): Frame[] {
  const frames: Frame[] = [];
  let little = true;
  let interfaces: Interface[] = [];
  let at = 0;
  while (at < b.length) {
    if (at + 12 > b.length) throw new Error(`pcapng: short block header at ${at}`);
    if (b.readUInt32LE(at) === SHB) {
      const bom = b.readUInt32LE(at + 8);
      if (bom === BYTE_ORDER_MAGIC) little = true;
      else if (b.readUInt32BE(at + 8) === BYTE_ORDER_MAGIC) little = false;
      else throw new Error(`pcapng: bad byte-order magic at ${at}`);
      interfaces = [];
    }
    const u16 = (o: number) => (little ? b.readUInt16LE(o) : b.readUInt16BE(o));
    const u32 = (o: number) => (little ? b.readUInt32LE(o) : b.readUInt32BE(o));
    const type = u32(at);
    const total = u32(at + 4);
    if (total < 12 || total % 4 !== 0 || at + total > b.length) throw new Error(`pcapng: bad block length ${total} at ${at}`);
    if (u32(at + total - 4) !== total) throw new Error(`pcapng: trailing block length mismatch at ${at}`);
    const body = b.subarray(at + 8, at + total - 4);
    if (type === IDB) {
      interfaces.push({ linkType: u16(at + 8), snapLen: u32(at + 12), unitsPerSecond: tsResolution(body.subarray(8), little) });
    } else if (type === EPB) {
      const iface = interfaces[u32(at + 8)];
      if (!iface) throw new Error(`pcapng: packet for an undeclared interface at ${at}`);
      const ts = (BigInt(u32(at + 12)) << 32n) | BigInt(u32(at + 16));
      const capLen = u32(at + 20);
      if (28 + capLen > total) throw new Error(`pcapng: packet data past its block at ${at}`);
      const units = BigInt(iface.unitsPerSecond);
      const timestamp = Number(ts / units) + Number(ts % units) / iface.unitsPerSecond;
      frames.push({ timestamp, linkType: iface.linkType, data: b.subarray(at + 28, at + 28 + capLen) });
    } else if (type === SPB) {
      const iface = interfaces[0];
      if (!iface) throw new Error(`pcapng: simple packet without an interface at ${at}`);
      const origLen = u32(at + 8);
      const capLen = Math.min(origLen, total - 16, iface.snapLen === 0 ? origLen : iface.snapLen);
      frames.push({ timestamp: 0, linkType: iface.linkType, data: b.subarray(at + 12, at + 12 + capLen) });
    }
    at += total;
  }
  return frames;
}

/** Every UDP-over-IPv4 datagram of a capture held in memory, in capture order. */
export function parseCapture(b: Buffer): UdpPacket[] {
  if (b.length < 4) throw new Error('capture too short');
  const frames = b.readUInt32LE(0) === SHB ? pcapngFrames(b) : classicFrames(b);
  const out: UdpPacket[] = [];
  frames.forEach((f, i) => {
    const u = udpOf(f, i);
    if (u) out.push(u);
  });
  return out;
}

export const readCapture = (path: string): UdpPacket[] => parseCapture(readFileSync(path));
