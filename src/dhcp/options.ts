import type { DhcpPacket } from './codec.js';

/** Option codes used by edgeboot (RFC 2132, RFC 4578, RFC 3046, RFC 3004, iPXE). */
export const Opt = {
  SubnetMask: 1,
  Router: 3,
  DnsServers: 6,
  HostName: 12,
  DomainName: 15,
  VendorSpecific: 43,
  RequestedIp: 50,
  LeaseTime: 51,
  MessageType: 53,
  ServerId: 54,
  ParameterRequestList: 55,
  Message: 56,
  MaxMessageSize: 57,
  RenewalTime: 58,
  RebindingTime: 59,
  VendorClass: 60,
  ClientId: 61,
  TftpServerName: 66,
  BootfileName: 67,
  UserClass: 77,
  RelayAgent: 82,
  ClientArch: 93,
  ClientNdi: 94,
  ClientUuid: 97,
  Ipxe: 175,
} as const;

export const MessageType = {
  Discover: 1,
  Offer: 2,
  Request: 3,
  Decline: 4,
  Ack: 5,
  Nak: 6,
  Release: 7,
  Inform: 8,
} as const;
export type MessageTypeName = 'discover' | 'offer' | 'request' | 'decline' | 'ack' | 'nak' | 'release' | 'inform';
const TYPE_NAMES: Record<number, MessageTypeName> = { 1: 'discover', 2: 'offer', 3: 'request', 4: 'decline', 5: 'ack', 6: 'nak', 7: 'release', 8: 'inform' };

type Options = DhcpPacket['options'];

export function messageType(o: Options): MessageTypeName | undefined {
  const v = o.get(Opt.MessageType);
  return v?.length === 1 ? TYPE_NAMES[v[0] as number] : undefined;
}

function ipv4Option(o: Options, code: number): string | undefined {
  const v = o.get(code);
  return v?.length === 4 ? `${v[0]}.${v[1]}.${v[2]}.${v[3]}` : undefined;
}

export const requestedIp = (o: Options) => ipv4Option(o, Opt.RequestedIp);
export const serverId = (o: Options) => ipv4Option(o, Opt.ServerId);

export function parameterRequestList(o: Options): number[] {
  return [...(o.get(Opt.ParameterRequestList) ?? [])];
}

/** RFC 2132 §9.10: at least 576; anything smaller is ignored. */
export function maxMessageSize(o: Options): number | undefined {
  const v = o.get(Opt.MaxMessageSize);
  if (v?.length !== 2) return undefined;
  const n = v.readUInt16BE(0);
  return n >= 576 ? n : undefined;
}

const text = (o: Options, code: number): string | undefined => {
  const v = o.get(code);
  if (!v || v.length === 0) return undefined;
  // Some clients NUL-terminate text options.
  const end = v.indexOf(0);
  return v.subarray(0, end === -1 ? v.length : end).toString('latin1');
};

export const vendorClass = (o: Options) => text(o, Opt.VendorClass);
export const hostName = (o: Options) => text(o, Opt.HostName);

/** RFC 4578 §2.1: a list of 16-bit architecture types (usually one). */
export function clientArchs(o: Options): number[] {
  const v = o.get(Opt.ClientArch);
  if (!v || v.length === 0 || v.length % 2 !== 0) return [];
  const out: number[] = [];
  for (let i = 0; i < v.length; i += 2) out.push(v.readUInt16BE(i));
  return out;
}

/** RFC 4578 §2.2: type 1, then UNDI major and minor. */
export function clientNdi(o: Options): { major: number; minor: number } | undefined {
  const v = o.get(Opt.ClientNdi);
  return v?.length === 3 && v[0] === 1 ? { major: v[1] as number, minor: v[2] as number } : undefined;
}

/**
 * RFC 4578 §2.3: type 0 and a 16-byte GUID, rendered with the first three fields read
 * little-endian as SMBIOS 2.6 stores them. Matching this against iPXE's `${uuid}` in /ipxe is
 * to be proven with QEMU (issue 5) before UUIDs from DHCP are used to identify machines.
 */
export function clientUuid(o: Options): string | undefined {
  const v = o.get(Opt.ClientUuid);
  if (v?.length !== 17 || v[0] !== 0) return undefined;
  const g = v.subarray(1);
  const hex = (from: number, to: number, reverse: boolean) => {
    const bytes = [...g.subarray(from, to)];
    if (reverse) bytes.reverse();
    return bytes.map((b) => b.toString(16).padStart(2, '0')).join('');
  };
  return `${hex(0, 4, true)}-${hex(4, 6, true)}-${hex(6, 8, true)}-${hex(8, 10, false)}-${hex(10, 16, false)}`;
}

/**
 * Option 77. iPXE sends the bare string `iPXE` rather than RFC 3004's length-prefixed list
 * (https://ipxe.org/cfg/user-class): accept both. A value that parses exactly as RFC 3004
 * instances is read as such; anything else is one raw class.
 */
export function userClasses(o: Options): string[] {
  const v = o.get(Opt.UserClass);
  if (!v || v.length === 0) return [];
  const out: string[] = [];
  let i = 0;
  while (i < v.length) {
    const len = v[i] as number;
    if (len === 0 || i + 1 + len > v.length) return [v.toString('latin1')];
    out.push(v.subarray(i + 1, i + 1 + len).toString('latin1'));
    i += 1 + len;
  }
  return out;
}

/** Sub-options of an encapsulated option (43, 82, 175): code, length, data. */
export function subOptions(v: Buffer | undefined): Map<number, Buffer> | undefined {
  if (!v) return undefined;
  const out = new Map<number, Buffer>();
  let i = 0;
  while (i < v.length) {
    const code = v[i] as number;
    if (code === 0) {
      i++;
      continue;
    }
    if (code === 255) break;
    if (i + 1 >= v.length) return undefined;
    const len = v[i + 1] as number;
    if (i + 2 + len > v.length) return undefined;
    out.set(code, v.subarray(i + 2, i + 2 + len));
    i += 2 + len;
  }
  return out;
}

/** RFC 3046 §2.0: relay agent information; circuit-id (1) and remote-id (2) for matching. */
export function relayAgent(o: Options): { raw: Buffer; circuitId?: Buffer; remoteId?: Buffer } | undefined {
  const raw = o.get(Opt.RelayAgent);
  if (!raw) return undefined;
  const subs = subOptions(raw);
  return { raw, ...(subs?.get(1) && { circuitId: subs.get(1) }), ...(subs?.get(2) && { remoteId: subs.get(2) }) };
}

/** iPXE's encapsulated options (175); 19 = HTTP, 20 = HTTPS, 36 = EFI (ipxe/src/include/ipxe/features.h). */
export const ipxeOptions = (o: Options): Map<number, Buffer> | undefined => subOptions(o.get(Opt.Ipxe));

export const encodeSubOptions = (subs: readonly [number, Buffer][]): Buffer =>
  Buffer.concat(subs.flatMap(([code, data]) => [Buffer.from([code, data.length]), data]));

export const u8 = (n: number): Buffer => Buffer.from([n & 255]);
export function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}
