import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import {
  DATA_HEADER_BYTES,
  decodePacket,
  encodeAck,
  encodeData,
  encodeError,
  encodeOack,
  encodeRequest,
  ErrorCode,
  MAX_REQUEST_BYTES,
  Opcode,
  writeDataHeader,
  type Decoded,
  type DropReason,
  type TftpPacket,
} from '../../../src/tftp/codec.js';
import { TESTDATA_DIR } from '../../helpers/dhcp.js';
import { parseCapture, type UdpPacket } from '../../helpers/pcap.js';

/**
 * The TFTP codec: round trips of every packet type, the tolerances it grants firmware (a
 * trailing extra NUL, an unterminated error message, padded ACKs), every drop reason, and the
 * two real captures (Intel UEFI firmware and iPXE) decoded and re-encoded byte for byte.
 */

const bytes = (...parts: (number[] | string)[]): Buffer => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : Buffer.from(p))));

/** The packet of a decode that must succeed (fails the test, and throws, otherwise). */
function ok(d: Decoded): TftpPacket {
  if (!d.ok) throw new Error(`expected a packet, got drop reason ${d.reason}`);
  return d.packet;
}

function reason(d: Decoded): DropReason | undefined {
  return d.ok ? undefined : d.reason;
}

t.test('RRQ and WRQ round trip', async (t) => {
  for (const op of [Opcode.RRQ, Opcode.WRQ] as const) {
    const wire = encodeRequest(op, 'pxelinux.cfg/01-aa-bb-cc-dd-ee-ff', 'octet', [
      ['blksize', '1468'],
      ['tsize', '0'],
      ['windowsize', '8'],
    ]);
    t.same([...wire], [...bytes([0, op], 'pxelinux.cfg/01-aa-bb-cc-dd-ee-ff\0octet\0blksize\x001468\0tsize\x000\0windowsize\x008\0')], `op ${op}: wire layout`);
    const p = ok(decodePacket(wire));
    t.equal(p.op, op);
    if (p.op !== Opcode.RRQ && p.op !== Opcode.WRQ) throw new Error('not a request');
    t.equal(p.filename, 'pxelinux.cfg/01-aa-bb-cc-dd-ee-ff');
    t.equal(p.mode, 'octet');
    t.same(
      [...p.options],
      [
        ['blksize', '1468'],
        ['tsize', '0'],
        ['windowsize', '8'],
      ],
    );
    t.ok(encodeRequest(p.op, p.filename, p.mode, [...p.options]).equals(wire), 're-encodes byte for byte');
  }
});

t.test('requests: defaults, mode case, latin1 names, option names', async (t) => {
  const plain = ok(decodePacket(encodeRequest(Opcode.RRQ, 'boot.ipxe')));
  t.same(plain, { op: Opcode.RRQ, filename: 'boot.ipxe', mode: 'octet', options: new Map() }, 'no options: an empty map');

  t.equal((ok(decodePacket(encodeRequest(Opcode.RRQ, 'f', 'NetASCII'))) as { mode: string }).mode, 'netascii', 'mode lower-cased');
  t.equal((ok(decodePacket(encodeRequest(Opcode.RRQ, 'f', 'OCTET'))) as { mode: string }).mode, 'octet');

  // Every byte 0x01..0xff survives as one latin1 character, none merged or lost.
  const all = String.fromCharCode(...Array.from({ length: 255 }, (_, i) => i + 1));
  const wire = encodeRequest(Opcode.RRQ, all);
  t.equal(wire.length, 2 + 256 + 6, 'one byte per character');
  const p = ok(decodePacket(wire)) as { filename: string };
  t.equal(p.filename, all, 'the file name keeps every byte');
  t.equal(p.filename.length, 255);

  const upper = ok(
    decodePacket(
      encodeRequest(Opcode.RRQ, 'f', 'octet', [
        ['BlkSize', '1024'],
        ['TSIZE', '0'],
      ]),
    ),
  ) as { options: Map<string, string> };
  t.same(
    [...upper.options],
    [
      ['blksize', '1024'],
      ['tsize', '0'],
    ],
    'option names lower-cased, values kept',
  );

  const values = ok(decodePacket(encodeRequest(Opcode.RRQ, 'f', 'octet', [['x-Custom', 'MiXeD']]))) as { options: Map<string, string> };
  t.equal(values.options.get('x-custom'), 'MiXeD', 'values are not lower-cased');
});

