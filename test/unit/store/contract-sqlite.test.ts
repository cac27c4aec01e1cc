import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
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
