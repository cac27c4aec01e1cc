/**
 * Many machines written straight into a store file, for listing tests: one transaction,
 * where the store's one-write-per-transaction path (an fsync each) would take seconds per
 * thousand. The file is opened through the store first, so its migrations have run.
 */
import Database from 'better-sqlite3';
import type { Mac } from '../../src/machines/mac.js';
import type { Machine } from '../../src/machines/model.js';
import { MACHINE_STATES } from '../../src/machines/state.js';
import { openSqliteStore } from '../../src/store/sqlite.js';

/** The i-th seeded MAC: `52:54:00:xx:xx:xx`, sorted as i is. */
export function seededMac(i: number): Mac {
  const hex = (0x525400000000 + i).toString(16).padStart(12, '0');
  return hex.replace(/(..)(?!$)/g, '$1:') as Mac;
}

/**
 * Machine i: state MACHINE_STATES[i % n], profile `p<i % 3>` (none when discovered), labels
 * `site=s<i % 4>` and `rack=r<i % 5>`, seen at second i after 2026-01-01.
 */
export function seededMachine(i: number): Machine {
  const state = MACHINE_STATES[i % MACHINE_STATES.length] ?? 'discovered';
  const time = new Date(Date.UTC(2026, 0, 1) + i * 1000).toISOString();
  return {
    mac: seededMac(i),
    macs: [],
    labels: { site: `s${i % 4}`, rack: `r${i % 5}` },
    ...(state !== 'discovered' && { profile: `p${i % 3}` }),
    state,
    observed: { lastSeenAt: time },
    createdAt: time,
    updatedAt: time,
  };
}

export async function seedMachines(dbPath: string, machines: readonly Machine[]): Promise<void> {
  await openSqliteStore({ path: dbPath }).close();
  const db = new Database(dbPath);
  try {
    const insert = db.prepare('INSERT INTO machines (mac, uuid, state, profile, doc, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)');
    const own = db.prepare('INSERT INTO machine_macs (mac, machine) VALUES (?, ?)');
    db.transaction(() => {
      for (const m of machines) {
        insert.run(m.mac, m.uuid ?? null, m.state, m.profile ?? null, JSON.stringify(m), m.createdAt, m.updatedAt);
        for (const x of [m.mac, ...m.macs]) own.run(x, m.mac);
      }
    })();
  } finally {
    db.close();
  }
}
