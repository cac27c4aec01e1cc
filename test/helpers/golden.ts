import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Test } from 'tap';

/** UPDATE_GOLDEN=1 rewrites golden files instead of comparing with them. */
export const UPDATE_GOLDEN = process.env.UPDATE_GOLDEN === '1';

/** Compares `actual` with `dir/file` byte for byte, or rewrites the file under UPDATE_GOLDEN=1. */
export function golden(tt: Test, dir: string, file: string, actual: string): void {
  const path = join(dir, file);
  if (UPDATE_GOLDEN) {
    mkdirSync(dir, { recursive: true });
    writeFileSync(path, actual);
    tt.pass(`wrote ${file}`);
    return;
  }
  if (!existsSync(path)) {
    tt.fail(`golden file ${file} is missing: run with UPDATE_GOLDEN=1 and review it`);
    return;
  }
  tt.equal(actual, readFileSync(path, 'utf8'), `${file} matches byte for byte`);
}
