import { fileURLToPath } from 'node:url';
import t from 'tap';
import { golden } from '../../helpers/golden.js';
import { staticIpKarg } from '../../../src/boot/kargs.js';
import { planBoot, type BootDecision } from '../../../src/boot/planner.js';
import { DOWNLOAD_RETRY_SECONDS, DOWNLOAD_TRIES, renderEntryScript, renderScript, type ScriptContext } from '../../../src/boot/render.js';
import type { SubnetConfig, UnknownMachinePolicy } from '../../../src/config/config.js';
import type { Machine } from '../../../src/machines/model.js';
import { BUILTIN_PROFILES_DIR, loadProfiles } from '../../../src/profiles/load.js';
import type { MachinePlaceholder } from '../../../src/profiles/template.js';
import { machineFixture } from '../../helpers/fixtures.js';

/**
 * Golden tests of the iPXE scripts: each rendered script is compared byte for byte with a file
 * under test/golden/. `UPDATE_GOLDEN=1 npx tap test/unit/boot/render.test.ts` rewrites them;
 * read the diff before committing it.
 */
const GOLDEN_DIR = fileURLToPath(new URL('../../golden/', import.meta.url));

const BASE = 'http://10.77.0.1:8080';
const HOSTNAME = 'sno-1';
const IP = '10.77.0.50';
const IGNITION_URL = `${BASE}/api/v1/machines/52-54-00-ab-cd-ef/ignition?exp=1700007200&sig=IGNSIG0123456789abcdefABCDEF_-xy`;
const EVENTS_URL = `${BASE}/api/v1/machines/52-54-00-ab-cd-ef/events?token=EVTTOK0123456789abcdefABCDEF_-xy`;
const ASSISTED_URL =
  'https://assisted-image-service.example.com/byapikey/eyJhbGciOiJFUzI1NiIsInR5cCI6IkpXVCJ9.eyJpbmZyYV9lbnZfaWQiOiIxMjMifQ.c2lnbmF0dXJl/4.14/x86_64/ipxe-script';
const SUBNETS: SubnetConfig[] = [
  { cidr: '10.77.0.0/24', pool: ['10.77.0.100', '10.77.0.199'], router: '10.77.0.1', dns: ['10.77.0.1'], domain: 'lab.example', leaseSeconds: 3600 },
];
const RECHECK = 30;

/** A subtest's `t` (the last overload of t.test takes the callback alone). */
type Test = Parameters<Parameters<typeof t.test>[0]>[0];

const profiles = loadProfiles([{ dir: BUILTIN_PROFILES_DIR, builtin: true }]);

/** The context BootService builds for a machine, with fixed URLs instead of signed ones. */
function context(m: Machine): ScriptContext {
  const values: Partial<Record<MachinePlaceholder, string>> = {
    'server.url': BASE,
    'machine.mac': m.mac,
    'machine.eventsUrl': EVENTS_URL,
    'machine.ignitionUrl': IGNITION_URL,
    'kargs.ignition': `ignition.config.url=${IGNITION_URL}`,
    'kargs.staticIp': m.ip ? staticIpKarg(m.ip, m.hostname, SUBNETS) : '',
    ...(m.hostname && { 'machine.hostname': m.hostname }),
    ...(m.ip && { 'machine.ip': m.ip }),
    ...(m.assisted && { 'machine.assistedScriptUrl': m.assisted.ipxeScriptUrl }),
  };
  return { baseUrl: BASE, mac: m.mac, state: m.state, values, recheckSeconds: RECHECK };
}

interface Case {
  file: string;
  machine: Machine;
  unknownMachines?: UnknownMachinePolicy;
  /** What the planner must decide for this case, so a golden never records a wrong plan. */
  expect: { kind: BootDecision['kind']; profile?: string; stage?: 'precache' | 'install' };
}

const ASSISTED = { ipxeScriptUrl: ASSISTED_URL };
const full: Partial<Machine> = { profile: 'precache-assisted', hostname: HOSTNAME, assisted: ASSISTED };

