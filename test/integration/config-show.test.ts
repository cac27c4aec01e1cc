/**
 * `edgeboot config show` as the real CLI, with a config file, the environment and --set; and the
 * real `serve` with only EDGEBOOT_SERVER_DATA_DIR set, whose database and cache land in the data
 * dir and not in the working directory (issue 15 §7). The pure view is test/unit/config/show.test.ts.
 */
import { spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { REDACTED } from '../../src/secrets/redact.js';
import { cleanEnv, killAtExit, MAIN_JS, onJsonLines, runCli, tempDir, type LogLine } from '../helpers/process.js';

const ADMIN = 'SECRET-admin-token-value';

t.test('edgeboot config show: a config file, the environment and --set, as serve reads them', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'edgeboot.yaml');
  writeFileSync(file, ['server: { dataDir: from-file }', `auth: { adminTokens: [${ADMIN}] }`, 'http: { listen: 127.0.0.1:9000 }', ''].join('\n'));
  const env = { EDGEBOOT_SERVER_DATA_DIR: join(dir, 'data'), EDGEBOOT_STORE_URL: 'postgres://edge:SECRET-pw@db/edgeboot' };

  const yaml = await runCli(t, ['config', 'show', '--config', file, '--set', 'cache.maxBytes=1GiB'], { cwd: dir, env });
  t.equal(yaml.code, 0, `exit 0 (stderr: ${yaml.stderr})`);
  t.match(yaml.stdout, new RegExp(`dataDir: ${join(dir, 'data')}\\n`), 'the environment over the file, absolute');
  t.match(yaml.stdout, new RegExp(`dir: ${join(dir, 'data', 'cache')}\\n`), 'the cache under the data dir');
  t.match(yaml.stdout, /listen: 127\.0\.0\.1:9000\n/, 'the file, as host:port');
  t.match(yaml.stdout, /maxBytes: 1073741824/, '--set');
  t.notMatch(yaml.stdout, /SECRET/, 'no secret printed');

  const json = await runCli(t, ['--json', 'config', 'show', file], { cwd: dir, env: { EDGEBOOT_SERVER_DATA_DIR: 'rel-data' } });
  t.equal(json.code, 0, `--json: exit 0 (stderr: ${json.stderr})`);
  const doc = JSON.parse(json.stdout) as { server: { dataDir: string }; store: { url: string }; cache: { dir: string }; auth: { adminTokens: string[] } };
  t.equal(doc.server.dataDir, join(dir, 'rel-data'), 'a relative data dir resolved against the working directory');
  t.equal(doc.store.url, `sqlite:${join(dir, 'rel-data', 'edgeboot.db')}`, 'the database under it');
  t.equal(doc.cache.dir, join(dir, 'rel-data', 'cache'));
  t.same(doc.auth.adminTokens, [REDACTED]);
  t.notOk(existsSync(join(dir, 'rel-data')), 'config show starts nothing and creates nothing');

  const bad = await runCli(t, ['config', 'show', '--set', 'store.url=mysql://edge:SECRET-pw@db/x'], { cwd: dir });
  t.equal(bad.code, 2, 'an invalid value: exit 2');
  t.match(bad.stderr, /store\.url/, 'naming the key');
  t.notMatch(bad.stderr, /SECRET/, 'without the password in the value it quotes');
});

t.test('serve with only EDGEBOOT_SERVER_DATA_DIR keeps its database and cache there', async (t) => {
  const cwd = tempDir(t);
  const dataDir = join(tempDir(t), 'data');
  const child = spawn(process.execPath, [MAIN_JS, 'serve', '--set', 'http.listen=127.0.0.1:0'], {
    cwd,
    env: cleanEnv({ EDGEBOOT_SERVER_DATA_DIR: dataDir }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  killAtExit(child);
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  t.teardown(async () => {
    child.kill('SIGTERM');
    await exited;
  });
  const serving = await new Promise<LogLine>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no "edgeboot serving" line within 20 s')), 20_000);
    onJsonLines(
      child.stdout,
      (v): v is LogLine => typeof v === 'object' && v !== null && 'msg' in v,
      (l) => {
        if (l.msg !== 'edgeboot serving') return;
        clearTimeout(timer);
        resolve(l);
      },
      () => undefined,
    );
    child.once('exit', (code) => reject(new Error(`serve exited (${code})`)));
  });
  t.equal(serving.store, `sqlite:${join(dataDir, 'edgeboot.db')}`, 'the start line names the database in the data dir');
  t.ok(existsSync(join(dataDir, 'edgeboot.db')), 'the database is in the data dir');
  t.ok(existsSync(join(dataDir, 'admin-token')), 'beside the admin token');
  t.notOk(existsSync(join(cwd, 'var')), 'nothing under ./var of the working directory');
});
