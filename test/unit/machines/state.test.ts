import t from 'tap';
import { applyTransition, isMachineState, MACHINE_STATES, type MachineState, type Transition } from '../../../src/machines/state.js';

/** Every transition variant the state machine knows, with the flags that change its outcome. */
const VARIANTS = {
  'profile-assigned': { kind: 'profile-assigned' },
  'precache-served': { kind: 'precache-served' },
  'precache-succeeded': { kind: 'precache-succeeded' },
  'install-served (precache required)': { kind: 'install-served', precacheRequired: true },
  'install-served (no precache)': { kind: 'install-served', precacheRequired: false },
  'install-done': { kind: 'install-done' },
  error: { kind: 'error', reason: 'boot loop' },
  'reset to registered (precache kept)': { kind: 'reset', to: 'registered', precacheKept: true },
  'reset to registered (no precache)': { kind: 'reset', to: 'registered', precacheKept: false },
  'reset to precached (precache kept)': { kind: 'reset', to: 'precached', precacheKept: true },
  'reset to precached (no precache)': { kind: 'reset', to: 'precached', precacheKept: false },
  'forced reset to registered (precache kept)': { kind: 'reset', to: 'registered', precacheKept: true, force: true },
  'forced reset to registered (no precache)': { kind: 'reset', to: 'registered', precacheKept: false, force: true },
  'forced reset to precached (precache kept)': { kind: 'reset', to: 'precached', precacheKept: true, force: true },
  'forced reset to precached (no precache)': { kind: 'reset', to: 'precached', precacheKept: false, force: true },
} as const satisfies Record<string, Transition>;
type Variant = keyof typeof VARIANTS;

type Cell = { to: MachineState; changed: boolean } | 'refused';
/** Allowed, and the state moves. */
const moves = (to: MachineState): Cell => ({ to, changed: true });
/** Allowed, and the state stays what it is. */
const stays = (to: MachineState): Cell => ({ to, changed: false });
const NO = 'refused';

/**
 * The whole state machine, one row per state, one column per transition variant.
 * Written out cell by cell on purpose: a change of any rule must change this table.
 */
const TABLE: Record<MachineState, Record<Variant, Cell>> = {
  discovered: {
    'profile-assigned': moves('registered'),
    'precache-served': NO,
    'precache-succeeded': NO,
    'install-served (precache required)': NO,
    'install-served (no precache)': NO,
    'install-done': NO,
    error: NO,
    'reset to registered (precache kept)': NO,
    'reset to registered (no precache)': NO,
    'reset to precached (precache kept)': NO,
    'reset to precached (no precache)': NO,
    'forced reset to registered (precache kept)': NO,
    'forced reset to registered (no precache)': NO,
    'forced reset to precached (precache kept)': NO,
    'forced reset to precached (no precache)': NO,
  },
  registered: {
    'profile-assigned': stays('registered'),
    'precache-served': moves('precaching'),
    'precache-succeeded': NO,
    'install-served (precache required)': NO,
    'install-served (no precache)': moves('installing'),
    'install-done': NO,
    error: moves('failed'),
    'reset to registered (precache kept)': NO,
    'reset to registered (no precache)': NO,
    'reset to precached (precache kept)': NO,
    'reset to precached (no precache)': NO,
    'forced reset to registered (precache kept)': stays('registered'),
    'forced reset to registered (no precache)': stays('registered'),
    'forced reset to precached (precache kept)': moves('precached'),
    'forced reset to precached (no precache)': NO,
  },
  precaching: {
    'profile-assigned': stays('precaching'),
    'precache-served': stays('precaching'),
    'precache-succeeded': moves('precached'),
    'install-served (precache required)': NO,
    'install-served (no precache)': NO,
    'install-done': NO,
    error: moves('failed'),
    'reset to registered (precache kept)': NO,
    'reset to registered (no precache)': NO,
    'reset to precached (precache kept)': NO,
    'reset to precached (no precache)': NO,
    'forced reset to registered (precache kept)': moves('registered'),
    'forced reset to registered (no precache)': moves('registered'),
    'forced reset to precached (precache kept)': moves('precached'),
    'forced reset to precached (no precache)': NO,
  },
  precached: {
    'profile-assigned': stays('precached'),
    'precache-served': NO,
    'precache-succeeded': NO,
    'install-served (precache required)': moves('installing'),
    'install-served (no precache)': moves('installing'),
    'install-done': NO,
    error: moves('failed'),
    'reset to registered (precache kept)': NO,
    'reset to registered (no precache)': NO,
    'reset to precached (precache kept)': NO,
    'reset to precached (no precache)': NO,
    'forced reset to registered (precache kept)': moves('registered'),
    'forced reset to registered (no precache)': moves('registered'),
    'forced reset to precached (precache kept)': stays('precached'),
    'forced reset to precached (no precache)': NO,
  },
  installing: {
    'profile-assigned': stays('installing'),
    'precache-served': NO,
    'precache-succeeded': NO,
    'install-served (precache required)': stays('installing'),
    'install-served (no precache)': stays('installing'),
    'install-done': moves('installed'),
    error: moves('failed'),
    'reset to registered (precache kept)': NO,
    'reset to registered (no precache)': NO,
    'reset to precached (precache kept)': NO,
    'reset to precached (no precache)': NO,
    'forced reset to registered (precache kept)': moves('registered'),
    'forced reset to registered (no precache)': moves('registered'),
    'forced reset to precached (precache kept)': moves('precached'),
    'forced reset to precached (no precache)': NO,
  },
  installed: {
    'profile-assigned': stays('installed'),
    'precache-served': NO,
    'precache-succeeded': NO,
    'install-served (precache required)': NO,
    'install-served (no precache)': NO,
    'install-done': NO,
    error: moves('failed'),
    'reset to registered (precache kept)': moves('registered'),
    'reset to registered (no precache)': moves('registered'),
    'reset to precached (precache kept)': moves('precached'),
    'reset to precached (no precache)': NO,
    'forced reset to registered (precache kept)': moves('registered'),
    'forced reset to registered (no precache)': moves('registered'),
    'forced reset to precached (precache kept)': moves('precached'),
    'forced reset to precached (no precache)': NO,
  },
  failed: {
    'profile-assigned': stays('failed'),
    'precache-served': NO,
    'precache-succeeded': NO,
    'install-served (precache required)': NO,
    'install-served (no precache)': NO,
    'install-done': NO,
    error: stays('failed'),
    'reset to registered (precache kept)': moves('registered'),
    'reset to registered (no precache)': moves('registered'),
    'reset to precached (precache kept)': moves('precached'),
    'reset to precached (no precache)': NO,
    'forced reset to registered (precache kept)': moves('registered'),
    'forced reset to registered (no precache)': moves('registered'),
    'forced reset to precached (precache kept)': moves('precached'),
    'forced reset to precached (no precache)': NO,
  },
};

