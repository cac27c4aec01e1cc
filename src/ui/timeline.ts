/** A machine's timeline as the detail page lists it: each step with its time, the time since the one before, and what it moved. */
import type { Mac } from '../machines/mac.js';
import type { Machine, MachineEvent } from '../machines/model.js';
import { redactJsonText } from '../secrets/redact.js';
import { bytes, duration, safe } from './format.js';

export interface TimelineStep {
  id: number;
  time: string;
  /** Since the step before; undefined for the first. */
  sinceMs: number | undefined;
  type: string;
  source: string;
  move?: string;
  message?: string;
  /** One line of what the step carried: bytes and throughput, a TFTP transfer's options, a DHCP answer's address. */
  summary?: string;
  /** The event's data as JSON text, secrets cut. */
  data?: string;
  failed: boolean;
}

const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

function throughput(b: number | undefined, ms: number | undefined): string {
  if (b === undefined || ms === undefined || ms <= 0) return '';
  return `, ${bytes((b * 1000) / ms)}/s`;
}

function summaryOf(e: MachineEvent): string | undefined {
  const d = e.data ?? {};
  if (e.type === 'tftp-transfer' || e.type === 'tftp-failed') {
    const opts = [num(d.blksize) && `blksize ${num(d.blksize)}`, num(d.windowsize) && `windowsize ${num(d.windowsize)}`].filter(Boolean).join(', ');
    return `${str(d.file) ?? '?'}: ${bytes(num(d.bytes))} in ${duration(num(d.durationMs) ?? 0)}${throughput(num(d.bytes), num(d.durationMs))}${opts ? ` (${opts})` : ''}`;
  }
  if (e.type === 'asset-served' || e.type === 'asset-failed') {
    return `${str(d.profile) ?? ''}/${str(d.artifact) ?? ''}: ${bytes(num(d.bytes))} in ${duration(num(d.durationMs) ?? 0)}${throughput(num(d.bytes), num(d.durationMs))}`;
  }
  if (e.type.startsWith('dhcp-') && str(d.yiaddr)) return `address ${str(d.yiaddr)}${str(d.bootFile) ? `, boot file ${str(d.bootFile)}` : ''}`;
  if (e.type === 'script-served' && str(d.stage)) return `${str(d.kind) ?? ''} ${str(d.stage)} with profile ${str(d.profile) ?? '?'}`;
  if (num(d.bytesDone) !== undefined && num(d.bytesTotal)) return `${bytes(num(d.bytesDone))} of ${bytes(num(d.bytesTotal))}`;
  return undefined;
}

export function timelineSteps(events: readonly MachineEvent[]): TimelineStep[] {
  let before: number | undefined;
  return events.map((e) => {
    const at = Date.parse(e.time);
    const step: TimelineStep = {
      id: e.id,
      time: e.time,
      sinceMs: before === undefined ? undefined : at - before,
      type: e.type,
      source: e.source,
      failed: /fail|error|unreachable|timeout/.test(e.type) || e.to === 'failed',
      ...(e.from !== undefined && e.to !== undefined && { move: `${e.from} → ${e.to}` }),
      ...(e.message !== undefined && { message: safe(e.message) }),
      ...(e.data !== undefined && Object.keys(e.data).length > 0 && { data: redactJsonText(JSON.stringify(e.data, null, 1)) }),
    };
    const summary = summaryOf(e);
    if (summary !== undefined) step.summary = safe(summary);
    // An artifact's message says what its summary says, in longer words.
    if (summary !== undefined && e.type === 'asset-served') delete step.message;
    before = at;
    return step;
  });
}

/** Why each failed machine failed: the message of the newest event that moved it to `failed` (one indexed read per failed machine). */
export async function failureReasons(
  store: { listEvents: (mac: Mac, o: { newest: true; limit: number }) => Promise<MachineEvent[]> },
  machines: readonly Machine[],
): Promise<Map<string, string>> {
  const reasons = new Map<string, string>();
  for (const m of machines) {
    if (m.state !== 'failed') continue;
    const events = await store.listEvents(m.mac, { newest: true, limit: 50 });
    const moved = [...events].reverse().find((e) => e.to === 'failed');
    const reason = moved?.message ?? m.precacheProgress?.message ?? m.bmcStatus?.lastError;
    if (reason !== undefined) reasons.set(m.mac, safe(reason));
  }
  return reasons;
}
