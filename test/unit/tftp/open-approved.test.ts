/**
 * openInRoots / openApproved (src/tftp/roots.ts): the descriptor TFTP and /ipxe-bin send from is
 * the very file the check approved. The window between the check and the open is played out by
 * hand: the approved path is changed after resolveInRoots and before openApproved.
 */
import { lchownSync, mkdirSync, readFileSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { openApproved, openInRoots, resolveInRoots } from '../../../src/tftp/roots.js';
import { tempDir } from '../../helpers/app.js';

const SECRET = 'outside the roots';

t.test('a file opened by openInRoots is read from its descriptor', async (t) => {
  const root = tempDir('edgeboot-open-');
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  writeFileSync(join(root, 'a.efi'), 'the approved file');
  const opened = await openInRoots([root], 'a.efi');
  if (!opened.ok) throw new Error(`not opened: ${opened.reason}`);
  t.teardown(() => opened.file.close());
  t.equal(opened.size, 17);
  t.equal(opened.path, join(root, 'a.efi'));
  // Renamed away after the open: the descriptor still reads the file that was approved.
  renameSync(join(root, 'a.efi'), join(root, 'moved.efi'));
  writeFileSync(join(root, 'a.efi'), SECRET);
  t.equal((await readFile(opened.file)).toString(), 'the approved file');
  t.match(await openInRoots([root], 'missing.efi'), { ok: false, kind: 'not-found' });
});

t.test('a directory on the approved path swapped for a link before the open: refused', async (t) => {
  const base = tempDir('edgeboot-open-');
  t.teardown(() => rmSync(base, { recursive: true, force: true }));
  const root = join(base, 'root');
  const outside = join(base, 'outside');
  mkdirSync(join(root, 'dir'), { recursive: true });
  mkdirSync(outside);
  writeFileSync(join(root, 'dir', 'x.efi'), 'inside');
  writeFileSync(join(outside, 'x.efi'), SECRET);
  const approved = await resolveInRoots([root], 'dir/x.efi');
  t.match(approved, { ok: true, path: join(root, 'dir', 'x.efi') }, 'the check approves dir/x.efi');
  if (!approved.ok) return;
  renameSync(join(root, 'dir'), join(root, 'dir-old'));
  symlinkSync(outside, join(root, 'dir'));
  lchownSync(join(root, 'dir'), 65534, 65534);
  const opened = await openApproved(approved);
  t.match(opened, { ok: false, kind: 'refused', reason: /changed while it was opened/ }, 'the open names another file: refused');
  if (opened.ok) t.notMatch((await readFile(opened.file)).toString(), SECRET, 'never the outside file');
});

t.test('the approved file itself swapped for a link before the open: refused', async (t) => {
  const base = tempDir('edgeboot-open-');
  t.teardown(() => rmSync(base, { recursive: true, force: true }));
  const root = join(base, 'root');
  mkdirSync(root);
  writeFileSync(join(base, 'secret'), SECRET);
  writeFileSync(join(root, 'y.efi'), 'inside');
  const approved = await resolveInRoots([root], 'y.efi');
  if (!approved.ok) throw new Error('not approved');
  unlinkSync(join(root, 'y.efi'));
  symlinkSync(join(base, 'secret'), join(root, 'y.efi'));
  t.match(await openApproved(approved), { ok: false, kind: 'refused', reason: /became a symlink/ });
  t.equal(readFileSync(join(base, 'secret'), 'utf8'), SECRET, '(the outside file is still there to be had)');
});
