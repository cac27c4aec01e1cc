/**
 * edgeboot's TFTP server on the real port 69 of a multi-homed host, built from network
 * namespaces, against real clients (curl, atftp) and a raw UDP client that reports where every
 * reply came from.
 *
 *   client namespace  eth0 10.69.0.10/24 ──veth── eth0 10.69.0.1/24 + 10.69.0.2/24  server namespace:
 *                                                                                   `node dist/main.js serve`,
 *                                                                                   TFTP on 0.0.0.0:69
 *
 * Proves: every reply of a transfer (DATA, or the OACK when options were asked for) comes from
 * the address the client sent its request to, on both addresses, from one port other than 69
 * (the per-transfer socket, bound to that address) — a socket on 0.0.0.0 would answer both from
 * the primary address; curl and atftp fetch the file intact from either address; `boot.ipxe` is
 * the iPXE entry script chaining to the HTTP port on the address the client used; a transfer to
 * a machine registered through the API (its MAC known to the server only from the neighbour
 * table) lands on its timeline as a `tftp-transfer` event with the file, its size and the
 * outcome; /metrics counts the completed transfers and the bytes sent.
 *
 * Needs root, iproute2, curl and atftp (CI installs them) and a built dist/. All traffic stays
 * inside namespaces this test creates (eb-tf-<pid>-<n>), removed at teardown even on failure.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { createLab, netnsList, netnsSkip, requireTools, type Lab } from '../helpers/netns.js';
import { startServer, tempDir, type ServerProcess } from '../helpers/process.js';

const skip = netnsSkip();
const SRV1 = '10.69.0.1';
const SRV2 = '10.69.0.2';
const CLIENT_IP = '10.69.0.10';
/** Not a multiple of 512 or 1468 or 1024, so every transfer ends on a short block. */
const DATA_SIZE = 300_001;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/**
 * A raw TFTP client (CommonJS for `node -e`): args host, file, options as JSON. Sends the RRQ
 * to host:69, acknowledges every block (block 0 for an OACK) to the address and port the
 * reply came from, and prints JSON: each reply's source and opcode, the OACK's options and the
 * content (sha256, size, and the text itself when small).
 */
const RAW_CLIENT = String.raw`
const dgram = require('node:dgram');
const crypto = require('node:crypto');
const [host, file, optsJson] = process.argv.slice(1);
const options = JSON.parse(optsJson);
const sock = dgram.createSocket('udp4');
const replies = [];
const chunks = [];
let blksize = 512;
let expect = 1;
let oack;
const finish = (extra) => {
  const data = Buffer.concat(chunks);
  const out = { replies, oack, size: data.length, sha256: crypto.createHash('sha256').update(data).digest('hex'), ...extra };
  if (data.length < 4096) out.text = data.toString('latin1');
  process.stdout.write(JSON.stringify(out) + '\n');
  sock.close();
  process.exit(extra && extra.error ? 2 : 0);
};
const timer = setTimeout(() => finish({ error: 'timeout' }), 8000);
const ack = (block, r) => {
  const b = Buffer.alloc(4);
  b.writeUInt16BE(4, 0);
  b.writeUInt16BE(block, 2);
  sock.send(b, r.port, r.address);
};
sock.on('message', (msg, r) => {
  const op = msg.readUInt16BE(0);
  const rec = { from: r.address, port: r.port, op };
  if (replies.length < 3 || replies[replies.length - 1].from !== r.address || replies[replies.length - 1].port !== r.port) replies.push(rec);
  else replies[replies.length - 1].count = (replies[replies.length - 1].count || 1) + 1;
  if (op === 6) {
    const f = msg.subarray(2).toString('latin1').split('\0');
    oack = {};
    for (let i = 0; i + 1 < f.length; i += 2) if (f[i] !== '') oack[f[i].toLowerCase()] = f[i + 1];
    if (oack.blksize) blksize = Number(oack.blksize);
    ack(0, r);
  } else if (op === 3) {
    const block = msg.readUInt16BE(2);
    if (block === (expect & 0xffff)) {
      chunks.push(msg.subarray(4));
      expect += 1;
      ack(block, r);
      if (msg.length - 4 < blksize) {
        clearTimeout(timer);
        // Stay a moment: a server that did not take the last ACK would resend.
        setTimeout(() => finish(), 200);
      }
    }
  } else if (op === 5) {
    clearTimeout(timer);
    finish({ error: 'TFTP error ' + msg.readUInt16BE(2) + ': ' + msg.subarray(4).toString('latin1').replace(/\0.*$/, '') });
  }
});
const parts = [Buffer.from([0, 1]), Buffer.from(file + '\0octet\0', 'latin1')];
for (const [k, v] of Object.entries(options)) parts.push(Buffer.from(k + '\0' + v + '\0', 'latin1'));
sock.bind(0, () => sock.send(Buffer.concat(parts), 69, host));
`;

