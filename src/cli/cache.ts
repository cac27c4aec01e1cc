import { Command } from 'commander';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { sourceKey } from '../cache/source-key.js';
import { adminToken, api, ClientError, serverUrl, type ClientOptions } from './client.js';
import { bytes, clientOptions, table, visible } from './format.js';

interface Entry {
  key: string;
  digest: string;
  size: number;
  createdAt: string;
  lastUsedAt: string;
  pinned?: boolean;
  pinnedByAdmin?: boolean;
}

interface Listing {
  entries: Entry[];
  downloads: { key: string; bytes: number; total?: number }[];
  bytes: number;
  maxBytes: number;
}

/**
 * POST /api/v1/cache/prefetch?wait=true with no client timeout: a rootfs over a thin link
 * takes longer than fetch's five-minute header timeout.
 */
function prefetchAndWait(o: ClientOptions, body: unknown): Promise<{ state: string; entry: Entry }> {
  const url = new URL(`${serverUrl(o)}/api/v1/cache/prefetch?wait=true`);
  const token = adminToken(o);
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  const payload = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = send(
      url,
      {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload), ...(token && { authorization: `Bearer ${token}` }) },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => {
          let doc: { state?: string; entry?: Entry; error?: string; message?: string } = {};
          try {
            doc = JSON.parse(text) as typeof doc;
          } catch {
            // not JSON: the raw text is the message
          }
          if ((res.statusCode ?? 500) >= 300) reject(new ClientError(`${doc.message ?? text}${doc.error ? ` [${doc.error}]` : ''}`, res.statusCode, doc.error));
          else resolve(doc as { state: string; entry: Entry });
        });
      },
    );
    req.on('error', (err) => reject(new ClientError(`cannot reach ${serverUrl(o)}: ${err.message} (set --server or EDGEBOOT_URL)`)));
    req.end(payload);
  });
}

/** One line: bytes so far, of the total, rate and time left. */
function progressLine(key: string, done: number, total: number | undefined, seconds: number): string {
  const rate = seconds > 0 ? done / seconds : 0;
  const of = total !== undefined ? ` / ${bytes(total)} (${Math.floor((100 * done) / Math.max(total, 1))}%)` : '';
  const eta = total !== undefined && rate > 0 ? `, ETA ${Math.ceil((total - done) / rate)} s` : '';
  return `${visible(key)}: ${bytes(done)}${of}, ${bytes(Math.round(rate))}/s${eta}`;
}

export function cacheCommand(print: (s: string) => void): Command {
  const cmd = new Command('cache').description("the server's artifact cache");

  cmd
    .command('ls')
    .description('cached artifacts (least recently used first) and downloads running now')
    .action(async (_o: unknown, self: Command) => {
      const o = clientOptions(self);
      const l = await api<Listing>(o, 'GET', '/api/v1/cache');
      if (o.json) return print(JSON.stringify(l, null, 2));
      const rows = [
        ['SIZE', 'SHA256', 'LAST USED', 'PINNED', 'SOURCE'],
        ...l.entries.map((e) => [bytes(e.size), e.digest.slice(0, 12), e.lastUsedAt, e.pinnedByAdmin ? 'admin' : e.pinned ? 'profile' : '', e.key]),
      ];
      print(table(rows));
      for (const d of l.downloads) print(`downloading ${progressLine(d.key, d.bytes, d.total, 0)}`);
      print(`${l.entries.length} artifacts, ${bytes(l.bytes)} of ${bytes(l.maxBytes)}`);
    });

  cmd
    .command('pull')
    .description('fetch an artifact into the cache now and wait until it is complete and verified (pre-warming a site)')
    .argument('<url>', 'http(s) URL of the artifact')
    .option('--sha256 <hex>', 'the sha256 it must have')
    .option('--size <bytes>', 'the size it must have')
    .action(async (url: string, opts: { sha256?: string; size?: string }, self: Command) => {
      const o = clientOptions(self);
      const body = { url, ...(opts.sha256 && { sha256: opts.sha256.toLowerCase() }), ...(opts.size !== undefined && { size: Number(opts.size) }) };
      let key: string;
      try {
        key = sourceKey(url);
      } catch {
        throw new ClientError(`${JSON.stringify(url)} is not a URL`);
      }
      const started = Date.now();
      const tty = process.stderr.isTTY;
      let lastLine = 0;
      // Progress from the listing while the long request waits for the verdict.
      const timer = setInterval(() => {
        api<Listing>(o, 'GET', '/api/v1/cache', undefined, 5_000)
          .then((l) => {
            const d = l.downloads.find((x) => x.key === key);
            if (!d) return;
            const line = progressLine(d.key, d.bytes, d.total, (Date.now() - started) / 1000);
            if (tty) process.stderr.write(`\r\x1b[K${line}`);
            else if (Date.now() - lastLine > 5_000) {
              lastLine = Date.now();
              process.stderr.write(`${line}\n`);
            }
          })
          .catch(() => undefined); // progress is best effort; the verdict comes from the POST
      }, 500);
      try {
        const r = await prefetchAndWait(o, body);
        if (tty) process.stderr.write('\r\x1b[K');
        if (o.json) return print(JSON.stringify(r, null, 2));
        const secs = (Date.now() - started) / 1000;
        print(`cached ${r.entry.key}: ${bytes(r.entry.size)}, sha256 ${r.entry.digest}${secs > 0.5 ? `, ${secs.toFixed(1)} s` : ''}`);
      } finally {
        clearInterval(timer);
      }
    });
  for (const [name, pinned] of [
    ['pin', true],
    ['unpin', false],
  ] as const) {
    cmd
      .command(name)
      .description(pinned ? 'keep an entry whatever its last use: eviction never removes it' : 'let eviction remove an entry an admin pinned')
      .argument('<key>', 'the entry, as `cache ls` lists it (its source URL, secrets cut)')
      .action(async (key: string, _o: unknown, self: Command) => {
        await api(clientOptions(self), 'POST', '/api/v1/cache/pin', { key, pinned });
        print(`${pinned ? 'pinned' : 'unpinned'} ${key}`);
      });
  }

  cmd
    .command('evict')
    .description('remove an entry now (its bytes too, unless another entry has the same); not a pinned one')
    .argument('<key>', 'the entry, as `cache ls` lists it')
    .action(async (key: string, _o: unknown, self: Command) => {
      await api(clientOptions(self), 'POST', '/api/v1/cache/evict', { key });
      print(`evicted ${key}`);
    });
  return cmd;
}
