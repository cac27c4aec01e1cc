import t from 'tap';
import { blockCount, ReadTransfer, wireBlock, type Step, type TransferParams } from '../../../src/tftp/transfer.js';

/**
 * The read-transfer state machine: block counting, OACK and plain starts, lock-step and
 * windowed runs, rollover past block 65535, duplicate and stale ACKs (the Sorcerer's
 * Apprentice), go-back on a gap, timeouts with back-off, client errors — and a seeded
 * simulation against an RFC 7440 client over a lossy, duplicating, reordering channel.
 */

const base: TransferParams = {
  size: 0,
  blksize: 512,
  windowsize: 1,
  oack: false,
  tsizeAsked: false,
  maxRetries: 5,
  timeoutMs: 1000,
  fixedTimeout: false,
};

const transfer = (over: Partial<TransferParams>): ReadTransfer => new ReadTransfer({ ...base, ...over });

const send = (from: number, to: number): Step => ({ kind: 'send', from, to });

/** Runs a transfer to the end, acknowledging the last block of every window with its 16-bit number. */
function runClean(tr: ReadTransfer): { sends: [number, number][]; final: Step } {
  const sends: [number, number][] = [];
  let step = tr.start();
  if (step.kind === 'send-oack') step = tr.ack(0);
  while (step.kind === 'send') {
    sends.push([step.from, step.to]);
    step = tr.ack(wireBlock(step.to));
  }
  return { sends, final: step };
}

t.test('blockCount and wireBlock', async (t) => {
  const cases: [number, number, number][] = [
    [0, 512, 1],
    [1, 512, 1],
    [511, 512, 1],
    [512, 512, 2],
    [513, 512, 2],
    [1023, 512, 2],
    [1024, 512, 3],
    [1052672, 1468, 718],
    [1468 * 717, 1468, 718],
    [8 * 70000, 8, 70001],
    [65464, 65464, 2],
  ];
  for (const [size, blksize, n] of cases) t.equal(blockCount(size, blksize), n, `${size} bytes in ${blksize}-byte blocks: ${n}`);
  t.equal(transfer({ size: 0 }).last, 1, 'an empty file is one empty block');
  t.equal(transfer({ size: 1024 }).last, 3, 'an exact multiple ends with an extra empty block');

  for (const [abs, wire] of [
    [0, 0],
    [1, 1],
    [65535, 65535],
    [65536, 0],
    [65537, 1],
    [131071, 65535],
    [131072, 0],
  ] as const) {
    t.equal(wireBlock(abs), wire, `block ${abs} is ${wire} on the wire`);
  }
});

t.test('plain RFC 1350 start (no OACK) sends block 1', async (t) => {
  const tr = transfer({ size: 2000 });
  t.equal(tr.phase, 'oack', 'not started');
  t.same(tr.start(), send(1, 1));
  t.same([tr.phase, tr.sent, tr.acked, tr.resent], ['data', 1, 0, 0]);
  t.same(tr.ack(0), { kind: 'ignore', reason: 'duplicate-ack' }, 'ACK 0 in a plain transfer acknowledges nothing');

  const w = transfer({ size: 10 * 512, windowsize: 4 });
  t.same(w.start(), send(1, 4), 'windowed: the first window');
  t.equal(w.sent, 4);

  const short = transfer({ size: 600, windowsize: 8 });
  t.same(short.start(), send(1, 2), 'a window never goes past the last block');
});

t.test('OACK start: ACK 0 starts the data; early ACKs are ignored', async (t) => {
  const tr = transfer({ size: 5000, oack: true, windowsize: 4 });
  t.same(tr.start(), { kind: 'send-oack' });
  t.equal(tr.phase, 'oack');
  for (const early of [1, 2, 4, 65535]) {
    t.same(tr.ack(early), { kind: 'ignore', reason: 'premature-ack' }, `ACK ${early} before the data`);
  }
  t.same([tr.phase, tr.sent, tr.acked], ['oack', 0, 0], 'nothing changed');
  t.same(tr.ack(0), send(1, 4));
  t.same([tr.phase, tr.sent, tr.acked], ['data', 4, 0]);
  t.same(tr.ack(0), { kind: 'ignore', reason: 'duplicate-ack' }, 'a second ACK 0 (the OACK sent twice) is a duplicate');
  t.equal(tr.sent, 4, 'and sends nothing');
});

