/**
 * The operator's everyday commands, as the real CLI (`node dist/main.js …`) runs them against a
 * real `edgeboot serve` on loopback: `--version`; `machines script` (the script a machine would
 * get, secrets cut, nothing moved); `machines reset --force` and `machines event` getting a
 * machine stuck in installing out; and the errors of `machines add` that name a field naming
 * the flag that sets it.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import type { Machine } from '../../src/machines/model.js';
import type { EventBody } from '../helpers/app.js';
import { REPO_ROOT, runCli, startServer, tempDir, type CliResult } from '../helpers/process.js';

// The chain mode hands the machine the hub's URL: no hub needed to reach installing.
const srv = await startServer(t, { args: ['--set', 'boot.assistedChain=chain'] });
const conn = ['--server', srv.url, '--token', srv.token];
const HUB = 'https://hub.example.com/api/assisted-install/v2/infra-envs/5/downloads/files?file_name=ipxe-script&api_key=operator-test-key';
const STUCK = '52:54:00:0e:00:01';

/** `edgeboot <args> --server URL --token T`, from a directory with no ./var. */
const cli = (args: string[]): Promise<CliResult> => runCli(t, [...args, ...conn], { cwd: tempDir(t) });
/** The machine's own boot request: from 127.0.0.1, its reservation's ip. */
const boot = async (mac: string): Promise<string> => (await fetch(`${srv.url}/ipxe?mac=${mac}`)).text();
const stateOf = async (mac: string): Promise<string> =>
  ((await (await fetch(`${srv.url}/api/v1/machines/${mac}`, { headers: { authorization: `Bearer ${srv.token}` } })).json()) as Machine).state;

t.test('--version and -V print the version of package.json, from any directory', async (t) => {
  const version = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  for (const flag of ['--version', '-V']) {
    const r = await runCli(t, [flag], { cwd: tempDir(t) });
    t.equal(r.code, 0, `${flag}: exit 0`);
    t.equal(r.stdout, `${version}\n`, `${flag}: the version alone`);
    t.equal(r.stderr, '', `${flag}: nothing on stderr`);
  }
});

