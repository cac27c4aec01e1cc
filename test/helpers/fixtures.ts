/**
 * Fixtures for unit tests that work on plain values, with no store or server: MACs, profiles
 * and stored machines.
 */
import { parseMac, type Mac } from '../../src/machines/mac.js';
import type { Machine, PrecacheProgress } from '../../src/machines/model.js';
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

/**
 * A machine of the built-in profile precache-assisted (precache rhcos-live, install assisted)
 * whose assisted script is at `hubUrl`; `progress` gives it a precache run (booting, nothing
 * done, started at `FIXTURE_TIME`, with these fields changed); `overrides` sets any other field.
 */
export function assistedMachine(state: MachineState, hubUrl: string, progress?: Partial<PrecacheProgress>, overrides: Partial<Machine> = {}): Machine {
  const run: PrecacheProgress = {
    boots: 0,
    step: 'booting',
    filesDone: 0,
    filesTotal: 0,
    bytesDone: 0,
    bytesTotal: 0,
    startedAt: FIXTURE_TIME,
    lastHeartbeatAt: FIXTURE_TIME,
  };
  return machineFixture(state, {
    profile: 'precache-assisted',
    assisted: { ipxeScriptUrl: hubUrl },
    ...(progress && { precacheProgress: { ...run, ...progress } }),
    ...overrides,
  });
}

/** The lab subnet of the DHCP tests, as `dhcp.subnets` holds it: 10.77.0.0/24, pool .100–.199, an hour's leases. */
export const LAB_SUBNET = {
  cidr: '10.77.0.0/24',
  pool: ['10.77.0.100', '10.77.0.199'] as [string, string],
  router: '10.77.0.1',
  dns: ['10.77.0.1'],
  domain: 'lab.example',
  leaseSeconds: 3600,
};
