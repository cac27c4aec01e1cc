/**
 * The typed face of native/tftp_pump.c: one transfer's socket, whose native side answers the
 * ACK of each full window with the next window by itself and hands everything else up.
 */
import { loadAddon } from '../native.js';

type NativeHandle = object;

interface PumpAddon {
  open(local: string, clientAddress: string, clientPort: number, cb: PumpCallback): NativeHandle;
  configure(handle: NativeHandle, source: number | Buffer, size: number, blksize: number, windowsize: number): void;
  sendBlocks(handle: NativeHandle, from: number, to: number, acked: number): number;
  sendRaw(handle: NativeHandle, data: Buffer): void;
  progress(handle: NativeHandle): [number, number, number, number, number];
  localPort(handle: NativeHandle): number;
  close(handle: NativeHandle): void;
}

type PumpCallback = (err: NodeJS.ErrnoException | null, data: Buffer | null, acked: number, sent: number) => void;

export interface PumpProgress {
  /** Highest absolute block acknowledged, and sent, as the pump knows them. */
  acked: number;
  sent: number;
  blocksSent: number;
  bytesSent: number;
  /** Milliseconds since the last block left (by the pump or on request). */
  idleMs: number;
}

export interface PumpEvents {
  /** A packet for the state machine, with the pump's progress when it arrived. */
  packet(data: Buffer, acked: number, sent: number): void;
  /** Receiving or sending failed (an ICMP unreachable: the client is gone). */
  error(err: NodeJS.ErrnoException): void;
}

export class Pump {
  private readonly handle: NativeHandle;
  private readonly addon = loadAddon<PumpAddon>('tftp_pump');

  /** Binds to `local`, port 0, and connects to the client. Throws the errno error. */
  constructor(local: string, client: { address: string; port: number }, events: PumpEvents) {
    this.handle = this.addon.open(local, client.address, client.port, (err, data, acked, sent) => {
      if (err) events.error(err);
      else if (data) events.packet(data, acked, sent);
    });
  }

  /** The content: a file descriptor read with pread, or a buffer. */
  configure(source: number | Buffer, size: number, blksize: number, windowsize: number): void {
    this.addon.configure(this.handle, source, size, blksize, windowsize);
  }

  /** Sends absolute blocks [from, to]; `acked` is the state machine's, for the fast path. */
  sendBlocks(from: number, to: number, acked: number): number {
    return this.addon.sendBlocks(this.handle, from, to, acked);
  }

  sendRaw(data: Buffer): void {
    this.addon.sendRaw(this.handle, data);
  }

  progress(): PumpProgress {
    const [acked, sent, blocksSent, bytesSent, idleMs] = this.addon.progress(this.handle);
    return { acked, sent, blocksSent, bytesSent, idleMs };
  }

  get localPort(): number {
    return this.addon.localPort(this.handle);
  }

  close(): void {
    this.addon.close(this.handle);
  }
}
