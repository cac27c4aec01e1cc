/**
 * The one table of vendor quirks. Redfish (DSP0266/DSP0268) is one standard, but each BMC family
 * bends it somewhere; every quirk is a field here with what it works around and where the field
 * learned it (Ironic's redfish driver and sushy, bmclib, gofish, Ansible's redfish modules, the
 * vendors' own registries). The client reads only this table: no vendor name appears in its code.
 */

export const VENDOR_NAMES = ['generic', 'dell', 'hpe', 'supermicro', 'ami', 'lenovo'] as const;
export type VendorName = (typeof VENDOR_NAMES)[number];

export interface Retry {
  attempts: number;
  /** The first wait; each next one doubles. */
  backoffMs: number;
}

export interface VendorQuirks {
  name: VendorName;
  /**
   * Send If-Match on every PATCH, `*` when the resource shows no ETag. DSP0266 lets a service require
   * it (428 Precondition Required); edgeboot sends the ETag anyway whenever there is one.
   */
  ifMatchRequired: boolean;
  /** PATCHes of the Boot object sent again after a read-back that shows other values. */
  overrideReadBackRetries: number;
  /** 409 Conflict to a Reset (a power transition under way): retried after a doubling back-off. */
  onBusyRetry: Retry;
  /** MessageIds (matched by their last dotted part) of a 4xx that means "busy, ask again later". */
  postBusyMessageIds: string[];
  /** How often and how long a PATCH refused with one of postBusyMessageIds is retried. */
  postBusyRetry: Retry;
  /** A 202's task monitor: polled every intervalMs until done, at most timeoutMs. */
  taskPolling: { intervalMs: number; timeoutMs: number };
}

const GENERIC: VendorQuirks = {
  name: 'generic',
  ifMatchRequired: false,
  // Supermicro is the known offender, but a read-back that differs once costs one PATCH to check
  // again on any BMC, and the issue asks for "retry once, then fail with what the BMC kept".
  overrideReadBackRetries: 1,
  // 5 tries from 0.5 s doubling: 0.5+1+2+4 = 7.5 s of waiting, enough for a PoweringOn/PoweringOff.
  onBusyRetry: { attempts: 5, backoffMs: 500 },
  postBusyMessageIds: [],
  postBusyRetry: { attempts: 1, backoffMs: 0 },
  taskPolling: { intervalMs: 500, timeoutMs: 60_000 },
};

const QUIRKS: Record<VendorName, VendorQuirks> = {
  generic: GENERIC,
  dell: {
    ...GENERIC,
    name: 'dell',
    // iDRAC answers 409 to a power action that conflicts with the state it is in or going to (PSU501/
    // PSU502 "already on/off", `On` while the host settles after a power-off: rh-ecosystem-edge/
    // eco-gotests#1617), and a power-on right after an iDRAC reset needs a wait and a retry
    // (dell/iDRAC-Redfish-Scripting#383). A longer back-off than the default.
    onBusyRetry: { attempts: 6, backoffMs: 1_000 },
    // iDRAC answers Reset with 202 and a job/task to follow (DSP0266 asynchronous operations).
    taskPolling: { intervalMs: 1_000, timeoutMs: 120_000 },
  },
  hpe: {
    ...GENERIC,
    name: 'hpe',
    // iLO 5 refuses a PATCH of the Boot object while the host is in POST with 400
    // iLO.2.x.UnableToModifyDuringSystemPOST (HPE's iLO 5 message registry, HPEDevCom/redfishdocs);
    // the system's Oem.Hpe.PostState reads InPost until FinishedPost, within a minute or so: retry.
    postBusyMessageIds: ['UnableToModifyDuringSystemPOST'],
    postBusyRetry: { attempts: 8, backoffMs: 1_000 },
    taskPolling: { intervalMs: 1_000, timeoutMs: 120_000 },
  },
  supermicro: {
    ...GENERIC,
    name: 'supermicro',
    // X11/X12 firmware answers 200 to the override PATCH but keeps its old BootSourceOverrideMode
    // (or Enabled) unless Mode is sent with it, and sometimes on the first PATCH after a boot even
    // then (DMTF/Redfishtool#106: "Supermicro don't respect the existing overridemode value";
    // redhat-performance/jetlag#18: a `Once` override not honoured). Read back, PATCH again once.
    overrideReadBackRetries: 1,
  },
  ami: {
    ...GENERIC,
    name: 'ami',
    // AMI MegaRAC answers PATCH without If-Match with 428 Ami.1.0.PreconditionHeaderMissing
    // (stmcginnis/gofish#171, a Lenovo SR655 with the AMI Redfish Server).
    ifMatchRequired: true,
  },
  lenovo: {
    ...GENERIC,
    name: 'lenovo',
    // XClarity answers 428 to a PATCH without If-Match (ansible/ansible#56150 added ETags to
    // every PATCH for it), and the AMD models run AMI's Redfish server (gofish#171).
    ifMatchRequired: true,
  },
};

export function vendorQuirks(name: VendorName): VendorQuirks {
  return QUIRKS[name];
}

export function isVendorName(name: string): name is VendorName {
  return (VENDOR_NAMES as readonly string[]).includes(name);
}

/** What detection looks at: the address alias, then the service root, then the system. */
export interface VendorClues {
  /** The vendor an address alias picked (address.ts), e.g. `idrac-redfish://` → dell. */
  alias?: string;
  /** ServiceRoot.Vendor (DSP0268 ServiceRoot v1.5+), e.g. "Dell", "HPE", "Supermicro", "AMI", "Lenovo". */
  rootVendor?: string;
  /** The service root's Oem keys: older firmware has no Vendor but names itself there ("Hpe", "Dell", "Supermicro"). */
  rootOemKeys?: string[];
  /** ComputerSystem.Manufacturer: "Dell Inc.", "HPE", "Supermicro", "Lenovo". */
  manufacturer?: string;
}

/** Name patterns, tried in order against each clue; the first clue that matches decides. */
const PATTERNS: [VendorName, RegExp][] = [
  ['dell', /\bdell\b|idrac/i],
  ['hpe', /\bhpe?\b|hewlett|\bilo/i],
  ['supermicro', /supermicro|\bsmc\b/i],
  ['lenovo', /lenovo|xclarity|\bxcc\b/i],
  ['ami', /\bami\b|megarac|american megatrends/i],
];

function match(text: string | undefined): VendorName | undefined {
  if (!text) return undefined;
  return PATTERNS.find(([, pattern]) => pattern.test(text))?.[0];
}

/** The profile to use: the alias wins, else the root's Vendor, else its Oem keys, else the Manufacturer, else generic. */
export function detectVendor(clues: VendorClues): VendorName {
  if (clues.alias && isVendorName(clues.alias)) return clues.alias;
  const fromOem = (clues.rootOemKeys ?? []).map(match).find((name) => name !== undefined);
  return match(clues.rootVendor) ?? fromOem ?? match(clues.manufacturer) ?? 'generic';
}

/** The `Vendor/…` or `Vendor.1.2.Id` MessageId's last part, to compare against postBusyMessageIds. */
export function isBusyMessage(quirks: VendorQuirks, messageIds: readonly string[]): boolean {
  return messageIds.some((id) => quirks.postBusyMessageIds.includes(id.split('.').pop() ?? id));
}
