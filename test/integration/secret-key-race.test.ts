/**
 * Two servers starting at once on one data dir must end up with one secret key (the exclusive
 * create of secrets/sealed-box.ts), or each would seal BMC passwords the other cannot open. Real
 * processes (the built dist/), started together, each printing the key it loaded.
 */
import { execFile } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import t from 'tap';
import { REPO_ROOT, tempDir } from '../helpers/process.js';

const run = promisify(execFile);
const MODULE = pathToFileURL(join(REPO_ROOT, 'dist', 'secrets', 'sealed-box.js')).href;
const STARTS = 8;

t.test(`${STARTS} processes loading a key that does not exist yet all get the same one`, async (t) => {
  const file = join(tempDir(t), 'data', 'secret.key');
  const program = `const { loadSecretKey } = await import(${JSON.stringify(MODULE)}); process.stdout.write(loadSecretKey(process.argv[1]).toString('hex'));`;
  const keys = await Promise.all(
    Array.from({ length: STARTS }, async () => (await run(process.execPath, ['--input-type=module', '-e', program, file], { timeout: 15_000 })).stdout),
  );
  t.equal(new Set(keys).size, 1, 'one key');
  t.equal(`${keys[0]}\n`, readFileSync(file, 'utf8'), 'the one in the file');
  t.equal(statSync(file).mode & 0o777, 0o600);
});
