/**
 * Blob redirects to storage, as quay.io and registry.redhat.io send them (a 302/307 to a CDN
 * with a signed URL): edgeboot follows them without the Authorization header the registry
 * itself needed, and a `registry.upstreams` prefix stands for an upstream with a port. The
 * registry and its storage are two small servers of the test on loopback (Basic auth, one
 * redirecting origin, one storage origin that records what reached it).
 */
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { startServer, tempDir } from '../helpers/process.js';

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const AUTH = `Basic ${Buffer.from('robot:s3cret').toString('base64')}`;

async function serve(t: Test, host: string, handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<number> {
  const server: Server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  return (server.address() as AddressInfo).port;
}

t.test('blob redirects are followed without Authorization; an upstreams prefix names host:port', async (t) => {
  const blob = randomBytes(300_000);
  const digest = sha(blob);
  const storageSaw: { path: string; authorization?: string }[] = [];
  const storagePort = await serve(t, '127.0.0.2', (req, res) => {
    storageSaw.push({ path: req.url ?? '', ...(req.headers.authorization !== undefined && { authorization: req.headers.authorization }) });
    if (!req.url?.startsWith(`/cdn/${digest}?sig=`)) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': blob.length }).end(blob);
  });
  const registrySaw: { path: string; authorized: boolean }[] = [];
  const registryPort = await serve(t, '127.0.0.1', (req, res) => {
    const authorized = req.headers.authorization === AUTH;
    registrySaw.push({ path: req.url ?? '', authorized });
    if (!authorized)
      return void res
        .writeHead(401, { 'www-authenticate': 'Basic realm="test"', 'content-type': 'application/json' })
        .end('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}');
    if (req.url === '/v2/') return void res.writeHead(200).end('{}');
    if (req.url === `/v2/ns/a/blobs/${digest}`)
      return void res.writeHead(307, { location: `http://127.0.0.2:${storagePort}/cdn/${digest}?sig=signed-by-the-cdn` }).end();
    res.writeHead(404, { 'content-type': 'application/json' }).end('{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown"}]}');
  });

  const upstream = `127.0.0.1:${registryPort}`;
  const dir = tempDir(t);
  const secret = join(dir, 'auth.json');
  writeFileSync(secret, JSON.stringify({ auths: { [upstream]: { auth: Buffer.from('robot:s3cret').toString('base64') } } }));
  const eb = await startServer(t, {
    cwd: dir,
    env: {
      EDGEBOOT_REGISTRY_INSECURE_REGISTRIES: upstream,
      EDGEBOOT_REGISTRY_PULL_SECRET: secret,
      EDGEBOOT_REGISTRY_UPSTREAMS: JSON.stringify({ lab: upstream }),
    },
  });

  const res = await fetch(`${eb.url}/v2/lab/ns/a/blobs/${digest}`);
  t.equal(res.status, 200);
  t.equal(sha(Buffer.from(await res.arrayBuffer())), digest, 'the blob, verified');
  t.equal(res.headers.get('docker-content-digest'), digest);
  t.ok(
    registrySaw.some((r) => r.path === `/v2/ns/a/blobs/${digest}` && r.authorized),
    'the registry got the credentials from the pull secret',
  );
  t.equal(storageSaw.length, 1, 'storage was asked once');
  t.equal(storageSaw[0]?.authorization, undefined, 'and without the registry credentials');
  t.match(storageSaw[0]?.path, /\?sig=signed-by-the-cdn$/, 'with its signed URL as given');

  const missing = await fetch(`${eb.url}/v2/lab/ns/a/blobs/sha256:${'1'.repeat(64)}`);
  t.equal(missing.status, 404, "the upstream's 404");
  t.match(((await missing.json()) as { errors: { code: string }[] }).errors[0], { code: 'BLOB_UNKNOWN' });
  const badName = await fetch(`${eb.url}/v2/lab/NS/a/manifests/v1`);
  t.equal(badName.status, 400);
  t.match(((await badName.json()) as { errors: { code: string }[] }).errors[0], { code: 'NAME_INVALID' });
});
