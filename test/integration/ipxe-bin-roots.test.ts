/**
 * /ipxe-bin and TFTP give the same answer for every name, with two roots where the first holds
 * links planted by an untrusted owner (a file and a directory) leading out of the roots and the
 * second holds clean files of the same names. Asked with the real clients: curl over HTTP (a
 * listening Fastify app, so the body goes by sendfile), tftp-hpa over TFTP, both on 127.0.0.1.
 * The outside content is never served; where TFTP's rule (src/tftp/roots.ts: an untrusted link
 * does not stop the search, a later root may have the name) finds the clean file, HTTP serves
 * that same file, with Range and HEAD.
 */
import Fastify from 'fastify';
import { existsSync, lchownSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { ipxeBinRoutes } from '../../src/http/routes/ipxe-bin.js';
import { tempDir } from '../helpers/app.js';
import { run, startTftp, tftpHpaGet } from '../helpers/tftp.js';

const NOBODY = 65534;
const SECRET = 'OUTSIDE THE ROOTS: must never be served';

const dir = tempDir('edgeboot-ipxe-bin-roots-');
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const [first, second, outside, out] = ['first', 'second', 'outside', 'out'].map((n) => join(dir, n)) as [string, string, string, string];
for (const d of [first, second, outside, out, join(second, 'linked')]) mkdirSync(d);
writeFileSync(join(outside, 'secret.txt'), SECRET);
writeFileSync(join(outside, 'evil.txt'), SECRET);
writeFileSync(join(outside, 'lonely.txt'), SECRET);
/** A symlink owned by nobody: the kind the symlink rule refuses when it leads out. */
const planted = (target: string, link: string): void => {
  symlinkSync(target, link);
  lchownSync(link, NOBODY, NOBODY);
};
planted(join(outside, 'secret.txt'), join(first, 'evil.txt')); // a linked file
planted(outside, join(first, 'linked')); // a linked directory
planted(join(outside, 'secret.txt'), join(first, 'only.txt')); // no clean twin in the second root
writeFileSync(join(second, 'evil.txt'), 'clean evil.txt of the second root');
writeFileSync(join(second, 'linked', 'evil.txt'), 'clean linked/evil.txt of the second root');
writeFileSync(join(second, 'plain.efi'), Buffer.from(Array.from({ length: 5000 }, (_, i) => i % 253)));

interface Answer {
  served: Buffer | undefined;
  /** The HTTP status, or the TFTP error code. */
  status: string;
}

t.test('HTTP and TFTP agree on every name; the outside content is never served', async (t) => {
  const roots = [first, second];
  const tftp = await startTftp(t, roots);
  const app = Fastify();
  await app.register(ipxeBinRoutes, { roots });
  await app.listen({ host: '127.0.0.1', port: 0 });
  t.teardown(() => app.close());
  const address = app.server.address();
  const httpPort = typeof address === 'object' && address ? address.port : 0;

  let n = 0;
  const overHttp = async (name: string): Promise<Answer> => {
    const dest = join(out, `http-${n++}`);
    const r = await run(t, 'curl', ['-sS', '--max-time', '10', '-o', dest, '-w', '%{http_code}', `http://127.0.0.1:${httpPort}/ipxe-bin/${name}`], {
      timeoutMs: 15_000,
    });
    t.equal(r.code, 0, `curl ${name}: ${r.stderr}`);
    const served = r.stdout === '200' && existsSync(dest) ? readFileSync(dest) : undefined;
    if (existsSync(dest)) t.notMatch(readFileSync(dest, 'latin1'), SECRET, `HTTP ${name}: no outside content, not even in an error body`);
    return { served, status: r.stdout };
  };
  const overTftp = async (name: string): Promise<Answer> => {
    const dest = join(out, `tftp-${n++}`);
    const [cmd, args] = tftpHpaGet(tftp.port, name, dest);
    const r = await run(t, cmd, args, { timeoutMs: 15_000 });
    // tftp-hpa exits 0 after an ERROR packet too; it prints "Error code N: message".
    const error = /Error code (\d+)/.exec(r.stdout + r.stderr);
    if (existsSync(dest)) t.notMatch(readFileSync(dest, 'latin1'), SECRET, `TFTP ${name}: no outside content`);
    return { served: error || !existsSync(dest) ? undefined : readFileSync(dest), status: error ? `error ${error[1]}` : 'ok' };
  };

  const expected: Record<string, string | undefined> = {
    // The planted link in the first root is skipped; the second root's file is the answer.
    'evil.txt': 'clean evil.txt of the second root',
    'linked/evil.txt': 'clean linked/evil.txt of the second root',
    // No clean twin: refused.
    'only.txt': undefined,
    'linked/lonely.txt': undefined,
    'linked/secret.txt': undefined,
  };
  for (const [name, want] of Object.entries(expected)) {
    const [http, viaTftp] = [await overHttp(name), await overTftp(name)];
    if (want === undefined) {
      t.equal(http.status, '404', `HTTP ${name}: 404`);
      t.equal(viaTftp.status, 'error 2', `TFTP ${name}: access violation (${viaTftp.status})`);
    } else {
      t.equal(http.status, '200', `HTTP ${name}: 200`);
      t.equal(http.served?.toString(), want, `HTTP ${name}: the second root's file`);
      t.equal(viaTftp.served?.toString(), want, `TFTP ${name}: the same file`);
    }
  }

  // The clean file keeps Range, ETag and HEAD over a real socket.
  const efi = readFileSync(join(second, 'plain.efi'));
  const range = await run(
    t,
    'curl',
    ['-sS', '--max-time', '10', '-r', '100-199', '-D', '-', '-o', join(out, 'range'), `http://127.0.0.1:${httpPort}/ipxe-bin/plain.efi`],
    { timeoutMs: 15_000 },
  );
  t.match(range.stdout, /^HTTP\/1\.1 206/, 'a range: 206');
  t.match(range.stdout, /content-range: bytes 100-199\/5000/i);
  t.match(range.stdout, /etag: (W\/)?"/i, 'an ETag');
  t.same(readFileSync(join(out, 'range')), efi.subarray(100, 200), 'the bytes of the range');
  const head = await run(t, 'curl', ['-sS', '--max-time', '10', '-I', `http://127.0.0.1:${httpPort}/ipxe-bin/plain.efi`], { timeoutMs: 15_000 });
  t.match(head.stdout, /^HTTP\/1\.1 200/, 'HEAD: 200');
  t.match(head.stdout, /content-length: 5000/i, 'HEAD gives the length');
});
