import { performance } from 'node:perf_hooks';
import t from 'tap';
import { buildReply, decodeDhcp, encodeDhcp, fieldText, hardwareAddress, type DhcpPacket, type DropReason } from '../../../src/dhcp/codec.js';
import {
  clientArchs,
  clientNdi,
  clientUuid,
  encodeSubOptions,
  hostName,
  ipxeOptions,
  maxMessageSize,
  messageType,
  parameterRequestList,
  relayAgent,
  requestedIp,
  serverId,
  subOptions,
  userClasses,
  vendorClass,
} from '../../../src/dhcp/options.js';
import { chooseBootFile, classifyClient, DEFAULT_BINARIES } from '../../../src/dhcp/pxe.js';
import { DHCP_CAPTURES, dhcpDatagrams } from '../../helpers/dhcp.js';

/**
 * Seeded mutation fuzzing of the decoder, the re-encoder, every typed accessor and the client
 * classification, starting from the captured DHCP payloads (plus two overloaded replies so the
 * file and sname paths get mutated too). The seed is fixed: a failure reproduces, and the
 * first failing mutants are printed in hex.
 */
const MUTANTS = 120_000;
const SEED = 0xd4c9_2026;
const DROP_REASONS: readonly DropReason[] = ['short', 'bad_magic', 'bad_hlen', 'option_overrun', 'bad_overload'];

/** mulberry32: a small, fast, seedable PRNG. */
function prng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
  return {
    /** 0 ≤ n < below */
    int: (below: number) => Math.floor(next() * below),
    pick: <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)] as T,
    bytes: (n: number) => Buffer.from(Array.from({ length: n }, () => Math.floor(next() * 256))),
  };
}

/** Where the TLVs of an options area start and how long they are, as far as they parse. */
function tlvs(b: Buffer, start: number, end: number): { at: number; size: number }[] {
  const out: { at: number; size: number }[] = [];
  let i = start;
  while (i < end) {
    const code = b[i] as number;
    if (code === 0 || code === 255) {
      out.push({ at: i, size: 1 });
      if (code === 255) break;
      i++;
      continue;
    }
    if (i + 1 >= end) break;
    const size = 2 + (b[i + 1] as number);
    if (i + size > end) break;
    out.push({ at: i, size });
    i += size;
  }
  return out;
}

const INTERESTING = [0, 1, 2, 3, 4, 16, 17, 52, 53, 0x7f, 0x80, 0xfe, 0xff];

type Rng = ReturnType<typeof prng>;

