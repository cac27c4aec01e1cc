import type { Store } from '../store/store.js';
import { MACHINE_STATES } from './state.js';

/** Every state with its number of machines (0 included, so a metrics series never vanishes). */
export async function machineStateCounts(store: Pick<Store, 'countMachinesByState'>): Promise<Record<string, number>> {
  return { ...Object.fromEntries(MACHINE_STATES.map((st) => [st, 0])), ...(await store.countMachinesByState()) };
}
