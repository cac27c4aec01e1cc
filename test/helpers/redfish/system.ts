/**
 * The emulated BMC's one ComputerSystem: its Boot override (PATCH with validation, ETags, the
 * one-time override consumed by the next boot) and its Reset action over the power machine, with
 * the vendor quirks of the profile (profiles.ts).
 */
import { randomBytes } from 'node:crypto';
import { BASE, failure, inTransition, type RedfishFailure } from './errors.js';
import { isRecord } from './http.js';
import { PowerMachine, type PowerDriver } from './power.js';
import { ALL_RESET_TYPES, type Profile, type ResetType } from './profiles.js';
import { BOOT_ENABLED_VALUES, BOOT_MODE_VALUES, type BootState } from './resources.js';

export interface BootRecord {
  networkFirst: boolean;
  target?: string;
  at: number;
}

export interface SystemOptions {
  profile: Profile;
  transitionMs: number;
  powerState: 'On' | 'Off';
  driver: PowerDriver;
  bootTargets: string[];
  resetTypes: string[];
  modeSupported: boolean;
  onBoot?: (b: BootRecord) => void;
}

export type ResetOutcome = { ok: true; changed: boolean } | { ok: false; failure: RedfishFailure };

const NETWORK_TARGETS = new Set(['Pxe', 'UefiHttp']);
const BOOT_PROPERTIES = new Set(['BootSourceOverrideTarget', 'BootSourceOverrideEnabled', 'BootSourceOverrideMode', 'HttpBootUri']);
const READ_ONLY = new Set(['Id', 'Name', 'PowerState', 'UUID', 'SerialNumber', 'Model', 'Manufacturer', 'Status', 'EthernetInterfaces', 'Links', 'Actions']);

export class EmulatedSystem {
  readonly boots: BootRecord[] = [];
  readonly power: PowerMachine;
  boot: BootState;
  private etagVersion = 1;
  private readonly etagPrefix = randomBytes(4).toString('hex');
  /** Supermicro: the next Boot PATCH is the first since the last boot (the emulator start counts as one). */
  private revertPending = true;
  /** iLO: PATCH refused until then (the host is in POST). */
  private postUntil = 0;

  constructor(private readonly o: SystemOptions) {
    // Supermicro boards ship in Legacy (or dual) mode: the Mode revert is visible only if UEFI is a change.
    this.boot = { target: 'None', enabled: 'Disabled', ...(o.modeSupported ? { mode: o.profile.revertsFirstBootPatch ? 'Legacy' : 'UEFI' } : {}) };
    this.power = new PowerMachine(o.driver, o.transitionMs, o.powerState, {
      bootStarts: () => this.bootStarts(),
      driverFailed: (what, err) => console.error(`redfish emulator: power driver ${what} failed:`, err),
    });
  }

  get etag(): string {
    return `"${this.etagPrefix}-${this.etagVersion}"`;
  }

  get inPost(): boolean {
    return this.power.state !== 'Off' && Date.now() < this.postUntil;
  }

  /** A boot starts (power on, reset, guest reboot): the override is read, and a Once one consumed. */
  private bootStarts(): boolean {
    const { target, enabled } = this.boot;
    const overriding = enabled !== 'Disabled' && target !== 'None';
    const record: BootRecord = { networkFirst: overriding && NETWORK_TARGETS.has(target), ...(overriding ? { target } : {}), at: Date.now() };
    if (enabled === 'Once') {
      this.boot = { ...this.boot, target: 'None', enabled: 'Disabled' };
      this.etagVersion++;
    }
    this.revertPending = true;
    this.postUntil = Date.now() + this.o.profile.postTransitions * this.o.transitionMs;
    this.boots.push(record);
    this.o.onBoot?.(record);
    return record.networkFirst;
  }

  /** PATCH /redfish/v1/Systems/{id}: undefined when applied, else the Redfish failure to answer. */
  patch(ifMatch: string | undefined, body: unknown): RedfishFailure | undefined {
    if (ifMatch === undefined && this.o.profile.requiresIfMatch)
      return failure(428, `${BASE}.PreconditionRequired`, 'A precondition header or annotation is required to change this resource.');
    if (ifMatch !== undefined && !etagMatches(ifMatch, this.etag))
      return failure(412, `${BASE}.PreconditionFailed`, 'The ETag supplied did not match the ETag required to change this resource.');
    if (this.inPost)
      return failure(400, 'iLO.2.14.UnableToModifyDuringSystemPOST', 'The value for the property cannot be changed while the computer system is in POST.');
    const parsed = this.parseBootPatch(body);
    if (!parsed.ok) return parsed.failure;
    const next: BootState = { ...this.boot, ...parsed.boot };
    if (this.revertPending && this.o.profile.revertsFirstBootPatch) {
      // Supermicro: 200, but the first changed one of Mode and Enabled keeps its old value.
      if (next.mode !== this.boot.mode) next.mode = this.boot.mode;
      else if (next.enabled !== this.boot.enabled) next.enabled = this.boot.enabled;
    }
    this.revertPending = false;
    this.boot = next;
    this.etagVersion++;
    return undefined;
  }

