import type { Mac } from '../machines/mac.js';
import type { Machine } from '../machines/model.js';
import { MUTATION_ATTEMPTS, StaleMachineError, type MachineChange, type MutationResult, type VersionedMachine } from './store.js';

/** One implementation's two steps of a mutation: a plain read, and a commit that checks the version read. */
export interface MutationSteps {
  read(mac: Mac): VersionedMachine | undefined;
  /** Writes `change` in one transaction if the machine is still as read, else throws StaleMachineError. */
  commit(lookup: Mac, current: VersionedMachine | undefined, change: MachineChange): MutationResult;
}

/**
 * Optimistic read-modify-write, the contract of `updateMachine` for every implementation: the
 * callback runs on the row as read, and again on the fresh row when another writer got there
 * first. Synchronous steps (SQLite, the in-memory fake); a networked store awaits the same loop.
 */
export function mutateWithRetry<R>(
  steps: MutationSteps,
  mac: Mac,
  change: (current: Machine | undefined) => { change: MachineChange; result: R },
): MutationResult & { result: R } {
  for (let attempt = 1; ; attempt++) {
    const current = steps.read(mac);
    const { change: c, result } = change(current?.machine);
    if (c.kind === 'save' && current && current.machine.mac !== c.machine.mac) {
      throw new Error(`store: a save must keep the primary MAC ${current.machine.mac}`);
    }
    try {
      return { ...steps.commit(mac, current, c), result };
    } catch (err) {
      if (!(err instanceof StaleMachineError) || attempt >= MUTATION_ATTEMPTS) throw err;
    }
  }
}

/** The version a compare-and-set finds against the one it expects; throws when they differ. */
export function checkVersion(mac: Mac, found: number | undefined, expected: number | undefined): void {
  if (found !== expected) throw new StaleMachineError(mac, expected);
}
