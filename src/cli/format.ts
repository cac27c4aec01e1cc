import type { Command } from 'commander';
import type { ClientOptions } from './client.js';

export function clientOptions(cmd: Command): ClientOptions {
  return cmd.optsWithGlobals<ClientOptions>();
}

// C0 controls (ESC, BEL, CR, …): what rewrites a terminal (ECMA-48 §5: ESC and CSI sequences).
const C0 = /[\x00-\x1f]/g;
const C0_BUT_NEWLINE = /[\x00-\x09\x0b-\x1f]/g;
// DEL, the C1 controls (U+009B is a one-character CSI) and the Unicode bidi and line-separator
// controls (U+202E shows text backwards; Unicode TR9 §2). As \uXXXX they read the same in
// JSON, so the safety net of `print` leaves --json output parsing to the exact original.
const WIDE = /[\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

const hex = (c: string, width: number): string => c.charCodeAt(0).toString(16).padStart(width, '0');
const escapeWide = (s: string): string => s.replace(WIDE, (c) => `\\u${hex(c, 4)}`);

/** Server-provided text for one line or cell of a terminal: every control shown as an escape (`\x1b`, `\u202e`), newlines included. */
export function visible(s: string): string {
  return escapeWide(s.replace(C0, (c) => `\\x${hex(c, 2)}`));
}

/** Whole output for a terminal: controls escaped as in `visible`, the newlines that lay it out kept. */
export function terminalSafe(s: string): string {
  return escapeWide(s.replace(C0_BUT_NEWLINE, (c) => `\\x${hex(c, 2)}`));
}

/** Rows as columns padded to their widest cell; cells shown with `visible`. */
export function table(rows: string[][]): string {
  const cells = rows.map((r) => r.map(visible));
  const widths = cells[0]?.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length))) ?? [];
  return cells
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i] ?? 0))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** 1536 → "1.5 KiB". */
export function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n} B` : `${v.toFixed(1)} ${units[u]}`;
}
