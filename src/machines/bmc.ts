/**
 * A machine's BMC as the record keeps it: where it is and how to log in (the password sealed,
 * secrets/sealed-box.ts), what edgeboot last saw of it, and where a provisioning run it drives
 * stands. The password is write-only: no answer, log line or event carries it, sealed or not.
 */

/** `uefi`/`legacy` set BootSourceOverrideMode; `auto` leaves the mode as the BMC has it. */
export const BMC_BOOT_MODES = ['uefi', 'legacy', 'auto'] as const;
export type BmcBootMode = (typeof BMC_BOOT_MODES)[number];

/** `POST /api/v1/machines/{mac}/power`: `pxe-once` sets a one-time network boot and leaves the power as it is. */
export const POWER_ACTIONS = ['on', 'off', 'restart', 'pxe-once'] as const;
export type PowerAction = (typeof POWER_ACTIONS)[number];

/** The operator's settings of a machine's BMC. */
export interface BmcSettings {
  /** `redfish://host[:port]` (HTTPS), `redfish+http://host:port`, or a vendor alias such as `idrac-redfish://host`. */
  address: string;
  username: string;
  /** The password, sealed under the server's secret key (AES-256-GCM); absent until one is given. */
  passwordSealed?: string;
  /** The Redfish system's id under /redfish/v1/Systems; absent: the only member. */
  systemId?: string;
  verifyTls: boolean;
  bootMode: BmcBootMode;
}

/** What edgeboot last saw of the BMC (the poller, every operation and the inventory read refresh it). */
export interface BmcStatus {
  reachable: boolean;
  /** Redfish PowerState: On, Off, PoweringOn, PoweringOff, Paused. */
  powerState?: string;
  checkedAt: string;
  /** The vendor profile in use (bmc/vendors.ts): generic, dell, hpe, supermicro, ami, lenovo. */
  vendor?: string;
  manufacturer?: string;
  model?: string;
  serial?: string;
  uuid?: string;
  /** The system's NIC MACs (EthernetInterfaces), lower-case colon form. */
  macs?: string[];
  /** The last failure, already free of secrets; absent after a success. */
  lastError?: string;
}

/** A provisioning run edgeboot drives through the BMC (`POST …/provision`). */
export interface BmcRun {
  /**
   * `powered`: override set and power applied, waiting for the machine's `/ipxe` until `deadlineAt`;
   * `booted`: the machine asked `/ipxe`; `failed`: out of retries (the machine is failed too).
   */
  phase: 'powered' | 'booted' | 'failed';
  /** Power cycles done by this run, the first included. */
  attempts: number;
  startedAt: string;
  deadlineAt?: string;
}
