/**
 * TFTP packets (RFC 1350 §5, RFC 2347 §2 option extension) as plain data. Pure and total:
 * decoding never throws; a packet it cannot read comes back as a named drop reason.
 */
export const Opcode = { RRQ: 1, WRQ: 2, DATA: 3, ACK: 4, ERROR: 5, OACK: 6 } as const;

/** RFC 1350 §5 error codes, plus 8 from RFC 2347 §2 (option negotiation refused). */
export const ErrorCode = {
  NotDefined: 0,
  FileNotFound: 1,
  AccessViolation: 2,
  DiskFull: 3,
  IllegalOperation: 4,
  UnknownTid: 5,
  FileExists: 6,
  NoSuchUser: 7,
  OptionRefused: 8,
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** RFC 2347 §2: a request must fit a 512-byte packet; some firmware goes a little past it. */
export const MAX_REQUEST_BYTES = 1024;
export const DATA_HEADER_BYTES = 4;

export interface RequestPacket {
  op: typeof Opcode.RRQ | typeof Opcode.WRQ;
  /** The file name as sent: bytes taken as latin1, so no byte is lost or merged. */
  filename: string;
  /** Lower-cased (RFC 1350 §5: case-insensitive). */
  mode: string;
  /** RFC 2347: names lower-cased; the first of a repeated name wins, as order is the client's. */
  options: Map<string, string>;
}

export type TftpPacket =
  | RequestPacket
  | { op: typeof Opcode.DATA; block: number; data: Buffer }
  | { op: typeof Opcode.ACK; block: number }
  | { op: typeof Opcode.ERROR; code: number; message: string }
  | { op: typeof Opcode.OACK; options: Map<string, string> };

export type DropReason = 'short' | 'bad_opcode' | 'too_long' | 'unterminated' | 'empty_filename' | 'odd_options';

export type Decoded = { ok: true; packet: TftpPacket } | { ok: false; reason: DropReason };

export function decodePacket(b: Uint8Array): Decoded {
  if (b.length < 2) return drop('short');
  const buf = Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.length);
  const op = buf.readUInt16BE(0);
  switch (op) {
    case Opcode.RRQ:
    case Opcode.WRQ:
      return decodeRequest(buf, op);
    case Opcode.DATA:
      if (buf.length < 4) return drop('short');
      return { ok: true, packet: { op, block: buf.readUInt16BE(2), data: buf.subarray(4) } };
    case Opcode.ACK:
      if (buf.length < 4) return drop('short');
      // Some clients pad ACKs; RFC 1350 gives them no tail, so extra bytes are ignored.
      return { ok: true, packet: { op, block: buf.readUInt16BE(2) } };
    case Opcode.ERROR: {
      if (buf.length < 4) return drop('short');
      const end = buf.indexOf(0, 4);
      // A missing terminator is common in the field; the message is then the rest.
      const message = buf.toString('latin1', 4, end < 0 ? buf.length : end);
      return { ok: true, packet: { op, code: buf.readUInt16BE(2), message } };
    }
    case Opcode.OACK: {
      const strings = splitStrings(buf, 2);
      if (!strings.ok) return strings;
      const options = pairs(strings.value);
      if (!options) return drop('odd_options');
      return { ok: true, packet: { op, options } };
    }
    default:
      return drop('bad_opcode');
  }
}

function decodeRequest(buf: Buffer, op: typeof Opcode.RRQ | typeof Opcode.WRQ): Decoded {
  if (buf.length > MAX_REQUEST_BYTES) return drop('too_long');
  const strings = splitStrings(buf, 2);
  if (!strings.ok) return strings;
  const [filename, mode, ...rest] = strings.value;
  if (filename === undefined || mode === undefined) return drop('short');
  if (filename.length === 0) return drop('empty_filename');
  const options = pairs(rest);
  if (!options) return drop('odd_options');
  return { ok: true, packet: { op, filename, mode: mode.toLowerCase(), options } };
}

/** NUL-terminated latin1 strings from `at` to the end; every one must be terminated. */
function splitStrings(buf: Buffer, at: number): { ok: true; value: string[] } | { ok: false; reason: DropReason } {
  const out: string[] = [];
  let i = at;
  while (i < buf.length) {
    const end = buf.indexOf(0, i);
    if (end < 0) return drop('unterminated');
    out.push(buf.toString('latin1', i, end));
    i = end + 1;
  }
  return { ok: true, value: out };
}

function pairs(list: string[]): Map<string, string> | undefined {
  // Some firmware ends the option list with an extra NUL: one empty trailing string is allowed.
  const items = list.length % 2 === 1 && list[list.length - 1] === '' ? list.slice(0, -1) : list;
  if (items.length % 2 !== 0) return undefined;
  const map = new Map<string, string>();
  for (let i = 0; i < items.length; i += 2) {
    const name = (items[i] as string).toLowerCase();
    if (!map.has(name)) map.set(name, items[i + 1] as string);
  }
  return map;
}

function drop(reason: DropReason): { ok: false; reason: DropReason } {
  return { ok: false, reason };
}

/** Writes the 4-byte DATA header for a (16-bit, already wrapped) block number. */
export function writeDataHeader(into: Buffer, at: number, block: number): void {
  into[at] = 0;
  into[at + 1] = Opcode.DATA;
  into[at + 2] = (block >>> 8) & 0xff;
  into[at + 3] = block & 0xff;
}

export function encodeData(block: number, data: Uint8Array): Buffer {
  const b = Buffer.allocUnsafe(DATA_HEADER_BYTES + data.length);
  writeDataHeader(b, 0, block & 0xffff);
  b.set(data, DATA_HEADER_BYTES);
  return b;
}

export function encodeAck(block: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt16BE(Opcode.ACK, 0);
  b.writeUInt16BE(block & 0xffff, 2);
  return b;
}

/**
 * The message is cut to keep the packet within 512 bytes and stripped of NUL bytes. Characters
 * outside latin1 become '?': latin1 encoding keeps only a character's low byte, so U+0100 would
 * otherwise go out as a NUL that ends the message early.
 */
export function encodeError(code: ErrorCode, message: string): Buffer {
  const text = Buffer.from(
    message
      .replace(/\0/g, ' ')
      .replace(/[^\x00-\xff]/g, '?')
      .slice(0, 500),
    'latin1',
  );
  const b = Buffer.alloc(5 + text.length);
  b.writeUInt16BE(Opcode.ERROR, 0);
  b.writeUInt16BE(code, 2);
  text.copy(b, 4);
  return b;
}

export function encodeOack(options: readonly (readonly [string, string])[]): Buffer {
  return Buffer.concat([u16(Opcode.OACK), ...options.flatMap(([k, v]) => [cstring(k), cstring(v)])]);
}

export function encodeRequest(
  op: typeof Opcode.RRQ | typeof Opcode.WRQ,
  filename: string,
  mode = 'octet',
  options: readonly (readonly [string, string])[] = [],
): Buffer {
  return Buffer.concat([u16(op), cstring(filename), cstring(mode), ...options.flatMap(([k, v]) => [cstring(k), cstring(v)])]);
}

function u16(n: number): Buffer {
  const b = Buffer.allocUnsafe(2);
  b.writeUInt16BE(n, 0);
  return b;
}

function cstring(s: string): Buffer {
  return Buffer.from(`${s}\0`, 'latin1');
}
