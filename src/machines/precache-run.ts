/**
 * The precache run of one machine, as edgeboot follows it (pure): a precache boot starts or
 * continues the run, every word from the live environment is a heartbeat, progress reports
 * move the counters, and two things end a run that never posts a result — silence longer than
 * the heartbeat timeout, and more precache boots than allowed (a boot loop).
 */
import type { Machine, PrecacheProgress } from './model.js';
import type { MachineState } from './state.js';

/** A precache boot was served to a machine in `from`: a new run from registered, one boot more from precaching. */
export function precacheBooted(progress: PrecacheProgress | undefined, from: MachineState, now: string): PrecacheProgress {
  if (from !== 'precaching' || !progress) {
    return { boots: 1, step: 'booting', filesDone: 0, filesTotal: 0, bytesDone: 0, bytesTotal: 0, startedAt: now, lastHeartbeatAt: now };
  }
  const { message: _message, ...rest } = progress;
  return { ...rest, boots: progress.boots + 1, step: 'booting', lastHeartbeatAt: now };
}

/** Why serving one more precache boot to this machine would be a boot loop, or undefined. */
export function bootLoopReason(m: Pick<Machine, 'state' | 'precacheProgress'>, maxBoots: number): string | undefined {
  const boots = m.state === 'precaching' ? (m.precacheProgress?.boots ?? 0) : 0;
  if (boots < maxBoots) return undefined;
  const step = m.precacheProgress?.step;
  return `boot loop: ${boots + 1} precache boots without a result (precache.maxBoots ${maxBoots})${step ? `; the last step reported was ${step}` : ''}`;
}

/** Why a precaching machine has been silent too long, or undefined. */
export function heartbeatLapsed(m: Pick<Machine, 'state' | 'precacheProgress'>, now: Date, heartbeatSeconds: number): string | undefined {
  const p = m.precacheProgress;
  if (m.state !== 'precaching' || !p) return undefined;
  const silentMs = now.getTime() - Date.parse(p.lastHeartbeatAt);
  if (silentMs <= heartbeatSeconds * 1000) return undefined;
  return `no word from the live environment for ${Math.round(silentMs / 1000)} s (precache.heartbeatSeconds ${heartbeatSeconds}); the last step reported was ${p.step} at ${p.lastHeartbeatAt}`;
}

/** The numbers a `precache-progress` event may carry. */
export interface ProgressReport {
  step?: string;
  message?: string;
  filesDone?: number;
  filesTotal?: number;
  bytesDone?: number;
  bytesTotal?: number;
}

/** Reads a progress event's data: only well-formed fields count, anything else is ignored. */
export function progressReport(data: Record<string, unknown> | undefined, message: string | undefined): ProgressReport {
  const out: ProgressReport = {};
  const count = (v: unknown): number | undefined => (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : undefined);
  if (typeof data?.step === 'string' && /^[a-z][a-z0-9-]{0,31}$/.test(data.step)) out.step = data.step;
  for (const k of ['filesDone', 'filesTotal', 'bytesDone', 'bytesTotal'] as const) {
    const n = count(data?.[k]);
    if (n !== undefined) out[k] = n;
  }
  // Cut by code point: half a surrogate pair is not text.
  if (message !== undefined) out.message = Array.from(message).slice(0, 512).join('');
  return out;
}

/** A heartbeat, with a progress report when there is one. */
export function heartbeat(progress: PrecacheProgress, now: string, report: ProgressReport = {}): PrecacheProgress {
  return { ...progress, ...report, lastHeartbeatAt: now };
}

/** The run's end, at the step it had reached: precached, or failed with the reason. */
export function finished(progress: PrecacheProgress, now: string, outcome: 'precached' | 'failed', message?: string): PrecacheProgress {
  const { message: _old, ...rest } = progress;
  return { ...rest, ...(message !== undefined && { message }), outcome, finishedAt: now, lastHeartbeatAt: now };
}
