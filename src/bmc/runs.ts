/**
 * Provisioning runs: the one session that sends a machine into a network boot (a one-time
 * override, then power), and the follower that watches each run in phase `powered`. A machine
 * that asks `/ipxe` in time is `booted`; one that does not gets the override and a power cycle
 * again, up to bmc.maxRetries, and then fails with the reason.
 */
import type { Logger } from 'pino';
import type { BmcRun } from '../machines/bmc.js';
import type { Mac } from '../machines/mac.js';
import type { Machine, NewEvent } from '../machines/model.js';
import type { MachineService } from '../machines/service.js';
import { eachMachine, type Store } from '../store/store.js';
import type { BmcConfig, BmcDriver, DrivenMachine } from './driver.js';
import { hasBmcPassword } from './driver.js';
import type { BmcSession, OverrideResult, ResetResult, SystemView } from './types.js';

/** The one-time network boot to set: Pxe, or UefiHttp with the URL of edgeboot's iPXE binary. */
export type NetworkTarget = { target: 'Pxe' } | { target: 'UefiHttp'; httpBootUri: string };

/** What one session that sends a machine into a network boot did. */
export interface NetworkBoot {
  view: SystemView;
  override: OverrideResult;
  power: ResetResult;
}

/**
 * bmc.bootTarget against what the BMC allows: `uefi-http` unless the BMC lists its targets
 * without UefiHttp, `auto` only when it lists UefiHttp; never for a legacy (BIOS) boot mode,
 * where UEFI HTTP Boot does not exist (DSP2046 BootSourceOverrideTarget).
 */
export function networkTarget(view: SystemView, m: DrivenMachine, setting: BmcConfig['bootTarget'], httpBootUri: string): NetworkTarget {
  const listed = view.bootTargets.includes('UefiHttp');
  const allowed = setting === 'auto' ? listed : setting === 'uefi-http' && (listed || view.bootTargets.length === 0);
  return allowed && m.bmc.bootMode !== 'legacy' ? { target: 'UefiHttp', httpBootUri } : { target: 'Pxe' };
}

/** In one session: read the system, set the one-time network boot, then power on (off) or restart (on). */
export async function bootFromNetwork(s: BmcSession, target: (view: SystemView) => NetworkTarget): Promise<NetworkBoot> {
  const view = await s.system();
  const override = await s.setOneTimeBoot(target(view));
  const power = await s.reset(view.powerState === 'Off' ? 'on' : 'restart');
  return { view, override, power };
}

export function overrideEvent(o: OverrideResult, reason?: string): NewEvent {
  const what = `one-time ${o.target} boot set${o.mode === undefined ? '' : ` (${o.mode})`}${o.attempts > 1 ? ` after ${o.attempts} attempts` : ''}`;
  return {
    type: 'bmc-boot-override',
    source: 'bmc',
    message: reason === undefined ? what : `${what}: ${reason}`,
    data: { target: o.target, mode: o.mode ?? null, attempts: o.attempts, kept: o.kept, ...(reason !== undefined && { reason }) },
  };
}

export function powerEvent(r: ResetResult): NewEvent {
  return {
    type: 'bmc-power',
    source: 'bmc',
    message: `${r.action}: ${r.resetTypes.join(' then ')} (power was ${r.powerBefore ?? 'unknown'})`,
    data: { action: r.action, resetTypes: r.resetTypes, powerBefore: r.powerBefore ?? null, busyRetries: r.busyRetries },
  };
}

export interface RunFollowerDeps {
  store: Store;
  machines: MachineService;
  driver: BmcDriver;
  config: BmcConfig;
  log: Logger;
  now: () => Date;
  target: (view: SystemView, m: DrivenMachine) => NetworkTarget;
}

export class RunFollower {
  /** Each powered run's deadline (ms), by MAC: the sweep reads this, not the store. */
  private readonly due = new Map<Mac, number>();
  /** Machines whose power cycle is under way, and whether they asked /ipxe before its run was saved. */
  private readonly cycling = new Map<Mac, boolean>();

  constructor(private readonly deps: RunFollowerDeps) {}

  /** How often the sweep looks: a fifth of the timeout, at most every 5 s. */
  get sweepMs(): number {
    return Math.min(5000, (this.deps.config.bootTimeoutSeconds * 1000) / 5);
  }

  /** A run in phase powered, to follow until its deadline. */
  follow(mac: Mac, run: BmcRun): void {
    if (run.phase === 'powered' && run.deadlineAt !== undefined) this.due.set(mac, Date.parse(run.deadlineAt));
    else this.due.delete(mac);
  }

  /** Runs survive a restart: the powered ones on record are followed again. */
  async load(): Promise<number> {
    for await (const m of eachMachine(this.deps.store)) if (m.bmcRun) this.follow(m.mac, m.bmcRun);
    return this.due.size;
  }

  /** A new run's record: powered, the first power cycle done, the deadline set. */
  powered(attempts: number, startedAt?: string): BmcRun {
    const now = this.deps.now();
    const deadlineAt = new Date(now.getTime() + this.deps.config.bootTimeoutSeconds * 1000).toISOString();
    return { phase: 'powered', attempts, startedAt: startedAt ?? now.toISOString(), deadlineAt };
  }

