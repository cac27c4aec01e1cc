import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { BUILTIN_PROFILES_DIR, loadProfiles, parseProfile, type ProfileSource } from '../../../src/profiles/load.js';
import type { Profile, ProfileSet } from '../../../src/profiles/profile.js';
import { fillTemplate, MACHINE_PLACEHOLDERS, parseTemplate, type MachinePlaceholder, type Template } from '../../../src/profiles/template.js';

const root = mkdtempSync(join(tmpdir(), 'edgeboot-profiles-test-'));
t.teardown(() => rmSync(root, { recursive: true, force: true }));
let folderCount = 0;
/** A fresh user folder holding the given files. */
function userFolder(files: Record<string, string>): string {
  const dir = join(root, `user-${++folderCount}`);
  mkdirSync(dir);
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}
const BUILTIN: ProfileSource = { dir: BUILTIN_PROFILES_DIR, builtin: true };
const withUser = (dir: string): ProfileSource[] => [BUILTIN, { dir, builtin: false }];

function mustGet(set: ProfileSet, name: string): Profile {
  const p = set.get(name);
  if (!p) throw new Error(`profile ${name} is not loaded; problems: ${JSON.stringify(set.problems)}`);
  return p;
}

const KERNEL_PROFILE = (name: string, args: string) =>
  [
    `name: ${name}`,
    'artifacts:',
    '  kernel: { url: "https://example.com/vmlinuz" }',
    '  initrd: { url: "file:///srv/initrd.img" }',
    'boot:',
    '  kernel: kernel',
    '  initrds: [initrd]',
    `  args: "${args}"`,
    '',
  ].join('\n');

t.test('the built-in profiles load without problems', async (t) => {
  const set = loadProfiles([BUILTIN]);
  t.same(set.problems, []);
  t.same(
    set.list().map((p) => p.name),
    ['assisted', 'local-disk', 'precache-assisted', 'rhcos-live'],
    'listed by name',
  );
  for (const p of set.list()) {
    t.equal(p.builtin, true, `${p.name} is built in`);
    t.equal(p.file, join(BUILTIN_PROFILES_DIR, `${p.name}.yaml`), `${p.name} comes from its file`);
    t.ok(p.description.length > 0, `${p.name} has a description`);
  }

  const local = mustGet(set, 'local-disk');
  t.same(local.boot, { kind: 'local' });
  t.equal(local.flow, undefined);
  t.same(local.requires, []);

  const live = mustGet(set, 'rhcos-live');
  t.equal(live.boot?.kind, 'kernel');
  if (live.boot?.kind === 'kernel') {
    t.equal(live.boot.kernel, 'kernel');
    t.same(live.boot.initrds, ['initramfs']);
    t.same(
      live.boot.args.filter((p) => p.kind !== 'text'),
      [
        { kind: 'artifact', name: 'rootfs' },
        { kind: 'value', name: 'kargs.ignition' },
        { kind: 'value', name: 'kargs.staticIp' },
      ],
      'the args name the rootfs artifact and the kernel-argument values',
    );
  }
  t.same(Object.keys(live.artifacts).sort(), ['initramfs', 'kernel', 'rootfs']);
  t.same(live.requires, [], 'kargs.* always have a value');

  const assisted = mustGet(set, 'assisted');
  t.same(assisted.boot, { kind: 'chain', url: [{ kind: 'value', name: 'machine.assistedScriptUrl' }] });
  t.same(assisted.requires, ['machine.assistedScriptUrl']);

  const flow = mustGet(set, 'precache-assisted');
  t.equal(flow.boot, undefined);
  t.same(flow.flow, { precache: 'rhcos-live', install: 'assisted' });
  t.same(flow.requires, []);

  t.equal(set.get('no-such-profile'), undefined);
});

