/**
 * The TFTP server in-process on 127.0.0.1:0, the real Debian clients (curl, atftp, tftp-hpa) as
 * child processes with a hard time limit, a raw dgram client for hand-made packets, and
 * deterministic file content.
 */
import { spawn } from 'node:child_process';
import { createCipheriv, createHash } from 'node:crypto';
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { createReadStream, createWriteStream } from 'node:fs';
import { once } from 'node:events';
import type { Config } from '../../src/config/config.js';
import { createLogger } from '../../src/log.js';
import { createTftpServer, type TftpHandler, type TftpServer, type TransferRecord } from '../../src/tftp/server.js';
import type { Teardown } from './process.js';
import type { RunResult as CommandResult } from './netns.js';

export type TftpConfig = Config['tftp'];

export function tftpConfig(roots: string[], over: Partial<TftpConfig> = {}): TftpConfig {
  return {
    enabled: true,
    listen: { host: '127.0.0.1', port: 0 },
    roots,
    maxBlockSize: 1468,
    maxWindowSize: 64,
    timeoutSeconds: 1,
    retries: 5,
    maxTransfers: 512,
    maxTransfersPerClient: 16,
    ...over,
  };
}

export interface RunningTftp {
  server: TftpServer;
  port: number;
  /** Every transfer record, in the order the transfers ended. */
  records: TransferRecord[];
  /** Resolves with the first record matching `pred` (already there or yet to come), or rejects after `ms`. */
  record(pred: (r: TransferRecord) => boolean, ms?: number): Promise<TransferRecord>;
}

/** A TFTP server on 127.0.0.1:0 with a silent logger, stopped in `t`'s teardown. */
export async function startTftp(
  t: Teardown,
  roots: string[],
  over: Partial<TftpConfig> = {},
  handlers?: ReadonlyMap<string, TftpHandler>,
): Promise<RunningTftp> {
  const records: TransferRecord[] = [];
  const waiters: { pred: (r: TransferRecord) => boolean; resolve: (r: TransferRecord) => void }[] = [];
  const server = createTftpServer(tftpConfig(roots, over), {
    log: createLogger('silent'),
    ...(handlers && { handlers }),
    onTransfer: (r) => {
      records.push(r);
      for (const w of [...waiters]) {
        if (w.pred(r)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(r);
        }
      }
    },
  });
  await server.start();
  t.teardown(() => server.stop());
  const port = server.addresses[0]?.port;
  if (port === undefined || port === 0) throw new Error('the TFTP server reports no port');
  return {
    server,
    port,
    records,
    record(pred, ms = 10_000) {
      const found = records.find(pred);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const w = {
          pred,
          resolve: (r: TransferRecord) => {
            clearTimeout(timer);
            resolve(r);
          },
        };
        const timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(w), 1);
          reject(new Error(`no matching transfer record within ${ms} ms; records: ${JSON.stringify(records.map((x) => [x.file, x.outcome]))}`));
        }, ms);
        waiters.push(w);
      });
    },
  };
}

export interface RunResult extends CommandResult {
  /** Killed by the time limit. */
  timedOut: boolean;
}

/**
 * Runs a program to completion, at most `timeoutMs` (then SIGKILL; `timedOut` is set). The
 * child is killed in `t`'s teardown if it is still running then.
 */
export function run(t: Teardown, cmd: string, args: string[], opts: { timeoutMs: number; cwd?: string }): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const since = Date.now();
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...(opts.cwd !== undefined && { cwd: opts.cwd }) });
    const kill = () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    };
    t.teardown(kill);
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (d: string) => (stdout = (stdout + d).slice(-20_000)));
    child.stderr.on('data', (d: string) => (stderr = (stderr + d).slice(-20_000)));
    const timer = setTimeout(() => {
      timedOut = true;
      kill();
    }, opts.timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`${cmd} could not be run: ${err.message}`));
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, ms: Date.now() - since, timedOut });
    });
  });
}