t.test('lock-step run to completion', async (t) => {
  const tr = transfer({ size: 5 * 512 + 100 });
  t.equal(tr.last, 6);
  const { sends, final } = runClean(tr);
  t.same(sends, [
    [1, 1],
    [2, 2],
    [3, 3],
    [4, 4],
    [5, 5],
    [6, 6],
  ]);
  t.same(final, { kind: 'done', outcome: 'complete' });
  t.same([tr.phase, tr.acked, tr.sent, tr.resent, tr.retries], ['done', 6, 6, 0, 0]);
  t.same(tr.ack(6), { kind: 'ignore', reason: 'ack-after-end' });
  t.same(tr.timeout(), { kind: 'ignore', reason: 'ack-after-end' }, 'a timeout after the end does nothing');

  const exact = transfer({ size: 1024, oack: true });
  const r = runClean(exact);
  t.same(
    r.sends,
    [
      [1, 1],
      [2, 2],
      [3, 3],
    ],
    'exact multiple: the empty third block is sent and must be acknowledged',
  );
  t.same(r.final, { kind: 'done', outcome: 'complete' });

  const empty = transfer({ size: 0 });
  t.same(empty.start(), send(1, 1));
  t.same(empty.ack(1), { kind: 'done', outcome: 'complete' }, 'an empty file: one empty block');
});

t.test('windowed runs', async (t) => {
  for (const windowsize of [4, 16]) {
    for (const blocks of [1, windowsize - 1, windowsize, windowsize + 1, 10 * windowsize, 10 * windowsize + 3]) {
      const tr = transfer({ size: (blocks - 1) * 512 + 7, windowsize, oack: true });
      t.equal(tr.last, blocks);
      const { sends, final } = runClean(tr);
      const expected: [number, number][] = [];
      for (let from = 1; from <= blocks; from += windowsize) expected.push([from, Math.min(from + windowsize - 1, blocks)]);
      t.same(sends, expected, `windowsize ${windowsize}, ${blocks} blocks`);
      t.same(final, { kind: 'done', outcome: 'complete' });
      t.equal(tr.resent, 0, 'nothing resent');
    }
  }

  // ACKs at window end where the client acknowledges every block (lock-step style) also work.
  const every = transfer({ size: 20 * 512, windowsize: 4 });
  let step = every.start();
  const sends: Step[] = [step];
  for (let b = 1; b <= every.last && every.phase !== 'done'; b += 1) {
    step = every.ack(b);
    sends.push(step);
  }
  t.same(step, { kind: 'done', outcome: 'complete' });
  t.same(sends.slice(0, 3), [send(1, 4), send(2, 5), send(3, 6)], 'each ACK slides the window by one');
  t.equal(every.resent, 18 * 3 + 2 + 1, 'which resends the overlap every time (3 blocks, then 2 and 1 at the end)');
});

t.test('rollover: block 65536 goes out as 0, ACKs with 16-bit numbers complete the transfer', async (t) => {
  for (const windowsize of [1, 4, 16]) {
    const blocks = 70001;
    const tr = transfer({ size: 8 * (blocks - 1), blksize: 8, windowsize, oack: true });
    t.equal(tr.last, blocks);
    const wire: number[] = [];
    t.same(tr.start(), { kind: 'send-oack' });
    let step = tr.ack(0);
    let steps = 0;
    let expectFrom = 1;
    let ordered = true;
    while (step.kind === 'send') {
      steps += 1;
      if (step.from !== expectFrom) ordered = false;
      for (let b = step.from; b <= step.to; b += 1) wire.push(wireBlock(b));
      expectFrom = step.to + 1;
      step = tr.ack(wireBlock(step.to));
    }
    t.same(step, { kind: 'done', outcome: 'complete' }, `windowsize ${windowsize}: complete`);
    t.ok(ordered, 'windows follow each other');
    t.equal(steps, Math.ceil(blocks / windowsize));
    t.equal(wire.length, blocks, 'every block sent once');
    t.same(wire.slice(65533, 65540), [65534, 65535, 0, 1, 2, 3, 4], 'absolute 65534.. on the wire: 65534, 65535, 0, 1, ...');
    t.equal(wire.indexOf(0), 65535, 'the first wire 0 is absolute block 65536');
    t.equal(wire[wire.length - 1], blocks - 65536);
    t.equal(tr.acked, blocks);
    t.equal(tr.resent, 0);
  }
});

