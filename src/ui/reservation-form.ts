/**
 * The reservation form: a machine's record as form fields, and the fields back into the body of
 * `PUT /api/v1/machines/{mac}`. Fields the form does not show (extra MACs, precache images, a
 * bundle) are carried over from the record, so saving the form changes only what it shows.
 */
import type { Machine } from '../machines/model.js';
import { redactSecrets } from '../secrets/redact.js';

/** Field names are the API's paths (`bmc.address`), so the API's errors land on them. */
export type ReservationForm = Record<string, string>;

export function formOf(m: Machine): ReservationForm {
  const f: ReservationForm = { mac: m.mac };
  if (m.hostname !== undefined) f.hostname = m.hostname;
  if (m.ip !== undefined) f.ip = m.ip;
  if (m.uuid !== undefined) f.uuid = m.uuid;
  if (m.profile !== undefined) f.profile = m.profile;
  f.labels = Object.entries(m.labels)
    .map(([k, v]) => `${k}=${v}`)
    .join('\n');
  // Shown with its key cut; sent back unchanged, the API keeps the stored key (keepRedacted).
  if (m.assisted) f['assisted.ipxeScriptUrl'] = redactSecrets(m.assisted.ipxeScriptUrl);
  if (m.precache?.release !== undefined) f['precache.release'] = m.precache.release;
  if (m.precache?.disk !== undefined) f['precache.disk'] = m.precache.disk;
  if (m.bmc) {
    f['bmc.address'] = m.bmc.address;
    f['bmc.username'] = m.bmc.username;
    if (!m.bmc.verifyTls) f['bmc.insecure'] = 'on';
    f['bmc.bootMode'] = m.bmc.bootMode;
  }
  return f;
}

/** The form as posted: every value a trimmed string (a repeated field keeps its first value). */
export function postedForm(body: unknown): ReservationForm {
  const f: ReservationForm = {};
  if (typeof body !== 'object' || body === null) return f;
  for (const [k, v] of Object.entries(body as Record<string, unknown>)) {
    const value: unknown = Array.isArray(v) ? v[0] : v;
    if (typeof value === 'string' && k !== '_csrf') f[k] = k === 'bmc.password' ? value : value.trim();
  }
  return f;
}

/** The PUT body of a posted form, or the problems of fields the API cannot be asked about (a label line without `=`). */
export function bodyOf(f: ReservationForm, current: Machine | undefined): { body: Record<string, unknown> } | { fields: Record<string, string> } {
  const labels: Record<string, string> = {};
  for (const line of (f.labels ?? '').split(/\r?\n/)) {
    const l = line.trim();
    if (!l) continue;
    const eq = l.indexOf('=');
    if (eq <= 0) return { fields: { labels: `${JSON.stringify(l)} is not key=value` } };
    labels[l.slice(0, eq).trim()] = l.slice(eq + 1).trim();
  }
  const body: Record<string, unknown> = { labels };
  if (current && current.macs.length > 0) body.macs = current.macs;
  for (const k of ['hostname', 'ip', 'uuid', 'profile'] as const) if (f[k]) body[k] = f[k];
  if (f['assisted.ipxeScriptUrl']) body.assisted = { ipxeScriptUrl: f['assisted.ipxeScriptUrl'] };
  const precache = { ...current?.precache };
  delete precache.release;
  delete precache.disk;
  if (f['precache.release']) precache.release = f['precache.release'];
  if (f['precache.disk']) precache.disk = f['precache.disk'];
  if (Object.keys(precache).length > 0) body.precache = precache;
  if (f['bmc.address']) {
    body.bmc = {
      address: f['bmc.address'],
      username: f['bmc.username'] ?? '',
      ...(f['bmc.password'] && { password: f['bmc.password'] }),
      ...(current?.bmc?.systemId !== undefined && { systemId: current.bmc.systemId }),
      verifyTls: f['bmc.insecure'] !== 'on',
      ...(f['bmc.bootMode'] && { bootMode: f['bmc.bootMode'] }),
    };
  }
  return { body };
}
