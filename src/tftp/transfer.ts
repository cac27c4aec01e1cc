/**
 * The sending side of one read transfer as a state machine over block numbers, with no sockets
 * or timers: the shell feeds it ACKs, client errors and timeouts, and does what it answers.
 *
 * Blocks are counted from 1 without bound ("absolute" numbers); on the wire a block number is
 * the absolute one modulo 65536, so block 65536 goes out as 0 (rollover to 0, what curl, atftp,
 * tftp-hpa and iPXE expect). An ACK names at most the 16 low bits; it is placed in the window
 * of blocks sent and not yet acknowledged, which is always shorter than 65536.
 *
 * Windows follow RFC 7440 §4: the sender sends `windowsize` blocks and waits; an ACK of block
 * k acknowledges every block up to k, and the next window starts at k + 1 — so an ACK inside
 * the window (the client saw a gap) resends from the gap. An ACK that acknowledges nothing new
 * (a duplicate) is ignored: answering it is the Sorcerer's Apprentice bug (RFC 1123 §4.2.3.1),
 * which turns one late ACK into a duplicate of every later block.
 */
export type Outcome =
  /** Every block acknowledged. */
  | 'complete'
  /** The client stopped after the OACK having asked for the size: firmware's size probe. */
  | 'probe'
  /** The client refused the OACK (an ERROR in its place, no size asked). */
  | 'options-refused'
  /** The client sent an ERROR during the data. */
  | 'aborted'
  /** No progress after every retry. */
  | 'timeout'
  /** The content could not be read. */
  | 'read-error'
  /** The server stopped first. */
  | 'stopped';

export type Step =
  | { kind: 'send-oack' }
  /** Send absolute blocks `from` through `to`, in order. */
  | { kind: 'send'; from: number; to: number }
  | { kind: 'done'; outcome: Outcome }
  | { kind: 'ignore'; reason: 'duplicate-ack' | 'stale-ack' | 'ack-after-end' | 'premature-ack' };

export interface TransferParams {
  size: number;
  blksize: number;
  windowsize: number;
  /** The request was answered with an OACK, which ACK 0 acknowledges. */
  oack: boolean;
  tsizeAsked: boolean;
  /** Timeouts in a row before giving up. */
  maxRetries: number;
  timeoutMs: number;
  /** The client named the timeout: keep it fixed instead of backing off. */
  fixedTimeout: boolean;
}

/** Block count for `size` bytes: a final short (possibly empty) block ends the transfer. */
export function blockCount(size: number, blksize: number): number {
  return Math.floor(size / blksize) + 1;
}

export function wireBlock(absolute: number): number {
  return absolute & 0xffff;
}

export class ReadTransfer {
  readonly last: number;
  /** Highest absolute block acknowledged; 0 before the first (ACK 0 acknowledges the OACK). */
  acked = 0;
  /** Highest absolute block sent. */
  sent = 0;
  phase: 'oack' | 'data' | 'done' = 'oack';
  /** Timeouts since the last progress. */
  retries = 0;
  /** Blocks sent again after a timeout or a gap (for the record). */
  resent = 0;

  constructor(readonly params: TransferParams) {
    this.last = blockCount(params.size, params.blksize);
  }

  start(): Step {
    if (this.params.oack) return { kind: 'send-oack' };
    this.phase = 'data';
    return this.window();
  }

  ack(block: number): Step {
    if (this.phase === 'done') return { kind: 'ignore', reason: 'ack-after-end' };
    if (this.phase === 'oack') {
      // ACK 0 accepts the OACK; anything else cannot refer to a block not yet sent.
      if (block !== 0) return { kind: 'ignore', reason: 'premature-ack' };
      this.phase = 'data';
      this.retries = 0;
      return this.window();
    }
    const behind = (wireBlock(this.sent) - block) & 0xffff;
    const absolute = this.sent - behind;
    if (absolute === this.acked) return { kind: 'ignore', reason: 'duplicate-ack' };
    if (absolute < this.acked) return { kind: 'ignore', reason: 'stale-ack' };
    this.acked = absolute;
    this.retries = 0;
    if (absolute === this.last) {
      this.phase = 'done';
      return { kind: 'done', outcome: 'complete' };
    }
    return this.window();
  }

  /**
   * Takes over progress made outside the machine: the native pump answers the ACK of each full
   * window with the next window by itself (src/tftp/pump.ts), and reports how far it got.
   */
  advance(acked: number, sent: number): void {
    if (this.phase !== 'data' || acked < this.acked || sent < this.sent || acked > sent || sent > this.last) return;
    if (acked > this.acked) this.retries = 0;
    this.acked = acked;
    this.sent = sent;
  }

  /** An ERROR packet from the client ends the transfer. */
  clientError(): Step {
    const outcome: Outcome = this.phase === 'oack' ? (this.params.tsizeAsked ? 'probe' : 'options-refused') : 'aborted';
    this.phase = 'done';
    return { kind: 'done', outcome };
  }

  timeout(): Step {
    if (this.phase === 'done') return { kind: 'ignore', reason: 'ack-after-end' };
    this.retries += 1;
    if (this.retries > this.params.maxRetries) {
      this.phase = 'done';
      return { kind: 'done', outcome: 'timeout' };
    }
    if (this.phase === 'oack') return { kind: 'send-oack' };
    return this.window();
  }

  /** Ends the transfer from outside: reading failed, the socket failed, or the server stopped. */
  end(outcome: Outcome): Step {
    this.phase = 'done';
    return { kind: 'done', outcome };
  }

  /** The wait before the next timeout: doubling per retry, up to 8 times the base. */
  nextTimeoutMs(): number {
    if (this.params.fixedTimeout) return this.params.timeoutMs;
    return this.params.timeoutMs * 2 ** Math.min(this.retries, 3);
  }

  private window(): Step {
    const from = this.acked + 1;
    const to = Math.min(this.acked + this.params.windowsize, this.last);
    if (from <= this.sent) this.resent += Math.min(this.sent, to) - from + 1;
    this.sent = Math.max(this.sent, to);
    return { kind: 'send', from, to };
  }
}
