/**
 * The ids a rewritten hub script names (/assets/hub/{id}/…) outlive a restart: a machine whose
 * initramfs fetches its rootfs after edgeboot restarted still gets it. They are kept in the
 * SQLite store (file mode 0600: it holds the api_key), refreshed at each registration and
 * dropped a week after the last.
 */
import { rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { HubArtifacts } from '../../src/boot/hub-artifacts.js';
import { createLogger } from '../../src/log.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import { tempDir } from '../helpers/app.js';

const URL_WITH_KEY = 'https://hub.example/api/assisted-install/v2/boot-artifacts/rootfs?arch=x86_64&version=4.18&api_key=SECRET-KEY';

t.test('a hub artifact id is found again after a restart, and expires a week after its last use', async (t) => {
  const dir = tempDir();
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const dbPath = join(dir, 'edgeboot.db');
  let now = new Date('2026-12-01T12:00:00Z');
  const start = () => {
    const store = openSqliteStore({ path: dbPath });
    const ids = new HubArtifacts({ store, log: createLogger('silent'), now: () => now });
    return { store, ids };
  };

  const first = start();
  t.equal(statSync(dbPath).mode & 0o777, 0o600, 'the store file is private to its owner');
  const id = first.ids.register({ url: URL_WITH_KEY, revalidate: true });
  t.match(id, /^[0-9a-f]{16}$/);
  t.same(await first.ids.registered(id), { url: URL_WITH_KEY, revalidate: true });
  await new Promise((resolve) => setImmediate(resolve));
  await first.store.close();

  const second = start();
  t.teardown(() => second.store.close());
  t.same(await second.ids.registered(id), { url: URL_WITH_KEY, revalidate: true }, 'after a restart, with its api_key for the upstream');
  t.equal(await second.ids.registered('0123456789abcdef'), undefined, 'an id never registered is unknown');

  // Eight days later another registration prunes the old one; a new process no longer knows it.
  now = new Date('2026-12-09T12:00:01Z');
  const other = second.ids.register({ url: 'https://hub.example/other?api_key=K2' });
  await new Promise((resolve) => setImmediate(resolve));
  t.equal(await second.store.getHubArtifact(id), undefined, 'pruned from the store');
  t.ok(await second.store.getHubArtifact(other), 'the fresh one kept');
});