const CASES: Case[] = [
  {
    file: 'precache-assisted.registered.ipxe',
    machine: machineFixture('registered', full),
    expect: { kind: 'boot', profile: 'rhcos-live', stage: 'precache' },
  },
  {
    file: 'precache-assisted.precaching.ipxe',
    machine: machineFixture('precaching', full),
    expect: { kind: 'boot', profile: 'rhcos-live', stage: 'precache' },
  },
  { file: 'precache-assisted.precached.ipxe', machine: machineFixture('precached', full), expect: { kind: 'boot', profile: 'assisted', stage: 'install' } },
  { file: 'precache-assisted.installing.ipxe', machine: machineFixture('installing', full), expect: { kind: 'boot', profile: 'assisted', stage: 'install' } },
  { file: 'precache-assisted.installed.ipxe', machine: machineFixture('installed', full), expect: { kind: 'local' } },
  { file: 'precache-assisted.failed.ipxe', machine: machineFixture('failed', full), expect: { kind: 'wait' } },
  {
    file: 'rhcos-live.registered.ipxe',
    machine: machineFixture('registered', { profile: 'rhcos-live', hostname: HOSTNAME }),
    expect: { kind: 'boot', profile: 'rhcos-live', stage: 'install' },
  },
  {
    file: 'rhcos-live.registered.static-ip.ipxe',
    machine: machineFixture('registered', { profile: 'rhcos-live', hostname: HOSTNAME, ip: IP }),
    expect: { kind: 'boot', profile: 'rhcos-live', stage: 'install' },
  },
  {
    file: 'assisted.registered.ipxe',
    machine: machineFixture('registered', { profile: 'assisted', assisted: ASSISTED }),
    expect: { kind: 'boot', profile: 'assisted', stage: 'install' },
  },
  { file: 'local-disk.registered.ipxe', machine: machineFixture('registered', { profile: 'local-disk' }), expect: { kind: 'local' } },
  { file: 'unknown.exit.ipxe', machine: machineFixture('discovered'), unknownMachines: 'exit', expect: { kind: 'local' } },
  { file: 'unknown.wait.ipxe', machine: machineFixture('discovered'), unknownMachines: 'wait', expect: { kind: 'wait' } },
  {
    file: 'unknown.profile.ipxe',
    machine: machineFixture('discovered'),
    unknownMachines: { profile: 'rhcos-live' },
    expect: { kind: 'boot', profile: 'rhcos-live', stage: 'install' },
  },
  { file: 'error.profile-missing.ipxe', machine: machineFixture('registered', { profile: 'vanished' }), expect: { kind: 'error' } },
];

function decide(c: Case): BootDecision {
  return planBoot({ machine: c.machine, profiles, unknownMachines: c.unknownMachines ?? 'exit', precache: { maxBoots: 3 } });
}

function render(c: Case): string {
  return renderScript(decide(c), context(c.machine));
}

/** `kernel URL args… || goto …` split into its URL and arguments. */
function kernelLine(script: string): { url: string; args: string[] } | undefined {
  const line = script.split('\n').find((l) => l.startsWith('kernel '));
  if (!line) return undefined;
  const words = line.split(' || ')[0]?.split(' ') ?? [];
  return { url: words[1] ?? '', args: words.slice(2) };
}

/** Commands these scripts may use; anything else would be a renderer mistake. */
const IPXE_COMMANDS = new Set(['echo', 'kernel', 'initrd', 'boot', 'chain', 'exit', 'sleep', 'goto', 'iseq', 'isset', 'sanboot', 'set', 'inc', 'imgfree']);

