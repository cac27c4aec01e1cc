/**
 * DHCP's stop() under real load (issue 17 §2; the stop contract of src/protocol.ts), on a real
 * socket with a real client: Kea's perfdhcp runs DORA exchanges at a bounded rate against
 * edgeboot's DHCP server in full mode over a SQLite store on a temp file, and stop() is called
 * in the middle of it, at a moment when requests are in flight.
 *
 *   client ns: perfdhcp, eth0 10.78.0.2/16 ──veth── s0 10.78.0.1/16  server ns: createDhcpServer
 *                                                                     (real IP_PKTINFO socket on :67,
 *                                                                     openSqliteStore on a temp file)
 *
 * The server runs in its namespace in a small Node driver (this file's SERVER_JS, through the
 * tests' TypeScript loader, as pktinfo-netns.test.ts does), so the test can call stop() itself
 * and look at the server before and after: the driver only wraps the socket's send and the
 * store's calls to count what happens after stop() resolved.
 *
 * Proves, while perfdhcp keeps sending: stop() resolves, well within grace + margin; no request
 * is taken after stop() was called (the server's received counters freeze); every request taken
 * was answered before it resolved; after it resolved no reply leaves the server (the kernel's
 * own count of UDP packets from port 67 out of the server namespace, an iptables counter, equals
 * the replies the server had sent when stop() resolved, and stays so for seconds of further
 * load, while the incoming counter keeps growing), and nothing sends, looks up or writes the
 * store; the SQLite file and its WAL are not written after stop() resolved; after close, the
 * reopened file holds exactly the bound leases of the server's in-memory table at stop, and the
 * lease of every ACK the server sent, and perfdhcp received no more ACKs than the server sent
 * before stop() resolved.
 *
 * Needs root, iproute2, iptables and perfdhcp (kea-admin's perfdhcp, package kea-perfdhcp or
 * kea-common), and the udp_pktinfo addon. Namespaces are eb-sl-<pid>-<n>, removed (with every
 * process in them) at teardown, also on failure.
 */
import Database from 'better-sqlite3';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import t from 'tap';
import { sleep } from '../helpers/dhcp-system.js';
import { createLab, netnsList, requireTools, type Background, type Lab } from '../helpers/netns.js';
import { rootSkip } from '../helpers/privileges.js';
import { tempDir } from '../helpers/process.js';

const skip = rootSkip('network namespaces, port 67, iptables');
const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const TS_LOADER = import.meta.resolve('tsx');
const src = (p: string) => JSON.stringify(pathToFileURL(join(REPO_ROOT, p)).href);

const SERVER_IP = '10.78.0.1';
const CLIENT_IP = '10.78.0.2';
const POOL: [string, string] = ['10.78.1.0', '10.78.254.255'];
/** DORA exchanges a second perfdhcp starts (each: DISCOVER and REQUEST to the server). */
const RATE = 200;
/** perfdhcp's whole run; stop() comes at LOAD_BEFORE_STOP_MS, then the load goes on. */
const PERFDHCP_SECONDS = 12;
const LOAD_BEFORE_STOP_MS = 2_500;
/** How long the stopped server is watched under the continuing load before its store is closed. */
const WATCH_AFTER_STOP_MS = 3_000;
/** A bound on hanging, not on speed: the grace is STOP_GRACE_MS (5 s). */
const STOP_BOUND_MS = 30_000;

/**
 * The driver: createDhcpServer as compose.ts builds it (real pktinfo socket, real interfaces,
 * reservations from the SQLite store), with send and the store wrapped to record what happens
 * after stop() resolved. Lines on stdout are JSON; stdin says `stop` then `close`.
 */
