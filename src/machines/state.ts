/**
 * The state machine of one machine (DESIGN.md). Pure: it decides whether a move is allowed and
 * where it leads; the caller records the move as an event in the same transaction.
 */
export const MACHINE_STATES = ['discovered', 'registered', 'precaching', 'precached', 'installing', 'installed', 'failed'] as const;
export type MachineState = (typeof MACHINE_STATES)[number];

export type Transition =
  | { kind: 'profile-assigned' }
  | { kind: 'precache-served' }
  | { kind: 'precache-succeeded' }
  | { kind: 'install-served'; precacheRequired: boolean }
  | { kind: 'install-done' }
  | { kind: 'error'; reason: string }
  | { kind: 'reset'; to: 'registered' | 'precached'; precacheKept: boolean; force?: boolean };

export type TransitionKind = Transition['kind'];

export type Step = { ok: true; to: MachineState; changed: boolean } | { ok: false; reason: string };

const refuse = (from: MachineState, t: Transition, why: string): Step => ({
  ok: false,
  reason: `cannot apply ${t.kind} to a machine in state ${from}: ${why}`,
});
const move = (from: MachineState, to: MachineState): Step => ({ ok: true, to, changed: from !== to });

export function applyTransition(from: MachineState, t: Transition): Step {
  switch (t.kind) {
    case 'profile-assigned':
      // Reassigning a profile later keeps the state: the flow goes on where it is.
      return from === 'discovered' ? move(from, 'registered') : move(from, from);
    case 'precache-served':
      // A reboot during precaching serves the live environment again: same state.
      if (from === 'registered' || from === 'precaching') return move(from, 'precaching');
      return refuse(from, t, 'only registered or precaching machines boot the precache environment');
    case 'precache-succeeded':
      if (from === 'precaching') return move(from, 'precached');
      return refuse(from, t, 'no precache is running');
    case 'install-served':
      if (from === 'precached' || from === 'installing') return move(from, 'installing');
      if (from === 'registered') {
        return t.precacheRequired ? refuse(from, t, 'its profile precaches first') : move(from, 'installing');
      }
      return refuse(from, t, 'the installer is served to registered, precached or installing machines');
    case 'install-done':
      if (from === 'installing') return move(from, 'installed');
      return refuse(from, t, 'no install is running');
    case 'error':
      if (from === 'discovered') return refuse(from, t, 'a discovered machine has no flow to fail');
      return move(from, 'failed');
    case 'reset':
      // A forced reset gets a machine out of any state of its flow (an install that never
      // reported back); a discovered machine has no flow to restart.
      if (t.force && from === 'discovered') return refuse(from, t, 'a discovered machine has no flow to reset: assign it a profile');
      if (!t.force && from !== 'failed' && from !== 'installed') {
        return refuse(from, t, 'without force, only failed or installed machines can be reset');
      }
      if (t.to === 'precached' && !t.precacheKept) {
        return refuse(from, t, 'it has no completed precache to keep');
      }
      return move(from, t.to);
  }
}

export function isMachineState(s: string): s is MachineState {
  return (MACHINE_STATES as readonly string[]).includes(s);
}
