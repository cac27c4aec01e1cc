/**
 * DHCPv4 packets (RFC 2131 §2, RFC 2132) as plain data. Pure and total: decoding never throws;
 * a packet it cannot read comes back as a named drop reason. A decoded packet keeps its wire
 * layout (option order, repeated pieces, pads, overloaded fields, trailing bytes) so that it
 * re-encodes byte for byte; replies are built from an ordered option list instead.
 */
export const MAGIC_COOKIE = 0x63825363;
const HEADER_BYTES = 236;
const OPTIONS_START = HEADER_BYTES + 4;
const SNAME_AT = 44;
const SNAME_BYTES = 64;
const FILE_AT = 108;
const FILE_BYTES = 128;
/** RFC 2131 §2: every client must accept 576-byte messages; BOOTP relays want at least 300. */
export const MIN_MAX_MESSAGE = 576;
export const BOOTP_MIN_BYTES = 300;
/** IPv4 (20) + UDP (8) headers, subtracted from an option-57 size to get the DHCP payload. */
const IP_UDP_BYTES = 28;

export const OPT_PAD = 0;
export const OPT_OVERLOAD = 52;
export const OPT_END = 255;

export type DropReason = 'short' | 'bad_magic' | 'bad_hlen' | 'option_overrun' | 'bad_overload';

export type Decoded<T> = { ok: true; value: T } | { ok: false; reason: DropReason };

/** One TLV as it was on the wire (code 0 and 255 carry no data). */
export interface WireOption {
  code: number;
  data: Buffer;
}

export interface OptionArea {
  options: WireOption[];
  /** Bytes after the END option (usually zero padding). */
  trailer: Buffer;
  /** Whether the area ended with an END option. */
  ended: boolean;
}

export interface DhcpPacket {
  op: number;
  htype: number;
  hlen: number;
  hops: number;
  xid: number;
  secs: number;
  flags: number;
  ciaddr: string;
  yiaddr: string;
  siaddr: string;
  giaddr: string;
  /** All 16 bytes of chaddr; the hardware address is the first `hlen`. */
  chaddr: Buffer;
  /** The raw 64-byte sname and 128-byte file fields. */
  sname: Buffer;
  file: Buffer;
  /** Options by code, repeated pieces concatenated (RFC 3396), overloaded fields included. */
  options: Map<number, Buffer>;
  layout: { main: OptionArea; file?: OptionArea; sname?: OptionArea };
}

export const ipv4At = (b: Buffer, at: number): string => `${b[at]}.${b[at + 1]}.${b[at + 2]}.${b[at + 3]}`;

export function writeIpv4(b: Buffer, at: number, ip: string): void {
  const parts = ip.split('.');
  for (let i = 0; i < 4; i++) b[at + i] = Number(parts[i] ?? 0) & 255;
}

export function ipv4Bytes(ip: string): Buffer {
  const b = Buffer.alloc(4);
  writeIpv4(b, 0, ip);
  return b;
}

/** `aa:bb:…` of the first hlen bytes of chaddr. */
export function hardwareAddress(p: Pick<DhcpPacket, 'chaddr' | 'hlen'>): string {
  const parts: string[] = [];
  for (let i = 0; i < Math.min(p.hlen, 16); i++) parts.push((p.chaddr[i] ?? 0).toString(16).padStart(2, '0'));
  return parts.join(':');
}

function readArea(buf: Buffer, start: number, end: number): OptionArea | undefined {
  const options: WireOption[] = [];
  let i = start;
  while (i < end) {
    const code = buf[i] as number;
    if (code === OPT_PAD) {
      options.push({ code, data: EMPTY });
      i++;
      continue;
    }
    if (code === OPT_END) {
      options.push({ code, data: EMPTY });
      return { options, trailer: buf.subarray(i + 1, end), ended: true };
    }
    if (i + 1 >= end) return undefined;
    const len = buf[i + 1] as number;
    if (i + 2 + len > end) return undefined;
    options.push({ code, data: buf.subarray(i + 2, i + 2 + len) });
    i += 2 + len;
  }
  // No END: tolerated (some relays and firmware omit it); the area ends with the buffer.
  return { options, trailer: EMPTY, ended: false };
}

const EMPTY = Buffer.alloc(0);

