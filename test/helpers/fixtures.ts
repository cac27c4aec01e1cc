/**
 * Fixtures for unit tests that work on plain values, with no store or server: MACs, profiles
 * and stored machines.
 */
import { parseMac, type Mac } from '../../src/machines/mac.js';
import type { Machine } from '../../src/machines/model.js';
import type { MachineState } from '../../src/machines/state.js';
import { parseProfile } from '../../src/profiles/load.js';
import type { Profile } from '../../src/profiles/profile.js';

/** Parses a MAC the test knows is valid; a bad one throws. */
export function mustMac(s: string): Mac {
  const m = parseMac(s);
  if (!m) throw new Error(`bad test MAC ${s}`);
  return m;
}

/** Parses a profile document (as `test.yaml`, not built-in) the test knows is valid; a bad one throws. */
export function mustProfile(doc: unknown): Profile {
  const r = parseProfile(doc, 'test.yaml', false);
  if (!r.ok) throw new Error(`test profile does not parse: ${r.message}`);
  return r.profile;
}

/** The primary MAC of `machineFixture`. */
export const FIXTURE_MAC = mustMac('52:54:00:ab:cd:ef');
/** `createdAt` and `updatedAt` of `machineFixture`. */
export const FIXTURE_TIME = '2024-01-01T00:00:00.000Z';

/**
 * A stored machine in `state`: MAC `FIXTURE_MAC`, no further MACs, labels or observed data,
 * created and updated at `FIXTURE_TIME`; `overrides` sets any other field.
 */
export function machineFixture(state: MachineState, overrides: Partial<Machine> = {}): Machine {
  return {
    mac: FIXTURE_MAC,
    macs: [],
    labels: {},
    state,
    observed: {},
    createdAt: FIXTURE_TIME,
    updatedAt: FIXTURE_TIME,
    ...overrides,
  };
}