t.test('a user folder with broken files: each is reported, the good ones still load', async (t) => {
  const dir = userFolder({
    'a-broken.yaml': 'name: broken\nboot: [unclosed\n',
    'b-colour.yaml': KERNEL_PROFILE('colour', 'console=ttyS0 colour={{ machine.colour }}'),
    'c-missing-artifact.yaml': [
      'name: missing-artifact',
      'artifacts:',
      '  kernel: { url: "https://example.com/vmlinuz" }',
      'boot:',
      '  kernel: kernel',
      '  initrds: [initramfs]',
      '',
    ].join('\n'),
    'd-two-kinds.yaml': KERNEL_PROFILE('two-kinds', 'quiet') + 'chain: "https://example.com/next.ipxe"\n',
    'e-bad-flow.yaml': 'name: bad-flow\nflow:\n  precache: no-such-live\n  install: assisted\n',
    'f-good-chain.yaml': 'name: good-chain\nchain: "{{ server.url }}/hosts/{{ machine.hostname }}.ipxe"\n',
    'g-good-kernel.yaml': KERNEL_PROFILE('good-kernel', 'ip={{ machine.ip }} hostname={{ machine.hostname }} {{ kargs.staticIp }}'),
    'h-good-flow.yaml': 'name: good-flow\nflow: { precache: good-kernel, install: good-chain }\n',
    'README.md': 'not a profile: ignored\n',
  });
  const set = loadProfiles(withUser(dir));

  const problemOf = (file: string) => {
    const path = join(dir, file);
    const found = set.problems.filter((p) => p.file === path);
    t.equal(found.length, 1, `${file}: reported once, under its path`);
    return found[0]?.message ?? '';
  };
  t.match(problemOf('a-broken.yaml'), /^cannot parse: /, 'bad YAML');
  t.match(problemOf('b-colour.yaml'), /^boot\.args: unknown placeholder \{\{ machine\.colour \}\}; known: artifacts\.NAME, server\.url/, 'unknown placeholder');
  t.equal(problemOf('c-missing-artifact.yaml'), 'boot names artifact initramfs, which artifacts does not define', 'missing artifact');
  t.equal(problemOf('d-two-kinds.yaml'), 'a profile needs exactly one of boot.kernel, chain, local: true or flow', 'two boot kinds');
  t.equal(problemOf('e-bad-flow.yaml'), 'flow.precache names profile no-such-live, which is not loaded', 'missing precache profile');
  t.equal(set.problems.length, 5, JSON.stringify(set.problems));

  for (const name of ['broken', 'colour', 'missing-artifact', 'two-kinds', 'bad-flow']) t.equal(set.get(name), undefined, `${name} is not loaded`);
  for (const name of ['good-chain', 'good-kernel', 'good-flow', 'assisted', 'local-disk', 'precache-assisted', 'rhcos-live']) {
    t.ok(set.get(name), `${name} loads`);
  }
  t.equal(mustGet(set, 'good-chain').builtin, false);
  t.equal(mustGet(set, 'good-chain').file, join(dir, 'f-good-chain.yaml'));
  t.same(
    set.list().map((p) => p.name),
    ['assisted', 'good-chain', 'good-flow', 'good-kernel', 'local-disk', 'precache-assisted', 'rhcos-live'],
  );
});

t.test('other mistakes a profile folder can hold', async (t) => {
  const dir = userFolder({
    'artifact-placeholder.yaml': KERNEL_PROFILE('artifact-placeholder', 'root={{ artifacts.rootfs }}'),
    'initrds-no-kernel.yaml': 'name: initrds-no-kernel\nlocal: true\nboot: { initrds: [x] }\n',
    'unknown-key.yaml': 'name: unknown-key\nlocal: true\ncolour: blue\n',
    'bad-name.yaml': 'name: Bad_Name\nlocal: true\n',
    'no-name.yaml': 'local: true\n',
    'precache-local.yaml': 'name: precache-local\nflow: { precache: local-disk, install: assisted }\n',
    'install-flow.yaml': 'name: install-flow\nflow: { install: precache-assisted }\n',
    'nothing.yaml': 'name: nothing\n',
    'unbalanced.yaml': 'name: unbalanced\nchain: "https://example.com/{{ machine.mac"\n',
    'list.yaml': '- name: x\n',
  });
  const set = loadProfiles(withUser(dir));
  const messageOf = (file: string) => set.problems.find((p) => p.file === join(dir, file))?.message ?? '(not reported)';
  t.match(messageOf('artifact-placeholder.yaml'), 'boot.args: {{ artifacts.rootfs }} names no artifact of this profile (it has: kernel, initrd)');
  t.equal(messageOf('initrds-no-kernel.yaml'), 'boot.initrds and boot.args need boot.kernel');
  t.equal(messageOf('unknown-key.yaml'), '(top level): unknown key colour');
  t.match(messageOf('bad-name.yaml'), /^name: must match pattern/);
  t.match(messageOf('no-name.yaml'), /must have required property 'name'/);
  t.equal(messageOf('precache-local.yaml'), 'flow.precache names profile local-disk, which boots no kernel: the live environment must');
  t.equal(messageOf('install-flow.yaml'), 'flow.install names profile precache-assisted, which is itself a flow');
  t.equal(messageOf('nothing.yaml'), 'a profile needs exactly one of boot.kernel, chain, local: true or flow');
  t.equal(messageOf('unbalanced.yaml'), 'chain: unbalanced {{ or }}');
  t.match(messageOf('list.yaml'), /^\(top level\): must be object/);
  t.equal(set.problems.length, 10, JSON.stringify(set.problems));
  t.same(
    set.list().map((p) => p.name),
    ['assisted', 'local-disk', 'precache-assisted', 'rhcos-live'],
    'only the built-ins load',
  );
});

