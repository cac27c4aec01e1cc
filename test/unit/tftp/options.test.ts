import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { decodePacket, encodeRequest, Opcode } from '../../../src/tftp/codec.js';
import {
  BLKSIZE_MAX,
  BLKSIZE_MIN,
  negotiate,
  RFC1350_BLKSIZE,
  TIMEOUT_MAX_SECONDS,
  TIMEOUT_MIN_SECONDS,
  WINDOWSIZE_MAX,
  type TftpLimits,
} from '../../../src/tftp/options.js';
import { TESTDATA_DIR } from '../../helpers/dhcp.js';
import { parseCapture } from '../../helpers/pcap.js';

/**
 * Option negotiation for read requests (RFC 2347, 2348, 2349, 7440): what is accepted, clamped,
 * ignored, and what goes into the OACK, in the client's order.
 */

const limits: TftpLimits = { maxBlksize: 1468, maxWindowsize: 64, timeoutMs: 1000 };
const wide: TftpLimits = { maxBlksize: 65464, maxWindowsize: 65535, timeoutMs: 2500 };

const opts = (...pairs: [string, string][]): Map<string, string> => new Map(pairs);

t.test('the RFC limits', async (t) => {
  t.equal(RFC1350_BLKSIZE, 512);
  t.equal(BLKSIZE_MIN, 8);
  t.equal(BLKSIZE_MAX, 65464);
  t.equal(WINDOWSIZE_MAX, 65535);
  t.equal(TIMEOUT_MIN_SECONDS, 1);
  t.equal(TIMEOUT_MAX_SECONDS, 255);
});

t.test('no options: no OACK, plain RFC 1350', async (t) => {
  t.same(negotiate(new Map(), limits, 1234), {
    blksize: 512,
    windowsize: 1,
    timeoutMs: 1000,
    clientTimeout: false,
    oack: undefined,
    tsizeAsked: false,
  });
  t.same(negotiate(new Map(), wide, undefined).timeoutMs, 2500, 'the server timeout when the client names none');
});

t.test('blksize', async (t) => {
  const b = (value: string, l: TftpLimits = limits) => negotiate(opts(['blksize', value]), l, 10);
  t.same(b('1024'), { blksize: 1024, windowsize: 1, timeoutMs: 1000, clientTimeout: false, oack: [['blksize', '1024']], tsizeAsked: false });
  t.same(b('1468').oack, [['blksize', '1468']], 'exactly the limit');
  t.same([b('1469').blksize, b('1469').oack], [1468, [['blksize', '1468']]], 'one above the limit: clamped');
  t.same([b('65464').blksize, b('65464').oack], [1468, [['blksize', '1468']]], 'clamped to limits.maxBlksize');
  t.same([b('8').blksize, b('8').oack], [8, [['blksize', '8']]], 'the smallest valid size');
  t.same([b('512').blksize, b('512').oack], [512, [['blksize', '512']]], '512 asked is still acknowledged');

  t.same([b('65464', wide).blksize, b('65464', wide).oack], [65464, [['blksize', '65464']]], 'the RFC maximum');
  t.same([b('65465', wide).blksize, b('65465', wide).oack], [65464, [['blksize', '65464']]], 'above 65464: clamped to 65464');
  t.same(b('4294967295', wide).blksize, 65464, 'a huge value clamps');
  const generous = { ...wide, maxBlksize: 100000 };
  t.same(b('70000', generous).blksize, 65464, 'clamped to 65464 even when the configured limit is higher');

  for (const bad of ['7', '0', '1', '-512', '+512', ' 512', '512 ', '512x', '0x200', '1e3', '5.12', '', 'large', '12345678901']) {
    const n = b(bad);
    t.same([n.blksize, n.oack], [512, undefined], `blksize ${JSON.stringify(bad)} ignored`);
  }
  t.same(b('0008').oack, [['blksize', '8']], 'leading zeros are still a decimal number');
});

