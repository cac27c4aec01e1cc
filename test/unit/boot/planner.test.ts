import t from 'tap';
import { planBoot, type BootDecision } from '../../../src/boot/planner.js';
import type { UnknownMachinePolicy } from '../../../src/config/config.js';
import type { Machine, PrecacheSettings } from '../../../src/machines/model.js';
import { applyTransition, MACHINE_STATES, type MachineState } from '../../../src/machines/state.js';
import { BUILTIN_PROFILES_DIR, loadProfiles, profileSet } from '../../../src/profiles/load.js';
import type { Profile, ProfileSet } from '../../../src/profiles/profile.js';
import { machineFixture, mustProfile } from '../../helpers/fixtures.js';

const builtins = loadProfiles([{ dir: BUILTIN_PROFILES_DIR, builtin: true }]);

/** A stored machine in `state` with `profile` and, if given, precache settings. */
function machine(state: MachineState, profile: string | undefined, precache?: PrecacheSettings): Machine {
  return machineFixture(state, { ...(profile !== undefined && { profile }), ...(precache && { precache }) });
}

/** The built-ins plus extra profiles, without the flow checks of loadProfiles. */
function withExtra(...extra: Profile[]): ProfileSet {
  const byName = new Map<string, Profile>();
  for (const p of builtins.list()) byName.set(p.name, p);
  for (const p of extra) byName.set(p.name, p);
  return profileSet(byName);
}

const altLive = mustProfile({
  name: 'rhcos-live-alt',
  artifacts: { kernel: { url: 'https://example.com/k' }, initramfs: { url: 'https://example.com/i' } },
  boot: { kernel: 'kernel', initrds: ['initramfs'], args: '{{ kargs.ignition }}' },
});

function plan(m: Machine | undefined, unknownMachines: UnknownMachinePolicy = 'exit', profiles: ProfileSet = builtins): BootDecision {
  return planBoot({ machine: m, profiles, unknownMachines, precache: { maxBoots: 3 } });
}

type BootPlan = Extract<BootDecision, { kind: 'boot' }>;

/** Narrows to a boot decision; anything else throws, which fails the enclosing test. */
function asBoot(d: BootDecision): BootPlan {
  if (d.kind !== 'boot') throw new Error(`expected a boot decision, got ${d.kind}: ${d.reason}`);
  return d;
}

t.test('the built-in profiles load without problems', async (t) => {
  t.same(builtins.problems, []);
  t.same(
    builtins.list().map((p) => p.name),
    ['assisted', 'local-disk', 'precache-assisted', 'rhcos-live'],
  );
});

t.test('unknown machines follow boot.unknownMachines', async (t) => {
  const unknownInputs: [string, Machine | undefined][] = [
    ['no machine', undefined],
    ['discovered, no profile', machine('discovered', undefined)],
    // A discovered machine is unknown even if a profile name is present.
    ['discovered with a profile', machine('discovered', 'precache-assisted')],
    // A machine in a flow state whose profile was removed is treated as unknown too.
    ['registered without a profile', machine('registered', undefined)],
  ];
  for (const [what, m] of unknownInputs) {
    t.test(what, async (t) => {
      const exit = plan(m, 'exit');
      t.equal(exit.kind, 'local', 'exit → local');
      t.equal(exit.transition, undefined);
      t.match(exit.reason, /unknownMachines: exit/);

      const wait = plan(m, 'wait');
      t.equal(wait.kind, 'wait', 'wait → wait');
      t.equal(wait.transition, undefined);

      const live = asBoot(plan(m, { profile: 'rhcos-live' }));
      t.equal(live.stage, 'install');
      t.equal(live.profile.name, 'rhcos-live');
      t.equal(live.spec.kind, 'kernel');
      t.equal(live.transition, undefined, 'booting an unknown machine moves no state');

      // A flow boots its install stage for unknown machines.
      const flow = asBoot(plan(m, { profile: 'precache-assisted' }));
      t.equal(flow.profile.name, 'assisted');
      t.equal(flow.spec.kind, 'chain');
      t.equal(flow.transition, undefined);

      const local = plan(m, { profile: 'local-disk' });
      t.equal(local.kind, 'local');
      t.equal(local.transition, undefined);

      const missing = plan(m, { profile: 'no-such-profile' });
      t.equal(missing.kind, 'error');
      t.match(missing.reason, /no-such-profile/);
      t.equal(missing.transition, undefined);
    });
  }
});

t.test('a flow whose install stage is itself a flow is an error for unknown machines', async (t) => {
  const nested = mustProfile({ name: 'nested', flow: { install: 'precache-assisted' } });
  const d = plan(undefined, { profile: 'nested' }, withExtra(nested));
  t.equal(d.kind, 'error');
  t.match(d.reason, /nested/);
});

