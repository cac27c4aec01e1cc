/**
 * The TFTP server in-process on 127.0.0.1:0 against the real Debian clients — curl, atftp and
 * tftp-hpa — on loopback: every file fetched is byte for byte the source (sha256), at the block
 * and window sizes asked; a 100 MiB file at blksize 512 (204801 blocks: the 16-bit block number
 * rolls over three times); Debian's /usr/lib/ipxe/ipxe.efi through its symlink to /boot; a name
 * served by a handler; netascii; the transfer records; and a tsize probe recorded as 'probe'.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { decodePacket, encodeError, encodeRequest, ErrorCode, Opcode } from '../../src/tftp/codec.js';
import type { TransferRecord } from '../../src/tftp/server.js';
import { tempDir } from '../helpers/app.js';
import { atftpGet, curlGet, RawClient, run, sha256, sha256File, startTftp, tftpHpaGet, writeSeededFile } from '../helpers/tftp.js';

const IPXE_DIR = '/usr/lib/ipxe';
const UNDIONLY = join(IPXE_DIR, 'undionly.kpxe');

const dir = tempDir('edgeboot-tftp-clients-');
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const root = join(dir, 'root');
const out = join(dir, 'out');
mkdirSync(root);
mkdirSync(out);

// Throws (failing the file) without the Debian package ipxe.
copyFileSync(UNDIONLY, join(root, 'undionly.kpxe'));
const undionly = { size: readFileSync(UNDIONLY).length, sha: await sha256File(UNDIONLY) };

const tftp = await startTftp(t, [root, IPXE_DIR], {}, new Map([['gen.txt', () => Buffer.from('hello')]]));
const { port } = tftp;

let outSeq = 0;
const outFile = (label: string) => join(out, `${++outSeq}-${label.replace(/[^A-Za-z0-9.-]+/g, '_')}`);

/** Runs one client, checks it succeeded and what it wrote, and returns the server's record. */
async function fetch(
  tt: Test,
  label: string,
  file: string,
  sha: string,
  client: (dest: string) => [string, string[]],
  timeoutMs = 20_000,
): Promise<TransferRecord | undefined> {
  const dest = outFile(label);
  const before = tftp.records.length;
  const [cmd, args] = client(dest);
  const r = await run(tt, cmd, args, { timeoutMs });
  tt.equal(
    r.code,
    0,
    `${label}: exits 0 in ${r.ms} ms${r.timedOut ? ' (killed at the time limit)' : ''} (stdout: ${r.stdout.slice(-300)} stderr: ${r.stderr.slice(-300)})`,
  );
  tt.equal(existsSync(dest) ? await sha256File(dest) : 'missing', sha, `${label}: the sha256 of what it wrote matches the source`);
  rmSync(dest, { force: true });
  return tftp
    .record((x) => tftp.records.indexOf(x) >= before && x.file === file, 5_000)
    .catch((err: unknown) => {
      tt.fail(`${label}: ${err instanceof Error ? err.message : String(err)}`);
      return undefined;
    });
}

function checkRecord(tt: Test, label: string, r: TransferRecord | undefined, want: Partial<TransferRecord>): void {
  tt.ok(r, `${label}: a transfer record`);
  if (!r) return;
  tt.match(
    r,
    { outcome: 'complete', client: { address: '127.0.0.1' }, local: '127.0.0.1', ...want },
    `${label}: record ${JSON.stringify({ ...r, requested: undefined })}`,
  );
  tt.equal(r.bytes, r.size, `${label}: every byte acknowledged`);
  tt.notOk(r.error, `${label}: no error in the record`);
}