t.test('rollover: duplicates, stale ACKs and a gap across the wrap', async (t) => {
  const tr = transfer({ size: 8 * 70000, blksize: 8, windowsize: 8 });
  // Run to the window that crosses the wrap: acked 65528, blocks 65529..65536 sent.
  let step = tr.start();
  t.same(step, send(1, 8));
  while (step.kind === 'send' && step.to < 65530) step = tr.ack(wireBlock(step.to));
  t.same(step, send(65529, 65536), 'the window that holds block 65536');
  t.same(tr.ack(wireBlock(65528)), { kind: 'ignore', reason: 'duplicate-ack' });
  t.same(tr.ack(wireBlock(65530)), send(65531, 65538), 'a gap at 65531: back to it, across the wrap');
  t.equal(tr.acked, 65530);
  t.same(tr.ack(0), send(65537, 65544), 'wire 0 now means 65536');
  t.equal(tr.acked, 65536);
  t.same(tr.ack(65535), { kind: 'ignore', reason: 'stale-ack' }, 'wire 65535 is a stale ACK of 65535');
  t.same(tr.ack(0), { kind: 'ignore', reason: 'duplicate-ack' }, 'wire 0 again: a duplicate of 65536');
  t.same(tr.ack(8), send(65545, 65552), 'wire 8 is 65544');
  t.equal(tr.resent, 6 + 2, 'the blocks after each gap went out twice');
  step = tr.ack(wireBlock(65552));
  while (step.kind === 'send') step = tr.ack(wireBlock(step.to));
  t.same(step, { kind: 'done', outcome: 'complete' });
  t.equal(tr.acked, 70001);
});

t.test("duplicate ACKs are ignored: the Sorcerer's Apprentice", async (t) => {
  // Block 3 times out and goes out twice; the client acknowledges both copies. Answering the
  // second ACK 3 with block 4 again would double every later block.
  const tr = transfer({ size: 10 * 512 });
  tr.start();
  t.same(tr.ack(1), send(2, 2));
  t.same(tr.ack(2), send(3, 3));
  t.same(tr.timeout(), send(3, 3), 'block 3 again after a timeout');
  t.same(tr.ack(3), send(4, 4), 'the first ACK 3 moves on');
  const before = { sent: tr.sent, acked: tr.acked, resent: tr.resent, retries: tr.retries };
  t.same(tr.ack(3), { kind: 'ignore', reason: 'duplicate-ack' }, 'the second ACK 3 sends nothing');
  t.same(tr.ack(3), { kind: 'ignore', reason: 'duplicate-ack' }, 'nor does a third');
  t.same({ sent: tr.sent, acked: tr.acked, resent: tr.resent, retries: tr.retries }, before, 'and changes nothing');
  t.same(tr.ack(4), send(5, 5));

  // Windowed: an ACK of the block already acknowledged after the window went out.
  const w = transfer({ size: 40 * 512, windowsize: 4 });
  w.start();
  t.same(w.ack(4), send(5, 8));
  t.same(w.ack(4), { kind: 'ignore', reason: 'duplicate-ack' });
  t.equal(w.sent, 8);
});

t.test('stale ACKs are ignored', async (t) => {
  const tr = transfer({ size: 40 * 512, windowsize: 4 });
  tr.start();
  tr.ack(4);
  tr.ack(8);
  t.same([tr.acked, tr.sent], [8, 12]);
  for (const old of [1, 3, 5, 7]) t.same(tr.ack(old), { kind: 'ignore', reason: 'stale-ack' }, `ACK ${old} after ACK 8`);
  t.same(tr.ack(0), { kind: 'ignore', reason: 'stale-ack' }, 'ACK 0 (the OACK) after data');
  t.same([tr.acked, tr.sent, tr.resent], [8, 12, 0], 'nothing changed');
  // A number ahead of anything sent is placed behind the window: stale, never a jump forward.
  t.same(tr.ack(13), { kind: 'ignore', reason: 'stale-ack' }, 'an ACK of a block never sent');
  t.same(tr.ack(40), { kind: 'ignore', reason: 'stale-ack' });
  t.same([tr.acked, tr.sent], [8, 12]);

  const lock = transfer({ size: 10 * 512 });
  lock.start();
  lock.ack(1);
  lock.ack(2);
  t.same(lock.ack(1), { kind: 'ignore', reason: 'stale-ack' }, 'lock-step: ACK 1 after ACK 2');
});

