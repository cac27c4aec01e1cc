/** What PUT and PATCH /api/v1/machines/:mac make of a body: the reservation it asks for, merge patches over the current one. */
import { parseBmcAddress } from '../bmc/address.js';
import type { BmcSettings } from '../machines/bmc.js';
import { parseUuid, type Mac } from '../machines/mac.js';
import type { Machine, Reservation } from '../machines/model.js';
import { keepRedacted } from '../secrets/redact.js';
import { macOf } from './checks.js';
import { ApiError } from './errors.js';
import type { ReservationBody } from './schemas.js';

/** Seals a BMC password for the record (secrets/sealed-box.ts); passed in, so that the key stays in the wiring. */
export type SealPassword = (plain: string) => string;

/**
 * Body (already schema-checked) → a reservation keyed by the path MAC. Answers show the
 * assisted URL's key redacted (redact-replies.ts); that redacted URL sent back keeps the key
 * `cur` holds, so a GET, an edit and a PUT do not break the machine's install. The same holds for
 * the BMC's password, which answers never show: absent from the body, the stored one is kept.
 */
export function toReservation(pathMac: Mac, b: ReservationBody, cur: Machine | undefined, seal: SealPassword): Reservation {
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
  if (b.bmc !== undefined) r.bmc = bmcSettings(b.bmc, cur?.bmc, seal);
  return r;
}

/**
 * The BMC as the record keeps it: the address checked (bmc/address.ts), the password sealed. With
 * no password given the stored one is kept only while the address stays the same, so that a
 * password never follows an address change to another host (which would then be sent it).
 */
function bmcSettings(b: NonNullable<ReservationBody['bmc']>, cur: BmcSettings | undefined, seal: SealPassword): BmcSettings {
  const parsed = parseBmcAddress(b.address);
  if (!parsed.ok) throw new ApiError('invalid_bmc_address', `bmc.address: ${parsed.reason}`, 400, { field: 'bmc.address' });
  const pathId = parsed.systemPath?.slice(parsed.systemPath.lastIndexOf('/') + 1);
  if (pathId !== undefined && b.systemId !== undefined && pathId !== b.systemId && decodedSegment(pathId) !== b.systemId) {
    const message = `bmc.address names the system ${pathId} and bmc.systemId ${b.systemId}: give one of them`;
    throw new ApiError('invalid_bmc_address', message, 400, { field: 'bmc.systemId' });
  }
  let passwordSealed: string | undefined;
  if (b.password !== undefined) passwordSealed = seal(b.password);
  else if (cur?.passwordSealed !== undefined && cur.address === b.address) passwordSealed = cur.passwordSealed;
  else if (cur?.passwordSealed !== undefined) {
    const message = `bmc.address changed from ${cur.address} to ${b.address}: give bmc.password again (the stored one is not sent to another address)`;
    throw new ApiError('bmc_password_required', message, 400, { field: 'bmc.password' });
  }
  return {
    address: b.address,
    username: b.username,
    ...(passwordSealed !== undefined && { passwordSealed }),
    ...(b.systemId !== undefined && { systemId: b.systemId }),
    verifyTls: b.verifyTls ?? true,
    bootMode: b.bootMode ?? 'auto',
  };
}

/**
 * The machine's reservation as a PATCH merges over it: the record without what edgeboot itself keeps
 * (state, observations, times, inventory, precache progress, token generation, BMC status and run),
 * and the BMC without its sealed password, which the PUT schema does not take (toReservation keeps it).
 */
export function reservationOf(m: Machine): Reservation {
  const { state: _s, observed: _o, createdAt: _c, updatedAt: _u, precachedAt: _p, inventory: _i, precacheProgress: _pp, tokenGeneration: _g, ...rest } = m;
  const { bmcStatus: _bs, bmcRun: _br, bmc, ...r } = rest;
  if (bmc === undefined) return r;
  const { passwordSealed: _ps, ...settings } = bmc;
  return { ...r, bmc: settings };
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

function decodedSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    // A malformed %-escape: the segment is compared as written.
    return segment;
  }
}