t.test('a repeated option: the first wins, in any case', async (t) => {
  const wire = encodeRequest(Opcode.RRQ, 'f', 'octet', [
    ['blksize', '1432'],
    ['tsize', '0'],
    ['BLKSIZE', '8192'],
    ['blksize', '512'],
  ]);
  const p = ok(decodePacket(wire)) as { options: Map<string, string> };
  t.same(
    [...p.options],
    [
      ['blksize', '1432'],
      ['tsize', '0'],
    ],
  );
});

t.test('one trailing extra NUL after the options is tolerated, not more', async (t) => {
  const withOptions = bytes([0, 1], 'ipxe.efi\0octet\0blksize\x001468\0\0');
  const p = ok(decodePacket(withOptions)) as { filename: string; options: Map<string, string> };
  t.equal(p.filename, 'ipxe.efi');
  t.same([...p.options], [['blksize', '1468']]);

  const bare = ok(decodePacket(bytes([0, 1], 'ipxe.efi\0octet\0\0'))) as { options: Map<string, string> };
  t.equal(bare.options.size, 0, 'a bare request with an extra NUL has no options');

  const oack = ok(decodePacket(bytes([0, 6], 'tsize\x00100\0\0')));
  t.same(oack, { op: Opcode.OACK, options: new Map([['tsize', '100']]) }, 'OACK with an extra NUL');

  // A name with no value (not an extra NUL: the odd string is not empty) is refused.
  t.equal(reason(decodePacket(bytes([0, 1], 'f\0octet\0blksize\0'))), 'odd_options');
  t.equal(reason(decodePacket(bytes([0, 1], 'f\0octet\0blksize\x00512\0tsize\0'))), 'odd_options');
  // Only an empty last string is forgiven: a non-empty one is a name without a value.
  t.equal(reason(decodePacket(bytes([0, 1], 'f\0octet\0blksize\x00512\0x\0'))), 'odd_options');
});

t.test('DATA round trip, block numbers wrap to 16 bits', async (t) => {
  const payload = Buffer.from(Array.from({ length: 1468 }, (_, i) => (i * 7) & 0xff));
  for (const block of [0, 1, 2, 255, 256, 65535]) {
    const wire = encodeData(block, payload);
    t.equal(wire.length, DATA_HEADER_BYTES + payload.length);
    t.same([...wire.subarray(0, 4)], [0, 3, block >> 8, block & 0xff], `block ${block} header`);
    const p = ok(decodePacket(wire));
    t.equal(p.op, Opcode.DATA);
    if (p.op !== Opcode.DATA) continue;
    t.equal(p.block, block);
    t.ok(p.data.equals(payload), 'payload intact');
  }
  t.same([...encodeData(65536, Buffer.alloc(0))], [0, 3, 0, 0], 'block 65536 goes out as 0');
  t.same([...encodeData(65537 + 65536, Buffer.alloc(0))], [0, 3, 0, 1], 'any absolute number is reduced modulo 65536');

  const empty = ok(decodePacket(encodeData(9, Buffer.alloc(0))));
  t.same(empty.op === Opcode.DATA && [empty.block, empty.data.length], [9, 0], 'an empty final block');

  // A plain Uint8Array (not a Buffer) over a larger ArrayBuffer at an offset decodes too.
  const backing = new Uint8Array(16);
  backing.set([0, 3, 0x12, 0x34, 0xaa, 0xbb], 5);
  const view = new Uint8Array(backing.buffer, 5, 6);
  const p = ok(decodePacket(view));
  t.same(p.op === Opcode.DATA && [p.block, [...p.data]], [0x1234, [0xaa, 0xbb]], 'Uint8Array view at an offset');
});

