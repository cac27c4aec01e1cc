import t from 'tap';
import { searchOf, sortHref, tableHref, tableQuery } from '../../../src/ui/machine-list.js';

t.test('a table query from whatever the URL says', async (t) => {
  const q = tableQuery({ q: '  node-1 ', state: 'failed', sort: 'ip', dir: 'desc', page: '3', size: '100', group: '1', macs: '1', label: 'rack=r1' });
  t.same(q, { q: 'node-1', state: 'failed', profile: '', label: 'rack=r1', sort: 'ip', dir: 'desc', page: 3, size: 100, group: true, macs: true });
  const junk = tableQuery({ state: 'exploded', sort: 'password', page: '-1', size: '7', label: 'no-equals', q: ['a', 'b'] });
  t.same(junk, { q: '', state: '', profile: '', label: '', sort: 'hostname', dir: 'asc', page: 1, size: 50, group: false, macs: false });
  t.equal(tableQuery({ q: 'x'.repeat(500) }).q.length, 100, 'free text is bounded');
});

t.test('into a store search: offset from the page, grouping sorts by state first', async (t) => {
  t.same(searchOf(tableQuery({ page: '3', size: '25', label: 'rack=r=1', q: 'aa' })), {
    labels: { rack: 'r=1' },
    text: 'aa',
    sort: 'hostname',
    descending: false,
    offset: 50,
    limit: 25,
  });
  t.equal(searchOf(tableQuery({ group: '1', sort: 'ip' })).sort, 'state');
});

t.test('links keep the query and leave defaults out; a sorted column flips', async (t) => {
  const q = tableQuery({ q: 'a b&c', sort: 'ip' });
  t.equal(tableHref(q), '/ui/machines?q=a+b%26c&sort=ip');
  t.equal(tableHref(q, { page: 2 }), '/ui/machines?q=a+b%26c&sort=ip&page=2');
  t.equal(tableHref(tableQuery({})), '/ui/machines');
  t.equal(tableHref(q, { fragment: 'rows' }), '/ui/machines?q=a+b%26c&sort=ip&fragment=rows', 'the htmx fragment of the same view');
  t.equal(sortHref(q, 'ip'), '/ui/machines?q=a+b%26c&sort=ip&dir=desc');
  t.equal(sortHref(q, 'state'), '/ui/machines?q=a+b%26c&sort=state');
});
