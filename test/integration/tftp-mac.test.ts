/**
 * TFTP lines carry the MAC when edgeboot knows it: the TFTP server on 127.0.0.1:0 asks the same
 * lookup `edgeboot serve` wires (macAtAddress: a bound, unexpired DHCP lease of ours, else the
 * kernel's neighbour table) over a real lease pool that leases 127.0.0.1 to a machine. Real
 * clients (tftp-hpa, atftp) fetch a file and ask for a missing one; the JSON log lines of the
 * transfer and of the refusal, and the record handed on for the timeline, name that MAC. With
 * the lease expired, the lines name no MAC at all (nothing is guessed).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import t from 'tap';
import { LeasePool } from '../../src/dhcp/leases.js';
import { createLogger } from '../../src/log.js';
import type { Mac } from '../../src/machines/mac.js';
import { macAtAddress } from '../../src/dhcp/mac-at.js';
import { transferEvent } from '../../src/tftp/transfer-event.js';
import { createTftpServer, type TransferRecord } from '../../src/tftp/server.js';
import type { LogLine } from '../helpers/process.js';
import { atftpGet, run, tftpConfig, tftpHpaGet } from '../helpers/tftp.js';

const MAC = '52:54:00:eb:16:04';
/** A subtest's `t` (the last overload of t.test takes the callback alone). */
type Test = Parameters<Parameters<typeof t.test>[0]>[0];

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Harness {
  port: number;
  lines: LogLine[];
  records: { record: TransferRecord; mac: Mac | undefined }[];
  lookups: string[];
  dir: string;
}

async function serve(t: Test, expiresAt: number): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), 'edgeboot-tftp-mac-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'undionly.kpxe'), Buffer.alloc(100_000, 7));
  const pool = new LeasePool([{ ip: '127.0.0.1', mac: MAC, state: 'bound', expiresAt }]);
  const lines: LogLine[] = [];
  const sink = new PassThrough();
  sink.setEncoding('utf8');
  let buffered = '';
  sink.on('data', (d: string) => {
    buffered += d;
    for (let i = buffered.indexOf('\n'); i >= 0; i = buffered.indexOf('\n')) {
      lines.push(JSON.parse(buffered.slice(0, i)) as LogLine);
      buffered = buffered.slice(i + 1);
    }
  });
  const lookups: string[] = [];
  const macAt = macAtAddress(() => pool.all());
  const records: Harness['records'] = [];
  const server = createTftpServer(tftpConfig([dir]), {
    log: createLogger('info', sink),
    macAt: (address) => {
      lookups.push(address);
      return macAt(address);
    },
    onTransfer: (record, mac) => void records.push({ record, mac }),
  });
  await server.start();
  t.teardown(() => server.stop());
  const port = server.addresses[0]?.port ?? 0;
  t.ok(port > 0, `TFTP on 127.0.0.1:${port}`);
  return { port, lines, records, lookups, dir };
}

/** The first line with `msg`, waiting up to 5 s for it (log lines follow the client's exit). */
async function lineWith(h: Harness, msg: string): Promise<LogLine | undefined> {
  for (let i = 0; i < 250; i++) {
    const line = h.lines.find((l) => l.msg === msg);
    if (line) return line;
    await sleep(20);
  }
  return undefined;
}

t.test('a leased client: its transfer line, its refusal line and its timeline record carry its MAC', async (t) => {
  const h = await serve(t, Date.now() + 3_600_000);
  const out = join(h.dir, 'got.kpxe');
  const [cmd, args] = tftpHpaGet(h.port, 'undionly.kpxe', out);
  const got = await run(t, cmd, args, { timeoutMs: 30_000 });
  t.equal(got.code, 0, `tftp-hpa fetched the file (${got.stderr.trim() || 'no error'})`);
  t.equal(readFileSync(out).length, 100_000, 'whole');
  const transfer = await lineWith(h, 'tftp transfer');
  t.match(
    transfer,
    { client: '127.0.0.1', mac: MAC, file: 'undionly.kpxe', outcome: 'complete', bytes: 100_000 },
    'the transfer line names the MAC of the lease',
  );
  t.equal(h.lookups.length, 1, 'one lookup for the whole transfer (196 blocks), not one per block');
  t.equal(h.records[0]?.mac, MAC, 'the record for the timeline has the MAC');
  const event = h.records[0] && transferEvent(h.records[0].record, h.records[0].mac);
  t.match(
    event,
    { mac: MAC, event: { type: 'tftp-transfer', source: 'tftp', data: { mac: MAC, file: 'undionly.kpxe', client: '127.0.0.1', bytes: 100_000 } } },
    'and the tftp-transfer event goes on that machine, naming it',
  );

  const [acmd, aargs] = atftpGet(h.port, 'missing.efi', join(h.dir, 'missing.out'));
  const missing = await run(t, acmd, aargs, { timeoutMs: 30_000 });
  t.not(missing.code, 0, 'atftp is told the file is missing');
  t.match(
    await lineWith(h, 'tftp request refused'),
    { client: '127.0.0.1', mac: MAC, file: 'missing.efi', reason: 'not_found' },
    'the refusal line names the MAC too',
  );
});

t.test('an expired lease names nobody: no mac on the lines, no timeline event', async (t) => {
  const h = await serve(t, Date.now() - 1_000);
  const [cmd, args] = atftpGet(h.port, 'undionly.kpxe', join(h.dir, 'got.kpxe'));
  const got = await run(t, cmd, args, { timeoutMs: 30_000 });
  t.equal(got.code, 0, `atftp fetched the file (${got.stderr.trim() || 'no error'})`);
  const transfer = await lineWith(h, 'tftp transfer');
  t.match(transfer, { client: '127.0.0.1', outcome: 'complete' }, 'the transfer is logged');
  t.notOk(transfer && 'mac' in transfer, 'without a mac field');
  t.equal(h.records[0]?.mac, undefined, 'the record has no MAC');
  t.equal(h.records[0] && transferEvent(h.records[0].record, h.records[0].mac), undefined, 'and no event is recorded on any machine');
});
