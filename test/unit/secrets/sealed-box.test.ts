import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { loadSecretKey, readSecretKey, SealedBox } from '../../../src/secrets/sealed-box.js';

const PASSWORD = 'calvin-Pa55-ü';

function tempDir(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'edgeboot-sealed-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Every error's message, checked for what must never be in it. */
function openError(box: SealedBox, sealed: string): string {
  try {
    box.open(sealed);
  } catch (err) {
    return (err as Error).message;
  }
  return 'opened';
}

t.test('seal then open gives the plaintext back; each seal is a new value of the versioned form', async (t) => {
  const box = new SealedBox(randomBytes(32));
  const a = box.seal(PASSWORD);
  const b = box.seal(PASSWORD);
  t.match(a, /^v1\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]+$/);
  t.not(a, b, 'a fresh IV each time');
  t.equal(box.open(a), PASSWORD);
  t.equal(box.open(b), PASSWORD);
  t.notOk(a.includes(PASSWORD), 'the plaintext is not in the sealed form');
  t.equal(box.open(box.seal('')), '', 'the empty string round-trips');
});

t.test('a tampered, foreign or malformed value throws a clear error without the plaintext or the key', async (t) => {
  const key = randomBytes(32);
  const box = new SealedBox(key);
  const sealed = box.seal(PASSWORD);
  const [v, iv, tag, body] = sealed.split('.') as [string, string, string, string];
  const flipped = Buffer.from(body, 'base64url');
  flipped[0] = (flipped[0] ?? 0) ^ 1;
  const cases: [string, string, RegExp][] = [
    ['altered ciphertext', [v, iv, tag, flipped.toString('base64url')].join('.'), /another secret key, or altered/],
    ['altered tag', [v, iv, Buffer.alloc(16).toString('base64url'), body].join('.'), /another secret key, or altered/],
    ['sealed under another key', new SealedBox(randomBytes(32)).seal(PASSWORD), /another secret key, or altered/],
    ['another version', ['v2', iv, tag, body].join('.'), /not a sealed value/],
    ['a plain password', PASSWORD, /not a sealed value/],
    ['too few parts', `${v}.${iv}.${tag}`, /not a sealed value/],
    ['a short IV', [v, 'AAAA', tag, body].join('.'), /12-byte IV/],
    ['not base64url', [v, iv, tag, 'a+b/c='].join('.'), /not base64url/],
  ];
  for (const [name, value, expected] of cases) {
    const message = openError(box, value);
    t.match(message, expected, name);
    t.notOk(message.includes(PASSWORD), `${name}: no plaintext`);
    t.notOk(message.includes(key.toString('hex')) || message.includes(key.toString('base64')), `${name}: no key`);
  }
});

t.test('a key of another length is refused', async (t) => {
  t.throws(() => new SealedBox(randomBytes(16)), /32-byte key, got 16 bytes/);
});

t.test('loadSecretKey makes the file at first use (64 hex + newline, 0600, parent made) and reads the same key after', async (t) => {
  const file = join(tempDir(t), 'nested', 'dir', 'secret.key');
  const first = readSecretKey(file);
  t.equal(first.key.length, 32);
  t.equal(first.warning, undefined);
  const text = readFileSync(file, 'utf8');
  t.match(text, /^[0-9a-f]{64}\n$/);
  t.equal(statSync(file).mode & 0o777, 0o600);
  t.same(loadSecretKey(file), first.key, 'the second start reads the key the first made');
  const box = new SealedBox(first.key);
  t.equal(new SealedBox(loadSecretKey(file)).open(box.seal(PASSWORD)), PASSWORD);
});

t.test('an existing file that is not a key is a clear error naming the file, never a new key', async (t) => {
  const dir = tempDir(t);
  for (const [name, content] of [
    ['short', 'abcd\n'],
    ['upper', `${'AB'.repeat(32)}\n`],
    ['no-newline', 'ab'.repeat(32)],
    ['spaces', ` ${'ab'.repeat(32)}\n`],
  ] as const) {
    const file = join(dir, name);
    writeFileSync(file, content, { mode: 0o600 });
    t.throws(() => loadSecretKey(file), { message: new RegExp(`${file} does not hold a secret key: expected 64 lower-case hex characters`) }, name);
    t.equal(readFileSync(file, 'utf8'), content, `${name}: left as it was`);
  }
});

t.test('a group- or world-readable key file is read, with a warning for the log', async (t) => {
  const file = join(tempDir(t), 'secret.key');
  const hex = randomBytes(32).toString('hex');
  writeFileSync(file, `${hex}\n`);
  chmodSync(file, 0o644);
  const { key, warning } = readSecretKey(file);
  t.equal(key.toString('hex'), hex);
  t.match(warning, /readable by others than its owner \(mode 0644\); chmod 600 it/);
  t.notOk(warning?.includes(hex), 'the warning does not carry the key');
});

t.test('a file that cannot be made is a clear error naming it', async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'plain-file'), 'x');
  t.throws(() => loadSecretKey(join(dir, 'plain-file', 'secret.key')), /plain-file/);
});