t.test('undionly.kpxe (iPXE) with every client', async (t) => {
  const cases: { label: string; client: (dest: string) => [string, string[]]; blksize: number; windowsize: number }[] = [
    { label: 'curl blksize 512', client: (d) => curlGet(port, 'undionly.kpxe', d, ['--tftp-blksize', '512']), blksize: 512, windowsize: 1 },
    { label: 'curl blksize 1468', client: (d) => curlGet(port, 'undionly.kpxe', d, ['--tftp-blksize', '1468']), blksize: 1468, windowsize: 1 },
    {
      label: 'atftp blksize 1468 windowsize 4 tsize 0',
      client: (d) => atftpGet(port, 'undionly.kpxe', d, { blksize: 1468, windowsize: 4, tsize: 0 }),
      blksize: 1468,
      windowsize: 4,
    },
    {
      label: 'atftp blksize 1468 windowsize 16 tsize 0',
      client: (d) => atftpGet(port, 'undionly.kpxe', d, { blksize: 1468, windowsize: 16, tsize: 0 }),
      blksize: 1468,
      windowsize: 16,
    },
    { label: 'tftp-hpa (no options)', client: (d) => tftpHpaGet(port, 'undionly.kpxe', d), blksize: 512, windowsize: 1 },
  ];
  for (const c of cases) {
    const r = await fetch(t, c.label, 'undionly.kpxe', undionly.sha, c.client);
    checkRecord(t, c.label, r, { file: 'undionly.kpxe', mode: 'octet', size: undionly.size, blksize: c.blksize, windowsize: c.windowsize, resent: 0 });
  }
  const atftp16 = tftp.records.find((r) => r.windowsize === 16);
  t.same(atftp16?.requested, { blksize: '1468', windowsize: '16', tsize: '0' }, 'the record keeps the options as requested');
  const hpa = tftp.records.filter((r) => r.file === 'undionly.kpxe').at(-1);
  t.same(hpa?.requested, {}, 'tftp-hpa asks for no option');
});

t.test('100 MiB at blksize 512: 204801 blocks, the block number rolls over', async (t) => {
  const size = 100 * 1024 * 1024;
  const name = 'big-100mib.bin';
  const sha = await writeSeededFile(join(root, name), size, 7);
  t.teardown(() => rmSync(join(root, name), { force: true }));
  const blocks = Math.floor(size / 512) + 1;
  t.ok(blocks > 3 * 65536, `${blocks} blocks: block numbers wrap at 65536 three times`);
  const cases: { label: string; client: (dest: string) => [string, string[]] }[] = [
    { label: 'curl blksize 512', client: (d) => curlGet(port, name, d, ['--tftp-blksize', '512']) },
    { label: 'atftp blksize 512 tsize 0', client: (d) => atftpGet(port, name, d, { blksize: 512, tsize: 0 }) },
    { label: 'tftp-hpa', client: (d) => tftpHpaGet(port, name, d) },
  ];
  for (const c of cases) {
    const r = await fetch(t, `100 MiB, ${c.label}`, name, sha, c.client, 60_000);
    checkRecord(t, `100 MiB, ${c.label}`, r, { file: name, size, bytes: size, blksize: 512, windowsize: 1, resent: 0 });
  }
});

t.test("Debian's /usr/lib/ipxe/ipxe.efi, a symlink to /boot/ipxe.efi, is served from the root /usr/lib/ipxe", async (t) => {
  const link = join(IPXE_DIR, 'ipxe.efi');
  t.ok(existsSync(link), `${link} exists (Debian package ipxe)`);
  const target = realpathSync(link);
  t.not(target, link, `${link} is a symlink (to ${target})`);
  t.notOk(target.startsWith(`${IPXE_DIR}/`), 'whose target is outside the root');
  const sha = await sha256File(target);
  const size = readFileSync(target).length;
  for (const [label, file] of [
    ['ipxe.efi', 'ipxe.efi'],
    ['the absolute /usr/lib/ipxe/ipxe.efi', '/usr/lib/ipxe/ipxe.efi'],
  ] as const) {
    const r = await fetch(t, `curl ${label}`, 'ipxe.efi', sha, (d) => curlGet(port, file, d, ['--tftp-blksize', '1468']));
    checkRecord(t, `curl ${label}`, r, { file: 'ipxe.efi', size, blksize: 1468 });
  }
});

