/**
 * The BmcSession's operations on one system: read it, set a one-time network boot (PATCH with
 * If-Match, read back, one more PATCH when the BMC kept other values), and reset (power.ts).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { MAX_BACKOFF_MS, type BmcContext } from './context.js';
import { redfishMessageIds } from './http.js';
import { reset } from './power.js';
import { bootObject, bootOverride, readSystem, stringList, systemView, type SystemRead } from './system.js';
import { BmcError, type BmcSession, type BootOverride, type OverrideResult } from './types.js';
import { isBusyMessage } from './vendors.js';

export function createOperations(ctx: BmcContext): BmcSession {
  return {
    system: () => systemView(ctx.client, ctx.systemPath, ctx.quirks.name),
    setOneTimeBoot: (o) => setOneTimeBoot(ctx, o),
    reset: (action) => reset(ctx, action),
  };
}

type OverrideBody = Record<string, string>;

async function setOneTimeBoot(ctx: BmcContext, o: { target: 'Pxe' | 'UefiHttp'; httpBootUri?: string }): Promise<OverrideResult> {
  if (o.target === 'UefiHttp' && ctx.bootMode === 'legacy') {
    // HTTP Boot is a UEFI feature (UEFI 2.5 and later): a legacy BIOS boot cannot do it.
    throw new BmcError('refused', `${ctx.client.http.baseUrl}: UEFI HTTP boot needs the machine's bmc bootMode uefi or auto, not legacy`);
  }
  let current = await readSystem(ctx.client, ctx.systemPath);
  const boot = bootObject(current.body);
  const offered = stringList(boot['BootSourceOverrideTarget@Redfish.AllowableValues']);
  if (offered.length > 0 && !offered.includes(o.target)) {
    throw new BmcError(
      'refused',
      `${ctx.client.http.baseUrl}: the system does not offer BootSourceOverrideTarget ${o.target} (it offers ${offered.join(', ')})`,
    );
  }
  // DSP0268 ComputerSystem v1.1+ has BootSourceOverrideMode; older BMCs refuse a PATCH that names it,
  // so it is sent only when the Boot object has it, and never for bootMode auto.
  const mode = 'BootSourceOverrideMode' in boot && ctx.bootMode !== 'auto' ? (ctx.bootMode === 'uefi' ? 'UEFI' : 'Legacy') : undefined;
  const wanted: OverrideBody = {
    BootSourceOverrideTarget: o.target,
    BootSourceOverrideEnabled: 'Once',
    ...(mode ? { BootSourceOverrideMode: mode } : {}),
    ...(o.target === 'UefiHttp' && o.httpBootUri ? { HttpBootUri: o.httpBootUri } : {}),
  };
  for (let attempts = 1; ; attempts++) {
    await patchBoot(ctx, wanted, current);
    // Read back: Supermicro answers 200 and keeps its old Mode or Enabled (vendors.ts).
    current = await readSystem(ctx.client, ctx.systemPath);
    const kept = bootOverride(current.body);
    if (sameOverride(kept, wanted)) return { target: o.target, ...(mode ? { mode } : {}), attempts, kept };
    if (attempts > ctx.quirks.overrideReadBackRetries) {
      const said = `Target=${kept.target ?? '(none)'}, Enabled=${kept.enabled ?? '(none)'}, Mode=${kept.mode ?? '(none)'}`;
      const asked = `Target=${o.target}, Enabled=Once${mode ? `, Mode=${mode}` : ''}`;
      throw new BmcError('kept', `${ctx.client.http.baseUrl}: the BMC kept ${said} after ${attempts} PATCHes of ${asked}`);
    }
  }
}

function sameOverride(kept: BootOverride, wanted: OverrideBody): boolean {
  if (kept.target !== wanted.BootSourceOverrideTarget || kept.enabled !== 'Once') return false;
  return wanted.BootSourceOverrideMode === undefined || kept.mode === wanted.BootSourceOverrideMode;
}

/**
 * One PATCH of the Boot object, with If-Match: the ETag when the system has one, `*` when the vendor
 * requires the header anyway. A 412 (the ETag moved: the BMC changed the resource) or a 428 (the BMC
 * wants If-Match though the vendor was not known for it) re-reads and sends once more; a vendor's
 * "busy during POST" answer waits and retries within its bound.
 */
async function patchBoot(ctx: BmcContext, wanted: OverrideBody, read: SystemRead): Promise<void> {
  const path = ctx.systemPath;
  let state = read;
  let preconditionRetried = false;
  let forceIfMatch = ctx.quirks.ifMatchRequired;
  let busyTries = 0;
  let wait = ctx.quirks.postBusyRetry.backoffMs;
  for (;;) {
    const ifMatch = state.etag ?? (forceIfMatch ? '*' : undefined);
    const answer = await ctx.client.call('PATCH', path, { body: { Boot: wanted }, headers: ifMatch ? { 'If-Match': ifMatch } : {} });
    if (answer.status === 200 || answer.status === 202 || answer.status === 204) return;
    if ((answer.status === 412 || answer.status === 428) && !preconditionRetried) {
      preconditionRetried = true;
      forceIfMatch = true;
      const fresh = await readSystem(ctx.client, path);
      // The same header ETag refused again would be a BMC that mangles it (a "-gzip" suffix on iDRAC,
      // stmcginnis/gofish#512; doubled quotes, ansible-collections/community.general#3268): the body's then.
      state = fresh.etag === ifMatch && fresh.odataEtag ? { ...fresh, etag: fresh.odataEtag } : fresh;
      continue;
    }
    busyTries++;
    if (isBusyMessage(ctx.quirks, redfishMessageIds(answer.body)) && busyTries < ctx.quirks.postBusyRetry.attempts) {
      await sleep(wait);
      wait = Math.min(wait * 2, MAX_BACKOFF_MS);
      // The host moved on (POST ended): its ETag may have too.
      state = await readSystem(ctx.client, path);
      continue;
    }
    throw ctx.client.failure('PATCH', path, answer);
  }
}
