/** What PUT and PATCH /api/v1/machines/:mac make of a body: the reservation it asks for, merge patches over the current one. */
import { parseUuid, type Mac } from '../machines/mac.js';
import type { Machine, Reservation } from '../machines/model.js';
import { keepRedacted } from '../secrets/redact.js';
import { macOf } from './checks.js';
import { ApiError } from './errors.js';
import type { ReservationBody } from './schemas.js';

/**
 * Body (already schema-checked) → a reservation keyed by the path MAC. Answers show the
 * assisted URL's key redacted (redact-replies.ts); that redacted URL sent back keeps the key
 * `cur` holds, so a GET, an edit and a PUT do not break the machine's install.
 */
export function toReservation(pathMac: Mac, b: ReservationBody, cur: Machine | undefined): Reservation {
  if (b.mac !== undefined && macOf(b.mac) !== pathMac) {
    throw new ApiError('invalid_request', `body mac ${b.mac} differs from the MAC in the path (${pathMac})`, 400);
  }
  const macs = [...new Set((b.macs ?? []).map(macOf))].filter((m) => m !== pathMac);
  const r: Reservation = { mac: pathMac, macs, labels: b.labels ?? {} };
  if (b.uuid !== undefined) r.uuid = parseUuid(b.uuid);
  if (b.hostname !== undefined) r.hostname = b.hostname.toLowerCase();
  if (b.ip !== undefined) r.ip = b.ip;
  if (b.profile !== undefined) r.profile = b.profile;
  if (b.assisted !== undefined) {
    const kept = keepRedacted(b.assisted.ipxeScriptUrl, cur?.assisted?.ipxeScriptUrl);
    if ('refused' in kept) throw new ApiError('invalid_request', `assisted.ipxeScriptUrl: ${kept.refused}`, 400, { field: 'assisted.ipxeScriptUrl' });
    r.assisted = { ipxeScriptUrl: kept.value };
  }
  if (b.precache !== undefined) r.precache = b.precache;
  return r;
}

/** The machine's reservation: the record without what edgeboot itself keeps (state, observations, times, inventory, precache progress, token generation). */
export function reservationOf(m: Machine): Reservation {
  const { state: _s, observed: _o, createdAt: _c, updatedAt: _u, precachedAt: _p, inventory: _i, precacheProgress: _pp, tokenGeneration: _g, ...r } = m;
  return r;
}

/** RFC 7396 JSON merge patch. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return patch;
  // A Map keeps the target's key order, a changed key in its place and a new one at the end, as the object would.
  const out = new Map<string, unknown>(target !== null && typeof target === 'object' && !Array.isArray(target) ? Object.entries(target) : []);
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) out.delete(k);
    else out.set(k, mergePatch(out.get(k), v));
  }
  return Object.fromEntries(out);
}
