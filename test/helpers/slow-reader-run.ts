/**
 * Child process of test/integration/upstream-slow-reader.test.ts: fetches one URL with undici
 * `request()` and pipes the body into a deliberately slow Writable (16 KiB deep, `delayMs` per
 * chunk), as the cache's disk writer would. Prints one JSON line: the body's sha256, its length
 * and the most bytes that waited in the body stream, or the error that ended the request.
 * undici 7's paused-parser assertion ends this process instead (exit code 1, stderr).
 *
 * argv: `plain|upstream <url> <delayMs> [maxHeldBytes]` — `plain` is the dispatcher every
 * upstream fetch used before (an Agent with redirects), `upstream` is net/upstream-agent.ts.
 */
import { createHash } from 'node:crypto';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, interceptors, request, type Dispatcher } from 'undici';
import { upstreamDispatcher } from '../../src/net/upstream-agent.js';

export interface SlowReadResult {
  sha256?: string;
  bytes: number;
  peakHeld: number;
  error?: { name: string; message: string };
}

const [mode, url = '', delay = '5', maxHeld] = process.argv.slice(2);
const dispatcher: Dispatcher =
  mode === 'plain'
    ? new Agent({ headersTimeout: 30_000, bodyTimeout: 60_000 }).compose(interceptors.redirect({ maxRedirections: 5 }))
    : upstreamDispatcher(maxHeld === undefined ? {} : { maxHeldBytes: Number(maxHeld) });
const hash = createHash('sha256');
const result: SlowReadResult = { bytes: 0, peakHeld: 0 };
try {
  const res = await request(url, { dispatcher });
  const slowDisk = new Writable({
    highWaterMark: 16 * 1024,
    write(chunk: Buffer, _encoding, done) {
      hash.update(chunk);
      result.bytes += chunk.length;
      result.peakHeld = Math.max(result.peakHeld, res.body.readableLength);
      sleep(Number(delay)).then(() => done(), done);
    },
  });
  await pipeline(res.body, slowDisk);
  result.sha256 = hash.digest('hex');
} catch (err) {
  const e = err as Error;
  result.error = { name: e.name, message: e.message };
}
process.stdout.write(`${JSON.stringify(result)}\n`);