t.test('a machine stuck in installing: see its script, force it out, report it installed', async (t) => {
  const add = await cli(['machines', 'add', STUCK, '--profile', 'assisted', '--assisted-url', HUB, '--ip', '127.0.0.1']);
  t.equal(add.code, 0, `add (stderr: ${add.stderr})`);

  const preview = await cli(['machines', 'script', STUCK]);
  t.equal(preview.code, 0, `script exits 0 (stderr: ${preview.stderr})`);
  t.match(preview.stdout, /^#!ipxe\n/, 'stdout is the iPXE script…');
  const chain = /^chain --replace --autofree https:\/\/hub\.example\.com\/\S+api_key=\*redacted\* \|\| exit$/m;
  t.match(preview.stdout, chain, "…chaining to the hub, the hub's key cut");
  t.notMatch(preview.stdout, /operator-test-key/, 'the key is nowhere');
  t.equal(preview.stderr, `${STUCK}: registered -> installing when served: install stage: assisted\n`, 'stderr says what serving it would do');
  t.equal(await stateOf(STUCK), 'registered', 'the preview moved nothing');

  const served = await boot(STUCK);
  t.equal(preview.stdout, `${served.replace(/api_key=[^&\s]+/, 'api_key=*redacted*').trimEnd()}\n`, 'the boot served the previewed script');
  t.equal(await stateOf(STUCK), 'installing', 'the machine is installing, and never reports back');

  const json = await cli(['machines', 'script', STUCK, '--json']);
  const decision = { kind: 'boot', stage: 'install', profile: 'assisted' };
  t.match(JSON.parse(json.stdout), { mac: STUCK, state: 'installing', decision }, '--json: the decision');

  const refused = await cli(['machines', 'reset', STUCK]);
  t.equal(refused.code, 1, 'a plain reset refuses');
  t.match(refused.stderr, /in state installing: without force, only failed or installed machines can be reset \[invalid_transition\]/);

  const forced = await cli(['machines', 'reset', '--force', STUCK]);
  t.equal(forced.code, 0, `reset --force exits 0 (stderr: ${forced.stderr})`);
  t.equal(forced.stdout, `${STUCK} is now registered\n`);
  const show = await cli(['machines', 'show', STUCK, '--json']);
  const { events } = JSON.parse(show.stdout) as { events: EventBody[] };
  t.match(
    events.at(-1),
    {
      type: 'state-changed',
      source: 'api',
      from: 'installing',
      to: 'registered',
      message: 'forced reset to registered from installing',
      data: { forced: true, actor: 'admin', client: '127.0.0.1' },
    },
    'on the timeline: forced, by whom, from where, from which state',
  );

  await boot(STUCK);
  t.equal(await stateOf(STUCK), 'installing', 'booted into the installer again');
  const note = await cli(['machines', 'event', STUCK, 'operator-note', '--message', 'console shows the installer done']);
  t.equal(note.code, 0, `event exits 0 (stderr: ${note.stderr})`);
  t.equal(note.stdout, `${STUCK}: operator-note recorded, state unchanged\n`, 'a type of its own is recorded only');
  const done = await cli(['machines', 'event', STUCK, 'install-done']);
  t.equal(done.code, 0, `install-done exits 0 (stderr: ${done.stderr})`);
  t.equal(done.stdout, `${STUCK}: install-done recorded, state installing -> installed\n`, 'install-done moves it, through the state machine');
  t.equal(await stateOf(STUCK), 'installed');
  const again = await cli(['machines', 'event', STUCK, 'install-done']);
  t.equal(again.code, 1, 'the state machine refuses install-done when no install runs');
  t.match(again.stderr, /cannot apply install-done to a machine in state installed: no install is running \[invalid_transition\]/);
  const badType = await cli(['machines', 'event', STUCK, 'Install Done']);
  t.equal(badType.code, 1, 'a malformed type is refused before any request');
  t.match(badType.stderr, /a lower-case word of letters, digits, dots and hyphens/);

  const unknown = await cli(['machines', 'script', '52:54:00:0e:00:99']);
  t.equal(unknown.code, 1);
  t.equal(unknown.stderr, 'edgeboot: no machine has MAC 52:54:00:0e:00:99 [machine_not_found]\n', 'an unknown MAC says so');
});

t.test('an error that names a field names the flag that sets it', async (t) => {
  const M = '52:54:00:0e:00:02';
  const cases: [string[], string][] = [
    [['--profile', 'precache-assisted'], 'edgeboot: profile precache-assisted needs assisted.ipxeScriptUrl (--assisted-url) [missing_field]\n'],
    [
      ['--profile', 'assisted', '--assisted-url', 'https://hub.example.com/s?api_key=*redacted*'],
      'edgeboot: assisted.ipxeScriptUrl (--assisted-url): it holds *redacted*, the mark of a secret cut from an API answer, ' +
        "and is not the stored value's redacted form: send the full value [invalid_request]\n",
    ],
    [
      ['--profile', 'precache-assisted', '--assisted-url', HUB, '--size-gib', '0'],
      'edgeboot: invalid body: /precache/sizeGiB (--size-gib) must be >= 1 [invalid_request]\n',
    ],
    [
      ['--profile', 'precache-assisted', '--assisted-url', HUB, '--live-profile', 'assisted'],
      'edgeboot: precache.liveProfile (--live-profile) assisted is not a loaded profile that boots a kernel [unknown_profile]\n',
    ],
  ];
  for (const [args, stderr] of cases) {
    const r = await cli(['machines', 'add', M, ...args]);
    t.equal(r.code, 1, `${args.join(' ')}: exit 1`);
    t.equal(r.stderr, stderr, `${args.join(' ')}: the flag named`);
    t.equal(r.stdout, '', 'nothing on stdout');
  }
  const hostname = await cli(['machines', 'add', M, '--hostname', 'no_underscores']);
  t.match(hostname.stderr, /^edgeboot: invalid body: \/hostname \(--hostname\) must match pattern/, 'a schema error at a top-level field');
});
