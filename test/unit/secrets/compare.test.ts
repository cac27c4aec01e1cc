import t from 'tap';
import { matchesAny, sameSecret } from '../../../src/secrets/compare.js';

t.test('sameSecret: equal strings only, whatever their lengths', async (t) => {
  t.ok(sameSecret('s3cret-token', 's3cret-token'));
  t.notOk(sameSecret('s3cret-token', 's3cret-tokeN'), 'one byte differs');
  t.notOk(sameSecret('s3cret', 's3cret-token'), 'a prefix is not the secret');
  t.notOk(sameSecret('', 'x'));
  t.ok(sameSecret('ünïcode', 'ünïcode'), 'compared as UTF-8 bytes');
});

t.test('matchesAny: one of the configured tokens, none when there are none', async (t) => {
  t.ok(matchesAny('b', ['a', 'b', 'c']));
  t.notOk(matchesAny('d', ['a', 'b', 'c']));
  t.notOk(matchesAny('a', []));
});