t.test('the table covers every state and every transition variant', async (t) => {
  t.same(Object.keys(TABLE).sort(), [...MACHINE_STATES].sort(), 'one row per state');
  for (const state of MACHINE_STATES) {
    t.same(Object.keys(TABLE[state]).sort(), Object.keys(VARIANTS).sort(), `row ${state} has every variant`);
  }
  const kinds = new Set(Object.values(VARIANTS).map((v) => v.kind));
  t.same(
    [...kinds].sort(),
    ['error', 'install-done', 'install-served', 'precache-served', 'precache-succeeded', 'profile-assigned', 'reset'],
    'every transition kind is exercised',
  );
});

for (const from of MACHINE_STATES) {
  t.test(`from ${from}`, async (t) => {
    for (const [variant, transition] of Object.entries(VARIANTS) as [Variant, Transition][]) {
      const expected = TABLE[from][variant];
      const step = applyTransition(from, transition);
      if (expected === NO) {
        t.equal(step.ok, false, `${variant}: refused`);
        if (!step.ok) {
          t.match(step.reason, `cannot apply ${transition.kind} to a machine in state ${from}: `, `${variant}: the reason names the state and the transition`);
          t.ok(step.reason.length > `cannot apply ${transition.kind} to a machine in state ${from}: `.length, `${variant}: the reason says why`);
        }
      } else {
        t.same(step, { ok: true, to: expected.to, changed: expected.changed }, `${variant}: → ${expected.to}${expected.changed ? '' : ' (unchanged)'}`);
      }
    }
  });
}

t.test('refusals explain themselves', async (t) => {
  const reasonOf = (from: MachineState, tr: Transition): string => {
    const step = applyTransition(from, tr);
    if (step.ok) throw new Error(`expected ${tr.kind} from ${from} to be refused`);
    return step.reason;
  };
  t.match(reasonOf('registered', { kind: 'install-served', precacheRequired: true }), /precaches first/);
  t.match(reasonOf('failed', { kind: 'reset', to: 'precached', precacheKept: false }), /no completed precache/);
  t.match(reasonOf('precaching', { kind: 'reset', to: 'registered', precacheKept: true }), /only failed or installed/);
  t.match(reasonOf('discovered', { kind: 'reset', to: 'registered', precacheKept: false, force: true }), /discovered machine has no flow to reset/);
  t.match(reasonOf('installing', { kind: 'reset', to: 'precached', precacheKept: false, force: true }), /no completed precache/);
  t.match(reasonOf('discovered', { kind: 'error', reason: 'x' }), /discovered machine has no flow/);
  t.match(reasonOf('registered', { kind: 'precache-succeeded' }), /no precache is running/);
  t.match(reasonOf('precached', { kind: 'install-done' }), /no install is running/);
});

t.test('the happy paths of DESIGN.md, step by step', async (t) => {
  const walk = (start: MachineState, steps: Transition[]): MachineState => {
    let state = start;
    for (const s of steps) {
      const step = applyTransition(state, s);
      if (!step.ok) throw new Error(step.reason);
      state = step.to;
    }
    return state;
  };
  t.equal(
    walk('discovered', [
      { kind: 'profile-assigned' },
      { kind: 'precache-served' },
      { kind: 'precache-succeeded' },
      { kind: 'install-served', precacheRequired: true },
      { kind: 'install-done' },
    ]),
    'installed',
    'precache flow',
  );
  t.equal(
    walk('discovered', [{ kind: 'profile-assigned' }, { kind: 'install-served', precacheRequired: false }, { kind: 'install-done' }]),
    'installed',
    'a profile without precache goes registered → installing directly',
  );
  t.equal(
    walk('installing', [
      { kind: 'error', reason: 'hub timeout' },
      { kind: 'reset', to: 'precached', precacheKept: true },
      { kind: 'install-served', precacheRequired: true },
    ]),
    'installing',
    'reinstall after a failure keeps the precache',
  );
});

t.test('isMachineState', async (t) => {
  for (const s of MACHINE_STATES) t.ok(isMachineState(s), s);
  for (const s of ['', 'Registered', 'unknown', 'install', 'failed ']) t.notOk(isMachineState(s), JSON.stringify(s));
});