export function decodeDhcp(buf: Buffer): Decoded<DhcpPacket> {
  if (buf.length < OPTIONS_START) return { ok: false, reason: 'short' };
  if (buf.readUInt32BE(HEADER_BYTES) !== MAGIC_COOKIE) return { ok: false, reason: 'bad_magic' };
  const hlen = buf[2] as number;
  if (hlen > 16) return { ok: false, reason: 'bad_hlen' };
  const main = readArea(buf, OPTIONS_START, buf.length);
  if (!main) return { ok: false, reason: 'option_overrun' };
  const layout: DhcpPacket['layout'] = { main };
  // RFC 2131 §4.1: with option 52, `file` then `sname` hold further options. An overload
  // option inside those fields is ignored: it cannot overload again.
  const overload = main.options.find((o) => o.code === OPT_OVERLOAD)?.data;
  if (overload !== undefined) {
    const v = overload.length === 1 ? (overload[0] as number) : 0;
    if (v < 1 || v > 3) return { ok: false, reason: 'bad_overload' };
    if (v & 1) {
      const a = readArea(buf, FILE_AT, FILE_AT + FILE_BYTES);
      if (!a) return { ok: false, reason: 'option_overrun' };
      layout.file = a;
    }
    if (v & 2) {
      const a = readArea(buf, SNAME_AT, SNAME_AT + SNAME_BYTES);
      if (!a) return { ok: false, reason: 'option_overrun' };
      layout.sname = a;
    }
  }
  const options = new Map<number, Buffer>();
  for (const area of [main, layout.file, layout.sname]) {
    if (!area) continue;
    for (const o of area.options) {
      if (o.code === OPT_PAD || o.code === OPT_END) continue;
      if (area !== main && o.code === OPT_OVERLOAD) continue;
      const prev = options.get(o.code);
      // RFC 3396 §5: pieces of one option, in order of appearance, form its value.
      options.set(o.code, prev ? Buffer.concat([prev, o.data]) : o.data);
    }
  }
  return {
    ok: true,
    value: {
      op: buf[0] as number,
      htype: buf[1] as number,
      hlen,
      hops: buf[3] as number,
      xid: buf.readUInt32BE(4),
      secs: buf.readUInt16BE(8),
      flags: buf.readUInt16BE(10),
      ciaddr: ipv4At(buf, 12),
      yiaddr: ipv4At(buf, 16),
      siaddr: ipv4At(buf, 20),
      giaddr: ipv4At(buf, 24),
      chaddr: buf.subarray(28, 44),
      sname: buf.subarray(SNAME_AT, SNAME_AT + SNAME_BYTES),
      file: buf.subarray(FILE_AT, FILE_AT + FILE_BYTES),
      options,
      layout,
    },
  };
}

function areaBytes(a: OptionArea): number {
  return a.options.reduce((n, o) => n + (o.code === OPT_PAD || o.code === OPT_END ? 1 : 2 + o.data.length), 0) + a.trailer.length;
}

function writeArea(out: Buffer, at: number, a: OptionArea): number {
  let i = at;
  for (const o of a.options) {
    out[i++] = o.code;
    if (o.code === OPT_PAD || o.code === OPT_END) continue;
    out[i++] = o.data.length;
    o.data.copy(out, i);
    i += o.data.length;
  }
  a.trailer.copy(out, i);
  return i + a.trailer.length;
}

function writeHeader(out: Buffer, p: Omit<DhcpPacket, 'options' | 'layout'>): void {
  out[0] = p.op;
  out[1] = p.htype;
  out[2] = p.hlen;
  out[3] = p.hops;
  out.writeUInt32BE(p.xid >>> 0, 4);
  out.writeUInt16BE(p.secs, 8);
  out.writeUInt16BE(p.flags, 10);
  writeIpv4(out, 12, p.ciaddr);
  writeIpv4(out, 16, p.yiaddr);
  writeIpv4(out, 20, p.siaddr);
  writeIpv4(out, 24, p.giaddr);
  p.chaddr.copy(out, 28, 0, 16);
  p.sname.copy(out, SNAME_AT, 0, SNAME_BYTES);
  p.file.copy(out, FILE_AT, 0, FILE_BYTES);
  out.writeUInt32BE(MAGIC_COOKIE, HEADER_BYTES);
}

/** Re-encodes a decoded packet from its layout: the exact bytes it was decoded from. */
export function encodeDhcp(p: DhcpPacket): Buffer {
  const out = Buffer.alloc(OPTIONS_START + areaBytes(p.layout.main));
  writeHeader(out, p);
  if (p.layout.file) writeArea(out, FILE_AT, p.layout.file);
  if (p.layout.sname) writeArea(out, SNAME_AT, p.layout.sname);
  writeArea(out, OPTIONS_START, p.layout.main);
  return out;
}

/** The fixed fields of a reply; sname and file as text, written into their fields when they fit. */
export type ReplyHeader = Omit<DhcpPacket, 'op' | 'sname' | 'file' | 'options' | 'layout'> & {
  op: 2;
  sname?: string;
  file?: string;
};

export type BuildResult = { ok: true; packet: Buffer } | { ok: false; reason: string };