t.test('ACK round trip, padding ignored', async (t) => {
  for (const block of [0, 1, 4660, 65535]) {
    const wire = encodeAck(block);
    t.same([...wire], [0, 4, block >> 8, block & 0xff]);
    t.same(ok(decodePacket(wire)), { op: Opcode.ACK, block });
  }
  t.same([...encodeAck(65536 + 7)], [0, 4, 0, 7], 'wraps at 65536');
  t.same(ok(decodePacket(bytes([0, 4, 0, 9, 0, 0, 0, 0]))), { op: Opcode.ACK, block: 9 }, 'padded ACK');
});

t.test('ERROR round trip, NUL stripped, long messages cut', async (t) => {
  const wire = encodeError(ErrorCode.FileNotFound, 'File not found');
  t.same([...wire], [...bytes([0, 5, 0, 1], 'File not found\0')]);
  t.same(ok(decodePacket(wire)), { op: Opcode.ERROR, code: 1, message: 'File not found' });

  for (const code of Object.values(ErrorCode)) {
    t.same(ok(decodePacket(encodeError(code, `code ${code}`))), { op: Opcode.ERROR, code, message: `code ${code}` });
  }

  const nul = encodeError(ErrorCode.NotDefined, 'a\0b\0\0c');
  t.equal(nul.indexOf(0, 4), nul.length - 1, 'the only NUL after the header is the terminator');
  t.same(ok(decodePacket(nul)), { op: Opcode.ERROR, code: 0, message: 'a b  c' }, 'NUL bytes become spaces');

  const long = encodeError(ErrorCode.NotDefined, 'x'.repeat(2000));
  t.ok(long.length <= 512, `a long message fits 512 bytes (${long.length})`);
  t.equal(long.length, 4 + 500 + 1);
  t.equal(long[long.length - 1], 0, 'still terminated');
  t.same(ok(decodePacket(long)), { op: Opcode.ERROR, code: 0, message: 'x'.repeat(500) });

  const empty = encodeError(ErrorCode.UnknownTid, '');
  t.same([...empty], [0, 5, 0, 5, 0], 'empty message: just the terminator');

  // Characters outside latin1 must not turn into NUL bytes (U+0100 encodes to 0x00 in latin1).
  const wide = encodeError(ErrorCode.NotDefined, 'bad \u0100 name \u20ac');
  t.equal(wide.indexOf(0, 4), wide.length - 1, 'no NUL inside the message for non-latin1 characters');
  const back = ok(decodePacket(wide));
  t.equal(back.op === Opcode.ERROR && back.message, 'bad ? name ?', 'the whole message arrives, unknown characters as ?');

  t.same(ok(decodePacket(bytes([0, 5, 0, 2], 'no terminator'))), { op: Opcode.ERROR, code: 2, message: 'no terminator' }, 'unterminated message: the rest');
  t.same(ok(decodePacket(bytes([0, 5, 0, 2], 'first\0second\0'))), { op: Opcode.ERROR, code: 2, message: 'first' }, 'message ends at the first NUL');
  t.same(ok(decodePacket(bytes([0, 5, 0, 3]))), { op: Opcode.ERROR, code: 3, message: '' }, 'header only');
});

t.test('OACK round trip', async (t) => {
  const options: [string, string][] = [
    ['tsize', '1052672'],
    ['blksize', '1468'],
    ['windowsize', '4'],
  ];
  const wire = encodeOack(options);
  t.same([...wire], [...bytes([0, 6], 'tsize\x001052672\0blksize\x001468\0windowsize\x004\0')]);
  const p = ok(decodePacket(wire));
  t.same(p, { op: Opcode.OACK, options: new Map(options) });
  t.same(p.op === Opcode.OACK && [...p.options], options, 'in the order sent');
  t.same(ok(decodePacket(encodeOack([]))), { op: Opcode.OACK, options: new Map() }, 'an empty OACK');
  t.same(ok(decodePacket(bytes([0, 6], 'BlkSize\x00512\0'))), { op: Opcode.OACK, options: new Map([['blksize', '512']]) }, 'names lower-cased');
});

