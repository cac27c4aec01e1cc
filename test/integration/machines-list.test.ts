/**
 * `GET /api/v1/machines` pages and filters in SQL: nextCursor until the last page, MAC order,
 * filters that combine with paging, refused cursors and limits; the store's count by state and
 * its every-machine iterator. Over the real app with inject, then over a real `edgeboot serve`
 * with curl and the real CLI (which follows the cursor), on thousands of seeded machines.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import type { Machine } from '../../src/machines/model.js';
import { MACHINE_STATES } from '../../src/machines/state.js';
import { eachMachine } from '../../src/store/store.js';
import { testApp, type ErrorBody, type TestApp } from '../helpers/app.js';
import { runCli, startServer, tempDir } from '../helpers/process.js';
import { seedMachines, seededMachine } from '../helpers/seed-machines.js';

const run = promisify(execFile);
const N = 2345;
const ALL = Array.from({ length: N }, (_, i) => seededMachine(i));

interface Page {
  machines: Machine[];
  nextCursor?: string;
}

async function seeded(tt: Parameters<typeof testApp>[0]): Promise<TestApp> {
  const ta = await testApp(tt);
  await seedMachines(join(ta.dir, 'edgeboot.db'), ALL);
  return ta;
}

/** Every page of a listing, following nextCursor (bounded: a server that loops fails the test). */
async function follow(get: (cursor: string | undefined) => Promise<Page>): Promise<Page[]> {
  const pages: Page[] = [];
  let cursor: string | undefined;
  do {
    const p = await get(cursor);
    pages.push(p);
    cursor = p.nextCursor;
    if (pages.length > N + 1) throw new Error('the cursor never ends');
  } while (cursor !== undefined);
  return pages;
}

t.test('pages of 100 by default, in MAC order, nextCursor until the last page', async (t) => {
  const ta = await seeded(t);
  const get = async (query: string) => {
    const res = await ta.app.inject({ method: 'GET', url: `/api/v1/machines${query}`, headers: ta.auth });
    if (res.statusCode !== 200) t.fail(`${query}: ${res.statusCode} ${res.body.slice(0, 200)}`);
    return res.json<Page>();
  };
  const pages = await follow((c) => get(c === undefined ? '' : `?cursor=${encodeURIComponent(c)}`));
  t.equal(pages.length, Math.ceil(N / 100), '24 pages');
  t.same(
    pages.slice(0, -1).map((p) => p.machines.length),
    Array(pages.length - 1).fill(100),
    'full pages of the default 100',
  );
  t.equal(pages.at(-1)?.machines.length, N % 100, 'the rest on the last');
  t.notOk('nextCursor' in (pages.at(-1) ?? {}), 'no nextCursor on the last page');
  t.same(
    pages.flatMap((p) => p.machines.map((m) => m.mac)),
    ALL.map((m) => m.mac),
    'every machine once, by MAC',
  );
  t.same(pages[0]?.machines[3], ALL[3], 'whole documents');

  const big = await follow((c) => get(`?limit=1000${c === undefined ? '' : `&cursor=${c}`}`));
  t.same(
    big.map((p) => p.machines.length),
    [1000, 1000, 345],
    'limit=1000: three pages',
  );
  const exact = await get('?limit=1000');
  t.type(exact.nextCursor, 'string', 'a full page has a cursor');
  t.match(exact.nextCursor ?? '', /^[A-Za-z0-9_-]+$/, 'URL-safe');
});

t.test('state, profile and label filters combine with paging', async (t) => {
  const ta = await seeded(t);
  const cases: [string, (m: Machine) => boolean][] = [
    ['state=registered', (m) => m.state === 'registered'],
    ['profile=p2', (m) => m.profile === 'p2'],
    ['label=site=s1', (m) => m.labels.site === 's1'],
    [
      'state=failed&profile=p0&label=site=s3&label=rack=r2',
      (m) => m.state === 'failed' && m.profile === 'p0' && m.labels.site === 's3' && m.labels.rack === 'r2',
    ],
    ['label=site=nowhere', () => false],
  ];
  for (const [query, match] of cases) {
    const pages = await follow(async (c) => {
      const res = await ta.app.inject({ method: 'GET', url: `/api/v1/machines?${query}&limit=7${c === undefined ? '' : `&cursor=${c}`}`, headers: ta.auth });
      if (res.statusCode !== 200) t.fail(`${query}: ${res.statusCode} ${res.body.slice(0, 200)}`);
      return res.json<Page>();
    });
    const want = ALL.filter(match).map((m) => m.mac);
    t.same(
      pages.flatMap((p) => p.machines.map((m) => m.mac)),
      want,
      `${query}: ${want.length} machines`,
    );
    t.ok(
      pages.every((p) => p.machines.length <= 7),
      `${query}: pages of at most 7`,
    );
  }
});

