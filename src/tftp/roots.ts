/**
 * Which file a requested name means, confined to the served directories ("roots"). Shared by
 * TFTP and the /ipxe-bin HTTP route, so both serve exactly the same files: both open them with
 * `openInRoots` and send from that descriptor alone.
 */
import { constants } from 'node:fs';
import { lstat, open, readlink, realpath, stat, type FileHandle } from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';

/** Longest accepted name, and longest path segment (NAME_MAX). */
export const MAX_NAME_BYTES = 512;
const MAX_SEGMENT_BYTES = 255;

export type NameCheck = { ok: true; relative: string } | { ok: false; reason: string };

/**
 * Normalises a requested name to a relative path of plain segments, or refuses it.
 * `/ipxe.efi`, `ipxe.efi`, `./ipxe.efi` and `//ipxe.efi` are the same file; a name that starts
 * with a root's own absolute path (`/usr/lib/ipxe/ipxe.efi`, as firmware configured for an
 * unconfined server sends) is that root's file. Refused: `..` segments, backslashes (a
 * Windows-style path would mean something else here), NUL and other control bytes, drive
 * letters, over-long names.
 */
export function normaliseName(name: string, roots: readonly string[]): NameCheck {
  if (name.length === 0) return { ok: false, reason: 'empty name' };
  if (name.length > MAX_NAME_BYTES) return { ok: false, reason: `name longer than ${MAX_NAME_BYTES} bytes` };
  if (/[\x00-\x1f\x7f]/.test(name)) return { ok: false, reason: 'control character in name' };
  if (name.includes('\\')) return { ok: false, reason: 'backslash in name' };
  if (/^[A-Za-z]:/.test(name)) return { ok: false, reason: 'drive letter in name' };
  let rest = name;
  if (rest.startsWith('/')) {
    for (const root of roots) {
      const abs = resolve(root);
      if (rest.startsWith(`${abs}/`)) {
        rest = rest.slice(abs.length);
        break;
      }
    }
  }
  const segments: string[] = [];
  for (const seg of rest.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') return { ok: false, reason: '".." in name' };
    if (Buffer.byteLength(seg, 'latin1') > MAX_SEGMENT_BYTES) return { ok: false, reason: `path segment longer than ${MAX_SEGMENT_BYTES} bytes` };
    segments.push(seg);
  }
  if (segments.length === 0) return { ok: false, reason: 'no file named' };
  return { ok: true, relative: segments.join('/') };
}

export type Resolved = { ok: true; path: string; root: string } | { ok: false; kind: 'not-found' | 'refused'; reason: string };

/**
 * Finds `relative` (from normaliseName) in the first root that has it. The real path must stay
 * inside that root, with one exception: a symlink that leads out of the roots is followed when
 * root (or this process's user) owns it and the directory holding it, and nobody else can write
 * that directory — how Debian's ipxe package links /usr/lib/ipxe/ipxe.efi to /boot/ipxe.efi.
 * A link anyone else could have planted is refused. Only regular files are served.
 */
export async function resolveInRoots(roots: readonly string[], relative: string): Promise<Resolved> {
  let refused: Resolved | undefined;
  for (const root of roots) {
    try {
      const found = await inRoot(resolve(root), relative);
      if (found.ok) return { ...found, root };
      refused ??= found;
    } catch (err) {
      if (isMissing(err)) continue;
      refused ??= { ok: false, kind: 'refused', reason: `cannot read: ${(err as NodeJS.ErrnoException).code ?? String(err)}` };
    }
  }
  return refused ?? { ok: false, kind: 'not-found', reason: 'no such file in the served directories' };
}

async function inRoot(root: string, relative: string): Promise<{ ok: true; path: string } | { ok: false; kind: 'refused'; reason: string }> {
  const realRoot = await realpath(root);
  const real = await realpath(join(root, relative));
  if (!(real === realRoot || real.startsWith(realRoot + sep))) {
    const untrusted = await untrustedLink(root, relative);
    if (untrusted !== undefined) return { ok: false, kind: 'refused', reason: `symlink ${untrusted} leads out of the served directories` };
  }
  if (!(await stat(real)).isFile()) return { ok: false, kind: 'refused', reason: 'not a regular file' };
  return { ok: true, path: real };
}

export type Opened =
  { ok: true; file: FileHandle; size: number; mtime: Date; path: string; root: string } | { ok: false; kind: 'not-found' | 'refused'; reason: string };

/**
 * Opens the file `resolveInRoots` approves for `relative`, once. The caller sends from `file`
 * alone (never by path again) and closes it.
 */
export async function openInRoots(roots: readonly string[], relative: string): Promise<Opened> {
  const found = await resolveInRoots(roots, relative);
  return found.ok ? openApproved(found) : found;
}

/**
 * Opens an approved real path and proves that the descriptor is that very file: the kernel's
 * name of the open file (/proc/self/fd/N) must be the approved path. A path whose last part was
 * swapped for a link after the check fails the open (O_NOFOLLOW); a directory on the way
 * swapped for one opens a file under another name: both are refused, never served. Files
 * the file system will not open (gone, unreadable) throw its error.
 */
export async function openApproved(approved: { path: string; root: string }): Promise<Opened> {
  let file: FileHandle;
  try {
    // O_NONBLOCK: a FIFO swapped in would otherwise block the open until a writer came.
    file = await open(approved.path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ELOOP') return { ok: false, kind: 'refused', reason: `${approved.path} became a symlink while it was opened` };
    throw err;
  }
  try {
    const opened = await readlink(`/proc/self/fd/${file.fd}`);
    if (opened !== approved.path) {
      await file.close();
      return { ok: false, kind: 'refused', reason: `${approved.path} changed while it was opened` };
    }
    const st = await file.stat();
    if (!st.isFile()) {
      await file.close();
      return { ok: false, kind: 'refused', reason: 'not a regular file' };
    }
    return { ok: true, file, size: st.size, mtime: st.mtime, path: approved.path, root: approved.root };
  } catch (err) {
    await file.close();
    throw err;
  }
}

function isMissing(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR' || code === 'ENAMETOOLONG';
}

/**
 * The first symlink on the way from `root` to `relative` that is not trusted, if any. A trusted
 * link's own target is walked too, so a link at the far end of a chain (a trusted link to a
 * link planted in a writable directory) is checked like the first one.
 */
async function untrustedLink(root: string, relative: string): Promise<string | undefined> {
  const trustedUids = new Set([0, process.geteuid?.() ?? 0]);
  let hops = 0;
  // `from` is a real path (no links), so `..` in a link target is its real parent.
  const walk = async (from: string, path: string): Promise<string | undefined> => {
    let at = from;
    for (const seg of path.split('/')) {
      if (seg === '' || seg === '.') continue;
      if (seg === '..') {
        at = dirname(at);
        continue;
      }
      at = join(at, seg);
      const st = await lstat(at);
      if (!st.isSymbolicLink()) continue;
      const dir = await stat(await realpath(dirname(at)));
      const safe = trustedUids.has(st.uid) && trustedUids.has(dir.uid) && (dir.mode & 0o022) === 0;
      if (!safe || ++hops > 40) return at;
      const target = await readlink(at);
      const planted = await walk(target.startsWith('/') ? '/' : dirname(at), target);
      if (planted !== undefined) return planted;
      at = await realpath(at);
    }
    return undefined;
  };
  return walk(await realpath(root), relative);
}
