import t from 'tap';
import { parseRange } from '../../../src/http/range.js';

t.test('single byte ranges (RFC 9110 §14.1.2)', async (t) => {
  t.same(parseRange(undefined, 100), { kind: 'whole' });
  t.same(parseRange('bytes=0-9', 100), { kind: 'range', start: 0, end: 9 });
  t.same(parseRange('bytes=90-', 100), { kind: 'range', start: 90, end: 99 });
  t.same(parseRange('bytes=90-1000', 100), { kind: 'range', start: 90, end: 99 }, 'an end past the file is cut to it');
  t.same(parseRange('bytes=-10', 100), { kind: 'range', start: 90, end: 99 }, 'a suffix');
  t.same(parseRange('bytes=-1000', 100), { kind: 'range', start: 0, end: 99 }, 'a suffix longer than the file');
  t.same(parseRange(' bytes=5-5 ', 100), { kind: 'range', start: 5, end: 5 });
});

t.test('unsatisfiable: 416', async (t) => {
  t.same(parseRange('bytes=100-', 100), { kind: 'unsatisfiable' }, 'starts at the end');
  t.same(parseRange('bytes=200-300', 100), { kind: 'unsatisfiable' });
  t.same(parseRange('bytes=-0', 100), { kind: 'unsatisfiable' });
  t.same(parseRange('bytes=0-', 0), { kind: 'unsatisfiable' }, 'any range of an empty file');
  t.same(parseRange('bytes=9-5', 100), { kind: 'unsatisfiable' }, 'an end before the start');
});

t.test('what is not one byte range is ignored: the whole file (§14.2)', async (t) => {
  for (const h of ['bytes=0-1,5-6', 'items=0-5', 'bytes=', 'bytes=-', 'bytes=a-b', 'garbage', 'bytes=1-2-3']) {
    t.same(parseRange(h, 100), { kind: 'whole' }, h);
  }
});
