/**
 * Secrets the store keeps (a BMC's password) sealed under the server's own key: AES-256-GCM with a
 * fresh 12-byte IV a value (NIST SP 800-38D §8.2.2) and its 16-byte tag, so that a database copied
 * off the machine, a backup or a leaked row holds nothing usable without <dataDir>/secret.key.
 *
 * The text form is `v1.<iv>.<tag>.<ciphertext>`, each part base64url: the version first, so that a
 * later scheme can be told apart and old values still opened.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

const VERSION = 'v1';
const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
/** Bound to every value as additional data: a value sealed by another program under the same key does not open here. */
const CONTEXT = Buffer.from('edgeboot sealed-box v1');
const BASE64URL = /^[A-Za-z0-9_-]*$/;

export class SealedBox {
  readonly #key: Buffer;

  constructor(key: Buffer) {
    if (key.length !== KEY_BYTES) throw new Error(`a sealed box needs a ${KEY_BYTES}-byte key, got ${key.length} bytes`);
    this.#key = Buffer.from(key);
  }

  seal(plain: string): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.#key, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(CONTEXT);
    const body = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
    return [VERSION, ...[iv, cipher.getAuthTag(), body].map((part) => part.toString('base64url'))].join('.');
  }

  /** The plaintext; a malformed, altered or foreign value throws an Error that names neither the value nor the key. */
  open(sealed: string): string {
    const parts = sealed.split('.');
    const [version, ivText, tagText, bodyText] = parts;
    if (parts.length !== 4 || version !== VERSION || ivText === undefined || tagText === undefined || bodyText === undefined) {
      throw new Error(`not a sealed value: expected ${VERSION}.<iv>.<tag>.<ciphertext> in base64url`);
    }
    if (![ivText, tagText, bodyText].every((p) => BASE64URL.test(p))) throw new Error('not a sealed value: a part is not base64url');
    const iv = Buffer.from(ivText, 'base64url');
    const tag = Buffer.from(tagText, 'base64url');
    if (iv.length !== IV_BYTES || tag.length !== TAG_BYTES) {
      throw new Error(`not a sealed value: expected a ${IV_BYTES}-byte IV and a ${TAG_BYTES}-byte tag`);
    }
    const decipher = createDecipheriv('aes-256-gcm', this.#key, iv, { authTagLength: TAG_BYTES });
    decipher.setAAD(CONTEXT);
    decipher.setAuthTag(tag);
    try {
      return Buffer.concat([decipher.update(Buffer.from(bodyText, 'base64url')), decipher.final()]).toString('utf8');
    } catch {
      // GCM's tag check failed; node's own message ("Unsupported state or unable to authenticate data") says less than this.
      throw new Error('cannot open a sealed value: it was sealed under another secret key, or altered');
    }
  }
}

export interface SecretKey {
  key: Buffer;
  /** For the log: the file is readable by its group or by others. */
  warning?: string;
}

/** The key that seals BMC passwords, made at first use; see readSecretKey. */
export function loadSecretKey(path: string): Buffer {
  return readSecretKey(path).key;
}

/**
 * The key in `path`: 32 bytes as 64 lower-case hex characters and a newline. Made at first use
 * (random, mode 0600, the parent directory made too) with an exclusive create, so that two servers
 * starting at once on one data dir end up with the same key rather than each with its own.
 */
export function readSecretKey(path: string): SecretKey {
  const file = resolve(path);
  createKeyFile(file);
  const text = readKeyText(file);
  if (!/^[0-9a-f]{64}\n$/.test(text)) {
    throw new Error(
      `${file} does not hold a secret key: expected 64 lower-case hex characters (32 bytes) and a newline, as edgeboot writes it, ` +
        `found ${Buffer.byteLength(text)} bytes; restore the file from a backup (values sealed under another key cannot be opened)`,
    );
  }
  const mode = statSync(file).mode & 0o777;
  const warning =
    (mode & 0o077) !== 0
      ? `${file} holds the key that seals BMC passwords and is readable by others than its owner (mode ${mode.toString(8).padStart(4, '0')}); chmod 600 it`
      : undefined;
  return { key: Buffer.from(text.slice(0, 64), 'hex'), ...(warning !== undefined && { warning }) };
}

function createKeyFile(file: string): void {
  mkdirSync(dirname(file), { recursive: true });
  try {
    writeFileSync(file, `${randomBytes(KEY_BYTES).toString('hex')}\n`, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    if (errnoOf(err) === 'EEXIST') return; // made earlier, or by another start just now: read it
    throw new Error(`cannot create the secret key file ${file}: ${(err as Error).message}`, { cause: err });
  }
}

/** Another start may have created the file and not yet written it: an empty file is read again, for up to a second. */
function readKeyText(file: string): string {
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (let attempt = 0; ; attempt++) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new Error(`cannot read the secret key file ${file}: ${(err as Error).message}`, { cause: err });
    }
    if (text !== '' || attempt >= 40) return text;
    Atomics.wait(pause, 0, 0, 25);
  }
}

function errnoOf(err: unknown): string | undefined {
  return err instanceof Error && 'code' in err && typeof err.code === 'string' ? err.code : undefined;
}
