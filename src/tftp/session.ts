/**
 * One read transfer: the shell around `ReadTransfer`, on a native pump socket (src/tftp/pump.ts)
 * bound to the local address the client sent its request to — so every reply leaves from that
 * address on a multi-homed host — and connected to the client's address and port, the transfer
 * ID of RFC 1350 §4, so the kernel drops datagrams from anyone else before they reach it.
 */
import { decodePacket, encodeError, encodeOack, ErrorCode, Opcode } from './codec.js';
import type { TftpContent } from './content.js';
import type { Negotiated } from './options.js';
import { Pump } from './pump.js';
import { ReadTransfer, type Outcome, type Step } from './transfer.js';

export interface SessionInfo {
  client: { address: string; port: number };
  local: string;
  /** The name as normalised (a path relative to the roots, or a handler's name). */
  file: string;
  mode: string;
  requested: Record<string, string>;
}

export interface TransferRecord extends SessionInfo {
  outcome: Outcome;
  size: number;
  /** Payload bytes of the blocks the client acknowledged. */
  bytes: number;
  durationMs: number;
  blksize: number;
  windowsize: number;
  timeoutMs: number;
  /** Blocks sent more than once (timeouts, gaps). */
  resent: number;
  error?: string;
}

export interface SessionCounters {
  blocksSent: number;
  bytesSent: number;
  ignored: Record<string, number>;
}

export interface SessionOptions {
  info: SessionInfo;
  content: TftpContent;
  negotiated: Negotiated;
  maxRetries: number;
  counters: SessionCounters;
  onEnd: (record: TransferRecord) => void;
}

export class Session {
  private readonly transfer: ReadTransfer;
  private pump: Pump | undefined;
  private readonly oack: Buffer | undefined;
  private timer: NodeJS.Timeout | undefined;
  private timerMs = 0;
  private readonly started = process.hrtime.bigint();
  private ended = false;
  private endedNow: () => void = () => {};
  /** Resolves once the transfer has ended and its record was handed to onEnd. */
  readonly done = new Promise<void>((resolve) => (this.endedNow = resolve));

  constructor(private readonly o: SessionOptions) {
    const { negotiated: n, content } = o;
    this.transfer = new ReadTransfer({
      size: content.size,
      blksize: n.blksize,
      windowsize: n.windowsize,
      oack: n.oack !== undefined,
      tsizeAsked: n.tsizeAsked,
      maxRetries: o.maxRetries,
      timeoutMs: n.timeoutMs,
      fixedTimeout: n.clientTimeout,
    });
    this.oack = n.oack && encodeOack(n.oack);
  }

  /** Opens the socket and sends the OACK or the first window. Throws if the socket cannot open. */
  start(): void {
    const { local, client } = this.o.info;
    const { content, negotiated: n } = this.o;
    this.pump = new Pump(local, client, {
      packet: (data, acked, sent) => this.onPacket(data, acked, sent),
      error: (err) => this.finish('aborted', `socket: ${err.message}`),
    });
    try {
      this.pump.configure(content.source, content.size, n.blksize, n.windowsize);
    } catch (err) {
      this.pump.close();
      this.pump = undefined;
      throw err;
    }
    this.apply(this.transfer.start());
  }

  /** Ends the transfer now, telling the client why with an ERROR packet (RFC 1350 §7: not retransmitted). */
  cancel(message: string): void {
    if (this.ended) return;
    try {
      this.pump?.sendRaw(encodeError(ErrorCode.NotDefined, message));
      this.finish('stopped', message);
    } catch (err) {
      // The client is gone or the send queue is full: the transfer ends all the same, and the
      // client times out as it would on a lost ERROR. The record says so.
      this.finish('stopped', `${message} (ERROR not sent: ${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  }

  private onPacket(msg: Buffer, acked: number, sent: number): void {
    if (this.ended) return;
    this.transfer.advance(acked, sent);
    if (msg.length >= 4 && msg[0] === 0 && msg[1] === Opcode.ACK) {
      this.apply(this.transfer.ack(msg.readUInt16BE(2)));
      return;
    }
    const d = decodePacket(msg);
    if (d.ok && d.packet.op === Opcode.ERROR) {
      this.apply(this.transfer.clientError(), `client error ${d.packet.code}: ${d.packet.message}`);
      return;
    }
    this.count(d.ok ? `unexpected_${opName(d.packet.op)}` : d.reason);
  }

  private apply(step: Step, error?: string): void {
    const pump = this.pump;
    if (!pump || this.ended) return;
    try {
      switch (step.kind) {
        case 'send-oack':
          pump.sendRaw(this.oack as Buffer);
          this.arm();
          return;
        case 'send':
          pump.sendBlocks(step.from, step.to, this.transfer.acked);
          this.arm();
          return;
        case 'done':
          this.finish(step.outcome, error);
          return;
        case 'ignore':
          this.count(step.reason);
          return;
      }
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      this.finish(e.syscall === 'send' ? 'aborted' : 'read-error', `${e.syscall ?? 'send'}: ${e.message}`);
    }
  }

  /** (Re)starts the retransmission timer; `ms` defaults to the full timeout. */
  private arm(ms = this.transfer.nextTimeoutMs()): void {
    if (this.timer !== undefined && ms === this.timerMs) {
      this.timer.refresh();
      return;
    }
    clearTimeout(this.timer);
    this.timerMs = ms;
    this.timer = setTimeout(() => this.onTimer(), ms);
  }

  /**
   * The pump may have moved on without us: a transfer times out only when its last block left
   * a full timeout ago. Otherwise wait for what is left of that timeout.
   */
  private onTimer(): void {
    if (this.ended || !this.pump) return;
    const before = this.transfer.acked;
    const p = this.pump.progress();
    this.transfer.advance(p.acked, p.sent);
    const timeout = this.transfer.nextTimeoutMs();
    if (this.transfer.acked > before && p.idleMs < timeout) {
      this.arm(Math.max(1, Math.ceil(timeout - p.idleMs)));
      return;
    }
    this.apply(this.transfer.timeout(), 'no acknowledgement after every retry');
  }

  private count(reason: string): void {
    const ignored = this.o.counters.ignored;
    ignored[reason] = (ignored[reason] ?? 0) + 1;
  }

  private finish(outcome: Outcome, error?: string): void {
    if (this.ended) return;
    this.ended = true;
    if (this.transfer.phase !== 'done') this.transfer.end(outcome);
    clearTimeout(this.timer);
    if (this.pump) {
      const p = this.pump.progress();
      this.o.counters.blocksSent += p.blocksSent;
      this.o.counters.bytesSent += p.bytesSent;
      this.transfer.advance(p.acked, p.sent);
      this.pump.close();
    }
    this.o.content.close();
    const t = this.transfer;
    const { blksize, windowsize, timeoutMs } = t.params;
    this.o.onEnd({
      ...this.o.info,
      outcome,
      size: t.params.size,
      bytes: Math.min(t.params.size, t.acked * blksize),
      durationMs: Number(process.hrtime.bigint() - this.started) / 1e6,
      blksize,
      windowsize,
      timeoutMs,
      resent: t.resent,
      ...(error !== undefined && outcome !== 'complete' && { error }),
    });
    this.endedNow();
  }
}

function opName(op: number): string {
  return (
    Object.entries(Opcode)
      .find(([, v]) => v === op)?.[0]
      .toLowerCase() ?? String(op)
  );
}