/** One mutation of `b` (a fresh buffer; `b` is not modified). */
function mutate(r: Rng, b: Buffer): Buffer {
  const area = (): { start: number; end: number } => {
    const which = r.int(4);
    if (which === 0) return { start: 108, end: Math.min(236, b.length) };
    if (which === 1) return { start: 44, end: Math.min(108, b.length) };
    return { start: 240, end: b.length };
  };
  const anyTlv = () => {
    const { start, end } = area();
    return tlvs(b, start, end);
  };
  /** A position, half the time in the cookie and options. */
  const pos = () => (r.int(2) === 0 && b.length > 236 ? 236 + r.int(b.length - 236) : r.int(Math.max(b.length, 1)));
  switch (r.int(11)) {
    case 0: {
      // Bit flips.
      const m = Buffer.from(b);
      for (let k = 1 + r.int(3); k > 0 && m.length > 0; k--) {
        const at = pos();
        m[at] = (m[at] as number) ^ (1 << r.int(8));
      }
      return m;
    }
    case 1: {
      // Byte sets.
      const m = Buffer.from(b);
      for (let k = 1 + r.int(3); k > 0 && m.length > 0; k--) m[pos()] = r.int(2) ? r.pick(INTERESTING) : r.int(256);
      return m;
    }
    case 2: {
      // Truncation, mostly within the options.
      const keep = r.int(4) === 0 ? r.int(b.length + 1) : Math.min(b.length, 236 + r.int(Math.max(b.length - 235, 1)));
      return Buffer.from(b.subarray(0, keep));
    }
    case 3:
      // Extension with random bytes.
      return Buffer.concat([b, r.bytes(1 + r.int(64))]);
    case 4: {
      // A TLV duplicated (next to itself or elsewhere).
      const list = anyTlv();
      const src = list.length ? r.pick(list) : undefined;
      if (!src) return Buffer.concat([b, r.bytes(2)]);
      const at = r.int(2) ? src.at + src.size : (r.pick(list).at ?? src.at);
      return Buffer.concat([b.subarray(0, at), b.subarray(src.at, src.at + src.size), b.subarray(at)]);
    }
    case 5: {
      // A TLV removed (in file or sname: replaced by zeros to keep the field size).
      const { start, end } = area();
      const list = tlvs(b, start, end);
      const x = list.length ? r.pick(list) : undefined;
      if (!x) return Buffer.from(b);
      if (start === 240) return Buffer.concat([b.subarray(0, x.at), b.subarray(x.at + x.size)]);
      const m = Buffer.from(b);
      m.copy(m, x.at, x.at + x.size, end);
      m.fill(0, end - x.size, end);
      return m;
    }
    case 6: {
      // A random length byte.
      const m = Buffer.from(b);
      const list = anyTlv().filter((x) => x.size > 1);
      const x = list.length ? r.pick(list) : undefined;
      if (x) m[x.at + 1] = r.int(2) ? r.int(256) : Math.max(0, x.size - 2 + r.int(5) - 2);
      return m;
    }
    case 7: {
      // Option 52 inserted with any value, in the options field or in file.
      const list = anyTlv();
      const at = list.length ? r.pick(list).at : Math.min(240, b.length);
      const o52 = Buffer.from([52, r.int(8) === 0 ? r.int(3) : 1, r.pick([0, 1, 2, 3, 3, 3, 4, 255])]);
      if (at < 236) {
        const m = Buffer.from(b);
        o52.copy(m, at);
        return m;
      }
      return Buffer.concat([b.subarray(0, at), o52, b.subarray(at)]);
    }
    case 8: {
      // hlen.
      const m = Buffer.from(b);
      if (m.length > 2) m[2] = r.int(2) ? r.int(20) : r.int(256);
      return m;
    }
    case 9: {
      // A random TLV (code, length, data that may or may not match) at a boundary.
      const list = anyTlv();
      const at = list.length ? r.pick(list).at : Math.min(240, b.length);
      const len = r.int(40);
      const tlv = Buffer.concat([Buffer.from([r.int(256), r.int(4) === 0 ? r.int(256) : len]), r.bytes(len)]);
      if (at < 236) {
        const m = Buffer.from(b);
        tlv.copy(m, at, 0, Math.min(tlv.length, 236 - at));
        return m;
      }
      return Buffer.concat([b.subarray(0, at), tlv, b.subarray(at)]);
    }
    default: {
      // END removed or moved.
      const m = Buffer.from(b);
      const end = tlvs(m, 240, m.length).find((x) => m[x.at] === 255);
      if (!end) return Buffer.concat([m, Buffer.from([255])]);
      return r.int(2) ? Buffer.concat([m.subarray(0, end.at), m.subarray(end.at + 1)]) : Buffer.concat([m.subarray(0, end.at), r.bytes(r.int(8)), m.subarray(end.at)]);
    }
  }
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const BOOT_KINDS = ['tftp', 'http', 'none'];

/** Every accessor on a decoded packet; returns what is wrong with the results. */
function accessorProblems(p: DhcpPacket): string[] {
  const o = p.options;
  const problems: string[] = [];
  const mt = messageType(o);
  if (mt !== undefined && !['discover', 'offer', 'request', 'decline', 'ack', 'nak', 'release', 'inform'].includes(mt)) problems.push(`message type ${mt}`);
  for (const ip of [requestedIp(o), serverId(o)]) if (ip !== undefined && !/^\d{1,3}(\.\d{1,3}){3}$/.test(ip)) problems.push(`address ${ip}`);
  if (parameterRequestList(o).some((c) => c < 0 || c > 255)) problems.push('parameter list');
  const mms = maxMessageSize(o);
  if (mms !== undefined && (mms < 576 || mms > 65535)) problems.push(`max message ${mms}`);
  for (const s of [vendorClass(o), hostName(o)]) if (s !== undefined && s.includes('\0')) problems.push('text with NUL');
  if (clientArchs(o).some((a) => !Number.isInteger(a) || a < 0 || a > 65535)) problems.push('archs');
  const ndi = clientNdi(o);
  if (ndi && (ndi.major > 255 || ndi.minor > 255)) problems.push('ndi');
  const uuid = clientUuid(o);
  if (uuid !== undefined && !UUID.test(uuid)) problems.push(`uuid ${uuid}`);
  const classes = userClasses(o);
  if (o.get(77)?.length && classes.length === 0) problems.push('user class lost');
  const relay = relayAgent(o);
  if (relay && relay.raw !== o.get(82)) problems.push('relay raw');
  const ipxe = ipxeOptions(o);
  if (ipxe) encodeSubOptions([...ipxe]);
  for (const v of o.values()) {
    const subs = subOptions(v);
    if (subs) encodeSubOptions([...subs]);
  }
  const c = classifyClient(p);
  const boot = chooseBootFile(c, { httpBase: 'http://10.77.0.1:8080', binaries: DEFAULT_BINARIES, httpBinariesPath: '/ipxe' });
  if (!BOOT_KINDS.includes(boot.kind)) problems.push(`boot kind ${boot.kind}`);
  if (c.ipxe && boot.kind === 'tftp') problems.push('iPXE handed a binary again');
  hardwareAddress(p);
  fieldText(p.file);
  fieldText(p.sname);
  return problems;
}

function sameOptions(a: Map<number, Buffer>, b: Map<number, Buffer>): boolean {
  if (a.size !== b.size) return false;
  const bk = [...b.keys()];
  return [...a].every(([k, v], i) => bk[i] === k && b.get(k)?.equals(v) === true);
}

/** Replies that use option 52, so that mutations reach the file and sname parsers. */
function overloadedSeeds(): Buffer[] {
  const header = {
    op: 2 as const,
    htype: 1,
    hlen: 6,
    hops: 0,
    xid: 0x01020304,
    secs: 0,
    flags: 0,
    ciaddr: '0.0.0.0',
    yiaddr: '10.77.0.130',
    siaddr: '10.77.0.1',
    giaddr: '0.0.0.0',
    chaddr: Buffer.from('52540077000100000000000000000000', 'hex'),
  };
  const fill = (n: number, c: number) => Buffer.alloc(n, c);
  const options: [number, Buffer][] = [
    [53, Buffer.from([5])],
    [54, Buffer.from([10, 77, 0, 1])],
    [224, fill(200, 1)],
    [82, Buffer.from([1, 4, 0x65, 0x74, 0x68, 0x30, 2, 2, 0xab, 0xcd])],
    [225, fill(60, 2)],
    [175, Buffer.from([19, 1, 1, 36, 1, 1])],
    [226, fill(50, 3)],
    [77, Buffer.from('\x04iPXE', 'latin1')],
    [97, Buffer.concat([Buffer.from([0]), fill(16, 0x42)])],
  ];
  const seeds: Buffer[] = [];
  for (const file of [undefined, 'ipxe.efi']) {
    const r = buildReply({ ...header, ...(file && { file }) }, options.slice(0, file ? 7 : 9), 576);
    if (!r.ok) throw new Error(`seed reply not built: ${r.reason}`);
    seeds.push(r.packet);
  }
  return seeds;
}

t.test(`mutation fuzzing: ${MUTANTS} mutants of the captured DHCP payloads`, async (t) => {
  const seeds = [...DHCP_CAPTURES.flatMap((c) => dhcpDatagrams(c).map((u) => u.payload)), ...overloadedSeeds()];
  t.ok(seeds.length > 40, `${seeds.length} seed packets`);
  for (const s of seeds.slice(-2)) {
    const d = decodeDhcp(s);
    t.ok(d.ok && d.value.options.has(52), 'an overloaded seed decodes');
  }

  const r = prng(SEED);
  const counts = new Map<string, number>();
  const count = (k: string) => counts.set(k, (counts.get(k) ?? 0) + 1);
  const failures: string[] = [];
  let failed = 0;
  const fail = (what: string, m: Buffer) => {
    failed++;
    if (failures.length < 5) failures.push(`${what}: ${m.toString('hex')}`);
  };
  const started = performance.now();

  for (let i = 0; i < MUTANTS; i++) {
    let m = r.pick(seeds);
    for (let k = 1 + r.int(3); k > 0; k--) m = mutate(r, m);
    const before = Buffer.from(m);
    let d;
    try {
      d = decodeDhcp(m);
    } catch (e) {
      fail(`decodeDhcp threw ${String(e)}`, m);
      continue;
    }
    if (!d.ok) {
      if (!DROP_REASONS.includes(d.reason)) fail(`unknown drop reason ${String(d.reason)}`, m);
      count(d.reason);
      continue;
    }
    count('ok');
    const p = d.value;
    if (p.layout.file || p.layout.sname) count('ok overloaded');
    if (!p.layout.main.ended) count('ok without END');
    try {
      // Every decoded packet consumed its whole buffer (a missing END runs to the end, bytes
      // after END are the trailer), so the re-encoding is the input itself.
      const e = encodeDhcp(p);
      if (!e.equals(m)) fail('re-encoding differs', m);
      const again = decodeDhcp(e);
      if (!again.ok || !sameOptions(again.value.options, p.options)) fail('re-decoding the re-encoding gives other options', m);
    } catch (e) {
      fail(`encodeDhcp threw ${String(e)}`, m);
      continue;
    }
    try {
      for (const problem of accessorProblems(p)) fail(problem, m);
    } catch (e) {
      fail(`an accessor threw ${String(e)}`, m);
    }
    if (!before.equals(m)) fail('decoding modified its input', m);
    // The decoded options (less 52) rebuilt into a reply decode back to themselves.
    const list = [...p.options].filter(([c]) => c !== 52);
    const { htype, hlen, hops, xid, secs, flags, ciaddr, yiaddr, siaddr, giaddr, chaddr } = p;
    const reply = buildReply({ op: 2, htype, hlen, hops, xid, secs, flags, ciaddr, yiaddr, siaddr, giaddr, chaddr }, list, 1500);
    if (reply.ok) {
      count('rebuilt');
      const back = decodeDhcp(reply.packet);
      if (reply.packet.length > 1472 || !back.ok || !sameOptions(new Map([...back.value.options].filter(([c]) => c !== 52)), new Map(list)))
        fail('a rebuilt reply does not decode back', m);
    }
  }
  const ms = performance.now() - started;

  t.comment(`${MUTANTS} mutants in ${Math.round(ms)} ms: ${JSON.stringify(Object.fromEntries([...counts].sort()))}`);
  t.equal(failed, 0, 'no mutant breaks an invariant');
  t.same(failures, [], 'first failing mutants');
  for (const reason of DROP_REASONS) t.ok((counts.get(reason) ?? 0) > 100, `mutants dropped as ${reason}: ${counts.get(reason) ?? 0}`);
  t.ok((counts.get('ok') ?? 0) > MUTANTS / 4, `mutants accepted: ${counts.get('ok') ?? 0}`);
  t.ok((counts.get('ok overloaded') ?? 0) > 1000, `accepted with option 52: ${counts.get('ok overloaded') ?? 0}`);
  t.ok((counts.get('ok without END') ?? 0) > 1000, `accepted without END: ${counts.get('ok without END') ?? 0}`);
  t.ok((counts.get('rebuilt') ?? 0) > 1000, `rebuilt into replies: ${counts.get('rebuilt') ?? 0}`);
});
