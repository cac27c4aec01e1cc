/**
 * A tiny stand-in for systemd's `Restart=on-failure`, for tests that crash edgeboot and need it
 * back the way the shipped unit (deploy/systemd/edgeboot.service) would bring it back: the same
 * start (same config, data dir and ports), after the unit's RestartSec, only after a failure,
 * never after a RestartPreventExitStatus, and at most StartLimitBurst starts per
 * StartLimitIntervalSec. The policy is read from the unit file itself, so the tests restart
 * with the settings that ship.
 *
 * `restartDecision` is the pure core (systemd.service(5), "Restart="); `supervise` the shell
 * around a running process and a function that starts it again.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT, type Exit, type Teardown } from './process.js';

export const UNIT_FILE = join(REPO_ROOT, 'deploy/systemd/edgeboot.service');

/** `[Section]` → key → every value the key was given, in order (systemd keys can repeat). */
export type UnitFile = Map<string, Map<string, string[]>>;

/** systemd.syntax(7), the subset the unit uses: sections, `key=value` lines, `#` and `;` comments. */
export function parseUnit(text: string): UnitFile {
  const unit: UnitFile = new Map();
  let section: Map<string, string[]> | undefined;
  for (const [n, raw] of text.split('\n').entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const head = /^\[([A-Za-z]+)\]$/.exec(line);
    if (head) {
      section = new Map();
      unit.set(head[1] as string, section);
      continue;
    }
    const eq = line.indexOf('=');
    if (!section || eq <= 0) throw new Error(`line ${n + 1} of the unit is neither a section nor key=value: ${raw}`);
    const key = line.slice(0, eq);
    section.set(key, [...(section.get(key) ?? []), line.slice(eq + 1)]);
  }
  return unit;
}

export interface RestartPolicy {
  /** RestartSec, in ms. */
  restartDelayMs: number;
  /** RestartPreventExitStatus: exit codes that are not restarted. */
  preventExitStatus: number[];
  /** StartLimitBurst starts within StartLimitIntervalSec (ms); one more is refused. */
  startLimitBurst: number;
  startLimitIntervalMs: number;
}

/** systemd.time(7) spans as the unit writes them: `2s`, `300` (seconds), `500ms`, `5min`. */
function spanMs(text: string | undefined, what: string): number {
  const m = /^([0-9]+)(ms|s|min)?$/.exec(text ?? '');
  if (!m) throw new Error(`${what}=${text ?? '(unset)'}: expected a span like 2s`);
  const scale = m[2] === 'ms' ? 1 : m[2] === 'min' ? 60_000 : 1_000;
  return Number(m[1]) * scale;
}

/** The restart settings of the shipped unit. Throws unless it says Restart=on-failure. */
export function policyFromUnit(text = readFileSync(UNIT_FILE, 'utf8')): RestartPolicy {
  const unit = parseUnit(text);
  const last = (section: string, key: string) => unit.get(section)?.get(key)?.at(-1);
  if (last('Service', 'Restart') !== 'on-failure') throw new Error(`the unit says Restart=${last('Service', 'Restart')}, not on-failure`);
  return {
    restartDelayMs: spanMs(last('Service', 'RestartSec'), 'RestartSec'),
    preventExitStatus: (last('Service', 'RestartPreventExitStatus') ?? '')
      .split(/\s+/)
      .filter((w) => w !== '')
      .map(Number),
    startLimitBurst: Number(last('Unit', 'StartLimitBurst')),
    startLimitIntervalMs: spanMs(last('Unit', 'StartLimitIntervalSec'), 'StartLimitIntervalSec'),
  };
}

/**
 * The signals `Restart=on-failure` treats as a clean stop (systemd.service(5): "SIGHUP, SIGINT,
 * SIGTERM or SIGPIPE"), like exit code 0.
 */
const CLEAN_SIGNALS: ReadonlySet<NodeJS.Signals> = new Set(['SIGHUP', 'SIGINT', 'SIGTERM', 'SIGPIPE']);

export type RestartDecision = { restart: true } | { restart: false; reason: string };

/**
 * Whether `Restart=on-failure` starts the service again after `exit`, given the times (ms) of
 * its starts so far (the current run's included) and `now`.
 */
export function restartDecision(exit: Pick<Exit, 'code' | 'signal'>, starts: readonly number[], now: number, policy: RestartPolicy): RestartDecision {
  if (exit.signal !== null && CLEAN_SIGNALS.has(exit.signal)) return { restart: false, reason: `stopped by ${exit.signal}, a clean stop` };
  if (exit.signal === null && exit.code === 0) return { restart: false, reason: 'exited 0' };
  if (exit.signal === null && exit.code !== null && policy.preventExitStatus.includes(exit.code)) {
    return { restart: false, reason: `exit ${exit.code} is in RestartPreventExitStatus` };
  }
  // The next start would be at now + delay; count the starts within the interval before it.
  const at = now + policy.restartDelayMs;
  const recent = starts.filter((s) => s > at - policy.startLimitIntervalMs).length;
  if (recent >= policy.startLimitBurst) return { restart: false, reason: `start limit hit: ${recent} starts within ${policy.startLimitIntervalMs} ms` };
  return { restart: true };
}

