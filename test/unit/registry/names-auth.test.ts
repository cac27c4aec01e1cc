/** Mirror paths and references (src/registry/reference.ts), challenges and pull secrets (src/registry/auth.ts). */
import t from 'tap';
import { credentialsFor, parseChallenges, parsePullSecret } from '../../../src/registry/auth.js';
import { parseMirrorPath, parseReference } from '../../../src/registry/reference.js';

const HEX = 'a'.repeat(64);

t.test('mirror paths: the upstream first, then the repository', async (t) => {
  t.same(parseMirrorPath(`quay.io/openshift-release-dev/ocp-v4.0-art-dev/manifests/sha256:${HEX}`), {
    upstream: 'quay.io',
    repository: 'openshift-release-dev/ocp-v4.0-art-dev',
    what: 'manifests',
    reference: { kind: 'digest', digest: `sha256:${HEX}`, hex: HEX },
  });
  t.same(parseMirrorPath('127.0.0.2/ns/a/manifests/v1.2_3'), {
    upstream: '127.0.0.2',
    repository: 'ns/a',
    what: 'manifests',
    reference: { kind: 'tag', tag: 'v1.2_3' },
  });
  t.match(parseMirrorPath('quay.io/manifests/v1'), { error: 'NAME_INVALID' }, 'an upstream needs a repository after it');
  t.match(parseMirrorPath('quay.io/Ns/a/manifests/v1'), { error: 'NAME_INVALID' }, 'upper case is not a name component');
  t.match(parseMirrorPath('quay.io/ns/a/blobs/v1'), { error: 'DIGEST_INVALID' }, 'blobs by digest only');
  t.match(parseMirrorPath('quay.io/ns/a/manifests/sha512:abc'), { error: 'MANIFEST_INVALID' });
  t.equal(parseMirrorPath('quay.io/ns/a/tags/list'), undefined, 'not a manifest or blob path');
  t.equal(parseReference('-bad'), undefined);
  t.equal(parseReference('x'.repeat(129)), undefined, 'a tag is at most 128 characters');
});

t.test('WWW-Authenticate: one or several challenges', async (t) => {
  t.same(parseChallenges('Bearer realm="https://quay.io/v2/auth",service="quay.io",scope="repository:a/b:pull"'), [
    { scheme: 'bearer', params: { realm: 'https://quay.io/v2/auth', service: 'quay.io', scope: 'repository:a/b:pull' } },
  ]);
  t.same(parseChallenges('Basic realm="x", Bearer realm="https://r/auth", service=svc'), [
    { scheme: 'basic', params: { realm: 'x' } },
    { scheme: 'bearer', params: { realm: 'https://r/auth', service: 'svc' } },
  ]);
  t.same(parseChallenges('Basic'), [{ scheme: 'basic', params: {} }]);
  t.same(parseChallenges('Bearer realm="a\\"b"'), [{ scheme: 'bearer', params: { realm: 'a"b' } }], 'quoted-pair');
  t.same(parseChallenges(''), []);
});

t.test('pull secrets: the most specific entry wins', async (t) => {
  const enc = (s: string) => Buffer.from(s).toString('base64');
  const secret = parsePullSecret(
    JSON.stringify({
      auths: {
        'quay.io': { auth: enc('any:1') },
        'quay.io/openshift-release-dev': { auth: enc('ocp:2') },
        'https://registry.example/': { auth: enc('old:3') },
        'other.example': { username: 'u', password: 'p:w' },
      },
    }),
  );
  t.same(credentialsFor(secret, 'quay.io', 'openshift-release-dev/ocp-release'), { username: 'ocp', password: '2' });
  t.same(credentialsFor(secret, 'quay.io', 'openshift-release-devX/a'), { username: 'any', password: '1' }, 'a prefix only at a component boundary');
  t.same(credentialsFor(secret, 'registry.example', 'a'), { username: 'old', password: '3' }, 'a scheme and slash in the key are ignored');
  t.same(credentialsFor(secret, 'other.example', 'a'), { username: 'u', password: 'p:w' });
  t.equal(credentialsFor(secret, 'nowhere.example', 'a'), undefined);
  t.throws(() => parsePullSecret('{'), /not JSON/);
  t.throws(() => parsePullSecret('{"x":1}'), /no "auths" object/);
});
