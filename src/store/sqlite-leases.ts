import type Database from 'better-sqlite3';
import type { Lease } from './lease.js';
import type { LeaseRepository } from './store.js';

interface LeaseRow {
  ip: string;
  mac: string;
  state: Lease['state'];
  expires_at: number;
  hostname: string | null;
}

const UPSERT = `INSERT INTO leases (ip, mac, state, expires_at, hostname) VALUES (@ip, @mac, @state, @expiresAt, @hostname)
  ON CONFLICT (ip) DO UPDATE SET mac = excluded.mac, state = excluded.state, expires_at = excluded.expires_at, hostname = excluded.hostname`;

const leaseOf = (r: LeaseRow): Lease => ({
  ip: r.ip,
  mac: r.mac,
  state: r.state,
  expiresAt: r.expires_at,
  ...(r.hostname !== null && { hostname: r.hostname }),
});
const rowOf = (l: Lease) => ({ ip: l.ip, mac: l.mac, state: l.state, expiresAt: l.expiresAt, hostname: l.hostname ?? null });

export function sqliteLeases(db: Database.Database): LeaseRepository {
  const q = {
    all: db.prepare<[], LeaseRow>('SELECT * FROM leases'),
    upsert: db.prepare(UPSERT),
    // The address is taken over only if it is free, expired, or already this client's.
    claim: db.prepare(`${UPSERT} WHERE leases.mac = excluded.mac OR leases.expires_at <= @now`),
    remove: db.prepare<[string]>('DELETE FROM leases WHERE ip = ?'),
    removeOthers: db.prepare<[string, string]>('DELETE FROM leases WHERE mac = ? AND ip != ?'),
  };
  return {
    listLeases: async () => q.all.all().map(leaseOf),

    async writeLeases(save, remove) {
      db.transaction(() => {
        for (const ip of remove) q.remove.run(ip);
        for (const l of save) {
          // One address per client: a new binding ends the client's older ones.
          if (l.mac) q.removeOthers.run(l.mac, l.ip);
          q.upsert.run(rowOf(l));
        }
      }).immediate();
    },

    async claimLease(lease, now) {
      return db
        .transaction(() => {
          if (q.claim.run({ ...rowOf(lease), now }).changes === 0) return false;
          if (lease.mac) q.removeOthers.run(lease.mac, lease.ip);
          return true;
        })
        .immediate();
    },
  };
}