/** Splits a value longer than 255 bytes into consecutive pieces of one code (RFC 3396 §7). */
function pieces(code: number, data: Buffer): WireOption[] {
  if (data.length <= 255) return [{ code, data }];
  const out: WireOption[] = [];
  for (let i = 0; i < data.length; i += 255) out.push({ code, data: data.subarray(i, i + 255) });
  return out;
}

/**
 * A reply from an ordered option list. It fits in `maxMessage` bytes of IP datagram (option 57
 * of the request, else 576): options that do not fit the options field spill into `file` and
 * then `sname` with option 52 when those fields are not in use; if still too long, it fails.
 * Short replies are zero-padded to 300 bytes for BOOTP relays (RFC 1542 §2.1).
 */
export function buildReply(
  h: ReplyHeader,
  options: readonly [number, Buffer][],
  maxMessage = MIN_MAX_MESSAGE,
  trailing?: readonly [number, Buffer],
): BuildResult {
  const reserved = [...options, ...(trailing ? [trailing] : [])].find(([code]) => code === OPT_PAD || code === OPT_END || code === OPT_OVERLOAD);
  if (reserved) return { ok: false, reason: `option ${reserved[0]} is written by the encoder itself` };
  const limit = Math.max(maxMessage, MIN_MAX_MESSAGE) - IP_UDP_BYTES;
  // `trailing` (relay agent information) always stays last in the options field (RFC 3046 §2.2).
  const tail = trailing ? pieces(trailing[0], trailing[1]) : [];
  const room = limit - OPTIONS_START - 1 - tail.reduce((n, o) => n + 2 + o.data.length, 0); // 1: END
  if (room < 3) return { ok: false, reason: 'the relay agent information leaves no room for options' };
  const wire = options.flatMap(([code, data]) => pieces(code, data));
  const size = (o: WireOption) => 2 + o.data.length;
  const main: WireOption[] = [];
  const spill: WireOption[] = [];
  let used = 0;
  for (const o of wire) {
    if (spill.length === 0 && used + size(o) <= room) {
      main.push(o);
      used += size(o);
    } else spill.push(o);
  }
  const fileName = Buffer.from(h.file ?? '', 'latin1');
  const snameText = Buffer.from(h.sname ?? '', 'latin1');
  if (fileName.length > FILE_BYTES - 1 || snameText.length > SNAME_BYTES - 1) return { ok: false, reason: 'file or sname too long for its field' };
  let overload = 0;
  let fileArea: WireOption[] = [];
  let snameArea: WireOption[] = [];
  if (spill.length > 0) {
    // Option 52 itself takes 3 bytes of the options field.
    while (main.length > 0 && used + 3 > room) {
      const o = main.pop() as WireOption;
      spill.unshift(o);
      used -= size(o);
    }
    const fill = (capacity: number): WireOption[] => {
      const taken: WireOption[] = [];
      let n = 0;
      while (spill.length > 0 && n + size(spill[0] as WireOption) <= capacity - 1) {
        const o = spill.shift() as WireOption;
        taken.push(o);
        n += size(o);
      }
      return taken;
    };
    if (fileName.length === 0) {
      fileArea = fill(FILE_BYTES);
      if (fileArea.length) overload |= 1;
    }
    if (spill.length > 0 && snameText.length === 0) {
      snameArea = fill(SNAME_BYTES);
      if (snameArea.length) overload |= 2;
    }
    if (spill.length > 0) return { ok: false, reason: `options need more than the ${limit + IP_UDP_BYTES}-byte message the client accepts` };
    main.unshift({ code: OPT_OVERLOAD, data: Buffer.from([overload]) });
  }
  const mainArea: OptionArea = { options: [...main, ...tail, { code: OPT_END, data: EMPTY }], trailer: EMPTY, ended: true };
  const length = Math.max(OPTIONS_START + areaBytes(mainArea), BOOTP_MIN_BYTES);
  const out = Buffer.alloc(length);
  const sname = Buffer.alloc(SNAME_BYTES);
  const file = Buffer.alloc(FILE_BYTES);
  snameText.copy(sname);
  fileName.copy(file);
  writeHeader(out, { ...h, sname, file });
  if (overload & 1) writeArea(out, FILE_AT, { options: [...fileArea, { code: OPT_END, data: EMPTY }], trailer: EMPTY, ended: true });
  if (overload & 2) writeArea(out, SNAME_AT, { options: [...snameArea, { code: OPT_END, data: EMPTY }], trailer: EMPTY, ended: true });
  writeArea(out, OPTIONS_START, mainArea);
  return { ok: true, packet: out };
}

/** A NUL-terminated text field (sname, file) as a string; undefined when empty. */
export function fieldText(b: Buffer): string | undefined {
  const nul = b.indexOf(0);
  const s = b.subarray(0, nul === -1 ? b.length : nul).toString('latin1');
  return s === '' ? undefined : s;
}
