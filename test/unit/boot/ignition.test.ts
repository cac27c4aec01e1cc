import AjvDraft04Module from 'ajv-draft-04';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import {
  PRECACHE_ENV_FILE,
  PRECACHE_JOB_FILE,
  PRECACHE_UNIT,
  renderIgnition,
  type IgnitionConfig,
  type IgnitionInput,
  type PrecacheJob,
} from '../../../src/boot/ignition.js';
import { loadPrecacheJob } from '../../../src/precache/job.js';

// ajv-draft-04 is CommonJS; under NodeNext its class arrives as the module's `default` member
// (at run time module.exports is the class and carries itself as `.default`).
const AjvDraft04 = AjvDraft04Module.default;

// coreos/ignition's config/v3_4/schema/ignition.json, carried in test/fixtures (see its README).
const SCHEMA_PATH = fileURLToPath(new URL('../../fixtures/ignition-v3_4.schema.json', import.meta.url));
const schema = JSON.parse(readFileSync(SCHEMA_PATH, 'utf8')) as Record<string, unknown>;
const ajv = new AjvDraft04({ allErrors: true, strict: true });
const validate = ajv.compile(schema);

const EVENTS_URL = 'http://10.77.0.1:8080/api/v1/machines/52-54-00-ab-cd-ef/events?token=EVTTOK0123456789abcdefABCDEF_-xy';

/**
 * Splits a systemd command line into its arguments the way systemd does for ExecStart:
 * whitespace separates, double or single quotes group, `%%` is a literal `%`. Any other `%`
 * specifier or `$` expansion is reported, since systemd would replace it.
 */
