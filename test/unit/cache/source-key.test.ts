import t from 'tap';
import { sourceKey } from '../../../src/cache/source-key.js';

t.test('secret query parameters are cut, the rest kept in order', async (t) => {
  const hub = 'https://assisted.example:6443/images/6f1e/pxe-initrd';
  t.equal(sourceKey(`${hub}?api_key=eyJhbGci.x.y&arch=x86_64&version=4.14`), `${hub}?arch=x86_64&version=4.14`);
  t.equal(sourceKey(`${hub}?arch=x86_64&image_token=abc&version=4.14`), `${hub}?arch=x86_64&version=4.14`);
  t.equal(sourceKey(`${hub}?API_KEY=abc`), hub, 'names in any case; no empty ?');
  t.equal(
    sourceKey('https://bucket.s3.example/rootfs.img?X-Amz-Algorithm=AWS4&X-Amz-Credential=AK%2F1&X-Amz-Signature=ff&X-Amz-Security-Token=tt'),
    'https://bucket.s3.example/rootfs.img?X-Amz-Algorithm=AWS4',
    'pre-signed URL credentials',
  );
  t.equal(sourceKey('https://mirror.example/a.img?token=1&sig=2&signature=3&access_token=4'), 'https://mirror.example/a.img');
  t.equal(
    sourceKey('https://mirror.example/a.img?password=1&X-Goog-Signature=2&%74oken=3&x_amz_credential=4&arch=x86_64'),
    'https://mirror.example/a.img?arch=x86_64',
    'the one list of src/secrets/redact.ts: password, X-Goog-*, percent-encoded and underscore forms',
  );
});

t.test('the same file under another key or with user info, a fragment or a host in capitals is the same key', async (t) => {
  const a = sourceKey('https://HUB.example/boot-artifacts/kernel?arch=x86_64&api_key=one');
  const b = sourceKey('https://user:pass@hub.example/boot-artifacts/kernel?arch=x86_64&api_key=two#frag');
  t.equal(a, b);
  t.equal(a, 'https://hub.example/boot-artifacts/kernel?arch=x86_64');
});

t.test('other parameters and paths make other keys', async (t) => {
  t.not(sourceKey('https://h/k?arch=x86_64'), sourceKey('https://h/k?arch=aarch64'));
  t.not(sourceKey('https://h/k?a=1&b=2'), sourceKey('https://h/k?b=2&a=1'), 'order is the upstream’s business');
  t.not(sourceKey('http://h/k'), sourceKey('https://h/k'));
});

t.test('a URL that does not parse is an error, not a key', async (t) => {
  t.throws(() => sourceKey('not a url'));
});
