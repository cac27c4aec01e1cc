/** What the operations on one system share for the length of a session (redfish.ts builds it). */
import type { BmcBootMode } from '../machines/bmc.js';
import type { RedfishClient } from './session.js';
import type { VendorQuirks } from './vendors.js';

export interface BmcContext {
  client: RedfishClient;
  systemPath: string;
  quirks: VendorQuirks;
  bootMode: BmcBootMode;
}

/** A doubling back-off never waits longer than this between two tries. */
export const MAX_BACKOFF_MS = 10_000;