function systemdArgv(line: string): { argv: string[]; specifiers: string[]; expansions: string[] } {
  const specifiers = [...line.matchAll(/%(.)/g)].map((m) => m[0]).filter((s) => s !== '%%');
  const expansions = [...line.matchAll(/\$\{?[A-Za-z_]/g)].map((m) => m[0]);
  const argv: string[] = [];
  let cur = '';
  let inWord = false;
  let quote: '"' | "'" | undefined;
  for (const c of line) {
    if (quote) {
      if (c === quote) quote = undefined;
      else cur += c;
      continue;
    }
    if (c === '"' || c === "'") {
      quote = c;
      inWord = true;
    } else if (c === ' ' || c === '\t') {
      if (inWord) argv.push(cur);
      cur = '';
      inWord = false;
    } else {
      cur += c;
      inWord = true;
    }
  }
  if (quote) throw new Error(`unbalanced ${quote} in ${line}`);
  if (inWord) argv.push(cur);
  return { argv: argv.map((a) => a.replaceAll('%%', '%')), specifiers, expansions };
}

function unit(config: IgnitionConfig): { name: string; enabled: boolean; contents: string } {
  const units = config.systemd.units;
  if (units.length !== 1 || !units[0]) throw new Error(`expected one unit, got ${units.length}`);
  return units[0];
}

function execStart(config: IgnitionConfig): string {
  const lines = unit(config)
    .contents.split('\n')
    .filter((l) => l.startsWith('ExecStart='));
  if (lines.length !== 1 || lines[0] === undefined) throw new Error(`expected one ExecStart, got ${lines.length}`);
  return lines[0].slice('ExecStart='.length);
}

/** What curl is asked to do, from its argv. */
function curlCall(argv: string[]): { url: string | undefined; body: string | undefined; headers: string[] } {
  const headers: string[] = [];
  let body: string | undefined;
  const positional: string[] = [];
  for (let i = 1; i < argv.length; i++) {
    const a = argv[i] ?? '';
    if (a === '-H') headers.push(argv[++i] ?? '');
    else if (a === '-d' || a === '--data') body = argv[++i];
    else if (a === '--retry' || a === '--retry-delay') i++;
    else if (!a.startsWith('-')) positional.push(a);
  }
  return { url: positional.length === 1 ? positional[0] : undefined, body, headers };
}

const inputs: [string, IgnitionInput][] = [
  ['no hostname', { eventsUrl: EVENTS_URL }],
  ['a hostname', { eventsUrl: EVENTS_URL, hostname: 'sno-1' }],
  ['a dotted hostname', { eventsUrl: EVENTS_URL, hostname: 'sno-1.lab.example' }],
  ['a URL with percent escapes', { eventsUrl: 'http://[fe80::1%25eth0]:8080/api/v1/machines/52-54-00-ab-cd-ef/events?token=a%2Fb' }],
];

t.test('the schema is the Ignition 3.4 draft-04 schema, and it bites', async (t) => {
  t.equal(schema.$schema, 'http://json-schema.org/draft-04/schema#');
  t.ok(validate({ ignition: { version: '3.4.0' } }), 'a minimal config is valid');
  t.notOk(validate({}), 'ignition is required');
  t.notOk(validate({ ignition: { version: '3.4.0' }, systemd: { units: [{ enabled: true }] } }), 'a unit needs a name');
  t.notOk(validate({ ignition: { version: '3.4.0' }, storage: { files: [{ path: '/etc/hostname', mode: '0644' }] } }), 'mode is an integer');
});

t.test('renderIgnition validates against the Ignition 3.4 schema', async (t) => {
  for (const [what, input] of inputs) {
    const config = renderIgnition(input);
    const ok = validate(config);
    t.ok(ok, what, { errors: validate.errors });
    t.equal(config.ignition.version, '3.4.0', `${what}: spec version 3.4.0`);
    // What is served is JSON: it must survive the round trip unchanged.
    t.same(JSON.parse(JSON.stringify(config)), config, `${what}: plain JSON`);
  }
});

t.test('the unit reports to the events URL', async (t) => {
  for (const [what, input] of inputs) {
    const config = renderIgnition(input);
    const u = unit(config);
    t.match(u.name, /^[A-Za-z0-9:_.\\-]+\.service$/, `${what}: a service unit name`);
    t.equal(u.enabled, true, `${what}: enabled`);
    t.match(u.contents, /^\[Unit\]\n/, `${what}: starts with [Unit]`);
    t.match(u.contents, /\n\[Service\]\nType=oneshot\n/, `${what}: a oneshot service`);
    t.match(u.contents, /\n\[Install\]\nWantedBy=multi-user\.target\n/, `${what}: wanted by multi-user.target (enabled needs [Install])`);
    t.match(u.contents, /\nAfter=network-online\.target\n/, `${what}: after the network is up`);
    t.match(u.contents, /\nWants=network-online\.target\n/, `${what}: pulls in network-online`);

    const cmd = systemdArgv(execStart(config));
    t.same(cmd.specifiers, [], `${what}: no % specifier systemd would expand`);
    t.same(cmd.expansions, [], `${what}: no $ variable systemd would expand`);
    t.equal(cmd.argv[0], '/usr/bin/curl', `${what}: an absolute path to curl`);
    const call = curlCall(cmd.argv);
    t.equal(call.url, input.eventsUrl, `${what}: posts to the events URL, once`);
    t.ok(call.headers.includes('Content-Type: application/json'), `${what}: as JSON`);
    t.ok(cmd.argv.includes('-f') || cmd.argv.some((a) => /^-[a-zA-Z]*f/.test(a)), `${what}: fails on an HTTP error`);
    t.ok(cmd.argv.includes('--retry'), `${what}: retries`);
    if (call.body === undefined) {
      t.fail(`${what}: no body`);
      continue;
    }
    const body = JSON.parse(call.body) as { type?: unknown; message?: unknown };
    t.equal(body.type, 'booted', `${what}: a booted event`);
    t.type(body.message, 'string');
  }
});

t.test('the hostname file is written only with a hostname', async (t) => {
  const none = renderIgnition({ eventsUrl: EVENTS_URL });
  t.equal(none.storage, undefined, 'no storage without a hostname');
  t.equal(renderIgnition({ eventsUrl: EVENTS_URL, hostname: '' }).storage, undefined, 'an empty hostname writes nothing');

  for (const hostname of ['sno-1', 'sno-1.lab.example']) {
    const config = renderIgnition({ eventsUrl: EVENTS_URL, hostname });
    const files = config.storage?.files ?? [];
    t.equal(files.length, 1, `${hostname}: one file`);
    const f = files[0];
    if (!f) continue;
    t.equal(f.path, '/etc/hostname');
    t.equal(f.mode, 0o644, 'mode 0644 (decimal 420)');
    t.equal(f.overwrite, true, 'replaces the live image hostname');
    t.match(f.contents.source, /^data:,/, 'a data URL');
    t.equal(decodeURIComponent(f.contents.source.slice('data:,'.length)), hostname, 'holding the hostname');
  }
});

// --- precache mode: the job, its settings and the unit that runs it ---

const MACHINE_URL = 'http://10.77.0.1:8080/api/v1/machines/52-54-00-ab-cd-ef';
const PRECACHE_TOKEN = 'PRETOK0123456789abcdefABCDEF_-xy';
const JOB = loadPrecacheJob();

function precacheInput(over: Partial<PrecacheJob> = {}, hostname?: string): IgnitionInput {
  return {
    eventsUrl: EVENTS_URL,
    ...(hostname !== undefined && { hostname }),
    precache: { machineUrl: MACHINE_URL, token: PRECACHE_TOKEN, mac: '52:54:00:ab:cd:ef', after: 'poweroff', script: JOB, ...over },
  };
}

type IgnitionFile = NonNullable<IgnitionConfig['storage']>['files'][number];

function fileAt(config: IgnitionConfig, path: string): IgnitionFile | undefined {
  return config.storage?.files.find((f) => f.path === path);
}

/** The bytes of a `data:;base64,` URL, strictly: Ignition decodes with Go's StdEncoding, which takes no stray characters. */
function base64Bytes(source: string | undefined): Buffer | undefined {
  const m = /^data:;base64,([A-Za-z0-9+/]*={0,2})$/.exec(source ?? '');
  const payload = m?.[1];
  if (payload === undefined || payload.length % 4 !== 0) return undefined;
  return Buffer.from(payload, 'base64');
}

const precacheInputs: [string, IgnitionInput][] = [
  ['the real job', precacheInput()],
  ['the real job and a hostname', precacheInput({}, 'sno-1.lab.example')],
  [
    'settings with quotes and expansions',
    precacheInput({ token: `it's $(id) \`id\` "x"`, machineUrl: 'http://[fe80::1%25eth0]:8080/api/v1/machines/m', mac: "a'b" }),
  ],
];

t.test('precache mode: the config validates against the Ignition 3.4 schema', async (t) => {
  for (const [what, input] of precacheInputs) {
    const config = renderIgnition(input);
    t.ok(validate(config), what, { errors: validate.errors });
    t.same(JSON.parse(JSON.stringify(config)), config, `${what}: plain JSON`);
  }
});

t.test('precache mode: one enabled oneshot unit runs the job, and no report unit', async (t) => {
  for (const [what, input] of precacheInputs) {
    const config = renderIgnition(input);
    const u = unit(config);
    t.equal(u.name, PRECACHE_UNIT, `${what}: the precache unit`);
    t.equal(u.name, 'edgeboot-precache.service');
    t.equal(u.enabled, true, `${what}: enabled`);
    t.match(u.contents, /^\[Unit\]\n/, `${what}: starts with [Unit]`);
    t.match(u.contents, /\n\[Service\]\nType=oneshot\n/, `${what}: a oneshot service`);
    t.match(u.contents, /\n\[Install\]\nWantedBy=multi-user\.target\n/, `${what}: wanted by multi-user.target`);
    t.match(u.contents, /\nAfter=network-online\.target\n/, `${what}: after the network is up`);
    t.match(u.contents, /\nWants=network-online\.target\n/, `${what}: pulls in network-online`);

    const cmd = systemdArgv(execStart(config));
    t.same(cmd.argv, ['/bin/bash', PRECACHE_JOB_FILE], `${what}: runs the job file with bash, without arguments`);
    t.equal(PRECACHE_JOB_FILE, '/usr/local/bin/edgeboot-precache');
    t.same(cmd.specifiers, [], `${what}: no % specifier in ExecStart`);
    t.same(cmd.expansions, [], `${what}: no $ expansion in ExecStart`);
    // Description and the other settings take specifiers too; the settings live in the env file, not here.
    t.notMatch(u.contents, /%/, `${what}: no % anywhere in the unit`);
    t.notMatch(u.contents, PRECACHE_TOKEN, `${what}: the token is not in the unit`);

    t.notOk(
      config.systemd.units.some((x) => x.name === 'edgeboot-report.service'),
      `${what}: no report unit`,
    );
    t.notOk(JSON.stringify(config).includes(EVENTS_URL), `${what}: the events URL is not used`);
  }
});

t.test('precache mode: the env file and the job are written as base64 data URLs, byte for byte', async (t) => {
  const scripts: [string, string][] = [
    ['the real job', JOB],
    ['non-ASCII, CRLF and no final newline', '#!/bin/bash\r\necho "café — … ✓"\r\nexit 0'],
    ['an empty script', ''],
  ];
  for (const [what, script] of scripts) {
    const config = renderIgnition(precacheInput({ script }));
    t.same((config.storage?.files ?? []).map((f) => f.path).sort(), [PRECACHE_ENV_FILE, PRECACHE_JOB_FILE].sort(), `${what}: just the two files`);

    const job = fileAt(config, PRECACHE_JOB_FILE);
    t.equal(job?.mode, 0o755, `${what}: the job is executable (0755)`);
    t.equal(job?.overwrite, true);
    const jobBytes = base64Bytes(job?.contents.source);
    t.ok(jobBytes?.equals(Buffer.from(script, 'utf8')), `${what}: the job decodes to the script's bytes`);

    const env = fileAt(config, PRECACHE_ENV_FILE);
    t.equal(env?.path, '/etc/edgeboot/precache.env');
    t.equal(env?.mode, 0o600, `${what}: the env file, holding the token, is 0600`);
    t.equal(env?.overwrite, true);
    t.ok(base64Bytes(env?.contents.source), `${what}: the env file is a strict base64 data URL`);
  }
  t.ok(JOB.startsWith('#!/bin/bash\n'), 'the real job is the one rendered (it has its shebang)');
});

t.test('precache mode: bash, sourcing the env file, gets exactly the settings', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'edgeboot-ignition-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const sentinel = join(dir, 'expanded');
  const settings: [string, string, string, string][] = [
    ['plain', MACHINE_URL, PRECACHE_TOKEN, '52:54:00:ab:cd:ef'],
    ['single quotes', "http://h/it's", "'", "a''b'"],
    ['command substitution', `http://h/$(touch ${sentinel})`, `$(touch ${sentinel})`, `\`touch ${sentinel}\``],
    ['variables and spaces', 'http://h/ $HOME ${PATH} a  b', ' leading and trailing ', '$EDGEBOOT_TOKEN'],
    ['backslashes, double quotes, ; and a newline', 'http://h/\\"x"', `"; touch ${sentinel}; "`, 'line1\nline2 \\'],
    ['an IPv6 zone and percent escapes', 'http://[fe80::1%25eth0]:8080/api/v1/machines/m?x=%41', '%s%n%%', '!!'],
  ];
  for (const [what, machineUrl, token, mac] of settings) {
    const config = renderIgnition(precacheInput({ machineUrl, token, mac }));
    const envBytes = base64Bytes(fileAt(config, PRECACHE_ENV_FILE)?.contents.source);
    if (!envBytes) {
      t.fail(`${what}: no env file`);
      continue;
    }
    const envPath = join(dir, 'precache.env');
    writeFileSync(envPath, envBytes);
    // A clean environment, so the values can only come from the file; set -u fails on one it does not set.
    const r = spawnSync(
      'bash',
      [
        '--norc',
        '--noprofile',
        '-c',
        'set -eu; . "$1"; printf "%s\\0%s\\0%s\\0%s" "$EDGEBOOT_MACHINE_URL" "$EDGEBOOT_TOKEN" "$EDGEBOOT_MAC" "$EDGEBOOT_AFTER"',
        'bash',
        envPath,
      ],
      {
        encoding: 'utf8',
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
        timeout: 5000,
      },
    );
    t.equal(r.status, 0, `${what}: sources cleanly`, { stderr: r.stderr });
    t.equal(r.stderr, '', `${what}: without complaint`);
    t.same(r.stdout.split('\0'), [machineUrl, token, mac, 'poweroff'], `${what}: machine URL, token, MAC and what to do afterwards, exactly`);
    t.notOk(existsSync(sentinel), `${what}: nothing in the values ran`);
  }
});

t.test('precache mode: the hostname file is still written with a hostname', async (t) => {
  for (const hostname of ['sno-1', 'sno-1.lab.example']) {
    const config = renderIgnition(precacheInput({}, hostname));
    t.same((config.storage?.files ?? []).map((f) => f.path).sort(), ['/etc/hostname', PRECACHE_ENV_FILE, PRECACHE_JOB_FILE].sort(), `${hostname}: three files`);
    const f = fileAt(config, '/etc/hostname');
    t.equal(f?.mode, 0o644);
    t.equal(decodeURIComponent(f?.contents.source.replace(/^data:,/, '') ?? ''), hostname, `${hostname}: holding the hostname`);
  }
  t.notOk(fileAt(renderIgnition(precacheInput({}, '')), '/etc/hostname'), 'an empty hostname writes none');
});