const SERVER_JS = `
import { statSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { checkConfig } from ${src('src/config/load.ts')};
import { createDhcpServer } from ${src('src/dhcp/server.ts')};
import { createLogger } from ${src('src/log.ts')};
import { interfaceAddresses, openDatagramSocket } from ${src('src/net/pktinfo-socket.ts')};
import { openSqliteStore } from ${src('src/store/sqlite.ts')};
import { parseDhcp } from ${src('test/helpers/dhcp-system.ts')};

const cfg = JSON.parse(process.argv[1]);
const out = (o) => process.stdout.write(JSON.stringify(o) + '\\n');
const store = openSqliteStore({ path: cfg.dbPath });
let resolved = false;
const late = [];
const touch = (what) => { if (resolved && late.length < 50) late.push(what); };
/** The last ACK the server sent for each address: ip -> mac. */
const acks = {};
const warnings = [];
const log = createLogger('warn', { write: (line) => { warnings.push(JSON.parse(line)); return true; } });
const dhcp = createDhcpServer(checkConfig({ dhcp: { mode: 'full', subnets: cfg.subnets } }).dhcp, {
  boot: {
    observeDhcp: async () => { touch('observeDhcp'); },
    reservation: async (mac) => {
      touch('reservation');
      const m = await store.getMachine(mac);
      return m ? { ...(m.ip && { ip: m.ip }), ...(m.hostname && { hostname: m.hostname }) } : undefined;
    },
    pxeAnswer: () => Promise.reject(new Error('not asked in full mode')),
  },
  store: {
    listLeases: () => { touch('listLeases'); return store.listLeases(); },
    writeLeases: (save, remove) => { touch('writeLeases'); return store.writeLeases(save, remove); },
  },
  log,
  openSocket: (address, port, onMessage) => {
    const s = openDatagramSocket(address, port, onMessage);
    return {
      get localPort() { return s.localPort; },
      get localAddress() { return s.localAddress; },
      send(m) {
        touch('send');
        s.send(m);
        const p = parseDhcp(Buffer.from(m.data));
        if (p.type === 5) acks[p.yiaddr] = p.mac;
      },
      close: () => s.close(),
    };
  },
  interfaces: () => [...interfaceAddresses()].map(([ifindex, i]) => ({ ifindex, name: i.name, address: i.address })),
  httpPort: () => 8080,
  advertiseAddress: 'auto',
});
await dhcp.start();
const sum = (o) => Object.values(o).reduce((a, b) => a + b, 0);
/** Requests taken and not yet answered, ignored or dropped. */
const answered = (s) => sum(s.sent) + s.ignored + (s.dropped.bad_chaddr ?? 0) + (s.dropped.send_busy ?? 0) + (s.dropped.send_failed ?? 0) + (s.dropped.handler_error ?? 0);
const inFlight = () => { const s = dhcp.stats(); return sum(s.received) - answered(s); };
const snap = () => JSON.parse(JSON.stringify(dhcp.stats()));
const files = () => Object.fromEntries(['', '-wal'].map((x) => {
  try { const st = statSync(cfg.dbPath + x, { bigint: true }); return [x || 'db', { size: String(st.size), mtimeNs: String(st.mtimeNs) }]; }
  catch { return [x || 'db', null]; }
}));
out({ ready: true, addresses: dhcp.addresses });

const lines = createInterface({ input: process.stdin });
lines.on('line', async (cmd) => {
  if (cmd === 'stop') {
    // stop() at a moment a request is in flight: polled in the check phase, which runs before
    // the group commit's setImmediate of the requests that came in this loop turn (bounded).
    const since = Date.now();
    let busy = inFlight();
    while (busy === 0 && Date.now() - since < 3000) {
      await new Promise((r) => setImmediate(r));
      busy = inFlight();
    }
    const atCall = snap();
    const calledAt = Date.now();
    await dhcp.stop();
    resolved = true;
    const ms = Date.now() - calledAt;
    const atResolve = snap();
    const bound = dhcp.leases().filter((l) => l.state === 'bound').map((l) => ({ ip: l.ip, mac: l.mac, expiresAt: l.expiresAt }));
    out({ stopped: true, ms, inFlightAtCall: busy, atCall, atResolve, inFlightAtResolve: inFlight(), bound, acks, files: files(), addresses: dhcp.addresses });
  } else if (cmd === 'close') {
    const before = files();
    const stats = snap();
    await dhcp.stop();
    let closeError = null;
    try { await store.close(); } catch (err) { closeError = String(err); }
    out({ closed: true, late, stats, files: before, warnings, closeError });
    process.exit(0);
  }
});
setTimeout(() => process.exit(3), 120000).unref();
`;

interface Stats {
  received: Record<string, number>;
  sent: Record<string, number>;
  dropped: Record<string, number>;
  ignored: number;
}
type Files = Record<'db' | '-wal', { size: string; mtimeNs: string } | null>;
interface Stopped {
  ms: number;
  inFlightAtCall: number;
  atCall: Stats;
  atResolve: Stats;
  inFlightAtResolve: number;
  bound: { ip: string; mac: string; expiresAt: number }[];
  acks: Record<string, string>;
  files: Files;
  addresses: unknown[];
}
interface Closed {
  late: string[];
  stats: Stats;
  files: Files;
  warnings: { msg: string }[];
  closeError: string | null;
}

const sum = (o: Record<string, number>) => Object.values(o).reduce((a, b) => a + b, 0);

