/**
 * Reading a ComputerSystem (DSP0268 ComputerSystem) as edgeboot needs it: its Boot object, its
 * ETag, its NICs' MACs and the ResetTypes its Reset action allows.
 */
import { parseMac } from '../machines/mac.js';
import { isRecord } from './http.js';
import { linkOf, type RedfishClient } from './session.js';
import type { BootOverride, SystemView } from './types.js';

export interface SystemRead {
  body: Record<string, unknown>;
  /** The ETag header, else @odata.etag (DSP0266 "ETags": either may carry it). */
  etag?: string;
  /** @odata.etag alone, for a BMC that mangles its ETag header. */
  odataEtag?: string;
}

export async function readSystem(client: RedfishClient, path: string): Promise<SystemRead> {
  const { body, etag } = await client.getObject(path);
  const odataEtag = text(body['@odata.etag']);
  const chosen = etag ?? odataEtag;
  return { body, ...(chosen ? { etag: chosen } : {}), ...(odataEtag ? { odataEtag } : {}) };
}

export function text(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

export function stringList(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string') : [];
}

export function bootObject(system: Record<string, unknown>): Record<string, unknown> {
  return isRecord(system.Boot) ? system.Boot : {};
}

export function bootOverride(system: Record<string, unknown>): BootOverride {
  const boot = bootObject(system);
  const target = text(boot.BootSourceOverrideTarget);
  const enabled = text(boot.BootSourceOverrideEnabled);
  const mode = text(boot.BootSourceOverrideMode);
  const httpBootUri = text(boot.HttpBootUri);
  return { ...(target ? { target } : {}), ...(enabled ? { enabled } : {}), ...(mode ? { mode } : {}), ...(httpBootUri ? { httpBootUri } : {}) };
}

export interface ResetInfo {
  /** The action's target URI (Actions["#ComputerSystem.Reset"].target). */
  target: string;
  /** The allowed ResetTypes; empty when the BMC does not say. */
  allowed: string[];
}

/**
 * The Reset action and its allowed values: `ResetType@Redfish.AllowableValues` on the action, or the
 * Parameters of its `@Redfish.ActionInfo` resource (DSP0266 "Allowable values"; iLO and newer
 * OpenBMC use ActionInfo).
 */
export async function resetInfo(client: RedfishClient, path: string, system: Record<string, unknown>): Promise<ResetInfo> {
  const actions = isRecord(system.Actions) ? system.Actions : {};
  const action = isRecord(actions['#ComputerSystem.Reset']) ? actions['#ComputerSystem.Reset'] : {};
  const target = text(action.target) ?? `${path}/Actions/ComputerSystem.Reset`;
  const inline = stringList(action['ResetType@Redfish.AllowableValues']);
  const actionInfo = text(action['@Redfish.ActionInfo']);
  if (inline.length > 0 || !actionInfo) return { target, allowed: inline };
  const { body } = await client.getObject(actionInfo);
  const parameters = Array.isArray(body.Parameters) ? body.Parameters.filter(isRecord) : [];
  const resetType = parameters.find((parameter) => parameter.Name === 'ResetType');
  return { target, allowed: stringList(resetType?.AllowableValues) };
}

/** The MACs of the system's EthernetInterfaces, lower-case colon form; none when it lists no NICs. */
async function readMacs(client: RedfishClient, system: Record<string, unknown>): Promise<string[]> {
  const collection = linkOf(system.EthernetInterfaces);
  if (!collection) return [];
  const { body } = await client.getObject(collection);
  const members = (Array.isArray(body.Members) ? body.Members : []).map(linkOf).filter((path): path is string => path !== undefined);
  const nics = await Promise.all(members.map(async (path) => (await client.getObject(path)).body));
  const macs = nics.map((nic) => parseMac(text(nic.MACAddress) ?? text(nic.PermanentMACAddress) ?? '')).filter((mac) => mac !== undefined);
  return [...new Set<string>(macs)];
}

export async function systemView(client: RedfishClient, path: string, vendor: string): Promise<SystemView> {
  const { body } = await readSystem(client, path);
  const boot = bootObject(body);
  const [macs, reset] = await Promise.all([readMacs(client, body), resetInfo(client, path, body)]);
  const fields = { powerState: body.PowerState, manufacturer: body.Manufacturer, model: body.Model, serial: body.SerialNumber, uuid: body.UUID };
  const present = Object.fromEntries(Object.entries(fields).flatMap(([name, value]) => (text(value) ? [[name, text(value)]] : [])));
  return {
    id: text(body.Id) ?? path.split('/').pop() ?? path,
    path,
    ...present,
    macs,
    vendor,
    boot: bootOverride(body),
    bootTargets: stringList(boot['BootSourceOverrideTarget@Redfish.AllowableValues']),
    modeSupported: 'BootSourceOverrideMode' in boot,
    resetTypes: reset.allowed,
  };
}
