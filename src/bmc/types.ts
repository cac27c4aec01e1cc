/**
 * The contract between the Redfish client (redfish.ts, operations.ts) and the BMC service that
 * drives provisioning runs with it (service.ts). Every call has a timeout; every failure is a
 * BmcError whose message is free of secrets (no password, no session token, no Authorization).
 */
import type { BmcBootMode } from '../machines/bmc.js';

/** Where a BMC is and how to log in: the password already unsealed, for the length of one session. */
export interface BmcTarget {
  address: string;
  username: string;
  password: string;
  systemId?: string;
  verifyTls: boolean;
  bootMode: BmcBootMode;
}

export interface BmcClientOptions {
  /** Each HTTP request's limit (bmc.requestTimeoutSeconds). */
  timeoutMs: number;
  /** PEM of the CAs that sign BMC certificates (bmc.caFile), beside the system's; absent: the system's only. */
  ca?: string;
}

/**
 * - `unreachable`: no TCP/TLS connection, or no answer within the timeout;
 * - `auth`: 401/403 with Basic and with a session;
 * - `refused`: the BMC answered an error to a valid request (a 4xx/5xx with its Redfish message);
 * - `kept`: the BMC accepted a change but kept other values (read back after a retry);
 * - `protocol`: an answer that is not the Redfish it should be.
 */
export type BmcErrorKind = 'unreachable' | 'auth' | 'refused' | 'kept' | 'protocol';

export class BmcError extends Error {
  constructor(
    readonly kind: BmcErrorKind,
    message: string,
    /** The HTTP status, when the BMC answered. */
    readonly status?: number,
  ) {
    super(message);
    this.name = 'BmcError';
  }
}

/** The override a system has now (its Boot object). */
export interface BootOverride {
  target?: string;
  enabled?: string;
  mode?: string;
  httpBootUri?: string;
}

/** One ComputerSystem as edgeboot needs it. */
export interface SystemView {
  id: string;
  /** Its path, e.g. /redfish/v1/Systems/1. */
  path: string;
  powerState?: string;
  manufacturer?: string;
  model?: string;
  serial?: string;
  uuid?: string;
  /** Its NICs' MACs (EthernetInterfaces), lower-case colon form. */
  macs: string[];
  /** The vendor profile in use (vendors.ts). */
  vendor: string;
  boot: BootOverride;
  /** BootSourceOverrideTarget@Redfish.AllowableValues; empty when the BMC does not say. */
  bootTargets: string[];
  /** Whether the Boot object has BootSourceOverrideMode at all. */
  modeSupported: boolean;
  /** ResetType@Redfish.AllowableValues of ComputerSystem.Reset; empty when the BMC does not say. */
  resetTypes: string[];
}

/** A one-time network boot as the BMC kept it after the read-back. */
export interface OverrideResult {
  target: 'Pxe' | 'UefiHttp';
  /** The mode sent; absent when left out (unsupported, or bootMode auto). */
  mode?: string;
  /** PATCHes sent: 2 when the first was reverted (Supermicro) and retried. */
  attempts: number;
  kept: BootOverride;
}

/** A reset done: the ResetTypes sent in order (a fallback sends two), and the power state before. */
export interface ResetResult {
  action: 'on' | 'off' | 'restart';
  resetTypes: string[];
  powerBefore?: string;
  /** Requests the BMC answered 409 (busy) and that were retried after a back-off. */
  busyRetries: number;
}

/** One logged-in session on a BMC; `withBmc` (redfish.ts) opens it, runs the callback, and deletes it. */
export interface BmcSession {
  /** The ComputerSystem (systemId, else the only member of /redfish/v1/Systems), read fresh. */
  system(): Promise<SystemView>;
  /** A one-time network boot: PATCH with If-Match, read back, one retry, else a `kept` BmcError. */
  setOneTimeBoot(o: { target: 'Pxe' | 'UefiHttp'; httpBootUri?: string }): Promise<OverrideResult>;
  /** on: On; off: ForceOff; restart: ForceRestart when on, On when off (with the fallbacks of the allowable values). */
  reset(action: 'on' | 'off' | 'restart'): Promise<ResetResult>;
}
