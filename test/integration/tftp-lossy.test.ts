/**
 * The TFTP server behind a lossy, duplicating UDP relay (test/helpers/lossy-relay.ts: seeded,
 * ~3 % of packets dropped and ~3 % sent twice, both ways): the real atftp (windowsize 1, 4 and
 * 16, blksize 1468) and curl (blksize 512) still fetch the file exactly, the server ignores the
 * duplicate ACKs instead of answering them, and no more than twice the blocks needed go out —
 * no Sorcerer's Apprentice (RFC 1123 §4.2.3.1).
 *
 * Every lost DATA or ACK that no later packet reveals (in lock-step, all of them: the client's
 * repeated ACK is a duplicate, which the server must not answer) costs a server timeout of 1 to
 * 2 s, so the file sizes shrink with the window: 3 MiB at windowsize 16, 1 MiB at 4, 192 KiB in
 * lock-step at 1468 and 128 KiB at 512 — some 10 to 20 timeouts each. A gap inside a window is
 * answered at once. Every run has its own server and relay, and all twelve go at the same time:
 * they mostly wait on timers.
 */
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { tempDir } from '../helpers/app.js';
import { startLossyRelay } from '../helpers/lossy-relay.js';
import { encodeAck, encodeRequest, Opcode } from '../../src/tftp/codec.js';
import { atftpGet, curlGet, RawClient, run, sha256, sha256File, startTftp, writeSeededFile } from '../helpers/tftp.js';

const DROP = 0.03;
const DUP = 0.03;
const SEEDS = [1, 2, 3];
const RUN_TIMEOUT_MS = 90_000;

const dir = tempDir('edgeboot-tftp-lossy-');
const root = join(dir, 'root');
mkdirSync(root);
const out = join(dir, 'out');
mkdirSync(out);
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

interface Source {
  name: string;
  size: number;
  sha: string;
}

async function source(name: string, size: number, seed: number): Promise<Source> {
  return { name, size, sha: await writeSeededFile(join(root, name), size, seed) };
}

// Sizes chosen so each run expects some 10 to 20 timeouts at this loss rate: a run should take
// well under a minute.
const big = await source('3mib.bin', 3 * 1024 * 1024 + 12_345, 101); // 2152 blocks of 1468
const mid = await source('1mib.bin', 1024 * 1024 + 333, 102); // 715 blocks of 1468
const small = await source('192kib.bin', 192 * 1024 + 777, 103); // 135 blocks of 1468
const tiny = await source('128kib.bin', 128 * 1024 + 99, 104); // 257 blocks of 512

interface Case {
  label: string;
  client: 'atftp' | 'curl';
  blksize: number;
  windowsize: number;
  file: Source;
}

const cases: Case[] = [
  { label: 'atftp windowsize 1, blksize 1468', client: 'atftp', blksize: 1468, windowsize: 1, file: small },
  { label: 'atftp windowsize 4, blksize 1468', client: 'atftp', blksize: 1468, windowsize: 4, file: mid },
  { label: 'atftp windowsize 16, blksize 1468', client: 'atftp', blksize: 1468, windowsize: 16, file: big },
  { label: 'curl blksize 512', client: 'curl', blksize: 512, windowsize: 1, file: tiny },
];

t.test("every ACK sent twice: the repeat is ignored, each block goes out once (no Sorcerer's Apprentice)", async (t) => {
  const tftp = await startTftp(t, [root]);
  let pairs = 0;
  let transfers = 0;
  for (const { label, options, blksize, windowsize } of [
    { label: 'lock-step, no options', options: [] as [string, string][], blksize: 512, windowsize: 1 },
    {
      label: 'blksize 1468, windowsize 4',
      options: [
        ['blksize', '1468'],
        ['windowsize', '4'],
      ] as [string, string][],
      blksize: 1468,
      windowsize: 4,
    },
  ]) {
    const c = await RawClient.open(t);
    await c.send(encodeRequest(Opcode.RRQ, small.name, 'octet', options), tftp.port);
    const last = Math.floor(small.size / blksize) + 1;
    const copies = new Map<number, number>();
    const blocks: Buffer[] = [];
    let tid: number | undefined;
    const ackTwice = async (block: number) => {
      await c.send(encodeAck(block), tid as number);
      await c.send(encodeAck(block), tid as number);
      pairs += 1;
    };
    if (options.length > 0) {
      const oack = await c.next(3_000);
      t.equal(oack?.msg.readUInt16BE(0), Opcode.OACK, `${label}: OACK`);
      if (!oack) return;
      tid = oack.rinfo.port;
      await ackTwice(0);
    }
    while (blocks.length < last) {
      const d = await c.next(3_000);
      if (!d) break;
      tid ??= d.rinfo.port;
      if (d.msg.readUInt16BE(0) !== Opcode.DATA) continue;
      const block = d.msg.readUInt16BE(2);
      copies.set(block, (copies.get(block) ?? 0) + 1);
      if (block !== blocks.length + 1) continue;
      blocks.push(d.msg.subarray(4));
      if (block % windowsize === 0 || block === last) await ackTwice(block);
    }
    t.equal(blocks.length, last, `${label}: all ${last} blocks arrived`);
    t.equal(sha256(Buffer.concat(blocks)), small.sha, `${label}: the file is whole`);
    await c.drain(300);
    const repeated = [...copies].filter(([, n]) => n > 1).map(([b]) => b);
    t.same(repeated, [], `${label}: no block arrived twice`);
    const r = await tftp.record((x) => x.client.port === c.port, 3_000);
    t.match(r, { outcome: 'complete', blksize, windowsize, resent: 0 }, `${label}: complete, nothing resent`);
    await c.close();
    transfers += 1;
  }
  const s = tftp.server.stats();
  const blocks = Math.floor(small.size / 512) + 1 + Math.floor(small.size / 1468) + 1;
  t.equal(s.blocksSent, blocks, `exactly the ${blocks} blocks needed went out`);
  // Every repeat but the one of each final ACK (that transfer is over by then) is a duplicate.
  t.equal(s.ignored['duplicate-ack'], pairs - transfers, `the repeats were ignored as duplicates (${JSON.stringify(s.ignored)})`);
});