t.test('a missing folder and a name defined twice in one folder', async (t) => {
  const missing = join(root, 'no-such-folder');
  const set = loadProfiles(withUser(missing));
  t.equal(set.problems.length, 1);
  t.equal(set.problems[0]?.file, missing);
  t.match(set.problems[0]?.message, /^cannot read profile folder: .*ENOENT/);
  t.equal(set.list().length, 4, 'the built-ins still load');

  const dir = userFolder({ 'a.yaml': 'name: twin\nlocal: true\n', 'b.yml': 'name: twin\nchain: "https://example.com/x"\n' });
  const twins = loadProfiles([{ dir, builtin: false }]);
  t.same(twins.problems, [{ file: join(dir, 'b.yml'), message: 'profile twin is also defined in a.yaml; keeping that one' }]);
  t.same(mustGet(twins, 'twin').boot, { kind: 'local' }, 'the first file, in name order, wins');
});

t.test('a user profile of the same name replaces a built-in', async (t) => {
  const dir = userFolder({
    'my-live.yaml': KERNEL_PROFILE('rhcos-live', 'coreos.live.rootfs_url={{ artifacts.initrd }} {{ kargs.ignition }}'),
    'local-disk.yaml': 'name: local-disk\nlocal: [broken\n',
  });
  const set = loadProfiles(withUser(dir));
  const live = mustGet(set, 'rhcos-live');
  t.equal(live.builtin, false);
  t.equal(live.file, join(dir, 'my-live.yaml'));
  t.same(live.artifacts.kernel, { url: 'https://example.com/vmlinuz' });
  t.equal(set.list().filter((p) => p.name === 'rhcos-live').length, 1, 'listed once');
  t.ok(set.get('precache-assisted'), 'the built-in flow now uses the user live profile');

  t.equal(set.problems.length, 1, 'the broken user local-disk is reported');
  t.equal(set.problems[0]?.file, join(dir, 'local-disk.yaml'));
  t.equal(mustGet(set, 'local-disk').builtin, true, 'a broken user file leaves the built-in in place');

  const noKernel = loadProfiles(withUser(userFolder({ 'live.yaml': 'name: rhcos-live\nlocal: true\n' })));
  t.equal(mustGet(noKernel, 'rhcos-live').builtin, false);
  t.equal(noKernel.get('precache-assisted'), undefined, 'the built-in flow is checked against the replacement');
  t.same(
    noKernel.problems.map((p) => p.message),
    ['flow.precache names profile rhcos-live, which boots no kernel: the live environment must'],
  );
  t.equal(noKernel.problems[0]?.file, join(BUILTIN_PROFILES_DIR, 'precache-assisted.yaml'));
});

t.test('requires lists the machine values a profile needs', async (t) => {
  const parse = (doc: unknown) => {
    const r = parseProfile(doc, 'mem.yaml', false);
    if (!r.ok) throw new Error(r.message);
    return r.profile;
  };
  t.same(parse({ name: 'a', chain: '{{ machine.assistedScriptUrl }}' }).requires, ['machine.assistedScriptUrl']);
  t.same(parse({ name: 'b', chain: 'https://x/{{ machine.hostname }}/{{ machine.hostname }}' }).requires, ['machine.hostname'], 'listed once');
  t.same(
    parse({
      name: 'c',
      boot: { kernel: 'k', args: 'h={{ machine.hostname }} s={{ machine.assistedScriptUrl }} ip={{ machine.ip }}' },
      artifacts: { k: { url: 'https://x/k' } },
    }).requires,
    ['machine.hostname', 'machine.assistedScriptUrl', 'machine.ip'],
  );
  t.same(
    parse({ name: 'd', chain: '{{ server.url }}/{{ machine.mac }}?e={{ machine.eventsUrl }}&i={{ machine.ignitionUrl }}' }).requires,
    [],
    'values every machine has are not requirements',
  );
  t.same(parse({ name: 'e', local: true }).requires, []);
  t.same(parse({ name: 'f', boot: { local: true } }).boot, { kind: 'local' }, 'boot.local is local too');
  t.same(parse({ name: 'g', boot: { chain: 'https://x/{{ machine.hostname }}' } }).requires, ['machine.hostname'], 'boot.chain is a chain too');
});

t.test('args are read with their whitespace folded', async (t) => {
  const r = parseProfile(
    { name: 'ws', artifacts: { k: { url: 'https://x/k' } }, boot: { kernel: 'k', args: '  a=1\n  b={{ machine.mac }}\t\tc=3 \n' } },
    'mem.yaml',
    false,
  );
  if (!r.ok) throw new Error(r.message);
  t.same(r.profile.boot, {
    kind: 'kernel',
    kernel: 'k',
    initrds: [],
    args: [
      { kind: 'text', text: 'a=1 b=' },
      { kind: 'value', name: 'machine.mac' },
      { kind: 'text', text: ' c=3' },
    ],
  });
});