/** What the supervisor needs of a process: how it ends, and a way to stop it. */
export interface Supervised {
  exited: Promise<Exit>;
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<Exit>;
}

export interface Restart<P> {
  /** How the previous process ended. */
  exit: Exit;
  /** When it ended and when the new one was serving (Date.now()). */
  diedAt: number;
  servingAt: number;
  process: P;
}

export interface Supervisor<P extends Supervised> {
  /** The process running now (the latest start). */
  current(): P;
  /** Every restart so far, in order. */
  restarts(): Restart<P>[];
  /** Resolves with the `n`th restart (1-based) once its process serves; rejects after `timeoutMs` or when the supervisor gave up. */
  restarted(n: number, timeoutMs: number): Promise<Restart<P>>;
  /** Why the supervisor stopped restarting, once it has. */
  gaveUp(): string | undefined;
  /** The error of every start that failed, in order. */
  startErrors(): string[];
  /** No more restarts; SIGTERMs the current process. */
  stop(): Promise<void>;
}

/**
 * Watches `first` and, whenever the running process exits in a way `restartDecision` restarts,
 * calls `start` again after the policy's delay. A start that throws counts as a start that
 * failed at once. Stopped at teardown (before the delay of any pending restart runs out).
 */
export function supervise<P extends Supervised>(t: Teardown, first: P, start: () => Promise<P>, policy: RestartPolicy = policyFromUnit()): Supervisor<P> {
  let current = first;
  let stopped = false;
  let gaveUp: string | undefined;
  const starts = [Date.now()];
  const restarts: Restart<P>[] = [];
  const startErrors: string[] = [];
  const waiters: { n: number; resolve: (r: Restart<P>) => void; reject: (e: Error) => void }[] = [];
  const settle = () => {
    for (const w of [...waiters]) {
      const r = restarts[w.n - 1];
      if (r) w.resolve(r);
      else if (gaveUp !== undefined) w.reject(new Error(`the supervisor gave up before restart ${w.n}: ${gaveUp}`));
      else continue;
      waiters.splice(waiters.indexOf(w), 1);
    }
  };

  const watch = (p: P): void => {
    void p.exited.then((exit) => onExit(exit, Date.now()));
  };
  const onExit = async (firstExit: Exit, firstDiedAt: number): Promise<void> => {
    let exit = firstExit;
    let diedAt = firstDiedAt;
    for (;;) {
      if (stopped) return;
      const d = restartDecision(exit, starts, Date.now(), policy);
      if (!d.restart) {
        gaveUp = startErrors.length > 0 ? `${d.reason}; the last start failed: ${startErrors.at(-1)}` : d.reason;
        settle();
        return;
      }
      await new Promise((r) => setTimeout(r, policy.restartDelayMs));
      // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- stop() may have run during the wait
      if (stopped) return;
      starts.push(Date.now());
      try {
        const p = await start();
        current = p;
        restarts.push({ exit, diedAt, servingAt: Date.now(), process: p });
        settle();
        watch(p);
        return;
      } catch (err) {
        // A start that fails is a failure like any other: the policy decides whether to try
        // again, and the reason is kept for the message when it gives up.
        startErrors.push((err as Error).message);
        exit = { code: 1, signal: null, ms: 0 };
        diedAt = Date.now();
      }
    }
  };
  watch(first);

  const sup: Supervisor<P> = {
    current: () => current,
    restarts: () => [...restarts],
    gaveUp: () => gaveUp,
    startErrors: () => [...startErrors],
    restarted(n, timeoutMs) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () =>
            reject(
              new Error(
                `no restart ${n} within ${timeoutMs} ms (${restarts.length} so far${gaveUp ? `; gave up: ${gaveUp}` : ''}${startErrors.length > 0 ? `; failed starts: ${startErrors.join(' | ')}` : ''})`,
              ),
            ),
          timeoutMs,
        );
        waiters.push({
          n,
          resolve: (r) => {
            clearTimeout(timer);
            resolve(r);
          },
          reject: (e) => {
            clearTimeout(timer);
            reject(e);
          },
        });
        settle();
      });
    },
    async stop() {
      stopped = true;
      await current.stop('SIGTERM');
    },
  };
  t.teardown(() => sup.stop());
  return sup;
}