t.test('precache-assisted walks its flow', async (t) => {
  for (const state of ['registered', 'precaching'] as const) {
    t.test(state, async (t) => {
      const d = asBoot(plan(machine(state, 'precache-assisted')));
      t.equal(d.stage, 'precache');
      t.equal(d.profile.name, 'rhcos-live');
      t.equal(d.spec.kind, 'kernel');
      t.same(d.transition, { kind: 'precache-served' });
      t.same(applyTransition(state, { kind: 'precache-served' }), { ok: true, to: 'precaching', changed: state !== 'precaching' });
    });
  }
  for (const state of ['precached', 'installing'] as const) {
    t.test(state, async (t) => {
      const d = asBoot(plan(machine(state, 'precache-assisted')));
      t.equal(d.stage, 'install');
      t.equal(d.profile.name, 'assisted');
      t.equal(d.spec.kind, 'chain');
      t.same(d.transition, { kind: 'install-served', precacheRequired: true });
    });
  }
  t.test('installed', async (t) => {
    const d = plan(machine('installed', 'precache-assisted'));
    t.equal(d.kind, 'local');
    t.equal(d.transition, undefined);
  });
  t.test('failed', async (t) => {
    const d = plan(machine('failed', 'precache-assisted'));
    t.equal(d.kind, 'wait');
    t.equal(d.transition, undefined);
    t.match(d.reason, /reset/);
  });
});

t.test('precache.liveProfile on the reservation overrides the flow', async (t) => {
  const profiles = withExtra(altLive);
  for (const state of ['registered', 'precaching'] as const) {
    const d = asBoot(plan(machine(state, 'precache-assisted', { liveProfile: 'rhcos-live-alt' }), 'exit', profiles));
    t.equal(d.stage, 'precache', state);
    t.equal(d.profile.name, 'rhcos-live-alt', state);
    t.same(d.transition, { kind: 'precache-served' });
  }
  // The install stage is unaffected by the override.
  const inst = asBoot(plan(machine('precached', 'precache-assisted', { liveProfile: 'rhcos-live-alt' }), 'exit', profiles));
  t.equal(inst.profile.name, 'assisted');
  t.same(inst.transition, { kind: 'install-served', precacheRequired: true });

  // An override naming a profile that is not loaded is an error, not a silent fallback.
  const missing = plan(machine('registered', 'precache-assisted', { liveProfile: 'gone' }));
  t.equal(missing.kind, 'error');
  t.match(missing.reason, /gone/);

  // A profile with no precache stage ignores the override: nothing to precache.
  const plain = asBoot(plan(machine('registered', 'rhcos-live', { liveProfile: 'rhcos-live-alt' }), 'exit', profiles));
  t.equal(plain.stage, 'install');
  t.equal(plain.profile.name, 'rhcos-live');
  t.same(plain.transition, { kind: 'install-served', precacheRequired: false });
});

t.test('plain rhcos-live goes registered → installing without a precache', async (t) => {
  for (const state of ['registered', 'precached', 'installing'] as const) {
    const d = asBoot(plan(machine(state, 'rhcos-live')));
    t.equal(d.stage, 'install', state);
    t.equal(d.profile.name, 'rhcos-live', state);
    t.same(d.transition, { kind: 'install-served', precacheRequired: false }, state);
  }
  t.same(applyTransition('registered', { kind: 'install-served', precacheRequired: false }), { ok: true, to: 'installing', changed: true });
  t.equal(plan(machine('installed', 'rhcos-live')).kind, 'local');
  t.equal(plan(machine('failed', 'rhcos-live')).kind, 'wait');
});

t.test('plain assisted chains at once', async (t) => {
  const d = asBoot(plan(machine('registered', 'assisted')));
  t.equal(d.spec.kind, 'chain');
  t.same(d.transition, { kind: 'install-served', precacheRequired: false });
});

t.test('local-disk boots the disk in every state and moves nothing', async (t) => {
  for (const state of ['registered', 'precached', 'installing', 'installed'] as const) {
    const d = plan(machine(state, 'local-disk'));
    t.equal(d.kind, 'local', state);
    t.equal(d.transition, undefined, state);
  }
});

t.test('a profile that is not loaded is an error', async (t) => {
  for (const state of ['registered', 'precaching', 'precached', 'installing', 'installed', 'failed'] as const) {
    const d = plan(machine(state, 'vanished'));
    t.equal(d.kind, 'error', state);
    t.match(d.reason, /vanished/);
    t.equal(d.transition, undefined);
  }
});

t.test('a precaching machine whose profile has no precache stage is an error', async (t) => {
  for (const name of ['rhcos-live', 'assisted']) {
    const d = plan(machine('precaching', name));
    t.equal(d.kind, 'error', name);
    t.match(d.reason, /no precache stage/);
    t.equal(d.transition, undefined);
  }
});

t.test('a flow whose stage is itself a flow is an error', async (t) => {
  const bad = mustProfile({ name: 'bad-flow', flow: { precache: 'precache-assisted', install: 'precache-assisted' } });
  const profiles = withExtra(bad);
  t.equal(plan(machine('registered', 'bad-flow'), 'exit', profiles).kind, 'error');
  t.equal(plan(machine('precached', 'bad-flow'), 'exit', profiles).kind, 'error');
});

t.test('every transition the planner asks for is one the state machine accepts', async (t) => {
  const profiles = withExtra(altLive);
  let checked = 0;
  for (const p of profiles.list()) {
    for (const state of MACHINE_STATES) {
      const d = plan(machine(state, p.name), 'wait', profiles);
      if (!d.transition) continue;
      const step = applyTransition(state, d.transition);
      t.ok(step.ok, `${p.name} in ${state}: ${d.transition.kind} is accepted`);
      checked++;
    }
  }
  // assisted 3, precache-assisted 4, rhcos-live 3, rhcos-live-alt 3.
  t.equal(checked, 13, 'every boot-serving combination was checked');
});
