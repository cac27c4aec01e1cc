import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { open, rename, stat, statfs, unlink } from 'node:fs/promises';
import { join } from 'node:path';

/** A sha256 digest in lower-case hex. */
export type Hex = string;
const HEX = /^[0-9a-f]{64}$/;

/**
 * Content-addressed files: `<dir>/blobs/sha256/<hex>`, written through `<dir>/tmp/` and moved
 * into place only once complete and verified (fsync of the file, rename, fsync of the folder),
 * so a crash leaves a stray temporary file, never a partial blob under its digest. One store
 * for every kind of blob: boot artifacts now, image layers later.
 */
export class BlobStore {
  readonly blobDir: string;
  readonly tmpDir: string;

  constructor(readonly dir: string) {
    this.blobDir = join(dir, 'blobs', 'sha256');
    this.tmpDir = join(dir, 'tmp');
    mkdirSync(this.blobDir, { recursive: true });
    mkdirSync(this.tmpDir, { recursive: true });
    // Temporary files of an earlier process are never resumed across restarts: drop them.
    for (const name of readdirSync(this.tmpDir)) rmSync(join(this.tmpDir, name), { force: true });
  }

  path(hex: Hex): string {
    if (!HEX.test(hex)) throw new Error(`not a sha256 digest: ${hex}`);
    return join(this.blobDir, hex);
  }

  /** The blob's size, or undefined when it is not stored. */
  async size(hex: Hex): Promise<number | undefined> {
    try {
      return (await stat(this.path(hex))).size;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  /** Bytes that can still be written to the store's file system (statfs: blocks available to unprivileged writers). */
  async free(): Promise<number> {
    const fs = await statfs(this.tmpDir);
    return fs.bavail * fs.bsize;
  }

  /** A fresh temporary path inside the store's file system (so the final rename is atomic); its mtime says its age. */
  tmpPath(): string {
    return join(this.tmpDir, randomBytes(12).toString('hex'));
  }

  /** Moves a complete, verified temporary file into place under its digest. */
  async commit(tmp: string, hex: Hex): Promise<string> {
    const fh = await open(tmp, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
    const target = this.path(hex);
    await rename(tmp, target);
    const dirHandle = await open(this.blobDir, 'r');
    try {
      await dirHandle.sync();
    } finally {
      await dirHandle.close();
    }
    return target;
  }

  async remove(hex: Hex): Promise<void> {
    await this.discard(this.path(hex));
  }

  async discard(tmp: string): Promise<void> {
    await unlink(tmp).catch((err: unknown) => {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    });
  }
}
