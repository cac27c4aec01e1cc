// Fills an edgeboot SQLite store before the server starts, for the benchmarks that need many
// machines (machines-list.mjs, ui.sh through ui-load.mjs): the schema from the project's own
// store code (dist/store/sqlite.js runs the migrations), then raw rows in big transactions (an
// fsync per machine or per event through the API would take most of a minute, or hours).
//
//   import { benchMachine, seedStore } from './seed-store.mjs';
//   seedStore(path, { machines: 10_000 });                                  // machines-list's
//   seedStore(path, { machines: 10_000, machine: (i) => benchMachine(i, { detailed: true }), events: counts });
import Database from 'better-sqlite3';
import { openSqliteStore } from '../dist/store/sqlite.js';

export const STATES = ['discovered', 'registered', 'precaching', 'precached', 'installing', 'installed', 'failed'];
const GiB = 2 ** 30;
const EPOCH = Date.UTC(2026, 0, 1);

/** Machine i's MAC: 52:54:00:00:00:00 + i. */
export function macOf(i) {
  return (0x525400000000 + i)
    .toString(16)
    .padStart(12, '0')
    .replace(/(..)(?!$)/g, '$1:');
}

/** Machine i's address when it has one: 10.20.<1 + i / 250>.<1 + i % 250>. */
export function ipOf(i) {
  return `10.20.${1 + Math.floor(i / 250)}.${1 + (i % 250)}`;
}

/**
 * Machine i. Plain: the same as test/helpers/seed-machines.ts (state by i % 7, site s0..s3,
 * rack r0..r4, a host name, arch and platform; about 300 bytes of JSON), which machines-list.mjs
 * lists. Detailed, as a site's records look after some weeks (about 600 bytes): an IP unless
 * discovered, profiles rhcos-live and local-disk, a role label, a serial and the DHCP vendor
 * class, a tenth of them BIOS and a tenth arm64, precache progress on those precaching (and the
 * finished run on those past it). Its times are before `now`: created 60 days earlier, last seen
 * within the day, and a precaching machine's heartbeat under 2 minutes old, so that the server's
 * precache sweep (precache.heartbeatSeconds, 900 s) does not fail it while a bench runs.
 */
export function benchMachine(i, { detailed = false, now = Date.now() } = {}) {
  const mac = macOf(i);
  const state = STATES[i % STATES.length];
  const time = new Date(EPOCH + i * 1000).toISOString();
  const m = {
    mac,
    macs: [],
    labels: { site: `s${i % 4}`, rack: `r${i % 5}` },
    ...(state !== 'discovered' && { profile: 'local-disk' }),
    state,
    hostname: `node-${i}`,
    observed: { arch: 'x86_64', platform: 'efi', lastSeenAt: time },
    createdAt: time,
    updatedAt: time,
  };
  if (!detailed) return m;
  const arch = i % 10 === 9 ? 'arm64' : 'x86_64';
  const platform = i % 10 === 4 ? 'pcbios' : 'efi';
  const archCode = arch === 'arm64' ? '00011' : platform === 'efi' ? '00007' : '00000';
  const created = new Date(now - 60 * 86_400_000 + i * 1000).toISOString();
  const seen = new Date(now - ((i * 7919) % 86_400) * 1000).toISOString();
  m.createdAt = created;
  m.updatedAt = created;
  m.labels.role = i % 8 < 3 ? 'master' : 'worker';
  m.observed = {
    arch,
    platform,
    serial: `SN-${(7_340_000 + i * 13).toString(36).toUpperCase()}`,
    vendorClass: `PXEClient:Arch:${archCode}:UNDI:003016`,
    lastSeenAt: seen,
  };
  if (state !== 'discovered') {
    m.ip = ipOf(i);
    m.profile = i % 3 === 0 ? 'local-disk' : 'rhcos-live';
    m.updatedAt = seen;
  }
  const total = (40 + (i % 9) * 5) * GiB;
  const run = { boots: 1, filesTotal: 12, bytesTotal: total, disk: '/dev/nvme0n1', startedAt: created };
  if (state === 'precaching') {
    const done = (i * 7919) % 12;
    const beat = new Date(now - (i % 120) * 1000).toISOString();
    m.precacheProgress = { ...run, step: 'images', filesDone: done, bytesDone: Math.round((total * done) / 12), lastHeartbeatAt: beat };
    m.observed.lastSeenAt = beat;
  } else if (['precached', 'installing', 'installed'].includes(state)) {
    m.precacheProgress = { ...run, step: 'done', filesDone: 12, bytesDone: total, lastHeartbeatAt: seen, finishedAt: seen, outcome: 'precached' };
    m.precachedAt = seen;
  } else if (state === 'failed') {
    m.precacheProgress = {
      ...run,
      step: 'images',
      message: 'writing to /dev/nvme0n1: no space left on device',
      filesDone: 3,
      bytesDone: 3 * GiB,
      lastHeartbeatAt: seen,
      finishedAt: seen,
      outcome: 'failed',
    };
  }
  return m;
}

/** One boot's events as DHCP, TFTP and HTTP record them, in order; a machine's k-th event is BOOT[k % 9]. */
const BOOT = ['dhcp-offer', 'dhcp-ack', 'tftp-transfer', 'dhcp-offer', 'dhcp-ack', 'script-served', 'asset-served', 'asset-served', 'asset-served'];
const ASSETS = [
  ['kernel', 12_087_296],
  ['initramfs', 98_345_188],
  ['rootfs', 1_077_936_128],
];