t.test('parseTemplate', async (t) => {
  const names = new Set(['kernel', 'rootfs']);
  const parse = (text: string): Template => {
    const r = parseTemplate(text, names);
    if (!r.ok) throw new Error(r.reason);
    return r.template;
  };
  const reasonOf = (text: string, artifacts: ReadonlySet<string> = names): string => {
    const r = parseTemplate(text, artifacts);
    if (r.ok) throw new Error(`expected ${JSON.stringify(text)} to be refused`);
    return r.reason;
  };

  t.same(parse(''), [], 'empty');
  t.same(parse('plain text, ${net0/mac} {single}'), [{ kind: 'text', text: 'plain text, ${net0/mac} {single}' }], 'text only');
  t.same(parse('a {{ server.url }} b'), [
    { kind: 'text', text: 'a ' },
    { kind: 'value', name: 'server.url' },
    { kind: 'text', text: ' b' },
  ]);
  t.same(
    parse('{{machine.mac}}{{   machine.hostname   }}'),
    [
      { kind: 'value', name: 'machine.mac' },
      { kind: 'value', name: 'machine.hostname' },
    ],
    'spacing inside braces does not matter; adjacent placeholders',
  );
  t.same(parse('root={{ artifacts.rootfs }} k={{artifacts.kernel}}'), [
    { kind: 'text', text: 'root=' },
    { kind: 'artifact', name: 'rootfs' },
    { kind: 'text', text: ' k=' },
    { kind: 'artifact', name: 'kernel' },
  ]);
  for (const name of MACHINE_PLACEHOLDERS) t.same(parse(`{{ ${name} }}`), [{ kind: 'value', name }], `${name} is known`);

  t.equal(reasonOf('x {{ machine.colour }}'), `unknown placeholder {{ machine.colour }}; known: artifacts.NAME, ${MACHINE_PLACEHOLDERS.join(', ')}`);
  t.match(reasonOf('{{}}'), /^unknown placeholder \{\{ {2}\}\}/, 'an empty placeholder');
  t.match(reasonOf('{{ Machine.Mac }}'), /^unknown placeholder/, 'names are case-sensitive');
  t.equal(reasonOf('{{ artifacts.initrd }}'), '{{ artifacts.initrd }} names no artifact of this profile (it has: kernel, rootfs)');
  t.equal(reasonOf('{{ artifacts.kernel }}', new Set()), '{{ artifacts.kernel }} names no artifact of this profile (it has: none)');
  for (const text of ['{{ server.url', 'server.url }}', 'a {{ b', 'a }} b', '{{ {{ server.url }}', '{{ server.url }} }}', '{{ server.url }}{{']) {
    t.equal(reasonOf(text), 'unbalanced {{ or }}', `unbalanced: ${JSON.stringify(text)}`);
  }
});

t.test('fillTemplate', async (t) => {
  const parsed = parseTemplate('k={{ artifacts.kernel }} h={{ machine.hostname }} u={{ server.url }}/x', new Set(['kernel']));
  if (!parsed.ok) throw new Error(parsed.reason);
  const values: Partial<Record<MachinePlaceholder, string>> = { 'machine.hostname': 'sno-1', 'server.url': 'http://10.77.0.2:8080' };
  const asked: MachinePlaceholder[] = [];
  const filled = fillTemplate(
    parsed.template,
    (name) => {
      asked.push(name);
      return values[name];
    },
    (name) => `http://10.77.0.2:8080/assets/${name}`,
  );
  t.same(filled, { ok: true, text: 'k=http://10.77.0.2:8080/assets/kernel h=sno-1 u=http://10.77.0.2:8080/x' });
  t.same(asked, ['machine.hostname', 'server.url'], 'asks only for the values it holds');

  const missing = fillTemplate(
    parsed.template,
    (name) => (name === 'server.url' ? 'http://s' : undefined),
    () => 'http://a',
  );
  t.same(missing, { ok: false, missing: 'machine.hostname' }, 'names the first value the machine lacks');

  t.same(
    fillTemplate(
      parsed.template,
      (name) => (name === 'machine.hostname' ? '' : 'v'),
      () => 'a',
    ),
    { ok: true, text: 'k=a h= u=v/x' },
    'an empty value is a value',
  );
  t.same(
    fillTemplate(
      [],
      () => undefined,
      () => 'a',
    ),
    { ok: true, text: '' },
    'empty template',
  );
});