t.test('an ACK inside the window goes back to the gap', async (t) => {
  const tr = transfer({ size: 40 * 512, windowsize: 4 });
  t.same(tr.start(), send(1, 4));
  t.same(tr.ack(2), send(3, 6), 'client saw 1, 2 and a gap: from 3');
  t.same([tr.acked, tr.sent, tr.resent], [2, 6, 2], 'blocks 3 and 4 counted as resent');
  t.same(tr.ack(6), send(7, 10), 'then on as usual');
  t.same(tr.ack(7), send(8, 11), 'a gap after the first block of a window');
  t.equal(tr.resent, 2 + 3);
  t.same(tr.ack(11), send(12, 15));

  // The gap near the end: the window is cut at the last block.
  const end = transfer({ size: 9 * 512 + 1, windowsize: 4 });
  t.equal(end.last, 10);
  end.start();
  end.ack(4);
  t.same(end.ack(8), send(9, 10));
  t.same(end.ack(9), send(10, 10), 'only the last block is left');
  t.same(end.ack(10), { kind: 'done', outcome: 'complete' });
});

t.test('timeouts: resend, back off, give up', async (t) => {
  const tr = transfer({ size: 40 * 512, windowsize: 4, maxRetries: 5, timeoutMs: 1000 });
  tr.start();
  t.equal(tr.nextTimeoutMs(), 1000, 'the base timeout first');
  const waits = [tr.nextTimeoutMs()];
  for (let i = 1; i <= 5; i += 1) {
    t.same(tr.timeout(), send(1, 4), `timeout ${i}: the window again`);
    t.equal(tr.retries, i);
    waits.push(tr.nextTimeoutMs());
  }
  t.same(waits, [1000, 2000, 4000, 8000, 8000, 8000], 'doubling up to 8 times the base');
  t.equal(tr.resent, 5 * 4);
  t.same(tr.timeout(), { kind: 'done', outcome: 'timeout' }, 'the sixth timeout with maxRetries 5 gives up');
  t.equal(tr.phase, 'done');
  t.same(tr.ack(4), { kind: 'ignore', reason: 'ack-after-end' });

  // Progress resets the count and the back-off.
  const p = transfer({ size: 40 * 512, windowsize: 4, maxRetries: 2 });
  p.start();
  p.timeout();
  p.timeout();
  t.equal(p.nextTimeoutMs(), 4000);
  t.same(p.ack(2), send(3, 6), 'progress after two timeouts');
  t.same([p.retries, p.nextTimeoutMs()], [0, 1000]);
  t.same(p.timeout(), send(3, 6), 'the window from the last ACK');
  t.same(p.timeout(), send(3, 6));
  t.same(p.timeout(), { kind: 'done', outcome: 'timeout' });

  // A duplicate ACK is no progress.
  const d = transfer({ size: 40 * 512, maxRetries: 1 });
  d.start();
  d.ack(1);
  d.timeout();
  t.same(d.ack(1), { kind: 'ignore', reason: 'duplicate-ack' });
  t.equal(d.retries, 1, 'a duplicate does not reset the retries');
  t.same(d.timeout(), { kind: 'done', outcome: 'timeout' });

  // The client named the timeout: no back-off.
  const fixed = transfer({ size: 40 * 512, timeoutMs: 3000, fixedTimeout: true, maxRetries: 4 });
  fixed.start();
  const fixedWaits = [fixed.nextTimeoutMs()];
  for (let i = 0; i < 4; i += 1) {
    t.same(fixed.timeout(), send(1, 1));
    fixedWaits.push(fixed.nextTimeoutMs());
  }
  t.same(fixedWaits, [3000, 3000, 3000, 3000, 3000]);
  t.same(fixed.timeout(), { kind: 'done', outcome: 'timeout' });

  // In the OACK phase a timeout resends the OACK.
  const o = transfer({ size: 100, oack: true, maxRetries: 3 });
  o.start();
  for (let i = 1; i <= 3; i += 1) t.same(o.timeout(), { kind: 'send-oack' }, `OACK again (${i})`);
  t.same(o.timeout(), { kind: 'done', outcome: 'timeout' });

  const o2 = transfer({ size: 100, oack: true, maxRetries: 3 });
  o2.start();
  o2.timeout();
  o2.timeout();
  t.same(o2.ack(0), send(1, 1), 'ACK 0 after two OACKs');
  t.equal(o2.retries, 0, 'resets the retries');
  t.equal(o2.resent, 0, 'OACKs are not counted as resent blocks');
});