/** The k-th event of machine m (its doc) as an events row: [type, source, from, to, message, data]. */
export function benchEvent(m, k, last) {
  const ip = m.ip ?? `10.20.250.${1 + (k % 200)}`;
  const client = `${ip}:${49_152 + (k % 16_000)}`;
  const profile = m.profile ?? 'rhcos-live';
  if (last && m.state === 'failed') {
    return [
      'precache-failed',
      'machine',
      'precaching',
      'failed',
      'writing to /dev/nvme0n1: no space left on device',
      JSON.stringify({ step: 'images', file: 3 }),
    ];
  }
  const type = BOOT[k % BOOT.length];
  switch (type) {
    case 'dhcp-offer':
    case 'dhcp-ack': {
      const ipxe = k % BOOT.length > 2;
      const bootFile = ipxe ? null : m.observed.platform === 'pcbios' ? 'undionly.kpxe' : 'ipxe.efi';
      return [type, 'dhcp', null, null, null, JSON.stringify({ listener: 'dhcp', interface: 'eno1', yiaddr: ip, bootFile, ipxe })];
    }
    case 'tftp-transfer': {
      const file = m.observed.platform === 'pcbios' ? 'undionly.kpxe' : 'ipxe.efi';
      const bytes = file === 'ipxe.efi' ? 1_034_240 : 72_548;
      const data = {
        mac: m.mac,
        file,
        outcome: 'complete',
        bytes,
        size: bytes,
        durationMs: 90 + (k % 120),
        client,
        server: '10.20.0.1:69',
        blksize: 1468,
        windowsize: 16,
        resent: k % 50 === 0 ? 2 : 0,
        options: { blksize: '1468', windowsize: '16', tsize: '0' },
      };
      return [type, 'tftp', null, null, null, JSON.stringify(data)];
    }
    case 'script-served': {
      const stage = k % 27 < 9 ? 'precache' : 'install';
      const moves = k % 27 === 5 ? ['registered', 'precaching'] : k % 27 === 23 ? ['precached', 'installing'] : [null, null];
      return [type, 'http', ...moves, `profile ${profile}: ${stage} boot`, JSON.stringify({ kind: 'boot', stage, profile })];
    }
    default: {
      const [artifact, bytes] = ASSETS[(k % BOOT.length) - 6] ?? ASSETS[0];
      const durationMs = Math.round(bytes / 110_000) + (k % 40);
      const message = `${profile}/${artifact}: GET 200, ${bytes} bytes in ${durationMs} ms`;
      return [type, 'http', null, null, message, JSON.stringify({ profile, artifact, method: 'GET', status: 200, bytes, durationMs, client })];
    }
  }
}

/**
 * Creates (or migrates) the store at `path` and inserts the machines, then `events[i]` events of
 * machine i (benchEvent; a failed machine's last moves it to failed), interleaved as a site's
 * timeline is: round r appends the r-th event of every machine that has one, so one machine's
 * rows are spread over the table as they are in a store that ran for weeks. Event times step
 * 2.5 s in that order, the last one at `now`. Commits every 100,000 rows. Returns how many rows and the seconds taken.
 */
export function seedStore(path, { machines, machine = (i) => benchMachine(i), events = [], now = Date.now() }) {
  const started = process.hrtime.bigint();
  // Migrations (and WAL mode) through the store itself.
  void openSqliteStore({ path }).close();
  const sql = new Database(path);
  // Nothing here needs to survive a power loss: the file is thrown away if seeding fails.
  sql.pragma('synchronous = OFF');
  const insert = sql.prepare('INSERT INTO machines (mac, uuid, state, profile, doc, created_at, updated_at) VALUES (?, NULL, ?, ?, ?, ?, ?)');
  const own = sql.prepare('INSERT INTO machine_macs (mac, machine) VALUES (?, ?)');
  const docs = [];
  sql.transaction(() => {
    for (let i = 0; i < machines; i++) {
      const m = machine(i);
      insert.run(m.mac, m.state, m.profile ?? null, JSON.stringify(m), m.createdAt, m.updatedAt);
      own.run(m.mac, m.mac);
      if (events.length) docs.push(m);
    }
  })();
  const insertEvent = sql.prepare('INSERT INTO events (machine, time, source, type, from_state, to_state, message, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?)');
  const rounds = Math.max(0, ...events);
  const first = now - (events.reduce((a, b) => a + b, 0) - 1) * 2500;
  let seq = 0;
  const batch = sql.transaction((from, to) => {
    for (let r = from; r < to; r++) {
      for (let i = 0; i < docs.length; i++) {
        const n = events[i] ?? 0;
        if (r >= n) continue;
        const [type, source, fromState, toState, message, data] = benchEvent(docs[i], r, r === n - 1);
        insertEvent.run(docs[i].mac, new Date(first + seq++ * 2500).toISOString(), source, type, fromState, toState, message, data);
      }
    }
  });
  // Rounds per transaction so that one commits about 100,000 rows while most machines take part.
  const step = Math.max(1, Math.floor(100_000 / Math.max(1, docs.length)));
  for (let r = 0; r < rounds; r += step) batch(r, Math.min(rounds, r + step));
  sql.pragma('wal_checkpoint(TRUNCATE)');
  sql.close();
  return { machines, events: seq, seconds: Number(process.hrtime.bigint() - started) / 1e9 };
}
