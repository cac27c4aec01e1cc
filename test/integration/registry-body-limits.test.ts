/**
 * The registry client reads a manifest and a tag-list page only up to their limits, and no
 * further: an upstream that sends more (with no length, closing the connection, so nothing tells
 * in advance) is a clear 502 and leaves the rest unread. A bare loopback upstream
 * (test/helpers/upstream.ts) serves the oversized bodies; the real RegistryClient asks.
 */
import t from 'tap';
import { createLogger } from '../../src/log.js';
import { RegistryClient, RegistryError } from '../../src/registry/client.js';
import { MAX_MANIFEST_BYTES } from '../../src/registry/media.js';
import { startClosingUpstream } from '../helpers/upstream.js';

const MiB = 1024 * 1024;

t.test('a manifest or a tag page past its limit is a 502, read no further', async (t) => {
  const up = await startClosingUpstream(t, 'close');
  const client = new RegistryClient({ insecure: new Set([up.host]), credentials: () => undefined, log: createLogger('silent'), retries: 0 });
  // Far past the limit, so that a client that read it all (as one did) shows in what was sent.
  const manifestBody = Buffer.alloc(MAX_MANIFEST_BYTES + 60 * MiB, 0x20);
  up.routes.set('/v2/lab/big/manifests/v1', { headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' }, body: manifestBody });
  await t.rejects(
    client.manifest(up.host, 'lab/big', 'v1'),
    { constructor: RegistryError, status: 502, message: /a manifest over the 4194304-byte limit/ },
    'the oversized manifest is refused',
  );
  const sent = up.requests.find((r) => r.path === '/v2/lab/big/manifests/v1')?.sent ?? Infinity;
  t.ok(sent < manifestBody.length / 2, `and the rest left unread: ${sent} of ${manifestBody.length} bytes left the upstream`);

  const tagsBody = Buffer.from(`{"name":"lab/big","tags":[${'"t",'.repeat(3 * MiB)}"t"]}`);
  up.routes.set('/v2/lab/big/tags/list', { headers: { 'Content-Type': 'application/json' }, body: tagsBody });
  await t.rejects(
    client.tags(up.host, 'lab/big'),
    { constructor: RegistryError, status: 502, message: /a tag list page over the 8388608-byte limit/ },
    'the oversized tag page is refused',
  );

  const small = Buffer.from('{"name":"lab/small","tags":["b","a"]}');
  up.routes.set('/v2/lab/small/tags/list', { headers: { 'Content-Type': 'application/json' }, body: small });
  t.same(await client.tags(up.host, 'lab/small'), ['b', 'a'], 'a page within the limit is read whole');
});
