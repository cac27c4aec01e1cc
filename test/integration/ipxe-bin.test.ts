import Fastify from 'fastify';
import { execFile } from 'node:child_process';
import { existsSync, lchownSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { ipxeBinRoutes } from '../../src/http/routes/ipxe-bin.js';
import { tempDir, testApp } from '../helpers/app.js';

const run = promisify(execFile);

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

t.test('one conditional-GET path: curl -z, If-None-Match, If-Range and -r answer alike on /ipxe-bin and /assets', async (t) => {
  const dir = tempDir();
  const root = join(dir, 'ipxe');
  mkdirSync(root);
  const body = Buffer.from(Array.from({ length: 10_000 }, (_, i) => i % 253));
  writeFileSync(join(root, 'snp.efi'), body);
  mkdirSync(join(dir, 'profiles'));
  writeFileSync(
    join(dir, 'profiles', 'lab.yaml'),
    ['name: lab', 'description: one file', 'artifacts:', `  kernel: { url: "file://${join(root, 'snp.efi')}" }`, 'boot:', '  kernel: kernel', ''].join('\n'),
  );
  const ta = await testApp(t, { profileDirs: [join(dir, 'profiles')], ipxeRoots: [root] });
  const base = await ta.app.listen({ port: 0, host: '127.0.0.1' });
  /** curl's status line and headers (lower-cased names) and body length for `args`. */
  const curl = async (url: string, ...args: string[]) => {
    const r = await run('curl', ['-sS', '--max-time', '10', '-D', '-', '-o', join(dir, 'body'), ...args, url]);
    const lines = r.stdout.split(/\r?\n/);
    const headers = new Map(
      lines
        .slice(1)
        .filter((l) => l.includes(':'))
        .map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]),
    );
    return { status: Number(lines[0]?.split(' ')[1]), headers, bytes: readFileSync(join(dir, 'body')) };
  };
  for (const url of [`${base}/ipxe-bin/snp.efi`, `${base}/assets/lab/kernel`]) {
    const whole = await curl(url);
    t.equal(whole.status, 200, `${url}: 200`);
    const etag = whole.headers.get('etag') ?? '';
    const modified = whole.headers.get('last-modified') ?? '';
    t.match(etag, /^"[0-9a-f]+-[0-9a-f]+"$/, 'an ETag of mtime and size');
    t.equal((await curl(url, '-H', `If-None-Match: ${etag}`)).status, 304, 'If-None-Match with it: 304');
    t.equal((await curl(url, '-H', 'If-None-Match: "other"')).status, 200, 'another tag: 200');
    t.equal((await curl(url, '-z', modified)).status, 304, 'curl -z (If-Modified-Since) the Last-Modified: 304');
    t.equal((await curl(url, '-z', 'Thu, 01 Jan 2015 00:00:00 GMT')).status, 200, 'curl -z an earlier date: 200');
    const part = await curl(url, '-r', '100-199');
    t.equal(part.status, 206, 'curl -r: 206');
    t.equal(part.headers.get('content-range'), `bytes 100-199/${body.length}`);
    t.same(part.bytes, body.subarray(100, 200), 'the range, byte for byte');
    t.equal((await curl(url, '-r', '100-199', '-H', `If-Range: ${etag}`)).status, 206, 'If-Range with the ETag: the range');
    const stale = await curl(url, '-r', '100-199', '-H', 'If-Range: "old"');
    t.equal(stale.status, 200, 'If-Range with another ETag: the whole file');
    t.equal(stale.bytes.length, body.length);
    t.equal((await curl(url, '-r', '20000-')).status, 416, 'a range past the end: 416');
    t.equal((await curl(url, '-H', 'If-Match: "other"')).status, 412, 'If-Match another tag: 412');
  }
});
