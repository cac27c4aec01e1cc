import t from 'tap';
import { planBoot, pxeAnswer, type PlanInput, type PxeAnswer } from '../../../src/boot/planner.js';
import type { UnknownMachinePolicy } from '../../../src/config/config.js';
import type { Machine } from '../../../src/machines/model.js';
import { MACHINE_STATES } from '../../../src/machines/state.js';
import { BUILTIN_PROFILES_DIR, loadProfiles } from '../../../src/profiles/load.js';
import { machineFixture } from '../../helpers/fixtures.js';

const profiles = loadProfiles([{ dir: BUILTIN_PROFILES_DIR, builtin: true }]);
const POLICIES: UnknownMachinePolicy[] = [
  'exit',
  'wait',
  { profile: 'rhcos-live' },
  { profile: 'precache-assisted' },
  { profile: 'local-disk' },
  { profile: 'no-such-profile' },
];
/** precache.maxBoots's default. */
const LIMITS = { maxBoots: 3 };
const policyName = (p: UnknownMachinePolicy): string => (typeof p === 'string' ? p : `profile ${p.profile}`);

const machine = (state: Machine['state'], profile: string | undefined): Machine => machineFixture(state, { ...(profile !== undefined && { profile }) });
const answer = (m: Machine | undefined, unknownMachines: UnknownMachinePolicy): PxeAnswer => pxeAnswer({ machine: m, profiles, unknownMachines });

/** Machines edgeboot knows nothing to boot for: no record, a discovered one, one without a profile. */
const UNKNOWN: [string, Machine | undefined][] = [
  ['no machine', undefined],
  ['discovered', machine('discovered', undefined)],
  ['discovered with a profile name', machine('discovered', 'precache-assisted')],
  ['registered without a profile', machine('registered', undefined)],
];

t.test('an unknown machine is answered as boot.unknownMachines says', async (t) => {
  for (const [what, m] of UNKNOWN) {
    const exit = answer(m, 'exit');
    t.same(
      exit,
      { answer: false, reason: 'not booted by edgeboot: no profile assigned (boot.unknownMachines: exit)' },
      `${what}, exit: silence, with the planner's reason`,
    );
    t.same(answer(m, 'wait'), { answer: true }, `${what}, wait: answered (its script waits for an admin)`);
    t.same(answer(m, { profile: 'rhcos-live' }), { answer: true }, `${what}, a profile: answered`);
    t.same(answer(m, { profile: 'precache-assisted' }), { answer: true }, `${what}, a flow: answered (its install stage boots)`);
    const disk = answer(m, { profile: 'local-disk' });
    t.equal(disk.answer, false, `${what}, a profile that boots the local disk: silence`);
    t.match(disk, { reason: /local-disk boots the local disk/ }, 'naming the profile');
    // A policy naming a profile that is not loaded: the script says so on the console.
    t.same(answer(m, { profile: 'no-such-profile' }), { answer: true }, `${what}, a profile not loaded: answered, its script shows the error`);
  }
});

t.test('an assigned machine is answered in every state, whatever it boots and whatever the policy', async (t) => {
  const assigned = MACHINE_STATES.filter((s) => s !== 'discovered');
  t.ok(assigned.includes('installed') && assigned.includes('failed'), 'the states include installed and failed');
  for (const state of assigned) {
    for (const profile of ['precache-assisted', 'local-disk', 'no-such-profile']) {
      for (const policy of POLICIES) {
        t.same(answer(machine(state, profile), policy), { answer: true }, `${state}, ${profile}, unknownMachines ${policyName(policy)}`);
      }
    }
  }
  // These plan the local disk, and still get their script: it is where their timeline moves.
  t.equal(
    planBoot({ machine: machine('installed', 'precache-assisted'), profiles, unknownMachines: 'exit', precache: LIMITS }).kind,
    'local',
    'installed plans the disk',
  );
  t.equal(
    planBoot({ machine: machine('registered', 'local-disk'), profiles, unknownMachines: 'exit', precache: LIMITS }).kind,
    'local',
    'local-disk plans the disk',
  );
});

t.test('silence is exactly an unassigned machine whose plan is the local disk (derived from planBoot)', async (t) => {
  const inputs: PlanInput[] = [];
  for (const policy of POLICIES) {
    for (const [, m] of UNKNOWN) inputs.push({ machine: m, profiles, unknownMachines: policy, precache: LIMITS });
    for (const state of MACHINE_STATES)
      for (const profile of ['precache-assisted', 'local-disk', 'rhcos-live'])
        inputs.push({ machine: machine(state, profile), profiles, unknownMachines: policy, precache: LIMITS });
  }
  let silent = 0;
  for (const input of inputs) {
    const d = planBoot(input);
    const m = input.machine;
    const unassigned = m === undefined || m.state === 'discovered' || m.profile === undefined;
    const a = pxeAnswer(input);
    t.equal(a.answer, !(unassigned && d.kind === 'local'), `${m ? `${m.state}/${m.profile ?? '-'}` : 'none'} under ${policyName(input.unknownMachines)}`);
    if (!a.answer) {
      silent++;
      t.equal(a.reason, `not booted by edgeboot: ${d.reason}`, 'the reason is the plan’s');
    }
  }
  t.ok(silent > 0, `some inputs are silent (${silent} of ${inputs.length})`);
});