t.test('a name served by a handler', async (t) => {
  const r = await fetch(t, 'curl gen.txt', 'gen.txt', sha256(Buffer.from('hello')), (d) => curlGet(port, 'gen.txt', d));
  checkRecord(t, 'curl gen.txt', r, { file: 'gen.txt', size: 5, bytes: 5 });
  const hpa = await fetch(t, 'tftp-hpa gen.txt', 'gen.txt', sha256(Buffer.from('hello')), (d) => tftpHpaGet(port, 'gen.txt', d));
  checkRecord(t, 'tftp-hpa gen.txt', hpa, { file: 'gen.txt', size: 5, blksize: 512 });
});

t.test('netascii: tftp-hpa -m ascii gets a text file back as it is', async (t) => {
  const text = Buffer.from(
    Array.from({ length: 400 }, (_, i) => `line ${i}: kernel initrd=initrd.img ip=dhcp\n`).join('') + 'a\rcarriage return alone\n',
    'latin1',
  );
  const lfs = text.filter((b) => b === 0x0a).length;
  const crs = text.filter((b) => b === 0x0d).length;
  writeFileSync(join(root, 'menu.txt'), text);
  const r = await fetch(t, 'tftp-hpa -m ascii', 'menu.txt', sha256(text), (d) => tftpHpaGet(port, 'menu.txt', d, 'ascii'));
  // On the wire every LF is CR LF and every lone CR is CR NUL: one byte more for each.
  checkRecord(t, 'tftp-hpa -m ascii', r, { file: 'menu.txt', mode: 'netascii', size: text.length + lfs + crs, blksize: 512 });
  t.ok(text.length + lfs + crs > 16 * 512, 'the converted text spans many blocks');
});

t.test('a tsize probe (RRQ with tsize 0, then ERROR 8 after the OACK) is recorded as a probe', async (t) => {
  const c = await RawClient.open(t);
  await c.send(
    encodeRequest(Opcode.RRQ, 'undionly.kpxe', 'octet', [
      ['tsize', '0'],
      ['blksize', '1468'],
    ]),
    port,
  );
  const oack = await c.next(5_000);
  t.ok(oack, 'an answer to the request');
  if (!oack) return;
  const d = decodePacket(oack.msg);
  t.match(d, { ok: true, packet: { op: Opcode.OACK } }, 'an OACK');
  if (d.ok && d.packet.op === Opcode.OACK) {
    t.equal(d.packet.options.get('tsize'), String(undionly.size), 'tsize is the size of the file');
    t.equal(d.packet.options.get('blksize'), '1468', 'blksize 1468 granted');
  }
  t.not(oack.rinfo.port, port, 'the OACK comes from the transfer port, not the listener');
  await c.send(encodeError(ErrorCode.OptionRefused, 'tsize probe'), oack.rinfo.port);
  const r = await tftp.record((x) => x.client.port === c.port, 5_000);
  t.match(r, { file: 'undionly.kpxe', outcome: 'probe', bytes: 0, size: undionly.size, blksize: 1468 }, 'recorded as a probe, nothing sent');
  const after = await c.drain(1_500);
  t.same(
    after.map((x) => x.msg.readUInt16BE(0)),
    [],
    'nothing follows: no DATA, no OACK again',
  );
  t.ok((tftp.server.stats().transfers.probe ?? 0) >= 1, 'stats count the probe');
});

t.test('stats after the transfers', async (t) => {
  const s = tftp.server.stats();
  const complete = tftp.records.filter((r) => r.outcome === 'complete').length;
  t.equal(s.transfers.complete, complete, `stats count ${complete} complete transfers, as recorded`);
  t.equal(s.active, 0, 'no transfer left running');
  t.ok(s.blocksSent > 3 * 204801, `blocks sent: ${s.blocksSent}`);
  t.same(s.dropped, {}, 'nothing dropped');
  t.same(s.refused, {}, 'nothing refused');
});
