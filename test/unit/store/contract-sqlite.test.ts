import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import t from 'tap';
import type { Mac } from '../../../src/machines/mac.js';
import { MIGRATIONS } from '../../../src/store/migrations.js';
import { openSqliteStore } from '../../../src/store/sqlite.js';
import type { Store } from '../../../src/store/store.js';
import { storeContract } from './contract.js';

const dir = mkdtempSync(join(tmpdir(), 'edgeboot-store-contract-'));
// Every handle of every case, second handles included; closing twice is harmless.
const handles: Store[] = [];
t.teardown(async () => {
  for (const h of handles) await h.close();
  rmSync(dir, { recursive: true, force: true });
});
let n = 0;

storeContract(t, async () => {
  const path = join(dir, `edgeboot-${n++}.db`);
  const open = () => {
    const s = openSqliteStore({ path });
    handles.push(s);
    return s;
  };
  return { store: open(), second: open };
});

t.test('migration 7: machines of an older database start at version 1', async (t) => {
  const path = join(dir, 'before-versions.db');
  const old = new Database(path);
  old.exec('CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)');
  for (const m of MIGRATIONS.filter((m) => m.version <= 6)) {
    old.exec(m.sql);
    old.prepare('INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)').run(m.version, '2026-01-01T00:00:00.000Z');
  }
  const mac = '52:54:00:00:00:01' as Mac;
  const doc = { mac, macs: [], labels: {}, state: 'discovered', observed: {}, createdAt: '2026-01-01', updatedAt: '2026-01-01' };
  old
    .prepare("INSERT INTO machines (mac, state, doc, created_at, updated_at) VALUES (?, 'discovered', ?, '2026-01-01', '2026-01-01')")
    .run(mac, JSON.stringify(doc));
  old.prepare('INSERT INTO machine_macs (mac, machine) VALUES (?, ?)').run(mac, mac);
  old.close();
  const store = openSqliteStore({ path });
  handles.push(store);
  t.equal((await store.readMachine(mac))?.version, 1);
  await store.mutateMachine(mac, (m) => (m ? { kind: 'save', machine: { ...m, hostname: 'h' } } : { kind: 'keep' }));
  t.equal((await store.readMachine(mac))?.version, 2);
});
