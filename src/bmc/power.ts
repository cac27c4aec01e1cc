/**
 * Power through ComputerSystem.Reset (DSP0268): the ResetType chosen from what the system allows,
 * a 409 (a transition under way) retried after a back-off, a 202's task monitor followed to its end
 * (DSP0266 "Asynchronous operations"), and the ForceOff-then-On fallback for a restart.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { isRecord } from './http.js';
import { MAX_BACKOFF_MS, type BmcContext } from './context.js';
import { readSystem, resetInfo, text, type ResetInfo } from './system.js';
import { BmcError, type ResetResult } from './types.js';

/** Between a fallback's ForceOff and its On: poll PowerState this often, this long at most. */
const POWER_WAIT = { intervalMs: 250, timeoutMs: 60_000 };

/**
 * The ResetTypes tried for each action, first allowed wins:
 * - off: ForceOff; a machine being provisioned has nothing to save. GracefulShutdown when force is
 *   not offered (it needs the OS to obey ACPI, so it may leave the machine on: the poller will show
 *   it). PushPowerButton last: it toggles, which is safe only because the state was just read On.
 * - on: On, else PushPowerButton (from Off it means on).
 * - restart: ForceRestart, else PowerCycle (DSP0268 v1.13; off then on by the BMC itself), else
 *   GracefulRestart, else edgeboot's own ForceOff, wait for Off, On.
 */
const OFF_TYPES = ['ForceOff', 'GracefulShutdown', 'PushPowerButton'];
const ON_TYPES = ['On', 'PushPowerButton'];
const RESTART_TYPES = ['ForceRestart', 'PowerCycle', 'GracefulRestart'];

/** The first of `wanted` the system allows; the first of all when the BMC does not list its allowed values. */
function pick(info: ResetInfo, wanted: string[]): string | undefined {
  if (info.allowed.length === 0) return wanted[0];
  return wanted.find((type) => info.allowed.includes(type));
}

export async function reset(ctx: BmcContext, action: 'on' | 'off' | 'restart'): Promise<ResetResult> {
  const { body } = await readSystem(ctx.client, ctx.systemPath);
  const powerBefore = text(body.PowerState);
  const info = await resetInfo(ctx.client, ctx.systemPath, body);
  const result: ResetResult = { action, resetTypes: [], ...(powerBefore ? { powerBefore } : {}), busyRetries: 0 };
  const on = powerBefore === 'On' || powerBefore === 'PoweringOn';
  const off = powerBefore === 'Off' || powerBefore === 'PoweringOff';
  // Already there: nothing to send (iDRAC answers 409 PSU501/PSU502 "already on/off" otherwise).
  // An unknown or other state (Paused) is neither: `on` sends On, `off` and `restart` act as if on.
  if ((action === 'on' && on) || (action === 'off' && off)) return result;
  if (action === 'on' || (action === 'restart' && off)) {
    await send(ctx, info, result, need(ctx, info, ON_TYPES, 'power on'));
    return result;
  }
  if (action === 'off') {
    await send(ctx, info, result, need(ctx, info, OFF_TYPES, 'power off'));
    return result;
  }
  const restart = pick(info, RESTART_TYPES);
  if (restart) {
    await send(ctx, info, result, restart);
    return result;
  }
  await send(ctx, info, result, need(ctx, info, ['ForceOff'], 'restart (no restart type, and no ForceOff to power-cycle with)'));
  await waitForPower(ctx, 'Off');
  await send(ctx, info, result, need(ctx, info, ['On'], 'restart (powered off, but On is not allowed)'));
  return result;
}

function need(ctx: BmcContext, info: ResetInfo, wanted: string[], what: string): string {
  const type = pick(info, wanted);
  if (type) return type;
  throw new BmcError('refused', `${ctx.client.http.baseUrl}: the system allows no ResetType to ${what} (it allows ${info.allowed.join(', ')})`);
}

/**
 * POST the Reset. No If-Match on actions: the ETag is the system's, not the action's, and iDRAC 10
 * answers 412 to one (stmcginnis/gofish#510). 409 means busy: back off and retry within the vendor's bound.
 */
async function send(ctx: BmcContext, info: ResetInfo, result: ResetResult, resetType: string): Promise<void> {
  const retry = ctx.quirks.onBusyRetry;
  let wait = retry.backoffMs;
  for (let attempt = 1; ; attempt++) {
    const answer = await ctx.client.call('POST', info.target, { body: { ResetType: resetType } });
    if (answer.status === 409 && attempt < retry.attempts) {
      result.busyRetries++;
      await sleep(wait);
      wait = Math.min(wait * 2, MAX_BACKOFF_MS);
      continue;
    }
    if (answer.status !== 200 && answer.status !== 202 && answer.status !== 204) throw ctx.client.failure('POST', info.target, answer);
    result.resetTypes.push(resetType);
    const monitor = answer.headers.location;
    if (answer.status === 202 && monitor) await followTask(ctx, new URL(monitor, ctx.client.http.baseUrl).pathname);
    return;
  }
}

const RUNNING_TASK_STATES = new Set(['New', 'Starting', 'Running', 'Pending', 'Stopping', 'Suspended', 'Service']);
const FAILED_TASK_STATES = new Set(['Exception', 'Killed', 'Cancelled', 'Interrupted']);

/**
 * Polls a task monitor until the operation ends: 202 while it runs, then the operation's own answer
 * (DSP0266); a Task resource's TaskState when the BMC answers with the task instead (iDRAC, iLO).
 */
async function followTask(ctx: BmcContext, monitor: string): Promise<void> {
  const { intervalMs, timeoutMs } = ctx.quirks.taskPolling;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const answer = await ctx.client.call('GET', monitor);
    // iDRAC removes a finished job's monitor: gone means done.
    if (answer.status === 404) return;
    if (answer.status !== 200 && answer.status !== 201 && answer.status !== 202 && answer.status !== 204) throw ctx.client.failure('GET', monitor, answer);
    const task = isRecord(answer.body) ? answer.body : {};
    const state = text(task.TaskState);
    if (state && FAILED_TASK_STATES.has(state)) {
      const messages = (Array.isArray(task.Messages) ? task.Messages.filter(isRecord) : []).map((m) => text(m.Message)).filter((m) => m !== undefined);
      const why = messages.length > 0 ? messages.join('; ') : 'no message';
      throw new BmcError('refused', ctx.client.http.scrub(`${ctx.client.http.baseUrl}: the reset task ${monitor} ended ${state}: ${why}`));
    }
    const running = answer.status === 202 || (state !== undefined && RUNNING_TASK_STATES.has(state));
    if (!running) return;
    if (Date.now() + intervalMs > deadline) {
      throw new BmcError('refused', `${ctx.client.http.baseUrl}: the reset task ${monitor} was still ${state ?? 'running'} after ${timeoutMs / 1000} s`);
    }
    await sleep(intervalMs);
  }
}

async function waitForPower(ctx: BmcContext, wanted: string): Promise<void> {
  const deadline = Date.now() + POWER_WAIT.timeoutMs;
  let last: string | undefined;
  while (Date.now() < deadline) {
    last = text((await readSystem(ctx.client, ctx.systemPath)).body.PowerState);
    if (last === wanted) return;
    await sleep(POWER_WAIT.intervalMs);
  }
  throw new BmcError(
    'refused',
    `${ctx.client.http.baseUrl}: the system was still ${last ?? 'in an unknown power state'} ${POWER_WAIT.timeoutMs / 1000} s after ForceOff`,
  );
}