export const curlGet = (port: number, file: string, out: string, extra: string[] = []): [string, string[]] => [
  'curl',
  // --connect-timeout 5 makes curl ask for a 1 s timeout (RFC 2349) instead of 6 s; a later
  // --connect-timeout in `extra` wins.
  ['-sS', '--connect-timeout', '5', '--max-time', '120', '-o', out, `tftp://127.0.0.1:${port}/${file}`, ...extra],
];

export const atftpGet = (port: number, file: string, out: string, options: Record<string, string | number> = {}): [string, string[]] => [
  'atftp',
  ['-g', '-r', file, '-l', out, ...Object.entries(options).flatMap(([k, v]) => ['--option', `${k} ${v}`]), '127.0.0.1', String(port)],
];

export const tftpHpaGet = (port: number, file: string, out: string, mode: 'binary' | 'ascii' = 'binary'): [string, string[]] => [
  'tftp',
  ['-m', mode, '127.0.0.1', String(port), '-c', 'get', file, out],
];

export async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

export function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

/**
 * `size` bytes of pseudo-random content determined by `seed` (AES-128-CTR keystream: fast and
 * reproducible), written to `path` in 1 MiB pieces. Returns its sha256.
 */
export async function writeSeededFile(path: string, size: number, seed: number): Promise<string> {
  const key = createHash('sha256').update(`edgeboot-tftp-${seed}`).digest();
  const cipher = createCipheriv('aes-128-ctr', key.subarray(0, 16), key.subarray(16, 32));
  const h = createHash('sha256');
  const out = createWriteStream(path);
  const zero = Buffer.alloc(1 << 20);
  for (let left = size; left > 0; left -= zero.length) {
    const piece = cipher.update(left >= zero.length ? zero : zero.subarray(0, left));
    h.update(piece);
    if (!out.write(piece)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'close');
  return h.digest('hex');
}

export interface Datagram {
  msg: Buffer;
  rinfo: RemoteInfo;
}

/** A dgram client on 127.0.0.1:0 (or another loopback address) whose datagrams queue up for `next()`. */
export class RawClient {
  readonly queue: Datagram[] = [];
  private waiter: ((d: Datagram) => void) | undefined;

  private constructor(readonly sock: Socket) {
    sock.on('message', (msg, rinfo) => {
      const w = this.waiter;
      if (w) {
        this.waiter = undefined;
        w({ msg, rinfo });
      } else this.queue.push({ msg, rinfo });
    });
  }

  static async open(t: Teardown, address = '127.0.0.1'): Promise<RawClient> {
    const sock = createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      sock.once('error', reject);
      sock.bind(0, address, () => resolve());
    });
    const c = new RawClient(sock);
    t.teardown(() => c.close());
    return c;
  }

  get port(): number {
    return this.sock.address().port;
  }

  send(data: Buffer, port: number): Promise<void> {
    return new Promise((resolve, reject) => this.sock.send(data, port, '127.0.0.1', (err) => (err ? reject(err) : resolve())));
  }

  /** The next datagram, or undefined if none arrives within `ms`. */
  next(ms: number): Promise<Datagram | undefined> {
    const queued = this.queue.shift();
    if (queued) return Promise.resolve(queued);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiter = undefined;
        resolve(undefined);
      }, ms);
      this.waiter = (d) => {
        clearTimeout(timer);
        resolve(d);
      };
    });
  }

  /** Everything that arrives within `ms` (what is queued included). */
  async drain(ms: number): Promise<Datagram[]> {
    const out: Datagram[] = [];
    const until = Date.now() + ms;
    for (;;) {
      const left = until - Date.now();
      if (left <= 0) return out;
      const d = await this.next(left);
      if (!d) return out;
      out.push(d);
    }
  }

  private closed = false;

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    return new Promise((resolve) => this.sock.close(() => resolve()));
  }
}
