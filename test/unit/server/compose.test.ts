import { Writable } from 'node:stream';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import t from 'tap';
import { compose } from '../../../src/compose.js';
import { ConfigError } from '../../../src/config/config.js';
import { createLogger } from '../../../src/log.js';
import { parseMac } from '../../../src/machines/mac.js';
import { BindError } from '../../../src/net/bind-error.js';
import type { OpenDatagramSocket } from '../../../src/net/pktinfo-socket.js';
import { startServer } from '../../../src/server.js';
import { openSqliteStore } from '../../../src/store/sqlite.js';
import { ADMIN_TOKEN, startTestApp, tempDir, testConfig } from '../../helpers/app.js';

const MAC = parseMac('52:54:00:12:34:56') ?? fail('a MAC');
const CLOCK = new Date('2031-02-03T04:05:06.000Z');
const silent = createLogger('silent');

function fail(what: string): never {
  throw new Error(`no ${what}`);
}

/** A config on loopback, ephemeral ports, DHCP off, data in a fresh temp dir. */
function loopbackConfig(doc: Record<string, unknown> = {}) {
  const dir = tempDir();
  return testConfig({ server: { dataDir: dir }, http: { listen: '127.0.0.1:0' }, tftp: { listen: '127.0.0.1:0' }, dhcp: { mode: 'off' }, ...doc });
}

/** A logger whose lines land in `lines`, parsed. */
function capturingLog(): { log: ReturnType<typeof createLogger>; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString('utf8').split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  return { log: createLogger('info', sink), lines };
}

const refused = (port: number): Promise<boolean> =>
  new Promise((res) => {
    const s = createConnection({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      res(false);
    });
    s.once('error', () => res(true));
  });

t.test('compose builds the graph on the overrides: the store, clock and admin tokens given are the ones used', async (t) => {
  const config = loopbackConfig();
  const store = openSqliteStore({ path: join(config.server.dataDir, 'given.db') });
  const built = await compose(config, { store, log: silent, now: () => CLOCK, secret: 's', adminTokens: [ADMIN_TOKEN] });
  t.teardown(() => built.store.close());
  // built.store is the given store behind the timeline feed (machines/timeline-feed.ts): the same tables.
  await store.putSetting('probe', 'given');
  t.equal(await built.store.getSetting('probe'), 'given', 'the override store, not one opened from store.url');
  t.same(
    built.servers.map((s) => s.name),
    ['http', 'tftp', 'dhcp'],
    'HTTP first: DHCP and TFTP hand out the port it bound',
  );
  t.equal(built.adminTokenFile, undefined, 'no token file made when tokens are given');
  const auth = { authorization: `Bearer ${ADMIN_TOKEN}` };
  const put = await built.app.inject({ method: 'PUT', url: `/api/v1/machines/${MAC}`, headers: auth, payload: { profile: 'rhcos-live' } });
  t.equal(put.statusCode, 201, put.body);
  t.equal((await store.getMachine(MAC))?.createdAt, CLOCK.toISOString(), 'written to the given store, stamped by the given clock');
  const metrics = await built.app.inject({ url: '/metrics' });
  t.match(metrics.body, /^edgeboot_dhcp_leases 0$/m, 'DHCP counters reach /metrics, added once the server exists');
  t.match(metrics.body, /^edgeboot_tftp_active_transfers 0$/m, 'and TFTP counters');
  t.match(metrics.body, /^edgeboot_machines\{state="registered"\} 1$/m, 'and machine states from the store');
  await built.app.close();
  await built.cache?.artifacts.close();
});

t.test('compose: no TFTP server when tftp.enabled is false; the leaveOut parts are left out', async (t) => {
  const leaveOut = { cache: true, metrics: true };
  const built = await compose(loopbackConfig({ tftp: { enabled: false } }), { log: silent, adminTokens: [ADMIN_TOKEN], leaveOut });
  t.teardown(async () => {
    await built.app.close();
    await built.store.close();
  });
  t.same(
    built.servers.map((s) => s.name),
    ['http', 'dhcp'],
  );
  t.equal(built.cache, undefined);
  t.equal(built.precache, undefined);
  t.equal((await built.app.inject({ url: '/metrics' })).statusCode, 404);
});

t.test('compose refuses a policy naming no loaded profile, and closes the store it was given', async (t) => {
  const config = loopbackConfig({ boot: { unknownMachines: 'no-such-profile' } });
  const store = openSqliteStore({ path: join(config.server.dataDir, 'given.db') });
  await t.rejects(compose(config, { store, log: silent, adminTokens: [ADMIN_TOKEN] }), ConfigError);
  await t.rejects(store.getMachine(MAC), 'the store is closed');
});

t.test('startTestApp goes through compose: its app has what only compose wires', async (t) => {
  const ta = await startTestApp({ metrics: true, now: () => CLOCK });
  t.teardown(() => ta.close());
  await ta.app.inject({ method: 'PUT', url: `/api/v1/machines/${MAC}`, headers: ta.auth, payload: { profile: 'rhcos-live' } });
  t.equal((await ta.store.getMachine(MAC))?.createdAt, CLOCK.toISOString(), 'the test clock');
  const metrics = await ta.app.inject({ url: '/metrics' });
  t.match(metrics.body, /^edgeboot_tftp_active_transfers 0$/m, 'TFTP counters (the server is built, not started)');
  t.match(metrics.body, /^edgeboot_machines\{state="registered"\} 1$/m);
});

/** A TFTP socket whose port is taken. */
const takenPort: (code: string) => OpenDatagramSocket = (code) => () => {
  throw Object.assign(new Error(`bind ${code}`), { code });
};

t.test('startServer: a server that cannot bind stops those already started, and closes the store', async (t) => {
  const config = loopbackConfig();
  const store = openSqliteStore({ path: join(config.server.dataDir, 'given.db') });
  const { log, lines } = capturingLog();
  const err = await startServer(config, log, { overrides: { store, adminTokens: [ADMIN_TOKEN], tftpSocket: takenPort('EADDRINUSE') } }).then(
    () => undefined,
    (e: unknown) => e,
  );
  t.type(err, BindError, 'the bind error comes out');
  const stopped = lines.find((l) => l.msg === 'stopped: another server could not start');
  t.equal(stopped?.server, 'http', 'HTTP had started, and was stopped');
  const port = Number(
    String((stopped?.listen as string[])[0])
      .split(':')
      .pop(),
  );
  t.ok(await refused(port), `nothing listens on ${port} afterwards`);
  await t.rejects(store.getMachine(MAC), 'the store is closed');
});

t.test('startServer: a server allowed to stay off when its port is denied stays off; stop() stops the rest', async (t) => {
  const config = loopbackConfig();
  const running = await startServer(config, silent, {
    offWhenDenied: new Set(['tftp']),
    overrides: { adminTokens: [ADMIN_TOKEN], tftpSocket: takenPort('EACCES') },
  });
  t.same(
    running.servers.map((s) => s.name),
    ['http', 'dhcp'],
  );
  t.same(
    running.denied.map((d) => d.server),
    ['tftp'],
  );
  const port = running.servers[0]?.addresses[0]?.port ?? 0;
  t.notOk(await refused(port), 'HTTP serves');
  await running.stop();
  t.ok(await refused(port), 'and stops');
});
