/**
 * Persistence of the real `edgeboot serve` process on its SQLite store: a graceful SIGTERM
 * restart keeps every machine, MAC, label, event and the admin token; a SIGKILL in the middle
 * of concurrent writes loses no acknowledged write and leaves nothing half-written; the first
 * start makes the admin token file with mode 0600 and says where it is.
 */
import Database from 'better-sqlite3';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import type { Machine } from '../../src/machines/model.js';
import { startServer, tempDir, type ServerProcess } from '../helpers/process.js';
import type { EventBody } from '../helpers/app.js';

interface Reply<T> {
  status: number;
  body: T;
}

/** `token`: null sends none; absent sends the server's admin token. */
async function call<T>(srv: ServerProcess, method: string, path: string, body?: unknown, token: string | null = srv.token): Promise<Reply<T>> {
  const res = await fetch(`${srv.url}${path}`, {
    method,
    headers: {
      ...(token !== null && { authorization: `Bearer ${token}` }),
      ...(body !== undefined && { 'content-type': 'application/json' }),
    },
    ...(body !== undefined && { body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(5_000),
  });
  const text = await res.text();
  return { status: res.status, body: (text === '' ? undefined : JSON.parse(text)) as T };
}

const hyp = (mac: string) => mac.replaceAll(':', '-');

/** Every machine: the listing's pages, following nextCursor. */
async function listMachines(srv: ServerProcess): Promise<Machine[]> {
  const all: Machine[] = [];
  let cursor: string | undefined;
  do {
    const r = await call<{ machines: Machine[]; nextCursor?: string }>(srv, 'GET', `/api/v1/machines?limit=1000${cursor ? `&cursor=${cursor}` : ''}`);
    if (r.status !== 200) throw new Error(`GET /api/v1/machines: ${r.status} ${JSON.stringify(r.body)}`);
    all.push(...r.body.machines);
    cursor = r.body.nextCursor;
  } while (cursor !== undefined);
  return all;
}

async function eventsOf(srv: ServerProcess, mac: string): Promise<EventBody[]> {
  const r = await call<{ events: EventBody[] }>(srv, 'GET', `/api/v1/machines/${hyp(mac)}/events?limit=5000`);
  if (r.status !== 200) throw new Error(`GET events of ${mac}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body.events;
}

t.test('a SIGTERM restart on the same data dir keeps machines, MACs, labels, events and the token', async (t) => {
  const home = tempDir(t);
  const dataDir = join(home, 'data');
  const first = await startServer(t, { dataDir, cwd: home });

  const n1 = { mac: '52:54:00:aa:00:01', macs: ['52:54:00:aa:00:02', '52:54:00:aa:00:03'] };
  const n2 = { mac: '52:54:00:aa:01:01', macs: ['52:54:00:aa:01:02'] };
  const gone = { mac: '52:54:00:aa:02:01', macs: ['52:54:00:aa:02:02'] };

  const p1 = await call<Machine>(first, 'PUT', `/api/v1/machines/${hyp(n1.mac)}`, {
    macs: ['52-54-00-AA-00-02', '525400aa0003'],
    uuid: '4c4c4544-0042-3510-8056-b4c04f4e3232',
    hostname: 'n1',
    // Where this test's requests come from: /ipxe serves n1 its own boot (boot.verifyClient).
    ip: '127.0.0.1',
    profile: 'rhcos-live',
    labels: { site: 'f1', rack: 'r2' },
  });
  t.equal(p1.status, 201, 'n1 created');
  t.same(p1.body.macs, n1.macs, 'n1 MACs normalised');
  const p2 = await call<Machine>(first, 'PUT', `/api/v1/machines/${hyp(n2.mac)}`, { macs: n2.macs, labels: { site: 'f2' } });
  t.equal(p2.status, 201, 'n2 created');
  t.equal(p2.body.state, 'discovered', 'n2 has no profile yet');
  const patched = await call<Machine>(first, 'PATCH', `/api/v1/machines/${hyp(n2.macs[0] ?? '')}`, { profile: 'local-disk', labels: { role: 'worker' } });
  t.equal(patched.status, 200, 'n2 patched through its second MAC');
  t.equal(patched.body.state, 'registered', 'n2 registered by the patch');
  t.same(patched.body.labels, { site: 'f2', role: 'worker' }, 'merge patch kept the old label');
  t.equal((await call(first, 'PUT', `/api/v1/machines/${hyp(gone.mac)}`, { macs: gone.macs, labels: {} })).status, 201, 'third machine created');
  t.equal((await call(first, 'DELETE', `/api/v1/machines/${hyp(gone.macs[0] ?? '')}`)).status, 204, 'third machine deleted');

  for (const [i, type] of ['inventory', 'progress', 'note'].entries()) {
    const r = await call<{ events: EventBody[] }>(first, 'POST', `/api/v1/machines/${hyp(n1.macs[1] ?? '')}/events`, {
      type,
      message: `event ${i}`,
      data: { step: i, nested: { ok: true } },
    });
    t.equal(r.status, 201, `event ${type} posted`);
  }
  const boot = await fetch(`${first.url}/ipxe?mac=${hyp(n1.mac)}&arch=x86_64&serial=SN123`, { signal: AbortSignal.timeout(5_000) });
  t.equal(boot.status, 200, 'n1 asked for its boot script');
  t.match(await boot.text(), /^#!ipxe\n/, 'and got one');

  const before = await listMachines(first);
  t.same(
    before.map((m) => m.mac),
    [n1.mac, n2.mac],
    'two machines before the restart',
  );
  const eventsBefore = new Map<string, EventBody[]>();
  for (const m of before) eventsBefore.set(m.mac, await eventsOf(first, m.mac));
  t.ok((eventsBefore.get(n1.mac)?.length ?? 0) >= 4, 'n1 has its creation and the three posted events');
  t.ok(
    eventsBefore.get(n2.mac)?.some((e) => e.type === 'state-changed' && e.from === 'discovered' && e.to === 'registered'),
    'n2 has its state change',
  );
  const tokenBefore = readFileSync(join(dataDir, 'admin-token'), 'utf8');

  const exit = await first.stop('SIGTERM', 10_000);
  t.equal(exit.code, 0, 'exit code 0 after SIGTERM');
  t.equal(exit.signal, null, `exited by itself within stop()'s 10 s, not killed (${exit.ms} ms)`);
  t.ok(
    first.logLines.some((l) => l.msg === 'shutting down' && l.signal === 'SIGTERM'),
    'logged "shutting down" with the signal',
  );
  t.same(first.otherStdout, [], 'stdout held nothing but JSON log lines');

  const second = await startServer(t, { dataDir, cwd: home });
  t.not(second.port, 0, 'restarted on a port of its own');
  t.equal(readFileSync(join(dataDir, 'admin-token'), 'utf8'), tokenBefore, 'the admin-token file is unchanged');
  t.equal(second.token, first.token, 'same admin token');
  t.equal((await call(second, 'GET', '/api/v1/machines', undefined, first.token)).status, 200, 'the old token is still accepted');
  t.equal((await call(second, 'GET', '/api/v1/machines', undefined, 'not-the-token-0123456789')).status, 401, 'and a wrong one still refused');

  const after = await listMachines(second);
  t.same(after, before, 'every machine as it was, field for field');
  for (const m of before) {
    t.same(await eventsOf(second, m.mac), eventsBefore.get(m.mac), `events of ${m.mac} as they were`);
    for (const mac of [m.mac, ...m.macs]) {
      const r = await call<Machine>(second, 'GET', `/api/v1/machines/${hyp(mac)}`);
      t.equal(r.status, 200, `${mac} resolves after the restart`);
      t.equal(r.body.mac, m.mac, `${mac} belongs to ${m.mac}`);
    }
  }
  const n1After = after.find((m) => m.mac === n1.mac);
  t.same(n1After?.labels, { site: 'f1', rack: 'r2' }, 'n1 labels');
  t.equal(n1After?.observed.serial, 'SN123', 'what n1 reported at boot');
  t.equal((await call(second, 'GET', `/api/v1/machines/${hyp(gone.mac)}`)).status, 404, 'the deleted machine stays deleted');
  t.equal((await call(second, 'GET', `/api/v1/machines/${hyp(gone.macs[0] ?? '')}`)).status, 404, 'and its second MAC with it');
  t.equal((await call(second, 'PUT', `/api/v1/machines/${hyp(gone.macs[0] ?? '')}`, { labels: {} })).status, 201, 'its MAC is free for a new machine');

  const exit2 = await second.stop('SIGTERM', 10_000);
  t.equal(exit2.code, 0, 'the second run also exits 0');
});

interface KillRun {
  issued: number;
  acked: Set<number>;
  inflightAtKill: number;
  ms: number;
}

const WORKERS = 8;
const MAX_REQUESTS = 400;
const MAX_MS = 10_000;

/** The three MACs of machine `i` of run `run`: 52:54:<run>:<k>:<i hi>:<i lo>, k = 0 the primary. */
function macsOf(run: number, i: number): [string, string, string] {
  const h = (n: number) => n.toString(16).padStart(2, '0');
  const m = (k: number) => `52:54:${h(run)}:${h(k)}:${h(i >> 8)}:${h(i & 0xff)}`;
  return [m(0), m(1), m(2)];
}

/** 8 PUTs in flight until `killAfter` are acknowledged, then SIGKILL with the rest still in flight. */
async function putUntilKilled(srv: ServerProcess, run: number, killAfter: number): Promise<KillRun> {
  const acked = new Set<number>();
  const started = Date.now();
  let next = 0;
  let inflight = 0;
  let killed = false;
  let inflightAtKill = -1;
  const kill = () => {
    if (killed) return;
    killed = true;
    inflightAtKill = inflight;
    srv.process.kill('SIGKILL');
  };
  const worker = async () => {
    while (!killed && next < MAX_REQUESTS && Date.now() - started < MAX_MS) {
      const i = next++;
      const [primary, ...more] = macsOf(run, i);
      inflight++;
      try {
        const res = await fetch(`${srv.url}/api/v1/machines/${hyp(primary)}`, {
          method: 'PUT',
          headers: { authorization: `Bearer ${srv.token}`, 'content-type': 'application/json' },
          body: JSON.stringify({ macs: more, hostname: `k${run}-${i}`, profile: 'local-disk', labels: { run: String(run), index: String(i) } }),
          signal: AbortSignal.timeout(5_000),
        });
        await res.arrayBuffer();
        if (res.status >= 200 && res.status < 300) acked.add(i);
        else throw new Error(`PUT ${primary}: unexpected status ${res.status}`);
      } catch (err) {
        // Only the kill may break a request; anything before it is a failure of the test.
        // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- another worker's kill() sets killed during the await above
        if (!killed) throw err;
      } finally {
        inflight--;
      }
      if (acked.size >= killAfter) kill();
    }
  };
  try {
    await Promise.all(Array.from({ length: WORKERS }, worker));
  } finally {
    kill();
  }
  return { issued: next, acked, inflightAtKill, ms: Date.now() - started };
}

for (const [run, killAfter] of [
  [1, 50],
  [2, 150],
] as const) {
  t.test(`SIGKILL after ~${killAfter} acknowledged PUTs loses no acknowledged write and half-writes nothing`, async (t) => {
    const home = tempDir(t);
    const dataDir = join(home, 'data');
    const srv = await startServer(t, { dataDir, cwd: home, logLevel: 'info' });
    const r = await putUntilKilled(srv, run, killAfter);
    const exit = await srv.exited;
    t.equal(exit.signal, 'SIGKILL', 'the server died of SIGKILL');
    t.ok(r.acked.size >= killAfter, `${r.acked.size} PUTs acknowledged before the kill (wanted ${killAfter}; ${r.issued} issued in ${r.ms} ms)`);
    t.ok(r.inflightAtKill > 0, `the kill came with ${r.inflightAtKill} PUTs in flight`);
    t.ok(r.issued <= MAX_REQUESTS, 'bounded in count');
    t.ok(existsSync(join(dataDir, 'edgeboot.db')), 'the database file exists');

    const again = await startServer(t, { dataDir, cwd: home });
    t.equal(again.token, srv.token, 'same admin token after the crash');
    const listed = await listMachines(again);
    const byMac = new Map<string, Machine>(listed.map((m) => [m.mac, m]));
    t.ok(listed.length >= r.acked.size, `${listed.length} machines listed, ${r.acked.size} acknowledged`);
    t.ok(listed.length <= r.issued, `no more machines than PUTs issued (${r.issued})`);

    let missing = 0;
    let unresolved = 0;
    for (const i of r.acked) {
      const [primary, ...more] = macsOf(run, i);
      if (!byMac.has(primary)) missing++;
      for (const mac of more) {
        const g = await call<Machine>(again, 'GET', `/api/v1/machines/${hyp(mac)}`);
        if (g.status !== 200 || g.body.mac !== primary) unresolved++;
      }
    }
    t.equal(missing, 0, 'every acknowledged machine exists');
    t.equal(unresolved, 0, 'every secondary MAC of every acknowledged machine resolves to it');

    let halfWritten = 0;
    let withoutCreation = 0;
    let strangers = 0;
    for (const m of listed) {
      const i = Number(m.labels.index);
      if (m.labels.run !== String(run) || !Number.isInteger(i) || i < 0 || i >= r.issued) {
        strangers++;
        continue;
      }
      const [primary, ...more] = macsOf(run, i);
      if (
        m.mac !== primary ||
        m.macs.length !== 2 ||
        more.some((x) => !(m.macs as string[]).includes(x)) ||
        m.hostname !== `k${run}-${i}` ||
        m.state !== 'registered'
      ) {
        halfWritten++;
      }
      // A machine whose primary MAC does not resolve is half-written too (its MAC rows are missing).
      const ev = await call<{ events: EventBody[] }>(again, 'GET', `/api/v1/machines/${hyp(m.mac)}/events?limit=5000`);
      if (ev.status !== 200) halfWritten++;
      else if (ev.body.events.filter((e) => e.type === 'reservation-created').length !== 1) withoutCreation++;
    }
    t.equal(strangers, 0, 'every listed machine is one of the PUTs');
    t.equal(halfWritten, 0, 'every listed machine is whole: 3 MACs, its hostname and labels, registered');
    t.equal(withoutCreation, 0, 'every listed machine has exactly one reservation-created event');

    // The server keeps working on the recovered database.
    const [fresh, ...freshMore] = macsOf(run, 999);
    t.equal((await call(again, 'PUT', `/api/v1/machines/${hyp(fresh)}`, { macs: freshMore, labels: {} })).status, 201, 'a new write after recovery');

    const stopped = await again.stop('SIGTERM', 10_000);
    t.equal(stopped.code, 0, 'the restarted server stops cleanly');

    const db = new Database(join(dataDir, 'edgeboot.db'), { fileMustExist: true });
    t.teardown(() => {
      if (db.open) db.close();
    });
    t.same(db.pragma('integrity_check'), [{ integrity_check: 'ok' }], 'PRAGMA integrity_check: ok');
    db.pragma('foreign_keys = ON');
    t.same(db.pragma('foreign_key_check'), [], 'no dangling references');
    const macRows = db
      .prepare<[], { machine: string; n: number }>(
        'SELECT m.mac AS machine, COUNT(x.mac) AS n FROM machines m LEFT JOIN machine_macs x ON x.machine = m.mac GROUP BY m.mac',
      )
      .all();
    t.equal(macRows.length, listed.length + 1, 'the table holds the listed machines and the new one');
    t.same(
      macRows.filter((row) => row.n !== 3),
      [],
      'every machine has exactly 3 rows in machine_macs',
    );
    const orphans = db
      .prepare<[], { n: number }>('SELECT COUNT(*) AS n FROM machine_macs x LEFT JOIN machines m ON m.mac = x.machine WHERE m.mac IS NULL')
      .get();
    t.equal(orphans?.n, 0, 'no MAC row without its machine');
    db.close();
  });
}

t.test('the first start with no config makes <dataDir>/admin-token (0600) and logs its path', async (t) => {
  const cwd = tempDir(t);
  const tokenFile = join(cwd, 'var', 'admin-token');
  t.notOk(existsSync(join(cwd, 'var')), 'no data dir before the first start');
  const srv = await startServer(t, { cwd });
  t.equal(srv.dataDir, join(cwd, 'var'), 'data under ./var of the working directory');
  t.ok(existsSync(tokenFile), 'admin-token created');
  t.equal(statSync(tokenFile).mode & 0o777, 0o600, 'mode 0600');
  t.ok(existsSync(join(cwd, 'var', 'edgeboot.db')), 'the SQLite database under ./var too');
  t.match(srv.token, /^[A-Za-z0-9_-]{16,}$/, 'a token of at least 16 URL-safe characters');
  const serving = srv.logLines.find((l) => l.msg === 'edgeboot serving');
  t.equal(serving?.adminTokenFile, tokenFile, 'the serving line names the token file');
  t.equal(serving?.dataDir, join(cwd, 'var'), 'and the data dir');
  t.notOk(
    srv.logLines.some((l) => JSON.stringify(l).includes(srv.token)),
    'the token itself is never logged',
  );
  t.equal((await call(srv, 'GET', '/api/v1/machines')).status, 200, 'the token in the file is accepted');
  const anon = await call<{ error: string }>(srv, 'GET', '/api/v1/machines', undefined, null);
  t.equal(anon.status, 401, 'no token: 401');
  t.equal(anon.body.error, 'unauthorized', '401 body names the error');
  const exit = await srv.stop('SIGTERM');
  t.equal(exit.code, 0, 'stops with 0');
  t.equal(statSync(tokenFile).mode & 0o777, 0o600, 'still 0600 after the stop');
});
