import t from 'tap';
import { isSecretParam, keepRedacted, redactJsonText, redactSecrets, REDACTED } from '../../src/secrets/redact.js';

const NAMES = ['token', 'sig', 'api_key', 'image_token', 'access_token', 'X-Amz-Credential', 'X-Amz-Signature', 'X-Goog-Signature', 'Signature', 'password'];

t.test('every secret-looking query parameter loses its value, the rest stays byte for byte', async (t) => {
  for (const name of NAMES) {
    const url = `https://hub.example/x/kernel?arch=x86_64&${name}=SECRET-${name}-value&v=4.14`;
    const out = redactSecrets(url);
    t.equal(out, `https://hub.example/x/kernel?arch=x86_64&${name}=${REDACTED}&v=4.14`, name);
    t.equal(redactSecrets(`https://hub.example/k?${name}=SECRET`), `https://hub.example/k?${name}=${REDACTED}`, `${name} first`);
  }
  t.equal(redactSecrets('https://h/k?arch=x86_64&v=1'), 'https://h/k?arch=x86_64&v=1', 'nothing secret: unchanged');
  t.equal(redactSecrets('https://h/k?tokenizer=bpe&designation=x'), 'https://h/k?tokenizer=bpe&designation=x', 'names that merely contain a secret name stay');
});

t.test('names are compared after percent-decoding, case-folding and +', async (t) => {
  const cases: [string, string][] = [
    ['?%74oken=SECRET-a', `?%74oken=${REDACTED}`],
    ['?%74%6F%6B%65%6E=SECRET-b', `?%74%6F%6B%65%6E=${REDACTED}`],
    ['?%2574oken=SECRET-c', `?%2574oken=${REDACTED}`],
    ['?TOKEN=SECRET-d', `?TOKEN=${REDACTED}`],
    ['?x-amz-signature=SECRET-e', `?x-amz-signature=${REDACTED}`],
    ['?X_AMZ_CREDENTIAL=SECRET-f', `?X_AMZ_CREDENTIAL=${REDACTED}`],
    ['?%58-Amz-Signature=SECRET-g', `?%58-Amz-Signature=${REDACTED}`],
    ['?token+=SECRET-h', `?token+=${REDACTED}`],
    ['?+token=SECRET-i', `?+token=${REDACTED}`],
    ['?%2Btoken=SECRET-j', `?%2Btoken=${REDACTED}`],
    ['?api%5Fkey=SECRET-k', `?api%5Fkey=${REDACTED}`],
  ];
  for (const [query, want] of cases) t.equal(redactSecrets(`https://h/k${query}`), `https://h/k${want}`, query);
  t.ok(isSecretParam('%74oken'));
  t.ok(isSecretParam('Api-Key'));
  t.notOk(isSecretParam('%ZZtoken'), 'a malformed escape is compared as text');
  t.notOk(isSecretParam('arch'));
});

t.test('values with + and %2B, repeated parameters and fragments', async (t) => {
  t.equal(redactSecrets('https://h/k?sig=SECRET+with+plus&a=1'), `https://h/k?sig=${REDACTED}&a=1`);
  t.equal(redactSecrets('https://h/k?sig=SECRET%2Bplus%3D%3D'), `https://h/k?sig=${REDACTED}`);
  t.equal(
    redactSecrets('https://h/k?token=SECRET-1&a=1&token=SECRET-2&TOKEN=SECRET-3'),
    `https://h/k?token=${REDACTED}&a=1&token=${REDACTED}&TOKEN=${REDACTED}`,
  );
  t.equal(redactSecrets('https://h/k#token=SECRET-f1&x=2'), `https://h/k#token=${REDACTED}&x=2`, 'in the fragment');
  t.equal(redactSecrets('https://h/k?a=1#/route?access_token=SECRET-f2'), `https://h/k?a=1#/route?access_token=${REDACTED}`, 'a query inside the fragment');
  t.equal(redactSecrets('https://h/k?token=a=b=c&z=1'), `https://h/k?token=${REDACTED}&z=1`, '= inside a value');
  t.equal(redactSecrets('https://h/k?token=&a=1'), 'https://h/k?token=&a=1', 'an empty value has nothing to hide');
});

