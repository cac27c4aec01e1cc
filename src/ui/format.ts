/** How the dashboard writes numbers, times and a machine's columns: pure, handed to every template as `f`. */
import type { Machine } from '../machines/model.js';
import { redactSecrets } from '../secrets/redact.js';

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

export function bytes(n: number | undefined): string {
  if (n === undefined || !Number.isFinite(n)) return '—';
  let v = n;
  let u = 0;
  while (v >= 1024 && u < UNITS.length - 1) {
    v /= 1024;
    u++;
  }
  return `${u === 0 ? v : v.toFixed(v < 10 ? 2 : 1)} ${UNITS[u]}`;
}

export function duration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 2 : 1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.round(s % 60)} s`;
  const h = Math.floor(m / 60);
  return h < 48 ? `${h} h ${m % 60} min` : `${Math.floor(h / 24)} d`;
}

/** `3 min ago`, from an ISO time: one unit, as a glance at a table wants it (the exact time is the cell's title). */
export function ago(iso: string | undefined, now: Date): string {
  if (!iso) return 'never';
  const s = Math.floor((now.getTime() - Date.parse(iso)) / 1000);
  if (s < 5) return 'just now';
  if (s < 90) return `${s} s ago`;
  if (s < 90 * 60) return `${Math.round(s / 60)} min ago`;
  if (s < 48 * 3600) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

/** `2026-12-07 15:04:05` in UTC, the form every page and log shares. */
export function time(iso: string | undefined): string {
  return iso ? iso.replace('T', ' ').replace(/\.\d+Z$|Z$/, '') : '—';
}

export const macPath = (mac: string): string => mac.replaceAll(':', '-');

export function firmware(m: Pick<Machine, 'observed'>): string {
  const { platform, arch } = m.observed;
  if (!platform && !arch) return '—';
  return [platform === 'efi' ? 'UEFI' : platform === 'pcbios' ? 'BIOS' : platform, arch].filter(Boolean).join(' ');
}

export function power(m: Pick<Machine, 'bmc' | 'bmcStatus'>): string {
  if (!m.bmc) return '';
  if (m.bmcStatus?.reachable === false) return 'BMC unreachable';
  return m.bmcStatus?.powerState ?? 'unknown';
}

export function percent(done: number, total: number): number {
  return total > 0 ? Math.min(100, Math.round((done / total) * 100)) : 0;
}

/** Any text from the outside (an event message, a URL, an upstream's error) as a page shows it: secrets cut. */
export function safe(text: unknown): string {
  if (typeof text === 'string') return redactSecrets(text);
  return text === undefined ? '' : redactSecrets(JSON.stringify(text));
}

/** Text for an HTML attribute or element built outside the template engine's own escaping. */
export const esc = (text: string): string =>
  text.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/'/g, '&#39;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export const formatters = { esc, bytes, duration, ago, time, macPath, firmware, power, percent, safe };
export type Formatters = typeof formatters;
