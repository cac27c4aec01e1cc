import { ClientError } from './client.js';

/** The flag of `machines add` that sets each reservation field a server error may name. */
export const RESERVATION_FLAGS: Readonly<Record<string, string>> = {
  profile: '--profile',
  hostname: '--hostname',
  ip: '--ip',
  uuid: '--uuid',
  macs: '--mac',
  labels: '--label',
  assisted: '--assisted-url',
  'assisted.ipxeScriptUrl': '--assisted-url',
  'precache.release': '--release',
  'precache.images': '--image',
  'precache.sizeGiB': '--size-gib',
  'precache.disk': '--disk',
  'precache.liveProfile': '--live-profile',
  'precache.bundle': '--bundle',
  bmc: '--bmc',
  'bmc.address': '--bmc',
  'bmc.username': '--bmc-user',
  'bmc.password': '--bmc-password-file',
  'bmc.systemId': '--bmc-system-id',
  'bmc.bootMode': '--bmc-boot-mode',
};

interface SchemaProblem {
  path?: unknown;
  params?: { missingProperty?: unknown };
}

/**
 * The reservation fields a server error names, dotted (`precache.sizeGiB`): `details.missing`
 * of `missing_field`, `details.field`, and the paths of a schema error (`body/precache/sizeGiB`,
 * or the property a `required` rule misses).
 */
export function fieldsOf(details: unknown): string[] {
  if (details === null || typeof details !== 'object') return [];
  const out: string[] = [];
  if (Array.isArray(details)) {
    const problems: unknown[] = details;
    for (const item of problems) {
      if (typeof item !== 'object' || item === null) continue;
      const p: SchemaProblem = item;
      if (typeof p.path !== 'string' || !p.path.startsWith('body')) continue;
      const parts = p.path
        .slice('body'.length)
        .split('/')
        .filter((s) => s !== '');
      if (typeof p.params?.missingProperty === 'string') parts.push(p.params.missingProperty);
      if (parts.length > 0) out.push(parts.join('.'));
    }
    return out;
  }
  const d = details as { missing?: unknown; field?: unknown };
  if (Array.isArray(d.missing)) out.push(...d.missing.filter((f): f is string => typeof f === 'string'));
  if (typeof d.field === 'string') out.push(d.field);
  return out;
}

const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

/**
 * The message with each field that has a flag followed by that flag, where the message names
 * it (as `assisted.ipxeScriptUrl` or as a schema path `/precache/sizeGiB`):
 * `profile sno needs assisted.ipxeScriptUrl (--assisted-url)`. A field the message does not
 * name gets its flag at the end.
 */
export function withFlags(message: string, fields: readonly string[], flags: Readonly<Record<string, string>>): string {
  let out = message;
  for (const field of new Set(fields)) {
    const flag = Object.hasOwn(flags, field) ? flags[field] : undefined;
    if (flag === undefined) continue;
    const spelled = `(?:${escape(field)}|${escape(`/${field.replace(/\./g, '/')}`)})`;
    const named = new RegExp(`(^|[^A-Za-z0-9_./])(${spelled})(?![A-Za-z0-9_])`);
    out = named.test(out) ? out.replace(named, (_whole, before: string, name: string) => `${before}${name} (${flag})`) : `${out} (${field}: ${flag})`;
  }
  return out;
}

/** A server error of a reservation write, its fields named with the flags of `machines add`; other errors as they are. */
export function namingFlags(err: unknown): never {
  if (!(err instanceof ClientError)) throw err;
  const fields = fieldsOf(err.details);
  if (fields.length === 0) throw err;
  throw new ClientError(withFlags(err.message, fields, RESERVATION_FLAGS), err.status, err.code, err.details);
}
