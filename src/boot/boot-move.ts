import type { Machine, NewEvent } from '../machines/model.js';
import { precacheBooted } from '../machines/precache-run.js';
import type { MachineChange } from '../store/store.js';
import type { Transition } from '../machines/state.js';
import type { BootDecision } from './planner.js';

/** A state move as a store change (MachineService.transition): throws for a refused move. */
export type ApplyTransition = (m: Machine, t: Transition, source: NewEvent['source'], message?: string) => MachineChange;

/** The machine once a boot was served to it, and the events of its state move. */
export interface BootMove {
  machine: Machine;
  events: NewEvent[];
}

/**
 * What serving the decision to the machine's own address does to its record (pure, given a
 * pure `transition`): the decision's state move, one precache boot more on its run, and for
 * each precache or install boot of its flow fresh credentials (the next token generation), so
 * that those of the boot before (an old precache.env, a leaked script) stop working. The
 * decision itself is planBoot's; this only applies it.
 */
export function bootMove(machine: Machine, d: BootDecision, time: string, transition: ApplyTransition): BootMove {
  const moved = d.transition ? transition(machine, d.transition, 'http', d.reason) : undefined;
  let next = moved?.kind === 'save' ? moved.machine : machine;
  if (d.kind === 'boot' && d.stage === 'precache') next = { ...next, precacheProgress: precacheBooted(machine.precacheProgress, machine.state, time) };
  if (d.kind === 'boot' && d.transition) next = { ...next, tokenGeneration: (next.tokenGeneration ?? 0) + 1 };
  return { machine: next, events: moved?.kind === 'save' ? (moved.events ?? []) : [] };
}

/** The timeline event of a served script: what was decided and why. */
export function scriptServedEvent(d: BootDecision): NewEvent {
  const data: Record<string, unknown> = { kind: d.kind };
  if (d.kind === 'boot') {
    data.stage = d.stage;
    data.profile = d.profile.name;
    if (d.hub) data.hub = 'rewritten';
  }
  return { type: 'script-served', source: 'http', message: d.reason, data };
}
