import { performance } from 'node:perf_hooks';
import t from 'tap';
import { mutate, prng } from '../../helpers/dhcp-mutate.js';
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
  for (const s of [vendorClass(o), hostName(o)]) if (s?.includes('\0')) problems.push('text with NUL');
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
      if (!DROP_REASONS.includes(d.reason)) fail(`unknown drop reason ${d.reason}`, m);
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
