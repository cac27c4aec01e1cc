import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { openSqliteStore } from '../../../src/store/sqlite.js';
import type { Store } from '../../../src/store/store.js';
import { storeContract } from './contract.js';

const dir = mkdtempSync(join(tmpdir(), 'edgeboot-store-contract-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

storeContract(t, async () => {
  const path = join(dir, `edgeboot-${n++}.db`);
  const handles: Store[] = [];
  const open = () => {
    const s = openSqliteStore({ path });
    handles.push(s);
    return s;
  };
  const store = open();
  // Closing the first handle closes the others too, as a test's teardown closes only that one.
  const close = store.close;
  store.close = async () => {
    for (const h of handles.slice(1)) await h.close();
    await close();
  };
  return { store, second: open };
});