t.test('every drop reason', async (t) => {
  const cases: [string, Buffer, DropReason][] = [
    ['empty datagram', Buffer.alloc(0), 'short'],
    ['1-byte datagram', Buffer.from([0]), 'short'],
    ['1-byte datagram (opcode byte only)', Buffer.from([1]), 'short'],
    ['RRQ opcode only', bytes([0, 1]), 'short'],
    ['RRQ without a mode', bytes([0, 1], 'file\0'), 'short'],
    ['WRQ without a mode', bytes([0, 2], 'file\0'), 'short'],
    ['DATA of 3 bytes', bytes([0, 3, 0]), 'short'],
    ['ACK of 2 bytes', bytes([0, 4]), 'short'],
    ['ACK of 3 bytes', bytes([0, 4, 0]), 'short'],
    ['ERROR of 3 bytes', bytes([0, 5, 0]), 'short'],
    ['opcode 0', bytes([0, 0, 0, 1]), 'bad_opcode'],
    ['opcode 7', bytes([0, 7, 0, 1]), 'bad_opcode'],
    ['opcode 0x0101', bytes([1, 1], 'f\0octet\0'), 'bad_opcode'],
    ['opcode 0xffff', bytes([0xff, 0xff]), 'bad_opcode'],
    ['RRQ over the limit', encodeRequest(Opcode.RRQ, 'a'.repeat(MAX_REQUEST_BYTES)), 'too_long'],
    ['WRQ over the limit', encodeRequest(Opcode.WRQ, 'f', 'octet', [['x', 'y'.repeat(MAX_REQUEST_BYTES)]]), 'too_long'],
    ['RRQ file name unterminated', bytes([0, 1], 'file'), 'unterminated'],
    ['RRQ mode unterminated', bytes([0, 1], 'file\0octet'), 'unterminated'],
    ['RRQ option value unterminated', bytes([0, 1], 'file\0octet\0blksize\x001468'), 'unterminated'],
    ['OACK unterminated', bytes([0, 6], 'tsize\x00100'), 'unterminated'],
    ['RRQ empty file name', bytes([0, 1], '\0octet\0'), 'empty_filename'],
    ['WRQ empty file name', bytes([0, 2], '\0octet\0blksize\x00512\0'), 'empty_filename'],
    ['RRQ odd options', bytes([0, 1], 'f\0octet\0tsize\0'), 'odd_options'],
    ['OACK odd options', bytes([0, 6], 'tsize\0'), 'odd_options'],
    ['OACK odd options, three strings', bytes([0, 6], 'tsize\x001\0blksize\0'), 'odd_options'],
  ];
  for (const [name, wire, expected] of cases) t.equal(reason(decodePacket(wire)), expected, name);

  // Exactly at the limit is accepted.
  const atLimit = encodeRequest(Opcode.RRQ, 'a'.repeat(MAX_REQUEST_BYTES - 2 - 1 - 6));
  t.equal(atLimit.length, MAX_REQUEST_BYTES);
  t.ok(decodePacket(atLimit).ok, `a request of exactly ${MAX_REQUEST_BYTES} bytes decodes`);

  // Decoding never throws, whatever the bytes: a sweep of short prefixes of every opcode.
  for (let op = 0; op <= 8; op += 1) {
    for (let len = 0; len <= 6; len += 1) {
      const b = Buffer.alloc(len, 0x41);
      if (len >= 2) b.writeUInt16BE(op, 0);
      t.doesNotThrow(() => decodePacket(b), `op ${op}, ${len} bytes`);
    }
  }
});

t.test('writeDataHeader', async (t) => {
  const buf = Buffer.alloc(12, 0xee);
  writeDataHeader(buf, 3, 0x1234);
  t.same([...buf], [0xee, 0xee, 0xee, 0, 3, 0x12, 0x34, 0xee, 0xee, 0xee, 0xee, 0xee], 'at an offset, nothing else touched');
  const h = Buffer.alloc(4);
  for (const [block, wire] of [
    [0, [0, 3, 0, 0]],
    [1, [0, 3, 0, 1]],
    [65535, [0, 3, 0xff, 0xff]],
    [65536, [0, 3, 0, 0]],
    [65537, [0, 3, 0, 1]],
    [131071, [0, 3, 0xff, 0xff]],
  ] as const) {
    writeDataHeader(h, 0, block);
    t.same([...h], wire, `block ${block}`);
  }
});

/* ----------------------------------------------------------------------------------------- */
/* Real captures                                                                              */
/* ----------------------------------------------------------------------------------------- */