t.test('client errors and other ends', async (t) => {
  const probe = transfer({ size: 100, oack: true, tsizeAsked: true });
  probe.start();
  t.same(probe.clientError(), { kind: 'done', outcome: 'probe' }, 'an ERROR for the OACK after asking the size: a probe');
  t.equal(probe.phase, 'done');

  const refused = transfer({ size: 100, oack: true, tsizeAsked: false });
  refused.start();
  t.same(refused.clientError(), { kind: 'done', outcome: 'options-refused' });

  const aborted = transfer({ size: 10000, oack: true, tsizeAsked: true });
  aborted.start();
  aborted.ack(0);
  t.same(aborted.clientError(), { kind: 'done', outcome: 'aborted' }, 'during the data, even with tsize asked');
  t.same(aborted.ack(1), { kind: 'ignore', reason: 'ack-after-end' });

  const plain = transfer({ size: 10000 });
  plain.start();
  t.same(plain.clientError(), { kind: 'done', outcome: 'aborted' }, 'plain transfer: data from the start');

  const readError = transfer({ size: 10000 });
  readError.start();
  t.same(readError.end('read-error'), { kind: 'done', outcome: 'read-error' });
  t.same(readError.timeout(), { kind: 'ignore', reason: 'ack-after-end' });
  const stopped = transfer({ size: 10000, oack: true });
  stopped.start();
  t.same(stopped.end('stopped'), { kind: 'done', outcome: 'stopped' });
  t.equal(stopped.phase, 'done');
});

t.test('advance takes over progress made by the pump, never backwards', async (t) => {
  const tr = transfer({ size: 100 * 512, windowsize: 4, oack: true });
  tr.start();
  tr.advance(4, 8);
  t.same([tr.acked, tr.sent], [0, 0], 'ignored before the data phase');
  tr.ack(0);
  tr.timeout();
  t.equal(tr.retries, 1);
  tr.advance(8, 12);
  t.same([tr.acked, tr.sent, tr.retries], [8, 12, 0], 'taken over; progress resets the retries');
  tr.advance(4, 12);
  tr.advance(8, 10);
  tr.advance(13, 12);
  tr.advance(8, 102);
  t.same([tr.acked, tr.sent], [8, 12], 'backwards, acked past sent, or past the end: ignored');
  tr.timeout();
  tr.advance(8, 16);
  t.same([tr.acked, tr.sent, tr.retries], [8, 16, 1], 'more sent without an ACK is no progress');
  t.same(tr.ack(16), send(17, 20), 'ACKs are placed against the pump-advanced window');
  tr.advance(101, 101);
  t.same([tr.acked, tr.sent], [101, 101], 'up to the last block');
  tr.end('stopped');
  tr.advance(101, 101);
  t.equal(tr.phase, 'done');
});

/* ----------------------------------------------------------------------------------------- */
/* Seeded simulation: the state machine against an RFC 7440 client over a bad channel          */
/* ----------------------------------------------------------------------------------------- */

/** mulberry32: a small seeded PRNG, uniform in [0, 1). */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

type ToClient = { type: 'oack' } | { type: 'data'; block: number; data: Buffer };
interface ToServer {
  type: 'ack';
  block: number;
}

interface SimConfig {
  seed: number;
  blocks: number;
  blksize: number;
  windowsize: number;
  oack: boolean;
  /** Per packet, each direction. */
  drop: number;
  dup: number;
  reorder: number;
  maxRetries?: number;
}

interface SimResult {
  outcome: string | undefined;
  clientDone: boolean;
  clientGaveUp: boolean;
  /** The blocks the client took, in order, as absolute numbers. */
  taken: number[];
  reassembled: Buffer;
  content: Buffer;
  dataSent: number;
  acksSent: number;
  ignored: Record<string, number>;
  resent: number;
  dataAfterDone: number;
  virtualMs: number;
}

/**
 * A discrete-event simulation: the shell around the machine does what session.ts does (sends
 * what a step says, re-arms its timer on every send, feeds ACKs and timeouts); the client is an
 * RFC 7440 receiver that acknowledges the end of each window, the last in-order block when it
 * sees a gap or when its own timer runs out, and the block it last acknowledged again when that
 * block comes again (lock-step receivers do this for every duplicate: the Sorcerer's Apprentice
 * trigger).
 */
