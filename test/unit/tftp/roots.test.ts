import { chmodSync, chownSync, existsSync, lchownSync, lstatSync, mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import t from 'tap';
import { MAX_NAME_BYTES, normaliseName, resolveInRoots, type NameCheck, type Resolved } from '../../../src/tftp/roots.js';

/**
 * Which file a requested name means: the name rules (normaliseName) and the lookup in the roots
 * with the trusted-symlink rule (resolveInRoots), on temporary trees. The tests run as root, so
 * a link "planted by someone else" is made with lchown to nobody (65534).
 */

const refusedName = (c: NameCheck): string | undefined => (c.ok ? undefined : c.reason);
const relativeOf = (c: NameCheck): string | undefined => (c.ok ? c.relative : undefined);

t.test('normaliseName: equivalent spellings of one file', async (t) => {
  for (const name of ['ipxe.efi', '/ipxe.efi', '//ipxe.efi', './ipxe.efi', '/./ipxe.efi', './/ipxe.efi', '///./ipxe.efi']) {
    t.same(normaliseName(name, []), { ok: true, relative: 'ipxe.efi' }, JSON.stringify(name));
  }
  for (const name of ['efi/ipxe.efi', '/efi/ipxe.efi', 'efi//ipxe.efi', 'efi/./ipxe.efi', './efi/./ipxe.efi', 'efi/ipxe.efi/']) {
    t.same(normaliseName(name, []), { ok: true, relative: 'efi/ipxe.efi' }, JSON.stringify(name));
  }
  for (const name of ['...', '..a', 'a..', 'a..b/c', '.hidden', 'x/...']) {
    t.ok(normaliseName(name, []).ok, `${JSON.stringify(name)} is a plain name, not a parent`);
  }
  t.same(normaliseName('pxelinux.cfg/01-AA-BB-cc-dd-ee-ff', []), { ok: true, relative: 'pxelinux.cfg/01-AA-BB-cc-dd-ee-ff' }, 'case kept');
  t.same(normaliseName('caf\xe9 \x80\xff', []), { ok: true, relative: 'caf\xe9 \x80\xff' }, 'latin1 bytes above 0x7f pass');
  t.same(normaliseName('a b/c d', []), { ok: true, relative: 'a b/c d' }, 'spaces pass');
});

t.test('normaliseName: refused names', async (t) => {
  const cases: [string, RegExp][] = [
    ['', /empty/],
    ['..', /\.\./],
    ['../etc/passwd', /\.\./],
    ['/../etc/passwd', /\.\./],
    ['a/../b', /\.\./],
    ['a/..', /\.\./],
    ['a/../../b', /\.\./],
    ['./..', /\.\./],
    ['a\\b', /backslash/],
    ['\\ipxe.efi', /backslash/],
    ['..\\..\\windows', /backslash/],
    ['C:\\boot\\x', /backslash/],
    ['C:/boot/x', /drive letter/],
    ['c:x', /drive letter/],
    ['Z:', /drive letter/],
    ['a\0b', /control/],
    ['ipxe.efi\0', /control/],
    ['a\x01', /control/],
    ['\x1f', /control/],
    ['a\x7fb', /control/],
    ['a\nb', /control/],
    ['a\tb', /control/],
    ['a\rb', /control/],
    ['/', /no file/],
    ['//', /no file/],
    ['.', /no file/],
    ['./', /no file/],
    ['/./.', /no file/],
  ];
  for (const [name, reason] of cases) {
    const r = normaliseName(name, []);
    t.notOk(r.ok, `${JSON.stringify(name)} refused`);
    t.match(refusedName(r), reason, `${JSON.stringify(name)}: ${refusedName(r)}`);
  }
  t.ok(normaliseName('1:x', []).ok, 'a digit and a colon is no drive letter');
  t.ok(normaliseName('x/c:y', []).ok, 'a colon later in the name is fine');
});

t.test('normaliseName: lengths', async (t) => {
  t.equal(MAX_NAME_BYTES, 512);
  const seg255 = 'a'.repeat(255);
  const at512 = `${'a'.repeat(254)}/${seg255}/b`;
  t.equal(at512.length, 512);
  t.same(normaliseName(at512, []), { ok: true, relative: at512 }, '512 bytes with segments of 255 and less');
  t.match(refusedName(normaliseName(`${at512}c`, [])), /longer than 512/, '513 bytes refused');
  t.match(refusedName(normaliseName('x'.repeat(10000), [])), /longer than 512/, 'far longer refused');
  t.ok(normaliseName(seg255, []).ok, 'a 255-byte segment');
  t.match(refusedName(normaliseName('a'.repeat(256), [])), /segment longer than 255/, 'a 256-byte segment refused');
  t.match(refusedName(normaliseName(`dir/${'a'.repeat(256)}/x`, [])), /segment longer than 255/, 'in the middle too');
});

t.test("normaliseName: a root's own absolute path is stripped (dnsmasq style)", async (t) => {
  const roots = ['/tmp/x/root', '/srv/tftp/'];
  t.same(normaliseName('/tmp/x/root/file', roots), { ok: true, relative: 'file' });
  t.same(normaliseName('/tmp/x/root/sub/file', roots), { ok: true, relative: 'sub/file' });
  t.same(normaliseName('/tmp/x/root//file', roots), { ok: true, relative: 'file' });
  t.same(normaliseName('/srv/tftp/ipxe.efi', roots), { ok: true, relative: 'ipxe.efi' }, 'second root, configured with a trailing slash');
  t.same(normaliseName('/tmp/x/rootfile', roots), { ok: true, relative: 'tmp/x/rootfile' }, 'only a whole-segment prefix');
  t.same(normaliseName('/tmp/x/root', roots), { ok: true, relative: 'tmp/x/root' }, 'the root itself names no file in it');
  t.same(normaliseName('tmp/x/root/file', roots), { ok: true, relative: 'tmp/x/root/file' }, 'without the leading slash it is a relative name');
  t.same(normaliseName('/tmp/x/root/file', []), { ok: true, relative: 'tmp/x/root/file' }, 'no roots: nothing stripped');
  t.match(refusedName(normaliseName('/tmp/x/root/../../etc/passwd', roots)), /\.\./, 'stripping does not excuse ..');
  const cwdRoot = normaliseName(`${process.cwd()}/tftproot/boot.ipxe`, ['tftproot']);
  t.same(cwdRoot, { ok: true, relative: 'boot.ipxe' }, 'a relative root, resolved against the working directory');
  t.same(relativeOf(normaliseName('/tmp/x/root/file', ['/tmp/x/root/../root'])), 'file', 'a root spelt with .. is resolved first');
});

/* ----------------------------------------------------------------------------------------- */
/* resolveInRoots on temporary trees                                                          */
/* ----------------------------------------------------------------------------------------- */

const base = realpathSync(mkdtempSync(join(tmpdir(), 'edgeboot-tftp-roots-')));
t.teardown(() => rmSync(base, { recursive: true, force: true }));

const dir = (path: string, mode = 0o755): string => {
  mkdirSync(path, { recursive: true });
  chmodSync(path, mode);
  return path;
};
const file = (path: string, text = path): string => {
  writeFileSync(path, text);
  return path;
};

const r1 = dir(join(base, 'r1'));
const r2 = dir(join(base, 'r2'));
const outside = dir(join(base, 'outside'));
const secret = file(join(outside, 'secret'));

file(join(r1, 'a.efi'), 'r1 a');
file(join(r2, 'a.efi'), 'r2 a');
file(join(r2, 'b.efi'), 'r2 b');
dir(join(r1, 'sub'));
file(join(r1, 'sub', 'x.cfg'));
file(join(r2, 'sub-or-file'));
dir(join(r1, 'sub-or-file'));

const found = (r: Resolved): string | undefined => (r.ok ? r.path : undefined);

t.test('resolveInRoots: the first root with the file wins', async (t) => {
  t.same(await resolveInRoots([r1, r2], 'a.efi'), { ok: true, path: join(r1, 'a.efi'), root: r1 });
  t.same(await resolveInRoots([r2, r1], 'a.efi'), { ok: true, path: join(r2, 'a.efi'), root: r2 }, 'in the order given');
  t.same(await resolveInRoots([r1, r2], 'b.efi'), { ok: true, path: join(r2, 'b.efi'), root: r2 }, 'found in the second');
  t.same(await resolveInRoots([r1, r2], 'sub/x.cfg'), { ok: true, path: join(r1, 'sub', 'x.cfg'), root: r1 }, 'in a subdirectory');
  t.same(await resolveInRoots([join(base, 'no-such-root'), r2], 'b.efi'), { ok: true, path: join(r2, 'b.efi'), root: r2 }, 'a missing root is skipped');
  const rel = relative(process.cwd(), r2);
  t.same(await resolveInRoots([rel], 'b.efi'), { ok: true, path: join(r2, 'b.efi'), root: rel }, 'a relative root; root is reported as given');
});

t.test('resolveInRoots: missing files and non-files', async (t) => {
  const missing = await resolveInRoots([r1, r2], 'c.efi');
  t.same(missing, { ok: false, kind: 'not-found', reason: 'no such file in the served directories' });
  t.same(await resolveInRoots([], 'a.efi'), missing, 'no roots');
  t.match(await resolveInRoots([r1], 'a.efi/x'), { ok: false, kind: 'not-found' }, 'a file used as a directory (ENOTDIR)');
  t.match(await resolveInRoots([r1], 'nope/x.cfg'), { ok: false, kind: 'not-found' }, 'a missing directory');
  t.match(await resolveInRoots([join(r1, 'a.efi')], 'x'), { ok: false, kind: 'not-found' }, 'a root that is a file');
  t.match(await resolveInRoots([r1], `${'n'.repeat(255)}/${'n'.repeat(255)}`), { ok: false }, 'long names do not throw');

  t.same(await resolveInRoots([r1], 'sub'), { ok: false, kind: 'refused', reason: 'not a regular file' }, 'a directory is refused');
  t.same(
    await resolveInRoots([r1, r2], 'sub-or-file'),
    { ok: true, path: join(r2, 'sub-or-file'), root: r2 },
    'a directory in the first root does not hide a file in the second',
  );
  t.match(await resolveInRoots([r1, join(base, 'none')], 'sub'), { ok: false, kind: 'refused' }, 'a refusal outranks not-found');
});

t.test('resolveInRoots: symlinks inside the root', async (t) => {
  const root = dir(join(base, 'inside'));
  file(join(root, 'real.efi'));
  dir(join(root, 'efi'));
  symlinkSync('real.efi', join(root, 'alias.efi'));
  symlinkSync('../real.efi', join(root, 'efi', 'up.efi'));
  symlinkSync(join(root, 'efi'), join(root, 'efi-link'));
  t.same(await resolveInRoots([root], 'alias.efi'), { ok: true, path: join(root, 'real.efi'), root }, 'a relative link: the real path');
  t.same(found(await resolveInRoots([root], 'efi/up.efi')), join(root, 'real.efi'), 'a link up to the root');
  t.same(found(await resolveInRoots([root], 'efi-link/up.efi')), join(root, 'real.efi'), 'through a linked directory');

  // Inside the root the owner and the directory mode do not matter: the file is the root's.
  const open = dir(join(root, 'open'), 0o777);
  symlinkSync('../real.efi', join(open, 'planted.efi'));
  lchownSync(join(open, 'planted.efi'), 65534, 65534);
  t.same(found(await resolveInRoots([root], 'open/planted.efi')), join(root, 'real.efi'), 'a link by anyone, in a writable directory, staying inside');

  symlinkSync('missing.efi', join(root, 'dangling.efi'));
  t.match(await resolveInRoots([root], 'dangling.efi'), { ok: false, kind: 'not-found' }, 'a dangling link: not found');

  symlinkSync('loop-b', join(root, 'loop-a'));
  symlinkSync('loop-a', join(root, 'loop-b'));
  t.same(await resolveInRoots([root], 'loop-a'), { ok: false, kind: 'refused', reason: 'cannot read: ELOOP' }, 'a link loop is refused');

  // The root itself may be a link.
  symlinkSync(root, join(base, 'root-link'));
  t.same(await resolveInRoots([join(base, 'root-link')], 'real.efi'), { ok: true, path: join(root, 'real.efi'), root: join(base, 'root-link') });
});

t.test('resolveInRoots: symlinks leading out of the roots', async (t) => {
  const root = dir(join(base, 'out-root'));

  // Like Debian's /usr/lib/ipxe/ipxe.efi -> /boot/ipxe.efi: root's link, root's 0755 directory.
  symlinkSync(secret, join(root, 'debian.efi'));
  t.same(await resolveInRoots([root], 'debian.efi'), { ok: true, path: secret, root }, 'a root-owned link in a 0755 root-owned directory is followed');
  dir(join(root, 'lib'));
  symlinkSync(secret, join(root, 'lib', 'nested.efi'));
  t.same(found(await resolveInRoots([root], 'lib/nested.efi')), secret, 'in a trusted subdirectory too');

  // The same link in a directory others can write: anyone could have put it there.
  for (const mode of [0o777, 0o775, 0o757, 0o1777]) {
    const d = dir(join(root, `mode-${mode.toString(8)}`), mode);
    symlinkSync(secret, join(d, 'evil.efi'));
    const r = await resolveInRoots([root], `mode-${mode.toString(8)}/evil.efi`);
    t.match(
      r,
      { ok: false, kind: 'refused', reason: /symlink .*evil\.efi leads out of the served directories/ },
      `a link in a ${mode.toString(8)} directory is refused`,
    );
  }

  // A link owned by someone else (nobody), in a trusted directory.
  symlinkSync(secret, join(root, 'nobody.efi'));
  lchownSync(join(root, 'nobody.efi'), 65534, 65534);
  t.equal(lstatSync(join(root, 'nobody.efi')).uid, 65534);
  t.match(await resolveInRoots([root], 'nobody.efi'), { ok: false, kind: 'refused', reason: /nobody\.efi/ }, 'a link owned by another user is refused');

  // A root-owned link in a directory owned by someone else.
  const theirs = dir(join(root, 'theirs'));
  chownSync(theirs, 65534, 65534);
  symlinkSync(secret, join(theirs, 'link.efi'));
  t.match(await resolveInRoots([root], 'theirs/link.efi'), { ok: false, kind: 'refused' }, "a link in another user's directory is refused");

  // A trusted link to a directory outside, holding a link planted in a writable directory.
  const pub = dir(join(outside, 'pub'), 0o777);
  file(join(pub, 'plain.efi'));
  symlinkSync(secret, join(pub, 'planted.efi'));
  symlinkSync(pub, join(root, 'pub'));
  t.same(found(await resolveInRoots([root], 'pub/plain.efi')), join(pub, 'plain.efi'), 'a plain file behind a trusted directory link');
  t.match(await resolveInRoots([root], 'pub/planted.efi'), { ok: false, kind: 'refused', reason: /planted\.efi/ }, 'every link on the way is checked');

  // A trusted link whose target is itself a link, planted in a writable directory: the chain
  // is only as trusted as its weakest link.
  const drop = dir(join(outside, 'drop'), 0o777);
  symlinkSync(secret, join(drop, 'hop.efi'));
  symlinkSync(join(drop, 'hop.efi'), join(root, 'chain.efi'));
  t.match(
    await resolveInRoots([root], 'chain.efi'),
    { ok: false, kind: 'refused', reason: /hop\.efi/ },
    'a planted link at the far end of a trusted one is refused',
  );
  const safeDir = dir(join(outside, 'safe'));
  symlinkSync(secret, join(safeDir, 'hop.efi'));
  symlinkSync(join(safeDir, 'hop.efi'), join(root, 'good-chain.efi'));
  t.same(found(await resolveInRoots([root], 'good-chain.efi')), secret, 'a chain of trusted links is followed');
  symlinkSync('../safe/hop.efi', join(drop, 'rel.efi'));
  symlinkSync('../outside/drop/rel.efi', join(root, 'rel-chain.efi'));
  t.match(await resolveInRoots([root], 'rel-chain.efi'), { ok: false, kind: 'refused', reason: /rel\.efi/ }, 'relative targets too');

  // Through a root that is itself a link elsewhere: a relative target counts from the real directory.
  const realRoot = dir(join(base, 'real-root'));
  symlinkSync('../outside/secret', join(realRoot, 'up.efi'));
  dir(join(base, 'links'));
  symlinkSync(realRoot, join(base, 'links', 'root-link'));
  t.same(found(await resolveInRoots([join(base, 'links', 'root-link')], 'up.efi')), secret, 'a relative link out of a linked root');

  // A trusted link to a directory outside: still only regular files.
  symlinkSync(outside, join(root, 'outside-dir'));
  t.same(await resolveInRoots([root], 'outside-dir'), { ok: false, kind: 'refused', reason: 'not a regular file' });

  // An untrusted link in the first root does not stop the search: a later root may have it.
  const later = dir(join(base, 'later'));
  file(join(later, 'nobody.efi'), 'later');
  t.same(found(await resolveInRoots([root, later], 'nobody.efi')), join(later, 'nobody.efi'));
});

t.test('the Debian ipxe package link', async (t) => {
  const link = '/usr/lib/ipxe/ipxe.efi';
  t.ok(existsSync(link), `${link} exists (Debian package ipxe; .ci/run installs it)`);
  t.ok(lstatSync(link).isSymbolicLink(), 'Debian ships it as a symlink');
  const target = realpathSync(link);
  t.equal(target, '/boot/ipxe.efi', 'Debian links it to /boot/ipxe.efi');
  t.same(await resolveInRoots(['/usr/lib/ipxe'], 'ipxe.efi'), { ok: true, path: target, root: '/usr/lib/ipxe' });
  const name = normaliseName('/usr/lib/ipxe/ipxe.efi', ['/usr/lib/ipxe']);
  t.same(name, { ok: true, relative: 'ipxe.efi' }, 'the absolute name firmware may send');
  t.same(found(await resolveInRoots(['/usr/lib/ipxe'], relativeOf(name) ?? '')), target);
});