interface RawReply {
  from: string;
  port: number;
  op: number;
  count?: number;
}
interface RawResult {
  replies: RawReply[];
  oack?: Record<string, string>;
  size: number;
  sha256: string;
  text?: string;
  error?: string;
}

async function rawGet(lab: Lab, ns: string, host: string, file: string, options: Record<string, string> = {}): Promise<RawResult> {
  const r = await lab.run(ns, [process.execPath, '-e', RAW_CLIENT, host, file, JSON.stringify(options)], { timeoutMs: 15_000 });
  const line = r.stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line) as RawResult;
  } catch {
    throw new Error(`raw TFTP client to ${host} exited ${r.code ?? r.signal}: ${r.stdout}${r.stderr}`);
  }
}

interface ApiResult {
  status: number;
  body: unknown;
}

/** One HTTP call with curl inside the server's namespace (its HTTP is on that loopback). */
async function http(lab: Lab, ns: string, server: ServerProcess, method: 'GET' | 'PUT', path: string, body?: unknown): Promise<ApiResult> {
  const argv = ['curl', '-sS', '--max-time', '5', '-X', method, '-H', `authorization: Bearer ${server.token}`, '-w', '\n%{http_code}'];
  if (body !== undefined) argv.push('-H', 'content-type: application/json', '--data-binary', '@-');
  argv.push(`${server.url}${path}`);
  const r = await lab.run(ns, argv, { timeoutMs: 8_000, input: body === undefined ? '' : JSON.stringify(body) });
  if (r.code !== 0) throw new Error(`curl ${method} ${path} failed (${r.code ?? r.signal}): ${r.stderr}`);
  const nl = r.stdout.lastIndexOf('\n');
  const text = r.stdout.slice(0, nl);
  let parsed: unknown = text;
  try {
    parsed = text === '' ? undefined : JSON.parse(text);
  } catch {
    // not JSON: keep the text
  }
  return { status: Number(r.stdout.slice(nl + 1)), body: parsed };
}

interface MachineEvent {
  type: string;
  source: string;
  message?: string;
  data?: Record<string, unknown>;
}