t.test('windowsize', async (t) => {
  const w = (value: string, l: TftpLimits = limits) => negotiate(opts(['windowsize', value]), l, 10);
  t.same(w('4'), { blksize: 512, windowsize: 4, timeoutMs: 1000, clientTimeout: false, oack: [['windowsize', '4']], tsizeAsked: false });
  t.same([w('1').windowsize, w('1').oack], [1, [['windowsize', '1']]], 'windowsize 1 acknowledged');
  t.same([w('64').windowsize, w('64').oack], [64, [['windowsize', '64']]], 'exactly the limit');
  t.same([w('65').windowsize, w('65').oack], [64, [['windowsize', '64']]], 'clamped to maxWindowsize');
  t.same([w('65535').windowsize, w('65535').oack], [64, [['windowsize', '64']]], 'the RFC maximum, clamped');
  t.same([w('65535', wide).windowsize, w('65535', wide).oack], [65535, [['windowsize', '65535']]], 'the RFC maximum with a wide limit');
  for (const bad of ['0', '65536', '-1', '4x', '', 'x']) {
    const n = w(bad, wide);
    t.same([n.windowsize, n.oack], [1, undefined], `windowsize ${JSON.stringify(bad)} ignored`);
  }
});

t.test('timeout', async (t) => {
  const to = (value: string) => negotiate(opts(['timeout', value]), limits, 10);
  for (const s of [1, 2, 5, 255]) {
    t.same(
      to(String(s)),
      { blksize: 512, windowsize: 1, timeoutMs: s * 1000, clientTimeout: true, oack: [['timeout', String(s)]], tsizeAsked: false },
      `timeout ${s} accepted and echoed`,
    );
  }
  for (const bad of ['0', '256', '1000', '-1', '1.5', '', 'x']) {
    const n = to(bad);
    t.same([n.timeoutMs, n.clientTimeout, n.oack], [1000, false, undefined], `timeout ${JSON.stringify(bad)} ignored`);
  }
  t.same(to('007').oack, [['timeout', '7']], 'echoed as the number it means');
});

t.test('tsize', async (t) => {
  const answered = negotiate(opts(['tsize', '0']), limits, 1052672);
  t.same(answered, { blksize: 512, windowsize: 1, timeoutMs: 1000, clientTimeout: false, oack: [['tsize', '1052672']], tsizeAsked: true });
  t.same(negotiate(opts(['tsize', '0']), limits, 0).oack, [['tsize', '0']], 'an empty file has size 0');

  const unknown = negotiate(opts(['tsize', '0']), limits, undefined);
  t.equal(unknown.oack, undefined, 'size unknown: tsize left out (and nothing else: no OACK)');
  t.equal(unknown.tsizeAsked, true, 'still asked');

  const bogus = negotiate(opts(['tsize', 'abc']), limits, 77);
  t.same([bogus.oack, bogus.tsizeAsked], [undefined, true], 'a non-numeric tsize is not answered but was asked');

  t.same(negotiate(opts(['tsize', '5']), limits, 77).oack, [['tsize', '77']], 'the answer is the size, whatever the client sent');

  const withOthers = negotiate(opts(['blksize', '1024'], ['tsize', '0']), limits, undefined);
  t.same([withOthers.oack, withOthers.tsizeAsked], [[['blksize', '1024']], true], 'size unknown: the other options still go out');
});

t.test('unknown options are ignored; a name in another case is not an option', async (t) => {
  const n = negotiate(opts(['multicast', ''], ['rollover', '0'], ['x-foo', 'bar'], ['utimeout', '5000']), limits, 10);
  t.same([n.oack, n.blksize, n.windowsize, n.timeoutMs, n.tsizeAsked], [undefined, 512, 1, 1000, false]);
  const mixed = negotiate(opts(['multicast', ''], ['blksize', '1024'], ['rollover', '0']), limits, 10);
  t.same(mixed.oack, [['blksize', '1024']]);
  // The codec lower-cases names; negotiate compares exactly.
  t.same(negotiate(opts(['BLKSIZE', '1024']), limits, 10).oack, undefined);
});