t.test('userinfo in URLs', async (t) => {
  t.equal(redactSecrets('https://SECRET-user:SECRET-pass@hub.example/x'), `https://${REDACTED}@hub.example/x`);
  t.equal(redactSecrets('fetching postgres://edge:SECRET-pw@db:5432/edgeboot failed'), `fetching postgres://${REDACTED}@db:5432/edgeboot failed`);
  t.equal(redactSecrets('https://hub.example/a@b'), 'https://hub.example/a@b', 'an @ in the path is no userinfo');
  t.equal(redactSecrets('mail root@example.com'), 'mail root@example.com');
});

t.test('URLs inside text: error messages and JSON log lines', async (t) => {
  t.equal(
    redactSecrets('the hub at https://hub/ipxe?api_key=SECRET-k cannot be reached: ECONNREFUSED'),
    `the hub at https://hub/ipxe?api_key=${REDACTED} cannot be reached: ECONNREFUSED`,
  );
  t.equal(redactSecrets('login failed, password=SECRET-p (retry)'), `login failed, password=${REDACTED} (retry)`, 'a bare name=value in prose');
  // A value may hold ( ) , ; (RFC 3986 sub-delims): cut to the next & rather than leak a tail.
  t.equal(redactSecrets('retry(token=SECRET-1),sig=SECRET-2;x=1 then'), `retry(token=${REDACTED} then`, 'after a bracket; the value runs on');
  t.equal(redactSecrets('one,sig=SECRET-4'), `one,sig=${REDACTED}`, 'after a comma');
  t.equal(redactSecrets('a=1=2&token=SECRET-3'), `a=1=2&token=${REDACTED}`, 'a value with = before a secret');
  const line = JSON.stringify({ level: 20, url: '/api/v1/machines/x/events?%74oken=SECRET-t&y=1', msg: 'request' });
  const red = redactJsonText(line);
  t.notMatch(red, /SECRET/);
  t.same(JSON.parse(red), { level: 20, url: `/api/v1/machines/x/events?%74oken=${REDACTED}&y=1`, msg: 'request' }, 'still valid JSON');
  const quoted = JSON.stringify({ msg: 'x "https://h/?token=SECRET-q" y' });
  t.same(JSON.parse(redactJsonText(quoted)), { msg: `x "https://h/?token=${REDACTED}" y` }, 'a value ends at an escaped quote');
  const keyed = JSON.stringify({
    password: 'SECRET-pw',
    nested: { Authorization: 'Bearer SECRET-b', pullSecret: '/etc/ps.json', api_key: 'SECRET-x' },
    note: 'fine',
  });
  t.same(JSON.parse(redactJsonText(keyed)), { password: REDACTED, nested: { Authorization: REDACTED, pullSecret: REDACTED, api_key: REDACTED }, note: 'fine' });
});

t.test('a redacted value sent back keeps the stored one; a forged one is refused', async (t) => {
  const stored = 'https://hub.example/ipxe-script?api_key=SECRET-real&arch=x86_64';
  t.same(keepRedacted(redactSecrets(stored), stored), { value: stored });
  t.same(keepRedacted('https://hub.example/ipxe-script?api_key=NEW', stored), { value: 'https://hub.example/ipxe-script?api_key=NEW' }, 'a new key replaces');
  t.ok('refused' in keepRedacted(`https://other.example/ipxe-script?api_key=${REDACTED}&arch=x86_64`, stored), 'another URL around the mark');
  t.ok('refused' in keepRedacted(`https://hub.example/ipxe-script?api_key=${REDACTED}`, undefined), 'nothing stored');
});