t.test('TFTP on port 69 of a two-address server', { skip }, async (t) => {
  const started = Date.now();
  requireTools({ curl: [['--version'], 'curl'], atftp: [['--help'], 'atftp'] });
  const lab = createLab(t, 'tf');
  const srv = lab.netns('server');
  const cli = lab.netns('client');
  lab.veth({ ns: srv, dev: 'eth0' }, { ns: cli, dev: 'eth0' });
  lab.ipIn(srv, 'addr', 'add', `${SRV1}/24`, 'dev', 'eth0');
  lab.ipIn(srv, 'addr', 'add', `${SRV2}/24`, 'dev', 'eth0');
  lab.ipIn(cli, 'addr', 'add', `${CLIENT_IP}/24`, 'dev', 'eth0');
  const addrs = lab.ipIn(srv, '-4', '-o', 'addr', 'show', 'dev', 'eth0');
  t.match(
    addrs,
    new RegExp(`inet ${SRV1}/24 [^\\n]*\\n[^\\n]*inet ${SRV2}/24 [^\\n]*secondary`),
    `the server has both addresses, the second one secondary: ${addrs.trim()}`,
  );
  const link = lab.ipIn(cli, 'link', 'show', 'dev', 'eth0');
  const mac = /link\/ether ([0-9a-f:]{17}) /.exec(link)?.[1];
  if (mac === undefined) throw new Error(`no MAC in ${link}`);

  const roots = tempDir(t, 'edgeboot-tftp-roots-');
  const data = randomBytes(DATA_SIZE);
  writeFileSync(join(roots, 'data.bin'), data);
  const out = tempDir(t, 'edgeboot-tftp-out-');
  const server = await startServer(t, {
    netns: srv,
    dataDir: tempDir(t, 'edgeboot-tftp-data-'),
    env: { EDGEBOOT_TFTP_LISTEN: '0.0.0.0:69', EDGEBOOT_TFTP_ROOTS: roots },
  });
  // `TFTP serving` follows `edgeboot serving` in the same tick; allow a moment for the pipe.
  const deadline = Date.now() + 2_000;
  while (!server.logLines.some((l) => l.msg === 'TFTP serving') && Date.now() < deadline) await sleep(20);
  t.match(
    server.logLines.find((l) => l.msg === 'TFTP serving'),
    { listen: '0.0.0.0:69' },
    'TFTP serves on 0.0.0.0:69 in the server namespace',
  );
  t.comment(`server serving after ${Date.now() - started} ms (HTTP port ${server.port} inside ${srv})`);

  const put = await http(lab, srv, server, 'PUT', `/api/v1/machines/${mac}`, { hostname: 'tftp-client' });
  t.equal(put.status, 201, `the client's MAC ${mac} is a machine: ${JSON.stringify(put.body)}`);

  /** Transfers that must have completed, for the metrics check. */
  let complete = 0;

  await t.test('every reply comes from the address the client sent to, on a port of its own', async (t) => {
    for (const host of [SRV1, SRV2]) {
      const plain = await rawGet(lab, cli, host, 'data.bin');
      t.notOk(plain.error, `plain RRQ to ${host}: no error (${plain.error ?? ''})`);
      t.equal(plain.replies[0]?.op, 3, `plain RRQ to ${host}: answered with DATA`);
      t.same([...new Set(plain.replies.map((r) => r.from))], [host], `plain RRQ to ${host}: every DATA from ${host} (${JSON.stringify(plain.replies)})`);
      const ports = [...new Set(plain.replies.map((r) => r.port))];
      t.equal(ports.length, 1, `plain RRQ to ${host}: one transfer port`);
      t.not(ports[0], 69, `plain RRQ to ${host}: not the listener's port (${ports[0]})`);
      t.equal(plain.size, DATA_SIZE, `plain RRQ to ${host}: the whole file`);
      t.equal(plain.sha256, sha256(data), `plain RRQ to ${host}: intact`);
      complete += 1;

      const opts = await rawGet(lab, cli, host, 'data.bin', { blksize: '1024', tsize: '0' });
      t.notOk(opts.error, `RRQ with options to ${host}: no error (${opts.error ?? ''})`);
      t.match(opts.replies[0], { op: 6, from: host }, `RRQ with options to ${host}: the OACK comes from ${host}`);
      t.same(opts.oack, { blksize: '1024', tsize: String(DATA_SIZE) }, `RRQ with options to ${host}: blksize granted, tsize is the file size`);
      t.same(
        [...new Set(opts.replies.map((r) => `${r.from}:${r.port}`))],
        [`${host}:${opts.replies[0]?.port}`],
        `RRQ with options to ${host}: OACK and DATA from one address and port`,
      );
      t.not(opts.replies[0]?.port, 69, `RRQ with options to ${host}: not the listener's port`);
      t.equal(opts.sha256, sha256(data), `RRQ with options to ${host}: intact`);
      complete += 1;
    }
  });

  await t.test('curl and atftp fetch the file from either address', async (t) => {
    const viaCurl = join(out, 'curl.bin');
    const c = await lab.run(cli, ['curl', '-sS', '--max-time', '10', '-o', viaCurl, `tftp://${SRV1}/data.bin`], { timeoutMs: 15_000 });
    t.equal(c.code, 0, `curl exit 0 in ${c.ms} ms (${c.stderr.trim()})`);
    t.equal(sha256(readFileSync(viaCurl)), sha256(data), 'curl from the first address: intact');
    complete += 1;

    const viaAtftp = join(out, 'atftp.bin');
    const a = await lab.run(cli, ['atftp', '--get', '-r', 'data.bin', '-l', viaAtftp, SRV2, '69'], { timeoutMs: 15_000 });
    t.equal(a.code, 0, `atftp exit 0 in ${a.ms} ms (${(a.stdout + a.stderr).trim()})`);
    t.equal(sha256(readFileSync(viaAtftp)), sha256(data), 'atftp from the secondary address: intact');
    complete += 1;
  });

  await t.test('boot.ipxe chains to HTTP on the address the client used', async (t) => {
    for (const host of [SRV1, SRV2]) {
      const file = join(out, `boot-${host}.ipxe`);
      const c = await lab.run(cli, ['curl', '-sS', '--max-time', '10', '-o', file, `tftp://${host}/boot.ipxe`], { timeoutMs: 15_000 });
      t.equal(c.code, 0, `curl boot.ipxe from ${host}: exit 0 (${c.stderr})`);
      complete += 1;
      const script = readFileSync(file, 'utf8');
      t.match(script, /^#!ipxe\n/, `from ${host}: an iPXE script`);
      const chains = [...script.matchAll(/^chain .*?(http:\/\/[^/\s]+)\/ipxe\?/gm)].map((m) => m[1]);
      t.same(chains, [`http://${host}:${server.port}`], `from ${host}: chains to http://${host}:${server.port}/ipxe`);
    }
    const raw = await rawGet(lab, cli, SRV2, 'boot.ipxe');
    t.match(
      raw.text ?? '',
      new RegExp(`^#!ipxe\\n[^]*chain --replace --autofree http://${SRV2.replace(/\./g, '\\.')}:${server.port}/ipxe\\?`),
      'the raw client gets the same script',
    );
    complete += 1;
  });

  await t.test('a transfer is on the timeline of the machine that fetched it', async (t) => {
    // Events are written after the transfer ends: poll a little.
    let events: MachineEvent[];
    const until = Date.now() + 3_000;
    for (;;) {
      const r = await http(lab, srv, server, 'GET', `/api/v1/machines/${mac}/events`);
      t.equal(r.status, 200, 'events answered');
      events = (r.body as { events: MachineEvent[] }).events;
      if (events.filter((e) => e.type === 'tftp-transfer').length >= complete || Date.now() > until) break;
      await sleep(100);
    }
    const transfers = events.filter((e) => e.type === 'tftp-transfer');
    t.equal(transfers.length, complete, `one tftp-transfer event per transfer (${events.map((e) => e.type).join(', ')})`);
    t.notOk(
      events.some((e) => e.type === 'tftp-failed'),
      `no failed transfer: ${JSON.stringify(events.filter((e) => e.type === 'tftp-failed'))}`,
    );
    const ofData = transfers.filter((e) => e.data?.file === 'data.bin');
    t.equal(ofData.length, complete - 3, 'the data.bin transfers');
    for (const e of ofData) {
      t.match(
        e,
        { source: 'tftp', data: { mac, file: 'data.bin', bytes: DATA_SIZE, size: DATA_SIZE, outcome: 'complete', client: CLIENT_IP } },
        `data.bin from ${String(e.data?.server)}: the MAC, the file, its size, complete`,
      );
    }
    const lines = server.logLines.filter((l) => l.msg === 'tftp transfer' && l.client === CLIENT_IP);
    t.equal(lines.length, complete, 'one log line per complete transfer');
    t.ok(
      lines.every((l) => l.mac === mac),
      `each names the client's MAC from the neighbour table (${mac})`,
    );
    t.same([...new Set(ofData.map((e) => e.data?.server))].sort(), [SRV1, SRV2], 'recorded with the server address each transfer used');
    const boot = transfers.filter((e) => e.data?.file === 'boot.ipxe');
    t.equal(boot.length, 3, 'the boot.ipxe transfers');
    t.ok(
      boot.every((e) => e.data?.outcome === 'complete' && typeof e.data.bytes === 'number' && e.data.bytes > 0 && e.data.bytes === e.data.size),
      `boot.ipxe: complete with its size (${JSON.stringify(boot.map((e) => e.data))})`,
    );
  });

  await t.test('/metrics counts the transfers', async (t) => {
    const r = await http(lab, srv, server, 'GET', '/metrics');
    t.equal(r.status, 200, '/metrics answers');
    const text = String(r.body);
    const value = (re: RegExp): number => Number(re.exec(text)?.[1] ?? NaN);
    const done = value(/^edgeboot_tftp_transfers_total\{outcome="complete"\} ([0-9.e+]+)$/m);
    t.ok(done >= complete, `edgeboot_tftp_transfers_total{outcome="complete"} ${done} >= ${complete}`);
    const bytes = value(/^edgeboot_tftp_sent_bytes_total ([0-9.e+]+)$/m);
    t.ok(bytes >= (complete - 3) * DATA_SIZE, `edgeboot_tftp_sent_bytes_total ${bytes} covers the data.bin transfers`);
    t.equal(value(/^edgeboot_tftp_active_transfers ([0-9.e+]+)$/m), 0, 'no transfer is running any more');
    t.notMatch(text, /^edgeboot_tftp_transfers_total\{outcome="(?!complete)[^"]*"\} [1-9]/m, 'and no transfer ended otherwise');
  });

  const exit = await server.stop('SIGTERM');
  t.equal(exit.code, 0, `SIGTERM: clean exit in ${exit.ms} ms`);
  lab.cleanup();
  t.same(
    netnsList().filter((n) => n.startsWith(lab.prefix)),
    [],
    'no namespace of this test is left',
  );
  t.comment(`TFTP namespace tests done in ${Date.now() - started} ms`);
});