/** The first JSON line of `bg`'s output with key `key`, waited for (bounded). */
async function line<T>(bg: Background, key: string, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    for (const l of bg.output().split('\n')) {
      if (!l.startsWith('{')) continue;
      try {
        const o = JSON.parse(l) as Record<string, unknown>;
        if (o[key] !== undefined) return o as T;
      } catch {
        // a line still being written
      }
    }
    if (Date.now() > deadline || bg.child.exitCode !== null)
      throw new Error(`no "${key}" line from the server driver within ${timeoutMs} ms; output:\n${bg.output()}`);
    await sleep(20);
  }
}

/** Packets counted by the iptables rule of `chain` in `ns` (udp port 67, our only rule there). */
async function counter(lab: Lab, ns: string, chain: 'INPUT' | 'OUTPUT'): Promise<number> {
  const r = await lab.run(ns, ['iptables', '-w', '-n', '-v', '-x', '-L', chain], { timeoutMs: 10_000 });
  const row = r.stdout.split('\n').find((l) => /udp (spt|dpt):67\b/.test(l));
  if (r.code !== 0 || row === undefined) throw new Error(`iptables -L ${chain} in ${ns}: ${r.code} ${r.stdout}${r.stderr}`);
  return Number(row.trim().split(/\s+/)[0]);
}