  /**
   * A power cycle and the save of its run: a machine fast enough to ask /ipxe before the run is
   * saved (a VM, or a BMC that holds the reset's task open while the host boots) still has it
   * booted. `work` answers the machine as saved and a value of its own, handed back with the
   * machine as it is then.
   */
  async cycle<T>(mac: Mac, work: () => Promise<{ saved: Machine | undefined; value: T }>): Promise<{ saved: Machine | undefined; value: T }> {
    this.cycling.set(mac, false);
    let done: { saved: Machine | undefined; value: T };
    try {
      done = await work();
    } catch (err) {
      this.cycling.delete(mac);
      throw err;
    }
    const early = this.cycling.get(mac) === true;
    this.cycling.delete(mac);
    const { saved, value } = done;
    if (saved?.bmcRun) this.follow(mac, saved.bmcRun);
    if (!early || saved?.bmcRun?.phase !== 'powered') return done;
    await this.booted(saved);
    return { saved: { ...saved, bmcRun: { phase: 'booted', attempts: saved.bmcRun.attempts, startedAt: saved.bmcRun.startedAt } }, value };
  }

  /** A trusted /ipxe was served to the machine: a run waiting for it is booted. */
  async scripted(m: Machine): Promise<void> {
    if (this.cycling.has(m.mac)) this.cycling.set(m.mac, true);
    await this.booted(m);
  }

  /** The machine asked `/ipxe`: its powered run is booted. */
  private async booted(m: Machine): Promise<void> {
    if (m.bmcRun?.phase !== 'powered') return;
    this.due.delete(m.mac);
    await this.deps.store.mutateMachine(m.mac, (cur) => {
      if (cur?.bmcRun?.phase !== 'powered') return { kind: 'keep' };
      const { attempts, startedAt } = cur.bmcRun;
      return { kind: 'save', machine: { ...cur, bmcRun: { phase: 'booted', attempts, startedAt } } };
    });
  }

  /** Every run past its deadline: a retry, or the end. Each through the limiter; one failing BMC holds up no other. */
  async sweep(): Promise<void> {
    const now = this.deps.now().getTime();
    const late = [...this.due].filter(([, at]) => at <= now).map(([mac]) => mac);
    for (const mac of late) this.due.delete(mac);
    await Promise.all(late.map((mac) => this.timedOut(mac).catch((err: unknown) => this.deps.log.error({ mac, err }, 'a BMC run could not be followed up'))));
  }

  private async timedOut(mac: Mac): Promise<void> {
    const { store, config, driver } = this.deps;
    const m = await store.getMachine(mac);
    const run = m?.bmcRun;
    if (!m || run?.phase !== 'powered' || run.deadlineAt === undefined) return;
    if (Date.parse(run.deadlineAt) > this.deps.now().getTime()) {
      this.follow(mac, run);
      return;
    }
    if (run.attempts >= 1 + config.maxRetries || !hasBmcPassword(m)) return this.fail(m, run);
    const attempt = run.attempts + 1;
    const timeout: NewEvent = {
      type: 'bmc-boot-timeout',
      source: 'bmc',
      message: `no network boot within ${config.bootTimeoutSeconds} s: one-time network boot and power cycle again (${attempt} of ${1 + config.maxRetries})`,
      data: { attempt, timeoutSeconds: config.bootTimeoutSeconds },
    };
    await this.cycle(mac, async () => {
      const retried = await driver
        .run(m, `power cycle ${attempt}`, (s) => bootFromNetwork(s, (view) => this.deps.target(view, m)))
        .catch((err: unknown) => {
          // The failure is on the timeline already (driver.run); it counts as a cycle, so that an unreachable BMC still ends the run.
          this.deps.log.debug({ mac, err }, 'a power cycle of a BMC run failed');
          return undefined;
        });
      const next = this.powered(attempt, run.startedAt);
      const saved = await driver.write(mac, (cur) => {
        const events = retried ? [timeout, overrideEvent(retried.override), powerEvent(retried.power)] : [timeout];
        const status = retried ? { bmcStatus: driver.statusOf(retried.view, cur.bmcStatus) } : {};
        // The machine may have asked /ipxe meanwhile: its run is booted then, and stays so.
        const bmcRun = cur.bmcRun?.phase === 'powered' ? next : cur.bmcRun;
        return { machine: { ...cur, ...status, ...(bmcRun && { bmcRun }) }, events };
      });
      return { saved, value: undefined };
    });
  }

  /** Out of retries: the run and the machine fail, with the reason. */
  private async fail(m: Machine, run: BmcRun): Promise<void> {
    const { config, machines, log } = this.deps;
    const reason = `no network boot within ${config.bootTimeoutSeconds} s after ${run.attempts} power cycles through the BMC`;
    const timeout: NewEvent = { type: 'bmc-boot-timeout', source: 'bmc', message: reason, data: { attempt: run.attempts, final: true } };
    await this.deps.store.mutateMachine(m.mac, (cur) => {
      if (cur?.bmcRun?.phase !== 'powered') return { kind: 'keep' };
      const bmcRun: BmcRun = { phase: 'failed', attempts: cur.bmcRun.attempts, startedAt: cur.bmcRun.startedAt };
      const moved = applicableError(cur) ? machines.transition(cur, { kind: 'error', reason }, 'bmc') : undefined;
      if (moved?.kind === 'save') return { kind: 'save', machine: { ...moved.machine, bmcRun }, events: [timeout, ...(moved.events ?? [])] };
      return { kind: 'save', machine: { ...cur, bmcRun }, events: [timeout] };
    });
    log.warn({ mac: m.mac, reason }, 'BMC run failed: the machine never asked /ipxe');
  }
}

/** A discovered machine has no flow to fail (machines/state.ts); any other state moves to failed. */
function applicableError(m: Machine): boolean {
  return m.state !== 'discovered';
}
