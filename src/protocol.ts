import type { AddressInfo } from 'node:net';

/**
 * The one start/stop shape of every protocol server (DHCP, TFTP, HTTP): compose wires them.
 *
 * The stop contract, kept by each server:
 * 1. stop() stops taking new work at once (no new request is accepted or answered as new);
 * 2. it waits for the work in flight (a DHCP request being answered, a TFTP transfer, an HTTP
 *    request), for at most a grace period, then cancels what is left (TFTP tells its client with
 *    an ERROR packet; HTTP closes the connection);
 * 3. it resolves only when nothing of the server runs or writes any more: leases journaled,
 *    transfer records handed over, sockets closed. The store may be closed right after.
 * It is idempotent: a second call returns the first call's promise.
 */
export interface ProtocolServer {
  readonly name: string;
  /** Resolves once bound. */
  start(): Promise<void>;
  /** Idempotent; keeps the stop contract above. */
  stop(): Promise<void>;
  readonly addresses: readonly AddressInfo[];
}

/** How long stop() lets in-flight work finish before it cancels it. */
export const STOP_GRACE_MS = 5_000;

/** The work a server has started and not finished: what its stop() waits for. */
export class InFlight {
  private readonly running = new Set<Promise<unknown>>();

  get size(): number {
    return this.running.size;
  }

  /** Tracks `work` until it settles; returns it unchanged. */
  track<T>(work: Promise<T>): Promise<T> {
    const settled: Promise<unknown> = work.then(
      () => this.running.delete(settled),
      () => this.running.delete(settled),
    );
    this.running.add(settled);
    return work;
  }

  /** Resolves true once nothing tracked runs (work tracked meanwhile included); false after `graceMs`, if given. */
  async settled(graceMs?: number): Promise<boolean> {
    const drained = (async () => {
      while (this.running.size > 0) await Promise.all([...this.running]);
      return true;
    })();
    if (graceMs === undefined) return drained;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), graceMs)));
    try {
      return await Promise.race([drained, late]);
    } finally {
      clearTimeout(timer);
    }
  }
}