const capture = (name: string): UdpPacket[] => parseCapture(readFileSync(join(TESTDATA_DIR, name)));

/** Re-encodes a decoded packet with the codec's encoders. */
function reencode(p: TftpPacket): Buffer {
  switch (p.op) {
    case Opcode.RRQ:
    case Opcode.WRQ:
      return encodeRequest(p.op, p.filename, p.mode, [...p.options]);
    case Opcode.OACK:
      return encodeOack([...p.options]);
    case Opcode.ACK:
      return encodeAck(p.block);
    case Opcode.DATA:
      return encodeData(p.block, p.data);
    case Opcode.ERROR:
      return encodeError(p.code as ErrorCode, p.message);
  }
}

t.test('captures: every TFTP payload decodes and re-encodes byte for byte', async (t) => {
  for (const name of ['intel-efi-tftp.pcapng', 'ipxe-tftp.pcapng']) {
    const packets = capture(name);
    t.ok(packets.length >= 4, `${name}: ${packets.length} datagrams`);
    for (const u of packets) {
      const d = decodePacket(u.payload);
      t.ok(d.ok, `${name} frame ${u.frame} decodes${d.ok ? '' : `: ${d.reason}`}`);
      if (!d.ok) continue;
      t.ok(reencode(d.packet).equals(u.payload), `${name} frame ${u.frame} (op ${d.packet.op}) re-encodes identically`);
    }
  }
});

t.test('intel-efi-tftp.pcapng holds the size probe, its abort and the real request', async (t) => {
  const ps = capture('intel-efi-tftp.pcapng').map((u) => ok(decodePacket(u.payload)));
  t.same(ps[0], {
    op: Opcode.RRQ,
    filename: 'ipxe.efi',
    mode: 'octet',
    options: new Map([
      ['tsize', '0'],
      ['blksize', '1468'],
      ['windowsize', '4'],
    ]),
  });
  t.same(ps[1], {
    op: Opcode.OACK,
    options: new Map([
      ['tsize', '1052672'],
      ['blksize', '1468'],
      ['windowsize', '1'],
    ]),
  });
  t.same(ps[2], { op: Opcode.ERROR, code: ErrorCode.OptionRefused, message: 'User aborted the transfer' });
  t.same(ps[3], {
    op: Opcode.RRQ,
    filename: 'ipxe.efi',
    mode: 'octet',
    options: new Map([
      ['blksize', '1468'],
      ['windowsize', '4'],
    ]),
  });
  t.same(ps[5], { op: Opcode.ACK, block: 0 }, 'ACK 0 accepts the OACK');
  const data = ps[6];
  t.equal(data?.op, Opcode.DATA);
  if (data?.op === Opcode.DATA) {
    t.equal(data.block, 1);
    t.equal(data.data.length, 1468, 'a full 1468-byte block');
    t.equal(data.data.toString('latin1', 0, 2), 'MZ', 'a PE image');
  }
});

t.test('ipxe-tftp.pcapng holds the request, its OACK and the first blocks', async (t) => {
  const ps = capture('ipxe-tftp.pcapng').map((u) => ok(decodePacket(u.payload)));
  t.same(ps[0], {
    op: Opcode.RRQ,
    filename: 'ipxe.pxe',
    mode: 'octet',
    options: new Map([
      ['blksize', '1432'],
      ['tsize', '0'],
    ]),
  });
  t.same(ps[1], {
    op: Opcode.OACK,
    options: new Map([
      ['blksize', '1432'],
      ['tsize', '1251776'],
    ]),
  });
  t.same(ps[2], { op: Opcode.ACK, block: 0 });
  const blocks = ps.filter((p): p is Extract<TftpPacket, { op: 3 }> => p.op === Opcode.DATA);
  t.ok(blocks.length >= 2);
  t.same(
    blocks.map((b) => [b.block, b.data.length]),
    blocks.map((_, i) => [i + 1, 1432]),
    'consecutive full blocks of the negotiated size',
  );
  t.same(
    ps.filter((p) => p.op === Opcode.ACK).map((p) => (p as { block: number }).block),
    ps.filter((p) => p.op === Opcode.ACK).map((_, i) => i),
    'lock-step ACKs 0, 1, ...',
  );
});
