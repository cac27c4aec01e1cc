/**
 * The TFTP server in-process on 127.0.0.1:0 under load and abuse: 200 curl transfers at once;
 * names that try to leave the roots; writes; more transfers than maxTransfers; packets from a
 * stranger to a transfer's port; 100,000 seeded mutants of valid packets to the listener and to
 * live transfers — after which it still serves. And a port already taken is named clearly.
 */
import { chmodSync, existsSync, mkdirSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { createLogger } from '../../src/log.js';
import { decodePacket, encodeAck, encodeError, encodeOack, encodeRequest, ErrorCode, Opcode } from '../../src/tftp/codec.js';
import { createTftpServer } from '../../src/tftp/server.js';
import { tempDir } from '../helpers/app.js';
import { prng, type Rng } from '../helpers/dhcp-mutate.js';
import { curlGet, RawClient, run, sha256, sha256File, startTftp, tftpConfig, writeSeededFile } from '../helpers/tftp.js';

const dir = tempDir('edgeboot-tftp-hostile-');
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const root = join(dir, 'root');
const out = join(dir, 'out');
mkdirSync(root);
mkdirSync(out);

const MIB = 1024 * 1024;
const oneMib = { name: 'one.bin', size: MIB, sha: await writeSeededFile(join(root, 'one.bin'), MIB, 1) };
// 11 blocks of 512 for hand-driven transfers.
const small = Buffer.from(Array.from({ length: 5 * 1024 + 100 }, (_, i) => (i * 7 + 3) & 0xff));
writeFileSync(join(root, 'small.bin'), small);
// A symlink to /etc/hostname in a directory anyone can write: a planted link.
mkdirSync(join(root, 'open'));
chmodSync(join(root, 'open'), 0o777);
symlinkSync('/etc/hostname', join(root, 'open', 'hostname'));

const opOf = (b: Buffer): number => (b.length >= 2 ? b.readUInt16BE(0) : -1);

t.test('200 curl transfers at once all complete with the right sha256', async (t) => {
  // Every curl comes from 127.0.0.1: the per-client cap (tftp-client-cap.test.ts) is lifted here.
  const tftp = await startTftp(t, [root], { maxTransfersPerClient: 512 });
  const COUNT = 200;
  let peak = 0;
  const sampler = setInterval(() => (peak = Math.max(peak, tftp.server.stats().active)), 5);
  t.teardown(() => clearInterval(sampler));
  const since = Date.now();
  const results = await Promise.all(
    Array.from({ length: COUNT }, async (_, i) => {
      const dest = join(out, `c${i}`);
      // A longer --connect-timeout than the helper's: 200 processes start on two cores.
      const [cmd, args] = curlGet(tftp.port, oneMib.name, dest, ['--tftp-blksize', '1468', '--connect-timeout', '30']);
      const r = await run(t, cmd, args, { timeoutMs: 90_000 });
      const sha = existsSync(dest) ? await sha256File(dest) : 'missing';
      rmSync(dest, { force: true });
      return { r, sha };
    }),
  );
  clearInterval(sampler);
  const ms = Date.now() - since;
  const failed = results.filter((x) => x.r.code !== 0);
  t.same(
    failed.map((x) => `${x.r.code} ${x.r.stderr.trim()}`),
    [],
    `all ${COUNT} curl processes exit 0 (in ${ms} ms together)`,
  );
  t.equal(results.filter((x) => x.sha === oneMib.sha).length, COUNT, 'every file has the sha256 of the source');
  const complete = tftp.records.filter((r) => r.outcome === 'complete' && r.file === oneMib.name && r.bytes === MIB);
  t.equal(complete.length, COUNT, `${COUNT} complete transfer records`);
  t.ok(peak >= 20, `transfers overlapped: up to ${peak} at once`);
  const s = tftp.server.stats();
  t.same(s.refused, {}, 'none refused');
  t.equal(s.active, 0, 'none left running');
});

/** Sends one request from a fresh socket; the first reply and anything else within 400 ms. */
async function ask(tt: Test, port: number, packet: Buffer): Promise<{ first: Buffer | undefined; from: number | undefined; more: Buffer[] }> {
  const c = await RawClient.open(tt);
  await c.send(packet, port);
  const first = await c.next(3_000);
  const more = await c.drain(400);
  await c.close();
  return { first: first?.msg, from: first?.rinfo.port, more: more.map((d) => d.msg) };
}

t.test('names that lead out of the roots are refused with an ERROR and no DATA', async (t) => {
  const tftp = await startTftp(t, [root]);
  const cases: { name: string; label: string; code: number }[] = [
    { name: '../etc/passwd', label: '../etc/passwd', code: ErrorCode.AccessViolation },
    { name: 'a/../../etc/passwd', label: 'a/../../etc/passwd', code: ErrorCode.AccessViolation },
    { name: 'one.bin/../../../etc/passwd', label: 'one.bin/../../../etc/passwd', code: ErrorCode.AccessViolation },
    { name: '/etc/passwd', label: '/etc/passwd (read inside the root, where it is not)', code: ErrorCode.FileNotFound },
    { name: '..\\..\\etc\\passwd', label: 'backslashes', code: ErrorCode.AccessViolation },
    { name: 'C:/etc/passwd', label: 'a drive letter', code: ErrorCode.AccessViolation },
    { name: 'one\x01.bin', label: 'a control character', code: ErrorCode.AccessViolation },
    { name: 'one.bin\x7f', label: 'DEL', code: ErrorCode.AccessViolation },
    { name: 'x'.repeat(600), label: 'a 600-byte name', code: ErrorCode.AccessViolation },
    { name: `${'y'.repeat(300)}/one.bin`, label: 'a 300-byte path segment', code: ErrorCode.AccessViolation },
    { name: 'open/hostname', label: 'a symlink to /etc/hostname in a world-writable directory', code: ErrorCode.AccessViolation },
    { name: 'open', label: 'a directory', code: ErrorCode.AccessViolation },
    { name: '.', label: '"." (no file named)', code: ErrorCode.AccessViolation },
  ];
  for (const c of cases) {
    const r = await ask(t, tftp.port, encodeRequest(Opcode.RRQ, c.name, 'octet', [['tsize', '0']]));
    const d = r.first && decodePacket(r.first);
    t.match(
      d,
      { ok: true, packet: { op: Opcode.ERROR, code: c.code } },
      `${c.label}: ERROR ${c.code} (${d?.ok && d.packet.op === Opcode.ERROR ? d.packet.message : 'no error'})`,
    );
    t.equal(r.from, tftp.port, `${c.label}: the ERROR comes from the listener`);
    t.same(r.more.map(opOf), [], `${c.label}: nothing else arrives (no DATA, no OACK)`);
  }
  const s = tftp.server.stats();
  t.equal(s.transfers.complete ?? 0, 0, 'no transfer ran');
  t.equal((s.refused.access ?? 0) + (s.refused.not_found ?? 0), cases.length, 'every request counted as refused');
  // The same names through a real client: curl reports the error and writes nothing.
  const dest = join(out, 'traversal');
  const [cmd, args] = curlGet(tftp.port, 'open/hostname', dest);
  const r = await run(t, cmd, args, { timeoutMs: 15_000 });
  t.not(r.code, 0, `curl open/hostname fails (exit ${r.code}: ${r.stderr.trim()})`);
  t.ok(!existsSync(dest) || statSync(dest).size === 0, 'curl got no content');
});

t.test('writes are refused: WRQ gets ERROR 2, no file appears, curl -T fails', async (t) => {
  const tftp = await startTftp(t, [root]);
  const before = readdirSync(root).sort();
  for (const name of ['new.bin', 'one.bin', '../escape.bin']) {
    const r = await ask(t, tftp.port, encodeRequest(Opcode.WRQ, name, 'octet'));
    const d = r.first && decodePacket(r.first);
    t.match(d, { ok: true, packet: { op: Opcode.ERROR, code: ErrorCode.AccessViolation } }, `WRQ ${name}: ERROR 2`);
    t.same(r.more.map(opOf), [], `WRQ ${name}: nothing else (no ACK 0)`);
  }
  const upload = join(out, 'upload.bin');
  writeFileSync(upload, 'not for the server\n');
  const r = await run(t, 'curl', ['-sS', '--max-time', '10', '-T', upload, `tftp://127.0.0.1:${tftp.port}/upload.bin`], { timeoutMs: 15_000 });
  t.not(r.code, 0, `curl -T fails (exit ${r.code}: ${r.stderr.trim()})`);
  t.same(readdirSync(root).sort(), before, 'no file was created in the root');
  t.notOk(existsSync(join(dir, 'escape.bin')), 'nor next to it');
  t.equal(tftp.server.stats().refused.write, 4, 'four writes refused');
  t.equal(tftp.records.length, 0, 'no transfer started');
});

t.test('maxTransfers 2: a third request is told the server is busy, and served once one ends', async (t) => {
  const tftp = await startTftp(t, [root], { maxTransfers: 2, retries: 1, timeoutSeconds: 1 });
  const holders = await Promise.all([RawClient.open(t), RawClient.open(t)]);
  for (const h of holders) {
    await h.send(encodeRequest(Opcode.RRQ, 'small.bin', 'octet'), tftp.port);
    const first = await h.next(3_000);
    t.equal(first && opOf(first.msg), Opcode.DATA, 'a holder gets DATA 1 and never acknowledges it');
  }
  t.equal(tftp.server.stats().active, 2, 'two transfers running');
  const third = await ask(t, tftp.port, encodeRequest(Opcode.RRQ, 'small.bin', 'octet'));
  const d = third.first && decodePacket(third.first);
  t.match(
    d,
    { ok: true, packet: { op: Opcode.ERROR, code: ErrorCode.NotDefined, message: /busy/i } },
    `the third gets an ERROR saying busy (${d?.ok && d.packet.op === Opcode.ERROR ? d.packet.message : '-'})`,
  );
  t.same(third.more.map(opOf), [], 'and no DATA');
  t.equal(tftp.server.stats().refused.busy, 1, 'counted as busy');
  // Retries 1: DATA 1 again after 1 s, then the transfer gives up 2 s later.
  const ended = await Promise.all(holders.map((h) => tftp.record((r) => r.client.port === h.port, 8_000)));
  t.same(
    ended.map((r) => r.outcome),
    ['timeout', 'timeout'],
    'the held transfers time out',
  );
  for (const h of holders) {
    const resent = h.queue.filter((x) => opOf(x.msg) === Opcode.DATA && x.msg.readUInt16BE(2) === 1);
    t.equal(resent.length, 1, 'DATA 1 was sent once more before giving up (retries 1)');
  }
  t.equal(tftp.server.stats().active, 0, 'none running');
  const again = await ask(t, tftp.port, encodeRequest(Opcode.RRQ, 'small.bin', 'octet'));
  t.equal(again.first && opOf(again.first), Opcode.DATA, 'a new request is served');
});

t.test("a stranger's packets to a transfer's port do not disturb it", async (t) => {
  const tftp = await startTftp(t, [root]);
  const client = await RawClient.open(t);
  const stranger = await RawClient.open(t);
  await client.send(encodeRequest(Opcode.RRQ, 'small.bin', 'octet'), tftp.port);
  const got: Buffer[] = [];
  let tid: number | undefined;
  for (let expect = 1; ; expect++) {
    const d = await client.next(3_000);
    t.ok(d, `DATA ${expect} arrives`);
    if (!d) return;
    tid ??= d.rinfo.port;
    t.equal(d.rinfo.port, tid, `DATA ${expect} from the transfer port`);
    t.equal(opOf(d.msg), Opcode.DATA, `packet ${expect} is DATA`);
    t.equal(d.msg.readUInt16BE(2), expect, `block ${expect}`);
    got.push(d.msg.subarray(4));
    // Before acknowledging: a stranger acknowledges ahead, repeats, errors, sends garbage.
    for (const p of [
      encodeAck(expect),
      encodeAck(expect + 1),
      encodeAck(0xffff),
      encodeError(ErrorCode.UnknownTid, 'go away'),
      Buffer.from('garbage'),
      encodeRequest(Opcode.RRQ, 'one.bin'),
    ]) {
      await stranger.send(p, tid);
    }
    await new Promise((r) => setTimeout(r, 5));
    await client.send(encodeAck(expect), tid);
    if (d.msg.length < 4 + 512) break;
  }
  t.equal(sha256(Buffer.concat(got)), sha256(small), 'the client has the whole file');
  const r = await tftp.record((x) => x.client.port === client.port, 3_000);
  t.match(r, { outcome: 'complete', bytes: small.length, resent: 0 }, 'the transfer completed, nothing resent');
  t.same(
    stranger.queue.filter((x) => opOf(x.msg) === Opcode.DATA),
    [],
    'the stranger got no DATA',
  );
  t.same(tftp.server.stats().ignored, {}, "the transfer saw none of the stranger's packets");
});

/** TFTP-aware seeded mutation of a valid packet. */
function mutate(r: Rng, base: Buffer): Buffer {
  const m = Buffer.from(base);
  switch (r.int(9)) {
    case 0: {
      for (let k = 1 + r.int(4); k > 0 && m.length > 0; k--) {
        const at = r.int(m.length);
        m[at] = (m[at] as number) ^ (1 << r.int(8));
      }
      return m;
    }
    case 1:
      return m.subarray(0, r.int(m.length + 1));
    case 2:
      return Buffer.concat([m, r.bytes(r.int(64))]);
    case 3:
      // Extended to a length up to 1500, NULs or random.
      return Buffer.concat([m, r.int(2) ? Buffer.alloc(r.int(1500 - Math.min(m.length, 1500) + 1)) : r.bytes(r.int(1500 - Math.min(m.length, 1500) + 1))]);
    case 4:
      return r.bytes(r.int(1501));
    case 5: {
      if (m.length >= 2) m.writeUInt16BE(r.int(3) === 0 ? r.int(65536) : r.int(9), 0);
      return m;
    }
    case 6: {
      // A NUL removed or added.
      const at = r.int(m.length + 1);
      return r.int(2) ? Buffer.concat([m.subarray(0, at), Buffer.from([0]), m.subarray(at)]) : Buffer.concat([m.subarray(0, at), m.subarray(at + 1)]);
    }
    case 7: {
      for (let k = 1 + r.int(3); k > 0 && m.length > 0; k--) m[r.int(m.length)] = r.pick([0, 1, 2, 3, 4, 5, 6, 0x2e, 0x2f, 0x5c, 0x7f, 0xff]);
      return m;
    }
    default:
      return Buffer.concat([m, m.subarray(0, r.int(m.length + 1))]);
  }
}

t.test('fuzz: 100,000 mutants of valid packets, then the server still serves', async (t) => {
  const tftp = await startTftp(t, [root], { retries: 1, timeoutSeconds: 1, maxTransfers: 24, maxTransfersPerClient: 24 });
  const r = prng(20_240_611);
  const bases = [
    encodeRequest(Opcode.RRQ, 'small.bin', 'octet'),
    encodeRequest(Opcode.RRQ, 'small.bin', 'netascii', [['tsize', '0']]),
    encodeRequest(Opcode.RRQ, 'small.bin', 'octet', [
      ['blksize', '1468'],
      ['windowsize', '8'],
      ['tsize', '0'],
    ]),
    encodeRequest(Opcode.RRQ, 'missing.bin', 'octet', [['blksize', '512']]),
    encodeRequest(Opcode.RRQ, '../etc/passwd', 'octet'),
    encodeRequest(Opcode.WRQ, 'new.bin', 'octet', [['tsize', '100']]),
    encodeAck(1),
    encodeAck(0),
    encodeError(ErrorCode.OptionRefused, 'no'),
    Buffer.concat([Buffer.from([0, Opcode.DATA, 0, 1]), Buffer.alloc(512, 0x41)]),
    encodeOack([
      ['blksize', '1468'],
      ['tsize', '5220'],
    ]),
  ];
  // Mostly ACKs, which keep a transfer going; an ERROR (or a mutant that becomes one) ends it.
  const transferBases = [
    encodeAck(1),
    encodeAck(2),
    encodeAck(3),
    encodeAck(0),
    encodeAck(0xffff),
    encodeAck(1),
    encodeAck(2),
    encodeError(ErrorCode.NotDefined, 'x'),
    Buffer.from([0, Opcode.DATA, 0, 1, 9, 9]),
  ];
  // Mutated requests come from several ports, so several fuzz transfers run (and some are refused busy).
  const senders = await Promise.all(Array.from({ length: 8 }, () => RawClient.open(t)));
  for (const s of senders) s.sock.removeAllListeners('message').on('message', () => undefined);

  /** A live transfer of small.bin for `client` (a fresh socket): its port, or undefined. */
  const liveTransfer = async (): Promise<{ client: RawClient; tid: number } | undefined> => {
    const client = await RawClient.open(t);
    await client.send(encodeRequest(Opcode.RRQ, 'small.bin', 'octet'), tftp.port);
    const first = await client.next(2_000);
    client.sock.removeAllListeners('message').on('message', () => undefined);
    if (!first || opOf(first.msg) !== Opcode.DATA) {
      await client.close();
      return undefined;
    }
    return { client, tid: first.rinfo.port };
  };

  const TOTAL = 100_000;
  const BURST = 500;
  const deadline = Date.now() + 50_000;
  let sent = 0;
  let toTransfers = 0;
  let lives = 0;
  let live: { client: RawClient; tid: number } | undefined;
  while (sent < TOTAL && Date.now() < deadline) {
    // Every 2 bursts, a fresh live transfer whose port the next bursts also hit.
    if (sent % (2 * BURST) === 0) {
      if (live) await live.client.close();
      live = await liveTransfer();
      if (live) lives++;
    }
    for (let i = 0; i < BURST; i++, sent++) {
      if (live && r.int(5) === 0) {
        // From the transfer's own client: past the kernel's filter, into the state machine.
        live.client.sock.send(mutate(r, r.pick(transferBases)), live.tid, '127.0.0.1');
        toTransfers++;
      } else {
        r.pick(senders).sock.send(mutate(r, r.pick(bases)), tftp.port, '127.0.0.1');
      }
    }
    await new Promise((res) => setImmediate(res));
  }
  if (live) await live.client.close();
  t.equal(sent, TOTAL, `${sent} mutants sent (${toTransfers} to live transfers) before the deadline`);
  // Let the server work through what is queued.
  await new Promise((res) => setTimeout(res, 500));
  const s = tftp.server.stats();
  const dropped = Object.values(s.dropped).reduce((a, b) => a + b, 0);
  t.ok(dropped > 0, `packets dropped by reason: ${JSON.stringify(s.dropped)}`);
  t.ok((s.dropped.bad_opcode ?? 0) > 0 && (s.dropped.unterminated ?? 0) > 0, 'among them bad opcodes and unterminated strings');
  t.notOk(s.dropped.handler_error, 'no packet made the server throw');
  t.ok(s.requests > 0, `requests seen: ${s.requests}, refused: ${JSON.stringify(s.refused)}, transfers: ${JSON.stringify(s.transfers)}`);
  const ignored = Object.values(s.ignored).reduce((a, b) => a + b, 0);
  t.ok(ignored > 100, `transfers ignored packets: ${JSON.stringify(s.ignored)}`);
  t.ok(lives >= 50, `${lives} live transfers were hit`);
  t.ok(s.active <= 24, `at most maxTransfers running (${s.active})`);

  // Still serving: a real client gets the whole file.
  const dest = join(out, 'after-fuzz');
  const [cmd, args] = curlGet(tftp.port, oneMib.name, dest, ['--tftp-blksize', '1468']);
  const res = await run(t, cmd, args, { timeoutMs: 20_000 });
  t.equal(res.code, 0, `curl after the fuzz exits 0 (${res.stderr.trim()})`);
  t.equal(existsSync(dest) ? await sha256File(dest) : 'missing', oneMib.sha, 'and has the whole file');
});

t.test('a port already taken: start() rejects naming the port and the likely holder', async (t) => {
  const holder = await RawClient.open(t);
  const port = holder.port;
  const server = createTftpServer(tftpConfig([root], { listen: { host: '127.0.0.1', port } }), { log: createLogger('silent') });
  t.teardown(() => server.stop());
  await t.rejects(server.start(), { message: new RegExp(`^TFTP: cannot bind UDP 127\\.0\\.0\\.1:${port}: .*already holds it`) }, 'EADDRINUSE explained');
  t.same(server.addresses, [], 'no address');
});