function simulate(c: SimConfig): SimResult {
  const rand = prng(c.seed);
  const content = Buffer.alloc((c.blocks - 1) * c.blksize + Math.floor(rand() * c.blksize));
  for (let i = 0; i < content.length; i += 1) content[i] = Math.floor(rand() * 256);

  // Event queue; small (in-flight packets plus two timers), so a linear scan for the minimum.
  interface Ev {
    at: number;
    seq: number;
    run: () => void;
  }
  const queue: Ev[] = [];
  let seq = 0;
  let now = 0;
  const at = (time: number, run: () => void): void => {
    queue.push({ at: time, seq: seq++, run });
  };

  /** The channel: drops, duplicates, and delays some packets past later ones. */
  const carry = <P>(p: P, offset: number, deliver: (p: P) => void): void => {
    if (rand() < c.drop) return;
    const copies = rand() < c.dup ? 2 : 1;
    for (let i = 0; i < copies; i += 1) {
      const late = rand() < c.reorder ? 0.5 + rand() * 3 : 0;
      at(now + offset + 1 + late + i * 0.05, () => deliver(p));
    }
  };

  // ---- server ----
  const tr = new ReadTransfer({
    size: content.length,
    blksize: c.blksize,
    windowsize: c.windowsize,
    oack: c.oack,
    tsizeAsked: false,
    maxRetries: c.maxRetries ?? 6,
    timeoutMs: 100,
    fixedTimeout: false,
  });
  let outcome: string | undefined;
  let serverTimer = 0;
  let dataSent = 0;
  let dataAfterDone = 0;
  const ignored: Record<string, number> = {};
  const armServer = (): void => {
    const gen = ++serverTimer;
    at(now + tr.nextTimeoutMs(), () => {
      if (gen === serverTimer && outcome === undefined) apply(tr.timeout());
    });
  };
  const apply = (step: Step): void => {
    switch (step.kind) {
      case 'send-oack':
        carry<ToClient>({ type: 'oack' }, 0, toClient);
        armServer();
        return;
      case 'send':
        if (step.from < 1 || step.to > tr.last || step.from > step.to) throw new Error(`bad send ${step.from}..${step.to}`);
        if (outcome !== undefined) dataAfterDone += 1;
        for (let b = step.from; b <= step.to; b += 1) {
          dataSent += 1;
          const data = content.subarray((b - 1) * c.blksize, Math.min(b * c.blksize, content.length));
          carry<ToClient>({ type: 'data', block: wireBlock(b), data }, (b - step.from) * 0.01, toClient);
        }
        armServer();
        return;
      case 'done':
        outcome = step.outcome;
        serverTimer += 1;
        return;
      case 'ignore':
        ignored[step.reason] = (ignored[step.reason] ?? 0) + 1;
        return;
    }
  };
  const toServer = (p: ToServer): void => {
    // The session closes its socket at the end: later packets reach nobody.
    if (outcome !== undefined) return;
    apply(tr.ack(p.block));
  };

  // ---- client ----
  let gotOack = !c.oack;
  let expected = 1;
  let lastAck = 0;
  let gapAckedAt = -1;
  let clientDone = false;
  let clientGaveUp = false;
  let clientTimer = 0;
  let clientRetries = 0;
  let acksSent = 0;
  const taken: number[] = [];
  const parts: Buffer[] = [];
  const ack = (block: number): void => {
    acksSent += 1;
    lastAck = block;
    carry<ToServer>({ type: 'ack', block: wireBlock(block) }, 0, toServer);
  };
  const armClient = (): void => {
    const gen = ++clientTimer;
    at(now + 250, () => {
      if (gen !== clientTimer || clientDone || clientGaveUp) return;
      clientRetries += 1;
      if (clientRetries > 20) {
        clientGaveUp = true;
        return;
      }
      ack(expected - 1);
      armClient();
    });
  };
  const toClient = (p: ToClient): void => {
    if (clientGaveUp) return;
    if (p.type === 'oack') {
      // A repeated OACK means our ACK 0 was lost; once data flows it is a stray copy.
      if (expected === 1) {
        gotOack = true;
        ack(0);
        armClient();
      }
      return;
    }
    if (!gotOack) throw new Error('data before the OACK was acknowledged');
    // The absolute number nearest to the one expected.
    const abs = expected + (((p.block - wireBlock(expected) + 32768) & 0xffff) - 32768);
    if (clientDone) {
      // Dallying: our final ACK may have been lost; the final block again says so.
      if (abs === expected - 1) ack(abs);
      return;
    }
    clientRetries = 0;
    if (abs === expected) {
      taken.push(abs);
      parts.push(Buffer.from(p.data));
      expected += 1;
      if (p.data.length < c.blksize) {
        clientDone = true;
        clientTimer += 1;
        ack(abs);
        return;
      }
      if (abs - lastAck >= c.windowsize) ack(abs);
      armClient();
    } else if (abs > expected) {
      // A gap: the last in-order block, once per gap.
      if (gapAckedAt !== expected) {
        gapAckedAt = expected;
        ack(expected - 1);
      }
    } else if (abs === expected - 1 && abs === lastAck) {
      // The block we last acknowledged, again: the server did not hear our ACK (or the channel
      // doubled the block). Say it again, as RFC 1350 receivers do; any other old block is dropped.
      ack(abs);
    }
  };

  // ---- run ----
  apply(tr.start());
  let events = 0;
  while (queue.length > 0) {
    let min = 0;
    for (let i = 1; i < queue.length; i += 1) {
      const e = queue[i] as Ev;
      const m = queue[min] as Ev;
      if (e.at < m.at || (e.at === m.at && e.seq < m.seq)) min = i;
    }
    const ev = queue[min] as Ev;
    queue[min] = queue[queue.length - 1] as Ev;
    queue.pop();
    now = ev.at;
    ev.run();
    events += 1;
    // A runaway (say, every duplicate ACK answered with a window) ends the run, to fail fast.
    if (events > 5_000_000 || dataSent > 20 * c.blocks + 1000) {
      outcome ??= 'runaway';
      break;
    }
  }
  return {
    outcome,
    clientDone,
    clientGaveUp,
    taken,
    reassembled: Buffer.concat(parts),
    content,
    dataSent,
    acksSent,
    ignored,
    resent: tr.resent,
    dataAfterDone,
    virtualMs: now,
  };
}