t.test('a cursor or limit the server did not hand out is a 400', async (t) => {
  const ta = await seeded(t);
  const first = (await ta.app.inject({ method: 'GET', url: '/api/v1/machines?limit=5', headers: ta.auth })).json<Page>();
  const good = first.nextCursor ?? '';
  const forged = [
    'garbage',
    Buffer.from('m1:52:54:00:00:00:05').toString('base64'), // padded base64, not base64url
    Buffer.from('m1:zz:54:00:00:00:05').toString('base64url'),
    Buffer.from('m1:52-54-00-00-00-05').toString('base64url'), // another spelling of a MAC
    Buffer.from('52:54:00:00:00:05').toString('base64url'),
    `${good}x`,
    '',
  ];
  for (const cursor of forged) {
    const res = await ta.app.inject({ method: 'GET', url: `/api/v1/machines?cursor=${encodeURIComponent(cursor)}`, headers: ta.auth });
    t.equal(res.statusCode, 400, `cursor ${JSON.stringify(cursor)}: 400`);
    t.equal(res.json<ErrorBody>().error, 'invalid_cursor', 'invalid_cursor');
  }
  for (const q of ['limit=0', 'limit=1001', 'limit=-1', 'limit=ten', `cursor=${'A'.repeat(65)}`, 'label=no-equals', 'label=a%22b=c', 'state=lost']) {
    const res = await ta.app.inject({ method: 'GET', url: `/api/v1/machines?${q}`, headers: ta.auth });
    t.equal(res.statusCode, 400, `${q}: 400 (${res.body.slice(0, 120)})`);
  }
  const unauth = await ta.app.inject({ method: 'GET', url: `/api/v1/machines?cursor=${good}` });
  t.equal(unauth.statusCode, 401, 'still admin only');
});

t.test('the store counts by state and iterates every machine a page at a time', async (t) => {
  const ta = await seeded(t);
  const counts = await ta.store.countMachinesByState();
  for (const st of MACHINE_STATES) t.equal(counts[st], ALL.filter((m) => m.state === st).length, `${st}: ${counts[st]}`);
  const seen: string[] = [];
  for await (const m of eachMachine(ta.store, {}, 100)) seen.push(m.mac);
  t.same(
    seen,
    ALL.map((m) => m.mac),
    'eachMachine: every machine, in order',
  );
  const precaching: string[] = [];
  for await (const m of eachMachine(ta.store, { state: 'precaching' }, 7)) precaching.push(m.mac);
  t.same(
    precaching,
    ALL.filter((m) => m.state === 'precaching').map((m) => m.mac),
    'eachMachine with a filter',
  );
});

t.test('over a real server: curl follows the cursor, the CLI lists all or --limit, /metrics counts in SQL', async (t) => {
  const dataDir = tempDir(t);
  await seedMachines(join(dataDir, 'edgeboot.db'), ALL);
  const srv = await startServer(t, { dataDir });
  const curl = async (path: string) => {
    const { stdout } = await run('curl', ['-sS', '--max-time', '10', '-H', `authorization: Bearer ${srv.token}`, '-w', '\n%{http_code}', `${srv.url}${path}`]);
    const at = stdout.lastIndexOf('\n');
    return { status: Number(stdout.slice(at + 1)), body: stdout.slice(0, at) };
  };
  const pages = await follow(async (c) => {
    const r = await curl(`/api/v1/machines?limit=1000${c === undefined ? '' : `&cursor=${c}`}`);
    t.equal(r.status, 200);
    return JSON.parse(r.body) as Page;
  });
  t.equal(pages.length, 3, 'curl: three pages of up to 1000');
  t.same(
    pages.flatMap((p) => p.machines.map((m) => m.mac)),
    ALL.map((m) => m.mac),
    'curl: every machine once',
  );
  const bad = await curl('/api/v1/machines?cursor=not-a-cursor');
  t.equal(bad.status, 400, 'curl: a forged cursor is a 400');
  t.equal((JSON.parse(bad.body) as ErrorBody).error, 'invalid_cursor');

  const conn = ['--server', srv.url, '--token', srv.token];
  const all = await runCli(t, ['machines', 'list', '--json', ...conn], { cwd: tempDir(t) });
  t.equal(all.code, 0, all.stderr);
  t.same(
    (JSON.parse(all.stdout) as Machine[]).map((m) => m.mac),
    ALL.map((m) => m.mac),
    `CLI: all ${N}, beyond one page`,
  );
  const table = await runCli(t, ['machines', 'list', ...conn], { cwd: tempDir(t) });
  t.equal(table.stdout.trimEnd().split('\n').length, N + 1, 'CLI table: a header and every machine');
  const five = await runCli(t, ['machines', 'list', '--json', '--limit', '5', ...conn], { cwd: tempDir(t) });
  t.same(
    (JSON.parse(five.stdout) as Machine[]).map((m) => m.mac),
    ALL.slice(0, 5).map((m) => m.mac),
    'CLI --limit 5',
  );
  const over = await runCli(t, ['machines', 'list', '--json', '--limit', '1500', ...conn], { cwd: tempDir(t) });
  t.equal((JSON.parse(over.stdout) as Machine[]).length, 1500, 'CLI --limit 1500: across two pages');
  const filtered = await runCli(t, ['machines', 'list', '--json', '--state', 'registered', '--profile', 'p1', '--label', 'site=s2', ...conn], {
    cwd: tempDir(t),
  });
  const want = ALL.filter((m) => m.state === 'registered' && m.profile === 'p1' && m.labels.site === 's2').map((m) => m.mac);
  t.same(
    (JSON.parse(filtered.stdout) as Machine[]).map((m) => m.mac),
    want,
    `CLI --state --profile --label: ${want.length}`,
  );
  const zero = await runCli(t, ['machines', 'list', '--limit', '0', ...conn], { cwd: tempDir(t) });
  t.not(zero.code, 0, 'CLI --limit 0 is refused');

  const metrics = await run('curl', ['-sS', '--max-time', '10', `${srv.url}/metrics`]);
  for (const st of MACHINE_STATES) {
    const n = ALL.filter((m) => m.state === st).length;
    t.match(metrics.stdout, new RegExp(`^edgeboot_machines\\{state="${st}"\\} ${n}$`, 'm'), `/metrics: ${st} ${n}`);
  }
});