  private parseBootPatch(body: unknown): { ok: true; boot: Partial<BootState> } | { ok: false; failure: RedfishFailure } {
    if (!isRecord(body)) return { ok: false, failure: failure(400, `${BASE}.MalformedJSON`, 'The request body must be a JSON object.') };
    for (const key of Object.keys(body)) {
      if (key === 'Boot' || key.startsWith('@odata.')) continue;
      const id = READ_ONLY.has(key) ? 'PropertyNotWritable' : 'PropertyUnknown';
      return {
        ok: false,
        failure: failure(
          400,
          `${BASE}.${id}`,
          `The property ${key} is ${id === 'PropertyNotWritable' ? 'a read only property' : 'not in the list of valid properties'}.`,
        ),
      };
    }
    const boot = body.Boot;
    if (!isRecord(boot))
      return {
        ok: false,
        failure: failure(400, `${BASE}.PropertyValueTypeError`, 'The value for the property Boot is of a different type than the property can accept.'),
      };
    const out: Partial<BootState> = {};
    for (const [key, value] of Object.entries(boot)) {
      if (
        !BOOT_PROPERTIES.has(key) ||
        (key === 'BootSourceOverrideMode' && !this.o.modeSupported) ||
        (key === 'HttpBootUri' && !this.o.bootTargets.includes('UefiHttp'))
      )
        return { ok: false, failure: failure(400, `${BASE}.PropertyUnknown`, `The property ${key} is not in the list of valid properties for the resource.`) };
      if (typeof value !== 'string')
        return {
          ok: false,
          failure: failure(400, `${BASE}.PropertyValueTypeError`, `The value for the property ${key} is of a different type than the property can accept.`),
        };
      const allowed =
        key === 'BootSourceOverrideTarget'
          ? this.o.bootTargets
          : key === 'BootSourceOverrideEnabled'
            ? BOOT_ENABLED_VALUES
            : key === 'BootSourceOverrideMode'
              ? BOOT_MODE_VALUES
              : undefined;
      if (allowed !== undefined && !allowed.includes(value))
        return {
          ok: false,
          failure: failure(400, `${BASE}.PropertyValueNotInList`, `The value ${value} for the property ${key} is not in the list of acceptable values.`),
        };
      if (key === 'BootSourceOverrideTarget') out.target = value;
      else if (key === 'BootSourceOverrideEnabled') out.enabled = value;
      else if (key === 'BootSourceOverrideMode') out.mode = value;
      else out.httpBootUri = value;
    }
    return { ok: true, boot: out };
  }

  /** POST …/Actions/ComputerSystem.Reset. */
  reset(body: unknown): ResetOutcome {
    const resetType = isRecord(body) ? body.ResetType : undefined;
    if (resetType === undefined)
      return refuse(
        400,
        `${BASE}.ActionParameterMissing`,
        'The action ComputerSystem.Reset requires the parameter ResetType to be present in the request body.',
      );
    if (typeof resetType !== 'string' || !this.o.resetTypes.includes(resetType) || !isResetType(resetType))
      return refuse(
        400,
        `${BASE}.ActionParameterValueNotInList`,
        `The value ${JSON.stringify(resetType)} for the parameter ResetType in the action ComputerSystem.Reset is not in the list of acceptable values.`,
      );
    const power = this.power;
    if (power.busy) return { ok: false, failure: inTransition() };
    const on = power.state === 'On';
    const wantsOn = resetType === 'On' || (resetType === 'PushPowerButton' && !on);
    if (wantsOn && on) return this.alreadyInState('On');
    if (wantsOn) {
      const settleUntil = (power.lastOffAt ?? -Infinity) + this.o.profile.busyAfterOffTransitions * this.o.transitionMs;
      // iDRAC: the host is still settling after a power-off; retrying later succeeds.
      if (Date.now() < settleUntil)
        return refuse(409, `${BASE}.ResourceInUse`, 'Unable to power on the server: the server is still powering off. Retry the operation later.');
      power.powerOn();
      return { ok: true, changed: true };
    }
    if (resetType === 'ForceOff' || resetType === 'GracefulShutdown' || resetType === 'PushPowerButton') {
      if (!on) return this.alreadyInState('Off');
      power.powerOff();
      return { ok: true, changed: true };
    }
    // ForceRestart / GracefulRestart: a new boot when On. Off: refused (a restart does not power a machine on).
    if (!on) return refuse(409, `${BASE}.OperationNotAllowed`, `The operation ${resetType} is not allowed while the system is powered off.`);
    power.reset();
    return { ok: true, changed: true };
  }

  private alreadyInState(state: 'On' | 'Off'): ResetOutcome {
    if (!this.o.profile.conflictWhenAlreadyInState) return { ok: true, changed: false };
    return state === 'On'
      ? refuse(409, 'IDRAC.2.8.PSU501', 'Server is already powered ON.')
      : refuse(409, 'IDRAC.2.8.PSU502', 'Server is already powered OFF.');
  }
}

function refuse(status: number, messageId: string, message: string): ResetOutcome {
  return { ok: false, failure: failure(status, messageId, message) };
}

function isResetType(value: string): value is ResetType {
  return ALL_RESET_TYPES.some((known) => known === value);
}

/** If-Match: `*`, or one of a comma list; a weak tag (W/"x") matches its strong form too (sushy retries with it). */
function etagMatches(header: string, current: string): boolean {
  const strip = (tag: string): string => tag.trim().replace(/^W\//, '');
  return header.split(',').some((tag) => tag.trim() === '*' || strip(tag) === strip(current));
}