t.test('stop() under perfdhcp load: bounded, nothing after, every bound lease on disk', { skip, timeout: 90_000 }, async (t) => {
  const started = Date.now();
  requireTools({ perfdhcp: [['-v'], 'kea-perfdhcp'], iptables: [['-V'], 'iptables'] });
  if (!existsSync(join(REPO_ROOT, 'build/Release/udp_pktinfo.node'))) throw new Error('the udp_pktinfo addon is not built (npm ci builds it)');
  const lab = createLab(t, 'sl');
  const dbPath = join(tempDir(t, 'edgeboot-dhcp-stop-load-'), 'edgeboot.db');
  const srv = lab.netns('server');
  const cli = lab.netns('client');
  lab.veth({ ns: srv, dev: 's0' }, { ns: cli, dev: 'eth0', mac: '02:eb:51:00:00:01' });
  lab.ipIn(srv, 'addr', 'add', `${SERVER_IP}/16`, 'dev', 's0');
  lab.ipIn(cli, 'addr', 'add', `${CLIENT_IP}/16`, 'dev', 'eth0');
  // The kernel's count of what the server namespace takes in on port 67 and sends from it.
  for (const rule of [
    ['INPUT', '--dport'],
    ['OUTPUT', '--sport'],
  ] as const) {
    const r = await lab.run(srv, ['iptables', '-w', '-A', rule[0], '-p', 'udp', rule[1], '67', '-j', 'ACCEPT'], { timeoutMs: 10_000 });
    t.equal(r.code, 0, `iptables ${rule[0]} counter in the server namespace ${r.stderr}`);
  }

  const subnets = [{ cidr: '10.78.0.0/16', pool: POOL, router: SERVER_IP, leaseSeconds: 3600 }];
  const server = lab.start(srv, [process.execPath, `--import=${TS_LOADER}`, '--input-type=module', '-e', SERVER_JS, JSON.stringify({ dbPath, subnets })]);
  const ready = await line<{ addresses: { port: number }[] }>(server, 'ready', 30_000);
  t.equal(ready.addresses[0]?.port, 67, 'the server is bound to port 67 in its namespace');
  t.comment(`server ready after ${Date.now() - started} ms`);

  // perfdhcp acts as a relay (giaddr 10.78.0.2, port 67): the replies come back unicast.
  const perf = lab.start(cli, ['perfdhcp', '-4', '-r', String(RATE), '-R', '60000', '-p', String(PERFDHCP_SECONDS), '-t', '1', '-l', 'eth0', SERVER_IP]);
  await perf.waitFor(/received: [1-9]/, 10_000);
  await sleep(LOAD_BEFORE_STOP_MS);
  const inBefore = await counter(lab, srv, 'INPUT');

  server.child.stdin?.write('stop\n');
  const stopped = await line<Stopped>(server, 'stopped', STOP_BOUND_MS + 5_000);
  const out1 = await counter(lab, srv, 'OUTPUT');
  const in1 = await counter(lab, srv, 'INPUT');
  const sentAtResolve = sum(stopped.atResolve.sent);
  t.comment(
    `stop() called with ${stopped.inFlightAtCall} request(s) in flight, after ${sum(stopped.atCall.received)} requests (${JSON.stringify(stopped.atCall.received)}) and ${inBefore} datagrams in; resolved in ${stopped.ms} ms`,
  );
  t.ok(stopped.ms < STOP_BOUND_MS, `stop() resolved (in ${stopped.ms} ms, bound ${STOP_BOUND_MS} ms)`);
  t.ok(inBefore > RATE, `it was under load when stop() was called (${inBefore} datagrams in)`);
  t.ok(stopped.inFlightAtCall > 0, `requests were in flight when stop() was called (${stopped.inFlightAtCall})`);
  t.same(stopped.atResolve.received, stopped.atCall.received, 'no request was taken after stop() was called');
  t.equal(stopped.inFlightAtResolve, 0, 'every request taken was answered before stop() resolved');
  t.same(stopped.addresses, [], 'the socket is closed');
  t.equal(
    out1,
    sentAtResolve,
    `the kernel counted exactly the ${sentAtResolve} replies the server had sent when stop() resolved, none more (${JSON.stringify(stopped.atResolve.sent)})`,
  );
  t.ok((stopped.atResolve.sent.ack ?? 0) > 0, `ACKs were sent before stop (${stopped.atResolve.sent.ack})`);

  // The load goes on; the stopped server must stay silent and leave its store alone.
  await sleep(WATCH_AFTER_STOP_MS);
  const out2 = await counter(lab, srv, 'OUTPUT');
  const in2 = await counter(lab, srv, 'INPUT');
  t.ok(in2 > in1, `perfdhcp kept sending after stop() resolved (${in2 - in1} datagrams in, in ${WATCH_AFTER_STOP_MS} ms)`);
  t.equal(out2, out1, `and no reply left the server namespace (${out2} = ${out1})`);

  server.child.stdin?.write('close\n');
  const closed = await line<Closed>(server, 'closed', 10_000);
  t.same(closed.late, [], 'after stop() resolved: no send, no store read or write, no machine record');
  t.same(closed.stats, stopped.atResolve, 'the server’s counters did not move after stop() resolved');
  t.same(closed.files, stopped.files, `the SQLite file and its WAL are unchanged since stop() resolved (${JSON.stringify(closed.files)})`);
  t.equal(closed.closeError, null, 'the store closes');
  t.same(
    closed.warnings.map((w) => w.msg),
    [],
    'no warning (the grace was not needed)',
  );
  const exit = await server.exited;
  t.equal(exit.code, 0, 'the driver exited cleanly');

  const db = new Database(dbPath, { readonly: true, fileMustExist: true });
  const rows = db.prepare("SELECT ip, mac, expires_at AS expiresAt FROM leases WHERE state = 'bound'").all() as {
    ip: string;
    mac: string;
    expiresAt: number;
  }[];
  db.close();
  const key = (l: { ip: string; mac: string; expiresAt: number }) => `${l.ip} ${l.mac} ${l.expiresAt}`;
  const onDisk = new Set(rows.map(key));
  const inMemory = new Set(stopped.bound.map(key));
  t.ok(inMemory.size > 0, `the server had ${inMemory.size} bound leases at stop`);
  t.same([...onDisk].sort(), [...inMemory].sort(), `the reopened file holds exactly the ${inMemory.size} bound leases of the server’s table at stop`);
  const macAt = new Map(rows.map((r) => [r.ip, r.mac]));
  const missing = Object.entries(stopped.acks).filter(([ip, mac]) => macAt.get(ip) !== mac);
  t.same(missing, [], `every one of the ${Object.keys(stopped.acks).length} addresses ACKed is stored bound to the MAC it was ACKed to`);

  const perfExit = await perf.exited;
  const report = perf.output();
  const acked = /Statistics for: REQUEST-ACK\*+\s+sent packets: (\d+)\s+received packets: (\d+)/.exec(report);
  t.ok(acked, `perfdhcp finished (${perfExit.code ?? perfExit.signal}) with its report`);
  const perfAcks = Number(acked?.[2] ?? -1);
  t.ok(
    perfAcks > 0 && perfAcks <= (stopped.atResolve.sent.ack ?? 0),
    `perfdhcp received ${perfAcks} ACKs, no more than the ${stopped.atResolve.sent.ack} the server sent before stop() resolved`,
  );
  // Not asserted: a loaded perfdhcp may time an exchange out and count its late ACK an orphan.
  t.comment(`perfdhcp's ACKs against the ${rows.length} stored leases: ${perfAcks}`);
  const periodic = [...report.matchAll(/received: (\d+)\/(\d+)/g)].map((m) => `${m[1]}/${m[2]}`);
  t.comment(`perfdhcp received (offers/acks) each second: ${periodic.join(' ')}; sent ${acked?.[1]} requests`);
  t.comment(`done in ${Date.now() - started} ms`);
});

t.test('no namespace of this test is left', { skip }, async (t) => {
  const left = netnsList().filter((name) => name.startsWith(`eb-sl-${process.pid}-`));
  t.same(left, [], '`ip netns list` shows none of ours');
});