/** Facts every rendered script must have, whatever its golden says. */
function checkShape(tt: Test, name: string, script: string, allowedExpansions: readonly string[]): void {
  const lines = script.split('\n');
  tt.equal(lines[0], '#!ipxe', `${name}: first line is #!ipxe`);
  tt.ok(script.endsWith('\n'), `${name}: ends with a newline`);
  tt.notOk(script.includes('\r'), `${name}: no carriage return`);
  tt.notOk(/[^\x20-\x7e\n]/.test(script), `${name}: printable ASCII only`);
  const labels = new Set(lines.filter((l) => l.startsWith(':')).map((l) => l.slice(1)));
  for (const [i, line] of lines.slice(1).entries()) {
    if (line === '' || line.startsWith(':') || line.startsWith('#')) continue;
    const n = i + 2;
    tt.notOk(/^\s|\s$|\s\s/.test(line), `${name}:${n}: no stray whitespace`);
    // Each part of a `cmd || cmd` chain starts with a known command.
    for (const part of line.split(' || ')) {
      const cmd = part.split(' ')[0] ?? '';
      tt.ok(IPXE_COMMANDS.has(cmd), `${name}:${n}: ${cmd} is a known command`);
      if (cmd === 'goto') tt.ok(labels.has(part.split(' ')[1] ?? ''), `${name}:${n}: ${part} has its label`);
      if (cmd !== 'echo') tt.notOk(/(^| )(&&|;|#)( |$)/.test(part), `${name}:${n}: no &&, ; or # token`);
    }
    let rest = line;
    for (const e of allowedExpansions) rest = rest.replaceAll(e, '');
    tt.notOk(rest.includes('${'), `${name}:${n}: no \${ except the deliberate settings`);
  }
}

const LOCAL_EXPANSIONS = ['${platform}'];
/** The download retry's counter (render.ts fetchAndBoot). */
const RETRY_EXPANSIONS = ['${edgeboot-tries}'];
const ENTRY_EXPANSIONS = [
  '${net${edgeboot-idx}/mac:hexhyp}',
  '${net${edgeboot-idx}/mac}',
  '${edgeboot-macs}',
  '${netX/mac:hexhyp}',
  '${uuid}',
  '${serial:uristring}',
  '${buildarch}',
  '${platform}',
];

t.test('the built-in profiles load', async (t) => {
  t.same(profiles.problems, []);
});

t.test('golden scripts', async (t) => {
  for (const c of CASES) {
    t.test(c.file, async (t) => {
      const d = decide(c);
      t.equal(d.kind, c.expect.kind, 'planned kind');
      if (d.kind === 'boot') {
        t.equal(d.profile.name, c.expect.profile, 'planned profile');
        t.equal(d.stage, c.expect.stage, 'planned stage');
      }
      const script = render(c);
      golden(t, GOLDEN_DIR, c.file, script);
      checkShape(t, c.file, script, d.kind === 'local' ? LOCAL_EXPANSIONS : d.kind === 'boot' ? RETRY_EXPANSIONS : []);
    });
  }
  t.test('entry.ipxe', async (t) => {
    const script = renderEntryScript(BASE);
    golden(t, GOLDEN_DIR, 'entry.ipxe', script);
    checkShape(t, 'entry.ipxe', script, ENTRY_EXPANSIONS);
  });
});

t.test('rendering is deterministic', async (t) => {
  for (const c of CASES) t.equal(render(c), render(c), c.file);
  t.equal(renderEntryScript(BASE), renderEntryScript(BASE));
});

t.test('only the local script tests ${platform}; only the entry script and the download retry expand settings', async (t) => {
  for (const c of CASES) {
    const script = render(c);
    const expansions = script.split('\n').filter((l) => l.includes('${'));
    const d = decide(c);
    if (d.kind === 'local') t.same(expansions, ['iseq ${platform} pcbios || exit'], c.file);
    else if (d.kind === 'boot' && d.spec.kind === 'kernel')
      t.same(
        expansions,
        [
          `iseq \${edgeboot-tries} ${DOWNLOAD_TRIES} || goto edgeboot-refetch`,
          `echo edgeboot: a download or the boot failed (try \${edgeboot-tries} of ${DOWNLOAD_TRIES}), fetching again in ${DOWNLOAD_RETRY_SECONDS} s`,
        ],
        c.file,
      );
    else t.same(expansions, [], c.file);
  }
});

t.test('kernel boots', async (t) => {
  for (const c of CASES) {
    const d = decide(c);
    if (d.kind !== 'boot' || d.spec.kind !== 'kernel') continue;
    const spec = d.spec;
    t.test(c.file, async (t) => {
      const script = render(c);
      const k = kernelLine(script);
      if (!k) {
        t.fail('no kernel line');
        return;
      }
      t.equal(k.url, `${BASE}/assets/${d.profile.name}/${spec.kernel}`, 'kernel from the asset cache');
      t.ok(spec.initrds.length > 0, 'the profile has initrds');
      for (const name of spec.initrds) {
        // UEFI iPXE passes initrds by name: the kernel needs initrd=<name> for each.
        t.ok(k.args.includes(`initrd=${name}`), `kernel args name initrd=${name}`);
        t.ok(
          script.split('\n').includes(`initrd --name ${name} ${BASE}/assets/${d.profile.name}/${name} || goto edgeboot-failed`),
          `initrd ${name} is loaded under its name`,
        );
      }
      const lines = script.split('\n');
      const kIdx = lines.findIndex((l) => l.startsWith('kernel '));
      const bIdx = lines.indexOf('boot || goto edgeboot-failed');
      t.ok(kIdx > 0 && bIdx > kIdx, 'boot comes after kernel');
      t.ok(lines.slice(kIdx, bIdx).filter((l) => l.startsWith('initrd ')).length === spec.initrds.length, 'every initrd before boot');
    });
  }
});

t.test('rhcos-live kernel arguments', async (t) => {
  const byFile = new Map(CASES.map((c) => [c.file, c]));
  const rhcos = [
    'precache-assisted.registered.ipxe',
    'precache-assisted.precaching.ipxe',
    'rhcos-live.registered.ipxe',
    'rhcos-live.registered.static-ip.ipxe',
    'unknown.profile.ipxe',
  ];
  for (const file of rhcos) {
    const c = byFile.get(file);
    if (!c) throw new Error(`no case ${file}`);
    const args = kernelLine(render(c))?.args ?? [];
    t.ok(args.includes(`coreos.live.rootfs_url=${BASE}/assets/rhcos-live/rootfs`), `${file}: rootfs_url from the cache`);
    t.ok(args.includes('ignition.firstboot'), `${file}: ignition.firstboot`);
    t.ok(args.includes('ignition.platform.id=metal'), `${file}: platform metal`);
    t.ok(args.includes(`ignition.config.url=${IGNITION_URL}`), `${file}: ignition.config.url`);
    t.ok(args.includes('initrd=initramfs'), `${file}: initrd=initramfs`);
    const ipArgs = args.filter((a) => a.startsWith('ip='));
    if (c.machine.ip) t.same(ipArgs, [`ip=${IP}::10.77.0.1:255.255.255.0:${HOSTNAME}::none:10.77.0.1`], `${file}: static ip`);
    else t.same(ipArgs, [], `${file}: no ip= without an address`);
  }
});

t.test('the assisted stage chains to the hub script and leaves to the disk on failure', async (t) => {
  for (const file of ['precache-assisted.precached.ipxe', 'precache-assisted.installing.ipxe', 'assisted.registered.ipxe']) {
    const c = CASES.find((x) => x.file === file);
    if (!c) throw new Error(`no case ${file}`);
    const lines = render(c).split('\n');
    t.same(
      lines.filter((l) => l.startsWith('chain ')),
      [`chain --replace --autofree ${ASSISTED_URL} || exit`],
      file,
    );
    t.notOk(
      lines.some((l) => l.startsWith('kernel ')),
      `${file}: no kernel`,
    );
  }
});

t.test('wait and error scripts re-ask the entry script after recheckSeconds', async (t) => {
  for (const file of ['precache-assisted.failed.ipxe', 'unknown.wait.ipxe', 'error.profile-missing.ipxe']) {
    const c = CASES.find((x) => x.file === file);
    if (!c) throw new Error(`no case ${file}`);
    const lines = render(c).split('\n');
    t.ok(lines.includes(`sleep ${RECHECK}`), `${file}: sleeps ${RECHECK}`);
    t.ok(lines.includes(`chain --replace --autofree ${BASE}/boot.ipxe || goto edgeboot-recheck`), `${file}: re-chains the entry script`);
    t.notOk(
      lines.some((l) => /^(kernel|boot|exit|sanboot)\b/.test(l)),
      `${file}: boots nothing`,
    );
  }
});

t.test('the entry script asks /ipxe with every identity iPXE knows', async (t) => {
  const lines = renderEntryScript(BASE).split('\n');
  const chain = lines.find((l) => l.startsWith('chain '));
  t.equal(
    chain,
    `chain --replace --autofree ${BASE}/ipxe?mac=\${netX/mac:hexhyp}&macs=\${edgeboot-macs}&uuid=\${uuid}&serial=\${serial:uristring}&arch=\${buildarch}&platform=\${platform} || goto edgeboot-retry`,
  );
  t.ok(lines.includes('sleep 10'), 'retries after a pause');
  t.ok(lines.includes('goto edgeboot-ask'), 'and asks again');
});

/** What `runScript` saw: the commands that ran, in order, and how the script ended. */
interface ScriptRun {
  ran: string[];
  end: { kind: 'boot'; images: string[] } | { kind: 'chain'; url: string } | { kind: 'stuck' };
}

/**
 * Runs a rendered script the way iPXE does, for the commands these scripts use: `a || b` runs
 * b when a fails, a failed command without `||` ends the script, `goto` jumps to its label,
 * `${name}` expands a setting, `set x:int32 0` / `inc` count, `iseq a b` compares, `kernel`
 * and `initrd` register an image (or fail when `fails` says so for that download, counted per
 * URL), `imgfree` drops every image, `boot` boots the registered images, `chain` ends there.
 * Bounded at 1,000 commands (a loop that never ends is `stuck`).
 */
function runScript(script: string, fails: (url: string, attempt: number) => boolean): ScriptRun {
  const lines = script.split('\n');
  const labels = new Map(lines.flatMap((l, i) => (l.startsWith(':') ? [[l.slice(1), i] as const] : [])));
  const vars = new Map<string, string>();
  const attempts = new Map<string, number>();
  let images: string[] = [];
  const ran: string[] = [];
  let pc = 0;
  interface Outcome {
    ok: boolean;
    jump?: number;
    end?: ScriptRun['end'];
  }
  const exec = (cmd: string): Outcome => {
    const words = cmd.replace(/\$\{([a-z-]+)\}/g, (_, n: string) => vars.get(n) ?? '').split(' ');
    ran.push(words.join(' '));
    const [name, ...args] = words;
    switch (name) {
      case 'echo':
      case 'sleep':
        return { ok: true };
      case 'set':
        vars.set((args[0] ?? '').replace(/:int32$/, ''), args[1] ?? '');
        return { ok: true };
      case 'inc':
        vars.set(args[0] ?? '', String(Number(vars.get(args[0] ?? '') ?? 0) + 1));
        return { ok: true };
      case 'iseq':
        return { ok: args[0] === args[1] };
      case 'goto': {
        const at = labels.get(args[0] ?? '');
        if (at === undefined) throw new Error(`goto ${args[0]}: no such label`);
        return { ok: true, jump: at };
      }
      case 'imgfree':
        images = [];
        return { ok: true };
      case 'kernel':
      case 'initrd': {
        const url = name === 'kernel' ? (args[0] ?? '') : (args[2] ?? '');
        const n = (attempts.get(url) ?? 0) + 1;
        attempts.set(url, n);
        if (fails(url, n)) return { ok: false };
        images.push(url);
        return { ok: true };
      }
      case 'boot':
        return { ok: true, end: { kind: 'boot', images: [...images] } };
      case 'chain':
        return { ok: true, end: { kind: 'chain', url: args.at(-1) ?? '' } };
      default:
        throw new Error(`runScript does not know ${name}`);
    }
  };
  while (pc < lines.length && ran.length < 1_000) {
    const line = lines[pc] ?? '';
    pc++;
    if (line === '' || line.startsWith('#') || line.startsWith(':')) continue;
    let out: Outcome = { ok: false };
    for (const part of line.split(' || ')) {
      out = exec(part);
      if (out.ok) break;
    }
    if (out.end) return { ran, end: out.end };
    if (!out.ok) return { ran, end: { kind: 'stuck' } };
    if (out.jump !== undefined) pc = out.jump;
  }
  return { ran, end: { kind: 'stuck' } };
}

t.test('a download cut short is fetched again, a few times, then the server is asked again', async (t) => {
  const c = CASES.find((x) => x.file === 'precache-assisted.registered.ipxe');
  if (!c) throw new Error('no case precache-assisted.registered.ipxe');
  const script = render(c);
  const kernelUrl = `${BASE}/assets/rhcos-live/kernel`;
  const initrdUrl = `${BASE}/assets/rhcos-live/initramfs`;

  const clean = runScript(script, () => false);
  t.same(clean.end, { kind: 'boot', images: [kernelUrl, initrdUrl] }, 'no failure: kernel and initrd, then boot');
  t.notOk(
    clean.ran.some((r) => r.startsWith('sleep')),
    'without a pause',
  );

  // The server died during the initrd: the kernel had come whole, the initrd had not.
  const cut = runScript(script, (url, n) => url === initrdUrl && n === 1);
  t.same(cut.end, { kind: 'boot', images: [kernelUrl, initrdUrl] }, 'the initrd cut once: both fetched again and booted, one kernel only');
  t.same(cut.ran.filter((r) => r.startsWith('kernel ')).length, 2, 'the kernel was fetched again (imgfree dropped the first)');
  t.ok(cut.ran.includes(`sleep ${DOWNLOAD_RETRY_SECONDS}`), `after a pause of ${DOWNLOAD_RETRY_SECONDS} s`);
  t.notOk(
    cut.ran.some((r) => r.startsWith('chain ')),
    'without asking the server for a new script (same tokens, no second boot)',
  );

  const fourCuts = runScript(script, (url, n) => url === kernelUrl && n < DOWNLOAD_TRIES);
  t.equal(fourCuts.end.kind, 'boot', `${DOWNLOAD_TRIES - 1} failed tries: the last try boots`);

  const down = runScript(script, () => true);
  t.same(down.end, { kind: 'chain', url: `${BASE}/boot.ipxe` }, `${DOWNLOAD_TRIES} failed tries: the machine asks the entry script again`);
  t.equal(down.ran.filter((r) => r.startsWith('kernel ')).length, DOWNLOAD_TRIES, `after exactly ${DOWNLOAD_TRIES} tries`);
  t.ok(down.ran.includes(`sleep ${RECHECK}`), `after the recheck pause of ${RECHECK} s`);
});

t.test('the hub stage rewritten to the cache retries its downloads the same way', async (t) => {
  const hubLines = [
    `initrd --name initrd ${BASE}/assets/hub/0123456789abcdef/initrd`,
    `kernel ${BASE}/assets/hub/0123456789abcdef/kernel initrd=initrd coreos.live.rootfs_url=x`,
  ];
  const c = CASES.find((x) => x.file === 'precache-assisted.precached.ipxe');
  if (!c) throw new Error('no case precache-assisted.precached.ipxe');
  const script = renderScript(decide(c), { ...context(c.machine), hubLines });
  const kernelUrl = `${BASE}/assets/hub/0123456789abcdef/kernel`;
  const run = runScript(script, (url, n) => url === kernelUrl && n === 1);
  t.same(
    run.end,
    { kind: 'boot', images: [`${BASE}/assets/hub/0123456789abcdef/initrd`, kernelUrl] },
    'the kernel cut once: the hub initrd and kernel again, then boot',
  );
  t.notOk(
    run.ran.some((r) => r.startsWith('chain ')),
    'without asking the server again',
  );
});