t.test('exact files through ~3 % loss and ~3 % duplication, several seeds at once', async (t) => {
  const runs = cases.flatMap((c) => SEEDS.map((seed) => ({ c, seed })));
  const results = await Promise.all(
    runs.map(async ({ c, seed }) => {
      const tftp = await startTftp(t, [root], { timeoutSeconds: 1, retries: 5 });
      const relay = await startLossyRelay({ serverPort: tftp.port, seed, drop: DROP, dup: DUP });
      t.teardown(() => relay.close());
      const dest = join(out, `${c.client}-${c.windowsize}-${seed}`);
      const [cmd, args] =
        c.client === 'atftp'
          ? atftpGet(relay.port, c.file.name, dest, { blksize: c.blksize, windowsize: c.windowsize, tsize: 0 })
          : curlGet(relay.port, c.file.name, dest, ['--tftp-blksize', String(c.blksize)]);
      const result = await run(t, cmd, args, { timeoutMs: RUN_TIMEOUT_MS });
      // A dropped final ACK keeps the server resending its last window until its retries run
      // out (1+2+4+8+8 s), and only then is the transfer recorded: wait for that much.
      const record = result.code === 0 ? await tftp.record((r) => r.file === c.file.name, 40_000).catch(() => undefined) : undefined;
      return { c, seed, result, dest, record, stats: tftp.server.stats(), relay: relay.counts };
    }),
  );

  let duplicateAcks = 0;
  for (const { c, seed, result, dest, record, stats, relay } of results) {
    const what = `${c.label}, seed ${seed}`;
    t.equal(
      result.code,
      0,
      `${what}: the client succeeds in ${result.ms} ms${result.timedOut ? ' (killed at the time limit)' : ''} (stderr: ${result.stderr.slice(-300)})`,
    );
    if (result.code !== 0) continue;
    t.equal(await sha256File(dest), c.file.sha, `${what}: the sha256 matches the source`);
    t.ok(relay.dropped.toClient + relay.dropped.toServer > 0, `${what}: the relay dropped packets (${JSON.stringify(relay.dropped)})`);
    t.ok(relay.duplicated.toClient + relay.duplicated.toServer > 0, `${what}: the relay duplicated packets (${JSON.stringify(relay.duplicated)})`);
    // Which packets the seeded relay drops depends on timing (retransmissions shift the
    // sequence): when it is the client's final ACK, the server cannot know the client is done
    // and records a timeout after its retries, having sent every block (checked below).
    if (record?.outcome === 'timeout') {
      t.ok(
        record.bytes >= c.file.size - c.windowsize * c.blksize,
        `${what}: the final ACK was lost: a timeout with all but the last window acknowledged (${record.bytes} of ${c.file.size})`,
      );
    } else {
      t.equal(record?.outcome, 'complete', `${what}: recorded complete`);
      t.equal(record?.bytes, c.file.size, `${what}: every byte acknowledged`);
    }
    t.equal(record?.blksize, c.blksize, `${what}: blksize ${c.blksize}`);
    t.equal(record?.windowsize, c.windowsize, `${what}: windowsize ${c.windowsize}`);
    const needed = Math.floor(c.file.size / c.blksize) + 1;
    t.ok(stats.blocksSent >= needed, `${what}: at least the ${needed} blocks needed went out (${stats.blocksSent})`);
    t.ok(stats.blocksSent < 2 * needed, `${what}: fewer than twice the ${needed} blocks needed went out (${stats.blocksSent}): no Sorcerer's Apprentice`);
    // An ACK that acknowledges nothing new is ignored: 'duplicate-ack' if it repeats the last
    // one, 'stale-ack' if the transfer has moved on since (a relay copy arriving late).
    const ignored = (stats.ignored['duplicate-ack'] ?? 0) + (stats.ignored['stale-ack'] ?? 0);
    t.ok(ignored > 0, `${what}: repeated ACKs were seen and ignored (${JSON.stringify(stats.ignored)})`);
    // In a window, atftp answers every block after a gap with the same ACK: duplicates for sure.
    if (c.windowsize > 1) t.ok((stats.ignored['duplicate-ack'] ?? 0) > 0, `${what}: duplicate ACKs counted (${JSON.stringify(stats.ignored)})`);
    duplicateAcks += stats.ignored['duplicate-ack'] ?? 0;
  }
  t.ok(duplicateAcks > 0, `duplicate ACKs over all runs: ${duplicateAcks}`);
});
