import type { Mac, Uuid } from './mac.js';
import type { BmcRun, BmcSettings, BmcStatus } from './bmc.js';
import type { MachineState } from './state.js';

export interface PrecacheSettings {
  release?: string;
  images?: string[];
  sizeGiB?: number;
  disk?: string;
  liveProfile?: string;
  /** A bundle built with POST /api/v1/bundles, instead of `release`/`images`. */
  bundle?: string;
}

/** One block device, as the live environment's job reports it. */
export interface DiskInfo {
  path: string;
  name: string;
  sizeBytes: number;
  type: string;
  removable: boolean;
  readOnly: boolean;
  model?: string;
  serial?: string;
  transport?: string;
}

/** What the live environment found on the machine. */
export interface Inventory {
  disks: DiskInfo[];
  macs: string[];
  memoryBytes?: number;
  cpus?: number;
  serial?: string;
  reportedAt: string;
}

/** Where the precache job of a machine is, for the admin (edgeboot owns it). */
export interface PrecacheProgress {
  /** Precache boots served since the run began. */
  boots: number;
  step: string;
  message?: string;
  filesDone: number;
  filesTotal: number;
  bytesDone: number;
  bytesTotal: number;
  disk?: string;
  bundle?: string;
  startedAt: string;
  lastHeartbeatAt: string;
  finishedAt?: string;
  outcome?: 'precached' | 'failed';
}

/** What the admin API takes: the fields an operator owns. */
export interface Reservation {
  mac: Mac;
  macs: Mac[];
  uuid?: Uuid;
  hostname?: string;
  ip?: string;
  profile?: string;
  labels: Record<string, string>;
  assisted?: { ipxeScriptUrl: string };
  precache?: PrecacheSettings;
  /** The machine's BMC, for zero-touch provisioning (machines/bmc.ts). */
  bmc?: BmcSettings;
}

/** What a PXE client told us about itself; recorded on every boot request. */
export interface Observed {
  /** The SMBIOS UUID the machine reported (the reservation's `uuid` is the operator's). */
  uuid?: string;
  /** Every NIC MAC iPXE listed on its last boot. */
  nics?: string[];
  arch?: string;
  platform?: string;
  serial?: string;
  vendorClass?: string;
  lastSeenAt?: string;
}

/** A machine as the store keeps it: the reservation plus what edgeboot owns. */
export interface Machine extends Reservation {
  state: MachineState;
  observed: Observed;
  /** Set when a precache completed; `reset --to precached` needs it. */
  precachedAt?: string;
  inventory?: Inventory;
  precacheProgress?: PrecacheProgress;
  /**
   * Mixed into the machine's events token and Ignition signature (boot/tokens.ts); bumped by
   * each precache or install boot served to the machine's own address, so that the tokens of
   * an earlier boot stop working. Absent: 0.
   */
  tokenGeneration?: number;
  /** What edgeboot last saw of the BMC. */
  bmcStatus?: BmcStatus;
  /** The provisioning run the BMC service drives, if any. */
  bmcRun?: BmcRun;
  createdAt: string;
  updatedAt: string;
}

export const EVENT_SOURCES = ['dhcp', 'tftp', 'http', 'machine', 'api', 'bmc'] as const;
export type EventSource = (typeof EVENT_SOURCES)[number];

export interface NewEvent {
  type: string;
  source: EventSource;
  message?: string;
  data?: Record<string, unknown>;
  from?: MachineState;
  to?: MachineState;
}

export interface MachineEvent extends NewEvent {
  id: number;
  mac: Mac;
  time: string;
}

/** Every MAC of a machine: the primary first. */
export function allMacs(m: Pick<Reservation, 'mac' | 'macs'>): Mac[] {
  return [m.mac, ...m.macs.filter((x) => x !== m.mac)];
}
