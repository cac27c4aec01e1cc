/** RFC 9110 preconditions and ranges for a complete file (src/http/conditional.ts). */
import t from 'tap';
import { answerFileRequest, fileEtag, type RequestConditions } from '../../../src/http/conditional.js';

const modified = new Date('2026-11-30T10:00:00.000Z');
const file = { size: 1000, etag: '"sha256:abc"', lastModified: modified };
const date = (d: Date) => d.toUTCString();
const earlier = date(new Date(modified.getTime() - 60_000));
const later = date(new Date(modified.getTime() + 60_000));
const ask = (req: Partial<RequestConditions>) => answerFileRequest({ method: 'GET', ...req }, file);

t.test('no conditions: the whole file, or the range asked', async (t) => {
  t.same(ask({}), { status: 200, start: 0, end: 999 });
  t.same(ask({ range: 'bytes=10-19' }), { status: 206, start: 10, end: 19 });
  t.same(ask({ range: 'bytes=-100' }), { status: 206, start: 900, end: 999 });
  t.same(ask({ range: 'bytes=990-' }), { status: 206, start: 990, end: 999 });
  t.same(ask({ range: 'bytes=1000-' }), { status: 416 }, 'a range past the end');
  t.same(ask({ range: 'bytes=0-1,5-9' }), { status: 200, start: 0, end: 999 }, 'several ranges: the whole file (§14.2 allows)');
  t.same(ask({ range: 'items=0-1' }), { status: 200, start: 0, end: 999 }, 'another unit is ignored');
});

t.test('HEAD ignores Range (§14.2: range handling is defined for GET only)', async (t) => {
  t.same(ask({ method: 'HEAD', range: 'bytes=10-19' }), { status: 200, start: 0, end: 999 });
});

t.test('If-None-Match: weak comparison, lists and *, before If-Modified-Since', async (t) => {
  t.same(ask({ ifNoneMatch: '"sha256:abc"' }), { status: 304 });
  t.same(ask({ ifNoneMatch: 'W/"sha256:abc"' }), { status: 304 }, 'a weak tag matches weakly');
  t.same(ask({ ifNoneMatch: '"x", "sha256:abc"' }), { status: 304 }, 'in a list');
  t.same(ask({ ifNoneMatch: '*' }), { status: 304 });
  t.same(ask({ ifNoneMatch: '"other"' }), { status: 200, start: 0, end: 999 });
  t.same(
    ask({ ifNoneMatch: '"other"', ifModifiedSince: later }),
    { status: 200, start: 0, end: 999 },
    'If-Modified-Since is not looked at beside If-None-Match (§13.1.3)',
  );
});

t.test('If-Modified-Since', async (t) => {
  t.same(ask({ ifModifiedSince: date(modified) }), { status: 304 }, 'the same second');
  t.same(ask({ ifModifiedSince: later }), { status: 304 });
  t.same(ask({ ifModifiedSince: earlier }), { status: 200, start: 0, end: 999 });
  t.same(ask({ ifModifiedSince: 'not a date' }), { status: 200, start: 0, end: 999 }, 'an invalid date is ignored');
});

t.test('If-Match (strong) and If-Unmodified-Since fail with 412', async (t) => {
  t.same(ask({ ifMatch: '"sha256:abc"' }), { status: 200, start: 0, end: 999 });
  t.same(ask({ ifMatch: '*' }), { status: 200, start: 0, end: 999 });
  t.same(ask({ ifMatch: 'W/"sha256:abc"' }), { status: 412 }, 'a weak tag never matches strongly');
  t.same(ask({ ifMatch: '"other"' }), { status: 412 });
  t.same(ask({ ifUnmodifiedSince: earlier }), { status: 412 });
  t.same(ask({ ifUnmodifiedSince: later }), { status: 200, start: 0, end: 999 });
  t.same(
    ask({ ifMatch: '"sha256:abc"', ifUnmodifiedSince: earlier }),
    { status: 200, start: 0, end: 999 },
    'If-Unmodified-Since is not looked at beside If-Match',
  );
});

t.test('If-Range: the range only for the current entity', async (t) => {
  t.same(ask({ range: 'bytes=0-9', ifRange: '"sha256:abc"' }), { status: 206, start: 0, end: 9 });
  t.same(ask({ range: 'bytes=0-9', ifRange: '"other"' }), { status: 200, start: 0, end: 999 }, 'another tag: the whole file');
  t.same(ask({ range: 'bytes=0-9', ifRange: 'W/"sha256:abc"' }), { status: 200, start: 0, end: 999 }, 'a weak tag: the whole file (§13.1.5)');
  t.same(ask({ range: 'bytes=0-9', ifRange: date(modified) }), { status: 206, start: 0, end: 9 }, 'the exact Last-Modified');
  t.same(ask({ range: 'bytes=0-9', ifRange: later }), { status: 200, start: 0, end: 999 }, 'another date');
  t.same(
    ask({ range: 'bytes=5000-', ifRange: '"other"' }),
    { status: 200, start: 0, end: 999 },
    'an unsatisfiable range under a stale If-Range: the whole file, not 416',
  );
});

t.test('an empty file', async (t) => {
  t.same(answerFileRequest({ method: 'GET' }, { ...file, size: 0 }), { status: 200, start: 0, end: -1 });
  t.same(answerFileRequest({ method: 'GET', range: 'bytes=0-' }, { ...file, size: 0 }), { status: 416 });
});

t.test("fileEtag is nginx's: mtime seconds and size in hex, quoted", async (t) => {
  t.equal(fileEtag(new Date(0x5f5e1000 * 1000 + 999), 0x1234), '"5f5e1000-1234"');
});
