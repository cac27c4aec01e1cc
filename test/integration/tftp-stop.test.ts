/**
 * TFTP's stop under load (the stop contract of src/protocol.ts). Eight atftp clients fetch a
 * 3 MiB file at once; stop() is called while all eight run: each finishes whole within the
 * grace, each record is handed over (the onTransfer promise awaited) before stop() resolves, and
 * a request after it gets no answer. A client that stops acknowledging is ended after the grace
 * with an ERROR packet, and its record says 'stopped'.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { createLogger } from '../../src/log.js';
import { createTftpServer, type TftpServer, type TransferRecord } from '../../src/tftp/server.js';
import { atftpGet, RawClient, run, sha256File, tftpConfig, writeSeededFile, type RunResult } from '../helpers/tftp.js';

/** A subtest's `t` (the last overload of t.test takes the callback alone). */
type Test = Parameters<Parameters<typeof t.test>[0]>[0];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const rrq = (file: string) => Buffer.concat([Buffer.from([0, 1]), Buffer.from(`${file}\0octet\0`, 'latin1')]);

interface Served {
  server: TftpServer;
  port: number;
  dir: string;
  /** Records once their (slow) hand-over ended. */
  records: TransferRecord[];
}

async function serve(t: Test, stopGraceMs: number, timeoutSeconds = 1): Promise<Served> {
  const dir = mkdtempSync(join(tmpdir(), 'edgeboot-tftp-stop-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const records: TransferRecord[] = [];
  const server = createTftpServer(tftpConfig([dir], { timeoutSeconds }), {
    log: createLogger('silent'),
    // The record is written somewhere slow (a store): stop() must wait for it.
    onTransfer: async (r) => {
      await sleep(50);
      records.push(r);
    },
    stopGraceMs,
  });
  await server.start();
  t.teardown(() => server.stop());
  return { server, port: server.addresses[0]?.port ?? 0, dir, records };
}

t.test('stop() with 8 transfers running: each finishes whole, each record is taken, then nothing answers', async (t) => {
  const s = await serve(t, 30_000);
  const digest = await writeSeededFile(join(s.dir, 'big.bin'), 3 << 20, 17);
  const out = mkdtempSync(join(tmpdir(), 'edgeboot-tftp-stop-out-'));
  t.teardown(() => rmSync(out, { recursive: true, force: true }));
  const clients: Promise<RunResult>[] = [];
  for (let i = 0; i < 8; i++) clients.push(run(t, ...atftpGet(s.port, 'big.bin', join(out, `got-${i}`)), { timeoutMs: 60_000 }));
  for (let n = 0; n < 500 && s.server.stats().active < 8; n++) await sleep(10);
  t.equal(s.server.stats().active, 8, 'eight transfers running when stop() is called');
  await s.server.stop();
  t.equal(s.records.length, 8, 'every record was taken before stop() resolved');
  t.same(
    s.records.map((r) => r.outcome),
    Array(8).fill('complete'),
    'every transfer ran to its end',
  );
  const results = await Promise.all(clients);
  for (const [i, r] of results.entries()) {
    t.equal(r.code, 0, `atftp ${i} exited 0`);
    t.equal(await sha256File(join(out, `got-${i}`)), digest, `atftp ${i} got the whole file`);
  }
  const late = await RawClient.open(t);
  await late.send(rrq('big.bin'), s.port);
  t.equal(await late.next(500), undefined, 'a request after stop() gets no answer');
});

t.test('a client that stops acknowledging is ended after the grace with an ERROR packet', async (t) => {
  const s = await serve(t, 200, 10);
  await writeSeededFile(join(s.dir, 'small.bin'), 100_000, 18);
  const client = await RawClient.open(t);
  await client.send(rrq('small.bin'), s.port);
  const first = await client.next(2_000);
  t.equal(first?.msg.readUInt16BE(0), 3, 'DATA block 1 came, and is never acknowledged');
  const since = Date.now();
  await s.server.stop();
  const took = Date.now() - since;
  t.ok(took >= 190 && took < 2_000, `stop() waited the grace, then ended it (${took} ms)`);
  const after = await client.drain(300);
  const error = after.find((d) => d.msg.readUInt16BE(0) === 5);
  t.ok(error, 'the client got an ERROR packet');
  t.equal(error?.msg.subarray(4, -1).toString('latin1'), 'Server shutting down');
  t.equal(error?.rinfo.port, first?.rinfo.port, 'from the transfer port (its TID)');
  t.same(
    s.records.map((r) => r.outcome),
    ['stopped'],
    'its record says stopped, and was taken before stop() resolved',
  );
});
