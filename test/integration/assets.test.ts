/**
 * /assets/{profile}/{artifact}: the boot artifacts the scripts name, from a profile's file://
 * URLs — whole, HEAD, single ranges (206, 416), validators (ETag, If-None-Match, If-Range,
 * Last-Modified) — and the clear errors: an unknown profile or artifact, a file that is gone,
 * a remote artifact the server has no cache for. Checked with inject and with real curl on a
 * loopback listener; every response reaches the timeline hook with its client and byte count.
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import type { NewEvent } from '../../src/machines/model.js';
import { tempDir, testApp, type ErrorBody } from '../helpers/app.js';

const run = promisify(execFile);
const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

t.test('/assets serves file:// artifacts with ranges and validators, and says why it cannot', async (t) => {
  const dir = tempDir();
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const files = join(dir, 'files');
  mkdirSync(files);
  const kernel = randomBytes(300_001);
  writeFileSync(join(files, 'vmlinuz'), kernel);
  const profiles = join(dir, 'profiles');
  mkdirSync(profiles);
  writeFileSync(
    join(profiles, 'lab.yaml'),
    [
      'name: lab',
      'description: test artifacts',
      'artifacts:',
      `  kernel: { url: "file://${join(files, 'vmlinuz')}" }`,
      `  gone: { url: "file://${join(files, 'missing.img')}" }`,
      '  remote: { url: "https://hub.example/boot-artifacts/rootfs?api_key=SECRETKEY" }',
      'boot:',
      '  kernel: kernel',
      '  initrds: [gone, remote]',
      '  args: console=ttyS0',
      '',
    ].join('\n'),
  );
  const recorded: { address: string; event: NewEvent }[] = [];
  const ta = await testApp(t, { profileDirs: [profiles], recordAt: (address, event) => recorded.push({ address, event }) });
  const { app } = ta;

  const whole = await app.inject({ url: '/assets/lab/kernel' });
  t.equal(whole.statusCode, 200);
  t.equal(sha256(whole.rawPayload), sha256(kernel), 'the file, byte for byte');
  t.equal(whole.headers['content-length'], String(kernel.length));
  t.equal(whole.headers['content-type'], 'application/octet-stream');
  t.equal(whole.headers['accept-ranges'], 'bytes');
  const etag = String(whole.headers.etag);
  t.match(etag, /^(W\/)?"/, 'an ETag');
  t.ok(whole.headers['last-modified'], 'Last-Modified');

  const head = await app.inject({ method: 'HEAD', url: '/assets/lab/kernel' });
  t.equal(head.statusCode, 200, 'HEAD answers 200 (curl --head --fail of the RHCOS initramfs)');
  t.equal(head.headers['content-length'], String(kernel.length), 'with the length');
  t.equal(head.rawPayload.length, 0, 'and no body');

  const part = await app.inject({ url: '/assets/lab/kernel', headers: { range: 'bytes=1000-1999' } });
  t.equal(part.statusCode, 206);
  t.same(part.rawPayload, kernel.subarray(1000, 2000), 'the range');
  t.equal(part.headers['content-range'], `bytes 1000-1999/${kernel.length}`);
  const tail = await app.inject({ url: '/assets/lab/kernel', headers: { range: 'bytes=-100' } });
  t.same(tail.rawPayload, kernel.subarray(kernel.length - 100), 'a suffix range');
  const beyond = await app.inject({ url: '/assets/lab/kernel', headers: { range: `bytes=${kernel.length}-` } });
  t.equal(beyond.statusCode, 416, 'a range past the end is 416');
  t.equal(beyond.headers['content-range'], `bytes */${kernel.length}`);

  const same = await app.inject({ url: '/assets/lab/kernel', headers: { 'if-none-match': etag } });
  t.equal(same.statusCode, 304, 'If-None-Match with the ETag: 304');
  const stale = await app.inject({ url: '/assets/lab/kernel', headers: { range: 'bytes=0-9', 'if-range': '"other"' } });
  t.equal(stale.statusCode, 200, 'If-Range with another validator: the whole file');
  const fresh = await app.inject({ url: '/assets/lab/kernel', headers: { range: 'bytes=0-9', 'if-range': etag } });
  t.equal(fresh.statusCode, 206, 'If-Range with the ETag: the range');

  const noProfile = await app.inject({ url: '/assets/nope/kernel' });
  t.equal(noProfile.statusCode, 404);
  t.equal(noProfile.json<ErrorBody>().error, 'not_found');
  t.equal((await app.inject({ url: '/assets/lab/nope' })).statusCode, 404, 'no such artifact');
  t.equal((await app.inject({ url: '/assets/lab/..%2f..%2fetc%2fpasswd' })).statusCode, 404, 'a path is not an artifact name');
  const gone = await app.inject({ url: '/assets/lab/gone' });
  t.equal(gone.statusCode, 404);
  t.equal(gone.json<ErrorBody>().error, 'artifact_missing');
  t.notMatch(gone.body, /missing\.img/, 'the server path stays in the log, out of the answer');
  const remote = await app.inject({ url: '/assets/lab/remote' });
  t.equal(remote.statusCode, 501);
  t.equal(remote.json<ErrorBody>().error, 'not_cached');
  t.match(remote.json<ErrorBody>().message, /hub\.example/, 'the message names the upstream');
  t.notMatch(remote.body, /SECRETKEY/, 'without its api_key');

  const kinds = recorded.map((r) => `${r.event.type}:${String(r.event.data?.artifact)}:${String(r.event.data?.status)}`);
  t.ok(
    kinds.includes('asset-served:kernel:200') && kinds.includes('asset-served:kernel:206') && kinds.includes('asset-failed:remote:501'),
    'each response reaches the timeline hook',
  );
  const ranged = recorded.find((r) => r.event.data?.status === 206);
  t.equal(ranged?.event.data?.bytes, 1000, 'a range counts the bytes it sent');
  t.equal(ranged?.event.data?.range, 'bytes=1000-1999');
  t.equal(recorded.find((r) => r.event.data?.method === 'HEAD')?.event.data?.bytes, 0, 'HEAD sends no body bytes');

  // Real curl against a real listener.
  await app.listen({ port: 0, host: '127.0.0.1' });
  const addr = app.server.address();
  if (addr === null || typeof addr === 'string') throw new Error('no port');
  const url = `http://127.0.0.1:${addr.port}/assets/lab/kernel`;
  const out = join(dir, 'fetched');
  await run('curl', ['-fsS', '-o', out, url]);
  t.equal(sha256((await import('node:fs')).readFileSync(out)), sha256(kernel), 'curl fetches it whole');
  const headers = (await run('curl', ['-fsS', '--head', url])).stdout;
  t.match(headers, /^HTTP\/1\.1 200/m, 'curl --head --fail succeeds');
  t.match(headers, new RegExp(`^content-length: ${kernel.length}\\r?$`, 'mi'));
  await run('curl', ['-fsS', '-r', '0-99', '-o', out, url]);
  t.same((await import('node:fs')).readFileSync(out), kernel.subarray(0, 100), 'curl -r gets the range');
  t.equal(recorded.at(-1)?.address, '127.0.0.1', 'the client address is the IPv4 one, without ::ffff:');
  const failed = await run('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', `http://127.0.0.1:${addr.port}/assets/lab/remote`]);
  t.equal(failed.stdout, '501');
});