t.test('simulation: a perfect channel sends every block exactly once', async (t) => {
  for (const windowsize of [1, 4, 16]) {
    for (const oack of [false, true]) {
      const r = simulate({ seed: 1, blocks: 200, blksize: 64, windowsize, oack, drop: 0, dup: 0, reorder: 0 });
      t.equal(r.outcome, 'complete', `windowsize ${windowsize}, oack ${oack}`);
      t.ok(r.reassembled.equals(r.content), 'the client has the file');
      t.equal(r.dataSent, 200, 'each block once');
      t.equal(r.resent, 0);
      t.equal(r.acksSent, Math.ceil(200 / windowsize) + (oack ? 1 : 0), 'one ACK per window (and ACK 0)');
      t.same(r.ignored, {}, 'nothing ignored');
    }
  }
});

/**
 * What go-back-N costs by itself: with each block lost (or overtaken) with probability q, a
 * window of W yields on average Σ_{k=1..W} (1-q)^k blocks in order, so W / that is the least
 * ratio of blocks sent to blocks delivered. The simulations allow half as much again.
 */
function goBackBound(windowsize: number, drop: number, reorder: number): number {
  const q = drop + (1 - drop) * reorder;
  let inOrder = 0;
  for (let k = 1; k <= windowsize; k += 1) inOrder += (1 - q) ** k;
  return 1.5 * (windowsize / inOrder);
}

t.test('goBackBound', async (t) => {
  t.equal(goBackBound(1, 0, 0), 1.5, 'a perfect channel');
  t.ok(Math.abs(goBackBound(1, 0.1, 0) - 1.5 / 0.9) < 1e-9, 'lock-step: one retry per loss');
  t.ok(goBackBound(8, 0.1, 0.05) < 3, 'windowsize 8 on the lossy channel: under 3x');
  t.ok(goBackBound(16, 0.1, 0.05) > goBackBound(8, 0.1, 0.05), 'larger windows lose more per gap');
});

