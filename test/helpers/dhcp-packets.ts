/**
 * Hand-built DHCP requests for the lease and responder unit tests, encoded here (not with the
 * codec under test) and decoded with `decodeDhcp`, plus small readers of reply options.
 */
import { decodeDhcp, type DhcpPacket } from '../../src/dhcp/codec.js';

export interface RequestSpec {
  /** Option 53; omitted for a BOOTP request. */
  type?: number;
  mac: string;
  op?: number;
  xid?: number;
  flags?: number;
  ciaddr?: string;
  giaddr?: string;
  /** Further options in wire order (53 is written first, END last). */
  options?: readonly (readonly [number, Buffer])[];
}

export const DHCP_TYPE = { discover: 1, offer: 2, request: 3, decline: 4, ack: 5, nak: 6, release: 7, inform: 8 } as const;

const COOKIE = Buffer.from([0x63, 0x82, 0x53, 0x63]);

function ipBytes(ip: string): Buffer {
  const parts = ip.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) throw new Error(`bad test IPv4 address ${ip}`);
  return Buffer.from(parts);
}

function macBytes(mac: string): Buffer {
  const b = Buffer.from(mac.split(':').map((h) => parseInt(h, 16)));
  if (b.length !== 6) throw new Error(`bad test MAC ${mac}`);
  return b;
}

/** The wire bytes of a client request: 236-byte header, magic cookie, options, END, padded to 300. */
export function encodeRequest(spec: RequestSpec): Buffer {
  const header = Buffer.alloc(236);
  header[0] = spec.op ?? 1;
  header[1] = 1; // Ethernet
  header[2] = 6;
  header.writeUInt32BE((spec.xid ?? 0x1234abcd) >>> 0, 4);
  header.writeUInt16BE(spec.flags ?? 0, 10);
  ipBytes(spec.ciaddr ?? '0.0.0.0').copy(header, 12);
  ipBytes(spec.giaddr ?? '0.0.0.0').copy(header, 24);
  macBytes(spec.mac).copy(header, 28);
  const opts: Buffer[] = [];
  const all: (readonly [number, Buffer])[] = [...(spec.type !== undefined ? [[53, Buffer.from([spec.type])] as const] : []), ...(spec.options ?? [])];
  for (const [code, data] of all) {
    if (data.length > 255) throw new Error(`test option ${code} longer than 255 bytes`);
    opts.push(Buffer.from([code, data.length]), data);
  }
  opts.push(Buffer.from([255]));
  const packet = Buffer.concat([header, COOKIE, ...opts]);
  return packet.length >= 300 ? packet : Buffer.concat([packet, Buffer.alloc(300 - packet.length)]);
}

/** Decodes bytes the test expects to be a valid DHCP packet; anything else throws. */
export function decodeOrThrow(b: Buffer): DhcpPacket {
  const r = decodeDhcp(b);
  if (!r.ok) throw new Error(`packet does not decode: ${r.reason}`);
  return r.value;
}

/** A request as the responder receives it: encoded, then decoded by the codec. */
export const request = (spec: RequestSpec): DhcpPacket => decodeOrThrow(encodeRequest(spec));

/** Option value builders. */
export const opt = {
  ip: ipBytes,
  ips: (...ips: string[]): Buffer => Buffer.concat(ips.map(ipBytes)),
  text: (s: string): Buffer => Buffer.from(s, 'latin1'),
  u8: (n: number): Buffer => Buffer.from([n]),
  u16: (n: number): Buffer => {
    const b = Buffer.alloc(2);
    b.writeUInt16BE(n);
    return b;
  },
  bytes: (...n: number[]): Buffer => Buffer.from(n),
  /** Encapsulated sub-options (43, 82, 175). */
  subs: (...subs: [number, Buffer][]): Buffer => Buffer.concat(subs.flatMap(([c, d]) => [Buffer.from([c, d.length]), d])),
};

/** Option readers for decoded replies; undefined when the option is absent or malformed. */
export function ipOption(p: DhcpPacket, code: number): string | undefined {
  const v = p.options.get(code);
  return v?.length === 4 ? [...v].join('.') : undefined;
}

export function ipsOption(p: DhcpPacket, code: number): string[] | undefined {
  const v = p.options.get(code);
  if (!v || v.length % 4 !== 0) return undefined;
  const out: string[] = [];
  for (let i = 0; i < v.length; i += 4) out.push([...v.subarray(i, i + 4)].join('.'));
  return out;
}

export function u32Option(p: DhcpPacket, code: number): number | undefined {
  const v = p.options.get(code);
  return v?.length === 4 ? v.readUInt32BE(0) : undefined;
}

export function u8Option(p: DhcpPacket, code: number): number | undefined {
  const v = p.options.get(code);
  return v?.length === 1 ? v[0] : undefined;
}

export function textOption(p: DhcpPacket, code: number): string | undefined {
  return p.options.get(code)?.toString('latin1');
}

/** Sub-options of an encapsulated option, as code → bytes; throws when malformed. */
export function subOptionsOf(p: DhcpPacket, code: number): Map<number, number[]> | undefined {
  const v = p.options.get(code);
  if (!v) return undefined;
  const out = new Map<number, number[]>();
  let i = 0;
  while (i < v.length) {
    const c = v[i] as number;
    const len = v[i + 1];
    if (len === undefined || i + 2 + len > v.length) throw new Error(`option ${code} has a malformed sub-option at ${i}`);
    out.set(c, [...v.subarray(i + 2, i + 2 + len)]);
    i += 2 + len;
  }
  return out;
}

/** The option codes of the main options area in wire order, without PAD and END. */
export const mainOptionCodes = (p: DhcpPacket): number[] => p.layout.main.options.filter((o) => o.code !== 0 && o.code !== 255).map((o) => o.code);

/** A NUL-terminated fixed field (file, sname) as text; undefined when empty. */
export function fixedField(b: Buffer): string | undefined {
  const nul = b.indexOf(0);
  const s = b.subarray(0, nul === -1 ? b.length : nul).toString('latin1');
  return s === '' ? undefined : s;
}
