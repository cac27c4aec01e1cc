import t from 'tap';
import { BmcLimiter, LimiterClosedError } from '../../../src/bmc/limiter.js';

/** A task that records when it runs and finishes when the test says so. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open = (): void => undefined;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

t.test('at most `parallel` operations run at once, the rest start as slots free, in order', async (t) => {
  const limiter = new BmcLimiter(2);
  const gates = [gate(), gate(), gate(), gate()];
  const started: number[] = [];
  let running = 0;
  let maxRunning = 0;
  const done = gates.map((g, i) =>
    limiter.run(`m${i}`, async () => {
      started.push(i);
      running++;
      maxRunning = Math.max(maxRunning, running);
      await g.promise;
      running--;
      return i;
    }),
  );
  await tick();
  t.same(started, [0, 1], 'two start');
  t.equal(limiter.active, 2);
  t.equal(limiter.queued, 2);
  gates[1]?.open();
  await tick();
  t.same(started, [0, 1, 2], 'a freed slot goes to the next in line');
  for (const g of gates) g.open();
  t.same(await Promise.all(done), [0, 1, 2, 3]);
  t.equal(maxRunning, 2);
  t.equal(limiter.active, 0);
});

t.test('two operations on one machine never overlap, even with slots free; a failure does not block the next', async (t) => {
  const limiter = new BmcLimiter(8);
  const order: string[] = [];
  const first = gate();
  const a = limiter.run('same', async () => {
    order.push('a start');
    await first.promise;
    order.push('a end');
    throw new Error('a failed');
  });
  const b = limiter.run('same', async () => {
    order.push('b');
    return 'b';
  });
  const other = limiter.run('other', async () => {
    order.push('other');
    return 'other';
  });
  await tick();
  t.same(order, ['a start', 'other'], 'b waits for a; another machine does not');
  t.equal(limiter.queued, 0, 'waiting behind its machine holds no slot queue place');
  first.open();
  await t.rejects(a, /a failed/);
  t.equal(await b, 'b');
  t.equal(await other, 'other');
  t.same(order, ['a start', 'other', 'a end', 'b']);
});

t.test('close refuses new work and cancels what waits for a slot; what runs finishes', async (t) => {
  const limiter = new BmcLimiter(1);
  const g = gate();
  const running = limiter.run('a', async () => {
    await g.promise;
    return 'ran';
  });
  const waiting = limiter.run('b', async () => 'never');
  await tick();
  limiter.close();
  await t.rejects(waiting, LimiterClosedError);
  await t.rejects(
    limiter.run('c', async () => 'never'),
    LimiterClosedError,
  );
  g.open();
  t.equal(await running, 'ran');
});

t.test('parallel must be a positive integer', async (t) => {
  t.throws(() => new BmcLimiter(0), RangeError);
  t.throws(() => new BmcLimiter(1.5), RangeError);
});