t.test('simulation: lossy, duplicating, reordering channel', async (t) => {
  const totals: Record<string, number> = {};
  let worst = 0;
  for (const windowsize of [1, 2, 4, 8, 16]) {
    for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
      const blocks = 150 + seed * 17;
      const r = simulate({ seed: seed * 7919 + windowsize, blocks, blksize: 32, windowsize, oack: seed % 2 === 0, drop: 0.1, dup: 0.05, reorder: 0.05 });
      const bound = goBackBound(windowsize, 0.1, 0.05);
      const name = `windowsize ${windowsize}, seed ${seed}, ${blocks} blocks`;
      t.equal(r.outcome, 'complete', `${name}: complete`);
      t.ok(r.clientDone && !r.clientGaveUp, `${name}: the client finished`);
      t.same(
        r.taken,
        Array.from({ length: blocks }, (_, i) => i + 1),
        `${name}: blocks taken 1..${blocks} in order`,
      );
      t.ok(r.reassembled.equals(r.content), `${name}: reassembled byte for byte`);
      t.ok(r.dataSent < bound * blocks, `${name}: ${r.dataSent} blocks sent for ${blocks} (< ${bound.toFixed(2)}x)`);
      if (windowsize <= 8) t.ok(r.dataSent < 3 * blocks, `${name}: under 3x`);
      t.equal(r.dataAfterDone, 0, `${name}: nothing sent after the end`);
      t.equal(r.resent, r.dataSent - blocks, `${name}: every block sent twice or more is counted in resent`);
      worst = Math.max(worst, r.dataSent / blocks);
      for (const [k, v] of Object.entries(r.ignored)) totals[k] = (totals[k] ?? 0) + v;
    }
  }
  t.comment(`worst ratio of blocks sent to blocks: ${worst.toFixed(2)}; ignored: ${JSON.stringify(totals)}`);
  t.ok((totals['duplicate-ack'] ?? 0) > 0, 'duplicate ACKs happened and were ignored');
  t.ok((totals['stale-ack'] ?? 0) > 0, 'stale ACKs happened and were ignored');
});

t.test("simulation: a duplicating channel costs nothing (no Sorcerer's Apprentice)", async (t) => {
  for (const windowsize of [1, 4, 16]) {
    for (const seed of [21, 22, 23]) {
      const r = simulate({ seed, blocks: 300, blksize: 16, windowsize, oack: true, drop: 0, dup: 0.2, reorder: 0 });
      const name = `windowsize ${windowsize}, seed ${seed}`;
      t.equal(r.outcome, 'complete', `${name}: complete`);
      t.ok(r.reassembled.equals(r.content), `${name}: reassembled`);
      t.ok((r.ignored['duplicate-ack'] ?? 0) > 0, `${name}: ${r.ignored['duplicate-ack'] ?? 0} duplicate ACKs ignored`);
      t.equal(r.dataSent, 300, `${name}: every block sent exactly once`);
    }
  }
});

t.test('simulation: heavy loss still completes', async (t) => {
  for (const windowsize of [1, 8]) {
    for (const seed of [11, 12, 13]) {
      const r = simulate({ seed, blocks: 120, blksize: 16, windowsize, oack: true, drop: 0.25, dup: 0.1, reorder: 0.1, maxRetries: 10 });
      t.equal(r.outcome, 'complete', `windowsize ${windowsize}, seed ${seed}`);
      t.ok(r.reassembled.equals(r.content));
      const bound = goBackBound(windowsize, 0.25, 0.1);
      t.ok(r.dataSent < bound * 120, `${r.dataSent} blocks sent for 120 (< ${bound.toFixed(2)}x)`);
    }
  }
});

t.test('simulation: rollover on a lossy channel', async (t) => {
  const blocks = 66000;
  const r = simulate({ seed: 65536, blocks, blksize: 1, windowsize: 16, oack: true, drop: 0.02, dup: 0.02, reorder: 0.02 });
  t.equal(r.outcome, 'complete');
  t.equal(r.taken.length, blocks);
  t.equal(r.taken[65535], 65536, 'the 65536th block taken is block 65536 (wire 0)');
  t.ok(
    r.taken.every((b, i) => b === i + 1),
    'in order',
  );
  t.ok(r.reassembled.equals(r.content), 'reassembled byte for byte across the wrap');
  const bound = goBackBound(16, 0.02, 0.02);
  t.ok(r.dataSent < bound * blocks, `${r.dataSent} blocks sent for ${blocks} (< ${bound.toFixed(2)}x)`);
});

t.test('simulation: a dead channel times out', async (t) => {
  const r = simulate({ seed: 3, blocks: 10, blksize: 16, windowsize: 4, oack: true, drop: 1, dup: 0, reorder: 0, maxRetries: 5 });
  t.equal(r.outcome, 'timeout');
  t.equal(r.dataSent, 0, 'the OACK never got through: no data');
  // 100 ms base: 100 + 200 + 400 + 800 + 800 + 800 before the sixth timeout gives up.
  t.equal(r.virtualMs, 3100, 'the back-off schedule');
});
