import type { Mac, Uuid } from './mac.js';
import type { MachineState } from './state.js';

export interface PrecacheSettings {
  release?: string;
  images?: string[];
  sizeGiB?: number;
  disk?: string;
  liveProfile?: string;
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
  createdAt: string;
  updatedAt: string;
}

export const EVENT_SOURCES = ['dhcp', 'tftp', 'http', 'machine', 'api'] as const;
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
