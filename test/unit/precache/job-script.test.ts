/** The precache job (src/precache/job.sh): bash parses it, and it runs on the settings Ignition writes. */
import { spawnSync } from 'node:child_process';
import t from 'tap';
import { PRECACHE_ENV_FILE, renderIgnition } from '../../../src/boot/ignition.js';
import { loadPrecacheJob, PRECACHE_JOB_PATH } from '../../../src/precache/job.js';

const script = loadPrecacheJob();

/** `bash -n` on the text: the syntax check, nothing runs. */
function bashSyntax(text: string): { status: number | null; stderr: string } {
  const r = spawnSync('bash', ['--norc', '--noprofile', '-n'], { input: text, encoding: 'utf8', timeout: 5000 });
  return { status: r.status, stderr: r.stderr };
}

t.test('bash parses the job', async (t) => {
  const r = bashSyntax(script);
  t.equal(r.status, 0, 'bash -n succeeds', { stderr: r.stderr });
  t.equal(r.stderr, '', 'without complaint');
  // The check bites: the same script with an unclosed if does not parse.
  t.not(bashSyntax(`${script}\nif true; then\n`).status, 0, 'a broken script fails bash -n');
});

t.test('the job is a bash script that sources the env file first', async (t) => {
  t.ok(PRECACHE_JOB_PATH.endsWith('/src/precache/job.sh'), 'loaded from src/precache/job.sh');
  const lines = script.split('\n');
  t.equal(lines[0], '#!/bin/bash', 'the shebang is #!/bin/bash');
  const code = lines.map((l) => l.replace(/\s+#.*$/, '').trim()).filter((l) => l !== '' && !l.startsWith('#'));
  const sourcing = code.findIndex((l) => l === `. ${PRECACHE_ENV_FILE}` || l === `source ${PRECACHE_ENV_FILE}`);
  t.ok(sourcing >= 0, `sources ${PRECACHE_ENV_FILE}, the file Ignition writes`);
  const firstUse = code.findIndex((l) => /\$\{?EDGEBOOT_(MACHINE_URL|TOKEN|MAC)\b/.test(l));
  t.ok(firstUse === -1 || sourcing < firstUse, 'before any line uses its settings');
});

t.test('every setting the job reads without a default is in the env file Ignition writes', async (t) => {
  const config = renderIgnition({
    eventsUrl: 'http://x/e',
    precache: { machineUrl: 'http://x/m', token: 't', mac: '52:54:00:ab:cd:ef', after: 'reboot', script },
  });
  const envFile = config.storage?.files.find((f) => f.path === PRECACHE_ENV_FILE);
  const env = Buffer.from(envFile?.contents.source.replace(/^data:;base64,/, '') ?? '', 'base64').toString('utf8');
  const defined = new Set([...env.matchAll(/^([A-Z_][A-Z0-9_]*)=/gm)].map((m) => m[1]));
  // `${EDGEBOOT_X:-default}` may be absent; `$EDGEBOOT_X` and `${EDGEBOOT_X}` must be set (the job runs with set -u).
  const used = [...script.matchAll(/\$(?:\{(EDGEBOOT_[A-Z0-9_]+)(:?-)?|(EDGEBOOT_[A-Z0-9_]+))/g)].filter((m) => m[2] === undefined).map((m) => m[1] ?? m[3]);
  t.ok(used.length > 0, 'the job reads its settings');
  for (const name of new Set(used)) t.ok(name !== undefined && defined.has(name), `${name} is in ${PRECACHE_ENV_FILE}`);
});
