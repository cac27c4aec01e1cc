/**
 * A QEMU Machine Protocol client for the VM tests, over QEMU's `-qmp unix:PATH,server=on,wait=off`:
 * newline-delimited JSON, a greeting, `qmp_capabilities` to leave negotiation mode, then commands
 * (answered in order with `return` or `error`) and asynchronous events such as SHUTDOWN
 * (https://www.qemu.org/docs/master/interop/qmp-spec.html).
 */
import { connect, type Socket } from 'node:net';

export interface QmpEvent {
  event: string;
  data?: Record<string, unknown>;
  timestamp?: { seconds: number; microseconds: number };
}

interface Pending {
  command: string;
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
}

export class Qmp {
  private buffer = '';
  private readonly pending: Pending[] = [];
  private readonly listeners = new Set<(e: QmpEvent) => void>();
  private greeted?: () => void;
  /** Resolves when QEMU closes the socket (it exits, or quit). */
  readonly closed: Promise<void>;

  private constructor(private readonly socket: Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.read(chunk));
    this.closed = new Promise((resolve) => {
      socket.on('close', () => {
        for (const p of this.pending.splice(0)) p.reject(new Error(`QMP closed before ${p.command} was answered`));
        resolve();
      });
    });
    // A reset connection (QEMU killed) ends in 'close' too, where pending commands are rejected.
    socket.on('error', () => undefined);
  }

  /**
   * Connects to the socket QEMU listens on, retrying while it is not there yet (QEMU makes it
   * while starting), reads the greeting and leaves negotiation mode. Rejects after `timeoutMs`.
   */
  static async connect(path: string, timeoutMs: number): Promise<Qmp> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        const socket = await new Promise<Socket>((resolve, reject) => {
          const s = connect(path);
          s.once('connect', () => resolve(s));
          s.once('error', reject);
        });
        const qmp = new Qmp(socket);
        await qmp.greeting(Math.max(1_000, deadline - Date.now()));
        await qmp.execute('qmp_capabilities');
        return qmp;
      } catch (err) {
        // ENOENT/ECONNREFUSED: QEMU has not made or not yet bound the socket; anything else is real.
        const code = err instanceof Error && 'code' in err ? err.code : undefined;
        if (code !== 'ENOENT' && code !== 'ECONNREFUSED') throw err;
        if (Date.now() > deadline) throw new Error(`no QMP on ${path} within ${timeoutMs} ms (${code})`, { cause: err });
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }

  onEvent(listener: (e: QmpEvent) => void): void {
    this.listeners.add(listener);
  }

  /** Runs one command; resolves with its `return`, rejects with its `error` or when QMP closes first. */
  execute(command: string, args?: Record<string, unknown>): Promise<unknown> {
    return new Promise((resolve, reject) => {
      if (this.socket.destroyed) {
        reject(new Error(`QMP is closed: cannot run ${command}`));
        return;
      }
      this.pending.push({ command, resolve, reject });
      this.socket.write(`${JSON.stringify({ execute: command, ...(args && { arguments: args }) })}\n`);
    });
  }

  close(): void {
    this.socket.destroy();
  }

  private greeting(timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no QMP greeting within ${timeoutMs} ms`)), timeoutMs);
      this.greeted = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  private read(chunk: string): void {
    this.buffer += chunk;
    for (let nl = this.buffer.indexOf('\n'); nl >= 0; nl = this.buffer.indexOf('\n')) {
      const line = this.buffer.slice(0, nl).trim();
      this.buffer = this.buffer.slice(nl + 1);
      if (line !== '') this.dispatch(JSON.parse(line) as Record<string, unknown>);
    }
  }

  private dispatch(message: Record<string, unknown>): void {
    if ('QMP' in message) {
      this.greeted?.();
    } else if (typeof message.event === 'string') {
      const event: QmpEvent = { event: message.event, ...(isRecord(message.data) && { data: message.data }) };
      for (const l of this.listeners) l(event);
    } else if ('return' in message) {
      this.pending.shift()?.resolve(message.return);
    } else if ('error' in message) {
      const p = this.pending.shift();
      const error = isRecord(message.error) ? message.error : {};
      p?.reject(new Error(`QMP ${p.command}: ${String(error.class)}: ${String(error.desc)}`));
    }
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
