/**
 * One read transfer on its own socket: the shell around `ReadTransfer`. The socket is bound to
 * the local address the client sent its request to (so every reply leaves from that address on
 * a multi-homed host) and connected to the client's address and port — the transfer ID of
 * RFC 1350 §4 — so the kernel drops datagrams from anyone else before they reach the transfer.
 */
import { createSocket, type Socket } from 'node:dgram';
import { DATA_HEADER_BYTES, decodePacket, encodeOack, Opcode, writeDataHeader } from './codec.js';
import type { TftpContent } from './content.js';
import type { Negotiated } from './options.js';
import { ReadTransfer, wireBlock, type Outcome, type Step } from './transfer.js';

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
  private readonly socket: Socket;
  /** DATA headers by block slot; a slot is rewritten only once its block is acknowledged. */
  private readonly headers: Buffer[];
  private readonly oack: Buffer | undefined;
  private timer: NodeJS.Timeout | undefined;
  private timerMs = 0;
  /** Bumped by each send; an asynchronous send that finds it changed stops (a newer one took over). */
  private generation = 0;
  private readonly started = process.hrtime.bigint();
  private ended = false;

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
    const slots = Math.min(2 * n.windowsize, 65536);
    const all = Buffer.allocUnsafe(slots * DATA_HEADER_BYTES);
    this.headers = Array.from({ length: slots }, (_, i) => all.subarray(i * DATA_HEADER_BYTES, (i + 1) * DATA_HEADER_BYTES));
    this.socket = createSocket({ type: 'udp4' });
    this.socket.on('message', (msg) => this.onMessage(msg));
  }

  get client(): SessionInfo['client'] {
    return this.o.info.client;
  }

  /** Binds, connects and sends the OACK or the first window. Rejects if the socket cannot. */
  async start(): Promise<void> {
    const { local, client } = this.o.info;
    await new Promise<void>((resolve, reject) => {
      this.socket.once('error', reject);
      this.socket.bind({ address: local, port: 0, exclusive: true }, () => {
        this.socket.connect(client.port, client.address, () => {
          this.socket.off('error', reject);
          // From here on an error (an ICMP unreachable: the client went away) ends the transfer.
          this.socket.on('error', (err) => this.finish('aborted', `socket: ${err.message}`));
          resolve();
        });
      });
    });
    if (!this.ended) this.apply(this.transfer.start());
  }

  stop(): void {
    this.finish('stopped');
  }

  private onMessage(msg: Buffer): void {
    if (this.ended) return;
    // The hot path: an ACK is read without building a packet object.
    if (msg.length >= 4 && msg[0] === 0 && msg[1] === Opcode.ACK) {
      this.apply(this.transfer.ack((msg[2]! << 8) | msg[3]!));
      return;
    }
    const d = decodePacket(msg);
    if (d.ok && d.packet.op === Opcode.ERROR) {
      const step = this.transfer.clientError();
      this.apply(step, `client error ${d.packet.code}: ${d.packet.message}`);
      return;
    }
    this.count(d.ok ? `unexpected_${opName(d.packet.op)}` : d.reason);
  }

  private apply(step: Step, error?: string): void {
    switch (step.kind) {
      case 'send-oack':
        this.socket.send(this.oack as Buffer);
        this.arm();
        return;
      case 'send':
        this.sendBlocks(step.from, step.to, ++this.generation);
        this.arm();
        return;
      case 'done':
        this.finish(step.outcome, error);
        return;
      case 'ignore':
        this.count(step.reason);
        return;
    }
  }

  private sendBlocks(from: number, to: number, generation: number): void {
    const { blksize } = this.transfer.params;
    for (let n = from; n <= to; n++) {
      const parts = this.o.content.read((n - 1) * blksize, blksize);
      if (!Array.isArray(parts)) {
        parts.then(
          (p) => {
            if (this.ended || generation !== this.generation) return;
            this.sendBlock(n, p);
            this.sendBlocks(n + 1, to, generation);
          },
          (err: unknown) => this.finish('read-error', `read: ${(err as Error).message}`),
        );
        return;
      }
      this.sendBlock(n, parts);
    }
  }

  private sendBlock(n: number, parts: Buffer[]): void {
    const header = this.headers[n % this.headers.length] as Buffer;
    writeDataHeader(header, 0, wireBlock(n));
    this.socket.send(parts.length === 1 ? [header, parts[0] as Buffer] : [header, ...parts]);
    const c = this.o.counters;
    c.blocksSent += 1;
    c.bytesSent += DATA_HEADER_BYTES + (parts.length === 1 ? (parts[0] as Buffer).length : parts.reduce((s, p) => s + p.length, 0));
  }

  private arm(): void {
    const ms = this.transfer.nextTimeoutMs();
    if (this.timer !== undefined && ms === this.timerMs) {
      this.timer.refresh();
      return;
    }
    clearTimeout(this.timer);
    this.timerMs = ms;
    this.timer = setTimeout(() => this.apply(this.transfer.timeout(), 'no acknowledgement after every retry'), ms);
  }

  private count(reason: string): void {
    const ignored = this.o.counters.ignored;
    ignored[reason] = (ignored[reason] ?? 0) + 1;
  }

  private finish(outcome: Outcome, error?: string): void {
    if (this.ended) return;
    this.ended = true;
    if (this.transfer.phase !== 'done') this.transfer.end(outcome === 'read-error' ? 'read-error' : 'stopped');
    clearTimeout(this.timer);
    this.socket.close();
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
  }
}

function opName(op: number): string {
  return Object.entries(Opcode).find(([, v]) => v === op)?.[0].toLowerCase() ?? String(op);
}