t.test('the OACK follows the client order', async (t) => {
  const orders: [string, string][][] = [
    [
      ['blksize', '1432'],
      ['tsize', '0'],
      ['timeout', '3'],
      ['windowsize', '8'],
    ],
    [
      ['windowsize', '8'],
      ['timeout', '3'],
      ['tsize', '0'],
      ['blksize', '1432'],
    ],
    [
      ['timeout', '3'],
      ['blksize', '1432'],
      ['windowsize', '8'],
      ['tsize', '0'],
    ],
  ];
  const answer: Record<string, string> = { blksize: '1432', tsize: '999', timeout: '3', windowsize: '8' };
  for (const order of orders) {
    const n = negotiate(new Map(order), limits, 999);
    t.same(
      n.oack,
      order.map(([k]) => [k, answer[k]]),
      order.map(([k]) => k).join(' '),
    );
    t.same([n.blksize, n.windowsize, n.timeoutMs, n.clientTimeout, n.tsizeAsked], [1432, 8, 3000, true, true]);
  }
  // Ignored options leave no hole.
  t.same(negotiate(opts(['windowsize', '0'], ['blksize', '2'], ['tsize', '0'], ['timeout', '300']), limits, 5).oack, [['tsize', '5']]);
});

t.test('the requests in the captures', async (t) => {
  const request = (file: string, frame: number) => {
    const u = parseCapture(readFileSync(join(TESTDATA_DIR, file)))[frame];
    const d = u && decodePacket(u.payload);
    if (!d?.ok || d.packet.op !== Opcode.RRQ) throw new Error(`${file} frame ${frame} is not a read request`);
    return d.packet;
  };

  const intel = request('intel-efi-tftp.pcapng', 0);
  t.same(
    [...intel.options],
    [
      ['tsize', '0'],
      ['blksize', '1468'],
      ['windowsize', '4'],
    ],
    'Intel UEFI: tsize 0 blksize 1468 windowsize 4',
  );
  t.same(negotiate(intel.options, limits, 1052672), {
    blksize: 1468,
    windowsize: 4,
    timeoutMs: 1000,
    clientTimeout: false,
    oack: [
      ['tsize', '1052672'],
      ['blksize', '1468'],
      ['windowsize', '4'],
    ],
    tsizeAsked: true,
  });
  const small = negotiate(intel.options, { maxBlksize: 1024, maxWindowsize: 2, timeoutMs: 1000 }, 1052672);
  t.same(
    small.oack,
    [
      ['tsize', '1052672'],
      ['blksize', '1024'],
      ['windowsize', '2'],
    ],
    'clamped to smaller limits',
  );

  const second = request('intel-efi-tftp.pcapng', 3);
  const n2 = negotiate(second.options, limits, 1052672);
  t.same(
    [n2.oack, n2.tsizeAsked],
    [
      [
        ['blksize', '1468'],
        ['windowsize', '4'],
      ],
      false,
    ],
    'the second Intel request asks no size',
  );

  const ipxe = request('ipxe-tftp.pcapng', 0);
  t.same(
    negotiate(ipxe.options, limits, 1251776).oack,
    [
      ['blksize', '1432'],
      ['tsize', '1251776'],
    ],
    'iPXE: blksize 1432 tsize 0',
  );

  // The same options as encodeRequest would send them, through the codec, negotiate the same.
  const again = decodePacket(
    encodeRequest(Opcode.RRQ, 'ipxe.efi', 'octet', [
      ['TSize', '0'],
      ['BlkSize', '1468'],
      ['WindowSize', '4'],
    ]),
  );
  t.ok(again.ok);
  if (again.ok && again.packet.op === Opcode.RRQ)
    t.same(negotiate(again.packet.options, limits, 1052672).oack, negotiate(intel.options, limits, 1052672).oack, 'option names in any case, via the codec');
});
