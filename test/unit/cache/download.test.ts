/**
 * A download as its readers see it (src/cache/download.ts, readers.ts): a read-only view that
 * only the downloader moves on, and readers whose waits end when their signal aborts.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { appendFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { Download, type DownloadView } from '../../../src/cache/download.js';
import type { Cached } from '../../../src/cache/model.js';
import { availableAt, readDownload } from '../../../src/cache/readers.js';

/** A download whose run the test ends by hand. */
function manual(tmp: string) {
  let finish!: (c: Cached) => void;
  let fail!: (err: Error) => void;
  const d = new Download('k', tmp, () => new Promise<Cached>((resolve, reject) => ((finish = resolve), (fail = reject))));
  return { d, finish: (c: Cached) => finish(c), fail: (err: Error) => fail(err) };
}

const cached = (path: string, size: number): Cached => ({ entry: { key: 'k', digest: 'd', size, createdAt: '', lastUsedAt: '' }, path, fetched: true });

t.test('the view moves only through the downloader, and wakes its readers', async (t) => {
  const { d, finish } = manual('/nonexistent');
  const view: DownloadView = d;
  t.equal(view.written, 0);
  t.equal(view.total, undefined);
  const seen: number[] = [];
  const stop = view.onChange(() => seen.push(view.written));
  const woke = view.changed();
  d.announce(10);
  await woke;
  d.wrote(4);
  d.restart();
  t.equal(view.written, 0, 'a restart goes back to byte 0');
  t.equal(view.generation, 1);
  stop();
  d.wrote(3);
  t.same(seen, [0, 4], 'no change after the listener stopped');
  finish(cached('/nonexistent', 3));
  await view.done;
  t.ok(view.finished);
});

t.test('a wait for bytes ends when its signal aborts (the client left)', async (t) => {
  const { d } = manual('/nonexistent');
  const gone = new AbortController();
  const waiting = availableAt(d, 0, 0, 9, gone.signal);
  gone.abort(new Error('the client left'));
  await t.rejects(waiting, { message: 'the client left' });
});

t.test('the last byte waits for the verdict; a failure reaches the reader', async (t) => {
  const { d, fail } = manual('/nonexistent');
  d.announce(4);
  d.wrote(4);
  t.equal(await availableAt(d, 0, 0, 3), 3, 'all but the last byte');
  const last = availableAt(d, 0, 3, 3);
  fail(new Error('sha256 mismatch'));
  await t.rejects(last, { message: 'sha256 mismatch' });
  await t.rejects(availableAt(d, 1, 0, 3), /restarted/, 'a reader of another generation gives up');
});

t.test('a stream of a running download: bytes as they arrive; destroyed mid-wait, it closes at once', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'edgeboot-download-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const tmp = join(dir, 'tmp');
  writeFileSync(tmp, 'abcd');
  const { d, finish } = manual(tmp);
  d.announce(8);
  d.wrote(4);
  const whole = readDownload(d, 0, 7);
  const chunks: Buffer[] = [];
  whole.on('data', (c: Buffer) => chunks.push(c));
  const ended = new Promise((resolve) => whole.once('end', resolve));
  await appendFile(tmp, 'efgh');
  d.wrote(4);
  finish(cached(tmp, 8));
  await ended;
  t.equal(Buffer.concat(chunks).toString(), 'abcdefgh');

  const { d: stalled } = manual(tmp);
  stalled.announce(100);
  stalled.wrote(8);
  const reader = readDownload(stalled, 8, 99);
  reader.resume();
  const closed = new Promise((resolve) => reader.once('close', resolve));
  await new Promise((resolve) => setImmediate(resolve));
  reader.destroy();
  await closed;
  t.ok(reader.destroyed, 'closed with no byte more from the download');
});
