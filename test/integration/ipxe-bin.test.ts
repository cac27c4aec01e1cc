import Fastify from 'fastify';
import { existsSync, lchownSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { ipxeBinRoutes } from '../../src/http/routes/ipxe-bin.js';
import { tempDir } from '../helpers/app.js';

t.test('/ipxe-bin serves the TFTP roots read-only for UEFI HTTP Boot', async (t) => {
  const dir = tempDir();
  const root = join(dir, 'ipxe');
  mkdirSync(root);
  const efi = Buffer.from(Array.from({ length: 4096 }, (_, i) => i % 251));
  writeFileSync(join(root, 'ipxe.efi'), efi);
  writeFileSync(join(dir, 'secret'), 'outside the root');
  symlinkSync(join(dir, 'secret'), join(root, 'escape'));
  // Planted by an unprivileged user: refused. (A root-owned link in a root-only directory, like
  // Debian's ipxe.efi -> /boot/ipxe.efi, is followed; see the last test.)
  lchownSync(join(root, 'escape'), 65534, 65534);
  writeFileSync(join(root, '.hidden'), 'dotfile');
  const app = Fastify();
  await app.register(ipxeBinRoutes, { roots: [root, `${root}/`] });
  t.teardown(() => app.close());

  const full = await app.inject({ url: '/ipxe-bin/ipxe.efi' });
  t.equal(full.statusCode, 200);
  t.same(full.rawPayload, efi, 'the file, byte for byte');
  t.equal(full.headers['content-length'], '4096');
  t.ok(full.headers.etag, 'an ETag');

  const head = await app.inject({ method: 'HEAD', url: '/ipxe-bin/ipxe.efi' });
  t.equal(head.statusCode, 200);
  t.equal(head.headers['content-length'], '4096', 'HEAD gives the length');

  const range = await app.inject({ url: '/ipxe-bin/ipxe.efi', headers: { range: 'bytes=100-199' } });
  t.equal(range.statusCode, 206);
  t.same(range.rawPayload, efi.subarray(100, 200), 'a range');

  for (const url of ['/ipxe-bin/escape', '/ipxe-bin/../secret', '/ipxe-bin/%2e%2e/secret', '/ipxe-bin/.hidden', '/ipxe-bin/', '/ipxe-bin/missing.efi']) {
    const r = await app.inject({ url });
    t.ok(r.statusCode === 404 || r.statusCode === 403, `${url}: ${r.statusCode}`);
    t.notMatch(r.body, /outside the root|dotfile/, `${url} leaks nothing`);
  }
  t.match((await app.inject({ method: 'PUT', url: '/ipxe-bin/ipxe.efi', payload: 'x' })).statusCode, /^40[45]$/, 'read-only');
});

t.test('/ipxe-bin follows the Debian ipxe package link ipxe.efi -> /boot/ipxe.efi', async (t) => {
  t.ok(existsSync('/usr/lib/ipxe/ipxe.efi'), "Debian's ipxe package is installed (.ci/run installs it)");
  const app = Fastify();
  await app.register(ipxeBinRoutes, { roots: ['/usr/lib/ipxe'] });
  t.teardown(() => app.close());
  const r = await app.inject({ url: '/ipxe-bin/ipxe.efi' });
  t.equal(r.statusCode, 200);
  t.same(r.rawPayload, readFileSync('/usr/lib/ipxe/ipxe.efi'), 'the target of the link, byte for byte');
});
