/**
 * How much BMC work runs at once: at most `parallel` sessions over all of it (provision, power,
 * poll, inventory, re-arm), and one operation at a time per machine, so that a poll never lands
 * between a provision's override and its reset on the same BMC.
 */

/** Thrown to work still queued when the limiter closes (the server is stopping). */
export class LimiterClosedError extends Error {
  constructor() {
    super('the BMC service is stopping: queued BMC work was not started');
    this.name = 'LimiterClosedError';
  }
}

interface Waiter {
  start: () => void;
  cancel: (err: Error) => void;
}

export class BmcLimiter {
  private running = 0;
  private readonly waiting: Waiter[] = [];
  /** The tail of each machine's chain of operations: the next one starts when it settles. */
  private readonly tails = new Map<string, Promise<unknown>>();
  private closed = false;

  constructor(readonly parallel: number) {
    if (!Number.isInteger(parallel) || parallel < 1) throw new RangeError(`parallel must be a positive integer, got ${parallel}`);
  }

  /** Sessions running now. */
  get active(): number {
    return this.running;
  }

  /** Operations waiting for a slot (not those waiting behind another operation of their machine). */
  get queued(): number {
    return this.waiting.length;
  }

  /**
   * Runs `fn` once no other operation of `key` runs and a slot is free. The machine's lock is
   * taken first: an operation waiting for its machine holds no slot another machine could use.
   */
  run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new LimiterClosedError());
    const before = this.tails.get(key) ?? Promise.resolve();
    const mine = before.then(() => this.withSlot(fn));
    // The machine's next operation runs whether this one failed or not; the caller gets the failure from `mine`.
    const tail = mine.catch(() => undefined);
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return mine;
  }

  /** Refuses new work and cancels what waits for a slot; what runs goes on (the caller waits for it). */
  close(): void {
    this.closed = true;
    for (const w of this.waiting.splice(0)) w.cancel(new LimiterClosedError());
  }

  private async withSlot<T>(fn: () => Promise<T>): Promise<T> {
    await this.acquire();
    try {
      return await fn();
    } finally {
      this.release();
    }
  }

  private acquire(): Promise<void> {
    if (this.closed) return Promise.reject(new LimiterClosedError());
    if (this.running < this.parallel) {
      this.running++;
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => this.waiting.push({ start: resolve, cancel: reject }));
  }

  private release(): void {
    const next = this.waiting.shift();
    // The slot passes straight to the next waiter: `running` stays as it is.
    if (next) next.start();
    else this.running--;
  }
}
