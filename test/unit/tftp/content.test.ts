import { randomBytes } from 'node:crypto';
import { fstatSync, mkdirSync, mkdtempSync, readdirSync, readlinkSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { bufferContent, fileContent, readWhole as readWholeOpen, toNetascii, type TftpContent } from '../../../src/tftp/content.js';
import { openApproved, type Opened } from '../../../src/tftp/roots.js';

/**
 * What a transfer sends: generated buffers, files opened for the pump's pread (read here with
 * readSync at block offsets, as the pump does), whole-file reads for netascii, and the netascii
 * conversion itself.
 */

const dir = mkdtempSync(join(tmpdir(), 'edgeboot-tftp-content-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

/** A file opened as the server opens it (roots.ts `openApproved`), refusals thrown. */
async function opened(path: string): Promise<Extract<Opened, { ok: true }>> {
  const o = await openApproved({ path, root: dir });
  if (!o.ok) throw Object.assign(new Error(o.reason), { kind: o.kind });
  return o;
}

/** A file as TFTP transfer content, opened the server's way. */
async function openFileContent(path: string): Promise<TftpContent> {
  const o = await opened(path);
  return fileContent(o.file, o.size, o.path);
}

/** A file read whole up to `max`, opened the server's way (netascii transfers). */
async function readWhole(path: string, max: number): Promise<Buffer | undefined> {
  const o = await opened(path);
  return readWholeOpen(o.file, o.size, max);
}

/** Descriptors this process has open, by number. */
const openFds = (): Set<number> => new Set(readdirSync('/proc/self/fd').map(Number));

/** What the descriptor points at now, or undefined when it is closed. */
function fdTarget(fd: number): string | undefined {
  try {
    return readlinkSync(`/proc/self/fd/${fd}`);
  } catch {
    return undefined;
  }
}

/** Block `n` (1-based) of `blksize` bytes, read from a descriptor the way the pump does (pread). */
function readBlock(content: TftpContent, n: number, blksize: number): Buffer {
  const src = content.source;
  if (typeof src !== 'number') throw new Error('expected a file descriptor');
  const buf = Buffer.alloc(blksize);
  const got = readSync(src, buf, 0, blksize, (n - 1) * blksize);
  return buf.subarray(0, got);
}

const settle = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 20));

t.test('bufferContent', async (t) => {
  const data = Buffer.from('#!ipxe\nchain http://10.0.0.1/boot.ipxe\n');
  const c = bufferContent(data);
  t.equal(c.size, data.length);
  t.equal(c.source, data, 'the bytes themselves, not a copy');
  t.doesNotThrow(() => {
    c.close();
    c.close();
  }, 'close is a no-op, twice');
  t.equal(bufferContent(Buffer.alloc(0)).size, 0, 'empty content');
});

t.test('toNetascii', async (t) => {
  const conv = (s: string) => [...toNetascii(Buffer.from(s, 'latin1'))];
  const bytes = (s: string) => [...Buffer.from(s, 'latin1')];
  t.same(conv('a\nb\n'), bytes('a\r\nb\r\n'), 'LF becomes CR LF');
  t.same(conv('a\rb'), bytes('a\r\0b'), 'a bare CR becomes CR NUL');
  t.same(conv('\n\n'), bytes('\r\n\r\n'), 'consecutive LFs');
  t.same(conv('\r'), bytes('\r\0'), 'a lone CR at the end');
  t.same(conv('x\r\ny'), bytes('x\r\0\r\ny'), 'a CR LF in the file: CR escaped, LF expanded (as tftp-hpa does)');
  t.same(conv('\n'), bytes('\r\n'));

  const plain = Buffer.from('no line ends here\ttab \0 nul \xff', 'latin1');
  t.equal(toNetascii(plain), plain, 'nothing to change: the same buffer comes back');
  const empty = Buffer.alloc(0);
  t.equal(toNetascii(empty), empty, 'empty: the same buffer');

  // Every byte value: only CR and LF grow, everything else passes through in order.
  const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
  const out = toNetascii(all);
  t.equal(out.length, 258);
  const expected: number[] = [];
  for (let i = 0; i < 256; i += 1) {
    if (i === 0x0a) expected.push(0x0d, 0x0a);
    else if (i === 0x0d) expected.push(0x0d, 0x00);
    else expected.push(i);
  }
  t.same([...out], expected);

  const input = Buffer.from('line one\nline two\n', 'latin1');
  const copy = Buffer.from(input);
  toNetascii(input);
  t.ok(input.equals(copy), 'the input is not modified');

  // A large text keeps its length arithmetic: one extra byte per CR or LF.
  const big = Buffer.from('x'.repeat(999).concat('\n').repeat(1000), 'latin1');
  t.equal(toNetascii(big).length, big.length + 1000);
});

t.test('openFileContent: a file read block by block reproduces it', async (t) => {
  const path = join(dir, 'ipxe.efi');
  // Several megabytes, not a multiple of either block size.
  const data = randomBytes(3 * 1024 * 1024 + 12345);
  writeFileSync(path, data);
  const c = await openFileContent(path);
  t.equal(c.size, data.length);
  t.type(c.source, 'number', 'a file descriptor for pread');
  const fd = c.source as number;
  t.equal(fdTarget(fd), path, 'open on the file');

  for (const blksize of [1468, 512, 65464, 1000]) {
    const n = Math.floor(data.length / blksize) + 1;
    const parts: Buffer[] = [];
    let short = 0;
    for (let b = 1; b <= n; b += 1) {
      const block = readBlock(c, b, blksize);
      if (block.length < blksize) short += 1;
      parts.push(block);
    }
    t.equal(short, 1, `blksize ${blksize}: only the last block is short`);
    t.ok(Buffer.concat(parts).equals(data), `blksize ${blksize}: ${n} blocks reproduce the file`);
    t.equal(readBlock(c, n + 1, blksize).length, 0, `blksize ${blksize}: past the end reads nothing`);
  }
  t.equal(readBlock(c, 1000000, 512).length, 0, 'far past the end reads nothing');

  c.close();
  c.close();
  await settle();
  t.not(fdTarget(fd), path, 'closed (the number no longer names the file)');
});

t.test('openFileContent: exact multiple and empty files', async (t) => {
  const exact = join(dir, 'exact.bin');
  const data = randomBytes(1468 * 4);
  writeFileSync(exact, data);
  const c = await openFileContent(exact);
  t.equal(c.size, 1468 * 4);
  for (let b = 1; b <= 4; b += 1) t.ok(readBlock(c, b, 1468).equals(data.subarray((b - 1) * 1468, b * 1468)), `block ${b}`);
  t.equal(readBlock(c, 5, 1468).length, 0, 'the fifth block is the empty one that ends the transfer');
  c.close();

  const empty = join(dir, 'empty.bin');
  writeFileSync(empty, '');
  const e = await openFileContent(empty);
  t.equal(e.size, 0);
  t.equal(readBlock(e, 1, 512).length, 0);
  e.close();
});

t.test('openFileContent: two opens of one file are independent', async (t) => {
  const path = join(dir, 'shared.bin');
  const data = randomBytes(200000);
  writeFileSync(path, data);
  const a = await openFileContent(path);
  const b = await openFileContent(path);
  t.not(a.source, b.source, 'each its own descriptor');
  t.ok(readBlock(a, 3, 1468).equals(data.subarray(2 * 1468, 3 * 1468)));
  a.close();
  await settle();
  t.ok(readBlock(b, 3, 1468).equals(data.subarray(2 * 1468, 3 * 1468)), 'closing one leaves the other readable');
  t.ok(readBlock(b, 1, 1468).equals(data.subarray(0, 1468)), 'and reads from any offset (pread, no shared position)');
  t.doesNotThrow(() => fstatSync(b.source as number));
  b.close();
});

t.test('openFileContent and readWhole refuse what is not a regular file', async (t) => {
  const sub = join(dir, 'a-directory');
  mkdirSync(sub);
  const before = openFds();
  await t.rejects(openFileContent(sub), { kind: 'refused', message: 'not a regular file' }, 'a directory is refused');
  await t.rejects(readWhole(sub, 1 << 20), { kind: 'refused', message: 'not a regular file' }, 'readWhole refuses it too');
  await t.rejects(openFileContent(join(dir, 'missing')), { code: 'ENOENT' }, 'a missing file: the file system error');
  await t.rejects(readWhole(join(dir, 'missing'), 10), { code: 'ENOENT' });
  await settle();
  t.same(
    [...openFds()].filter((fd) => !before.has(fd)),
    [],
    'no descriptor left open',
  );
});

t.test('readWhole', async (t) => {
  const path = join(dir, 'menu.txt');
  const data = Buffer.from('line\n'.repeat(100));
  writeFileSync(path, data);
  const whole = await readWhole(path, 1 << 20);
  t.ok(whole?.equals(data), 'the whole file');
  t.ok((await readWhole(path, data.length))?.equals(data), 'exactly the limit is read');
  t.equal(await readWhole(path, data.length - 1), undefined, 'one byte over the limit: undefined');
  const empty = join(dir, 'empty.txt');
  writeFileSync(empty, '');
  t.same(await readWhole(empty, 0), Buffer.alloc(0), 'an empty file within a zero limit');
});
