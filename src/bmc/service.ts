/**
 * Zero-touch provisioning through each machine's BMC (Redfish): provision sets a one-time
 * network boot and powers the machine on or restarts it, then follows the run (runs.ts) until
 * the machine asks `/ipxe`; the boot hook re-arms the network boot the live environment's own
 * reboot needs; power acts on demand; the poller and the inventory read keep the status
 * (poller.ts). Every session goes through one limiter (bmc.parallel, one per machine at once).
 * Nothing here blocks the boot path: the hooks only schedule work.
 */
import type { Logger } from 'pino';
import { BmcFailedError, ConflictError } from '../errors.js';
import type { PowerAction } from '../machines/bmc.js';
import type { Mac } from '../machines/mac.js';
import type { Machine, NewEvent } from '../machines/model.js';
import type { Actor, MachineService } from '../machines/service.js';
import { STOP_GRACE_MS, InFlight } from '../protocol.js';
import type { SealedBox } from '../secrets/sealed-box.js';
import { eachMachine, type Store } from '../store/store.js';
import { IPXE_BIN_PREFIX } from '../urls.js';
import { BmcDriver, hasBmcPassword, type BmcConfig, type ConnectBmc, type DrivenMachine } from './driver.js';
import { BmcLimiter, LimiterClosedError } from './limiter.js';
import { BmcPoller } from './poller.js';
import { withBmc as withBmcSession } from './redfish.js';
import { bootFromNetwork, networkTarget, overrideEvent, powerEvent, RunFollower, type NetworkTarget } from './runs.js';
import type { OverrideResult, ResetResult, SystemView } from './types.js';

export interface BmcServiceDeps {
  store: Store;
  machines: MachineService;
  box: Pick<SealedBox, 'open'>;
  config: BmcConfig;
  log: Logger;
  now?: () => Date;
  /** edgeboot's URL as machines reach it (http://host:port), for UEFI HTTP Boot's HttpBootUri. */
  bootBaseUrl: () => string;
  /** The iPXE binary UEFI HTTP Boot fetches from /ipxe-bin/ (dhcp.efiBinary); default ipxe.efi. */
  efiBinary?: string;
  /** Opens a BMC session; default redfish.ts withBmc (tests may pass another). */
  connect?: ConnectBmc;
}

/** What the boot hook needs of an `/ipxe` served (boot/service.ts ServedScript; bmc/ does not import boot/). */
export interface ServedBoot {
  machine: Machine;
  decision: { kind: string; stage?: string };
  trust: { trusted: boolean };
}

export interface Provisioned {
  machine: Machine;
  override: OverrideResult;
  power: ResetResult;
}

export interface PowerDone {
  machine: Machine;
  action: PowerAction;
  override?: OverrideResult;
  power?: ResetResult;
  /** The BMC's power state after the action, as it reads it. */
  powerState?: string;
}

export interface ProvisionMany {
  accepted: Mac[];
  skipped: { mac: Mac; reason: string }[];
}

/** States whose next boot is a network boot edgeboot serves: the ones a provision may start from. */
const PROVISIONABLE = new Set<Machine['state']>(['registered', 'precached']);

export class BmcService {
  private readonly now: () => Date;
  private readonly limiter: BmcLimiter;
  private readonly driver: BmcDriver;
  private readonly runs: RunFollower;
  private readonly poller: BmcPoller;
  private readonly inFlight = new InFlight();
  private timers: NodeJS.Timeout[] = [];
  private polling: Promise<unknown> | undefined;
  private stopped: Promise<void> | undefined;

  constructor(private readonly deps: BmcServiceDeps) {
    const { store, config, log } = deps;
    this.now = deps.now ?? (() => new Date());
    this.limiter = new BmcLimiter(config.parallel);
    const now = this.now;
    this.driver = new BmcDriver({ store, box: deps.box, config, log, now, connect: deps.connect ?? withBmcSession, limiter: this.limiter });
    const target = (view: SystemView, m: DrivenMachine): NetworkTarget => this.target(view, m);
    this.runs = new RunFollower({ store, machines: deps.machines, driver: this.driver, config, log, now, target });
    this.poller = new BmcPoller({ store, driver: this.driver, config, log, now });
  }

  /** Sessions open now and operations waiting for one (the bench and tests read it). */
  get load(): { active: number; queued: number } {
    return { active: this.limiter.active, queued: this.limiter.queued };
  }

  /**
   * One-time network boot and power (on when off, restart when on), in one session; the run
   * follows. A BMC failure leaves the machine as it was (no state move, no run) and is thrown
   * as a BmcFailedError (502).
   */
  async provision(mac: Mac, by: Actor): Promise<Provisioned> {
    const m = this.provisionable(await this.deps.machines.mustGet(mac));
    const { saved, value: done } = await this.runs.cycle(m.mac, async () => {
      const booted = await this.driver.run(m, 'provision', async (s) => {
        // Checked again once the machine's turn came: queued behind others (provision of many), it may have moved on meanwhile.
        this.provisionable(await this.deps.machines.mustGet(m.mac));
        return bootFromNetwork(s, (view) => this.target(view, m));
      });
      const run = this.runs.powered(1);
      const written = await this.driver.write(m.mac, (cur) => ({
        machine: { ...cur, bmcStatus: this.driver.statusOf(booted.view, cur.bmcStatus), bmcRun: run, updatedAt: this.now().toISOString() },
        events: [overrideEvent(booted.override), powerEvent(booted.power)].map((e) => withActor(e, by)),
      }));
      return { saved: written, value: booted };
    });
    this.deps.log.info({ mac: m.mac, target: done.override.target, power: done.power.resetTypes, by: by.actor }, 'machine provisioned through its BMC');
    return { machine: saved ?? m, override: done.override, power: done.power };
  }

  /** on, off, restart, or pxe-once (the one-time network boot alone, the power as it is). */
  async power(mac: Mac, action: PowerAction, by: Actor): Promise<PowerDone> {
    const m = withBmc(await this.deps.machines.mustGet(mac));
    const done = await this.driver.run(m, action, async (s) => {
      if (action === 'pxe-once') {
        const override = await s.setOneTimeBoot(this.target(await s.system(), m));
        return { override, view: await s.system() };
      }
      const power = await s.reset(action);
      return { power, view: await s.system() };
    });
    const events = [...(done.override ? [overrideEvent(done.override)] : []), ...(done.power ? [powerEvent(done.power)] : [])];
    const saved = await this.driver.write(m.mac, (cur) => ({
      machine: { ...cur, bmcStatus: this.driver.statusOf(done.view, cur.bmcStatus) },
      events: events.map((e) => withActor(e, by)),
    }));
    const { override, power } = done;
    return {
      machine: saved ?? m,
      action,
      ...(override && { override }),
      ...(power && { power }),
      ...(done.view.powerState !== undefined && { powerState: done.view.powerState }),
    };
  }

  /**
   * Provision of many machines, in the background, through the same limiter: the answer says
   * which were taken and why the others were not; each one's outcome goes on its timeline.
   */
  async provisionMany(req: { macs?: readonly Mac[]; allRegistered?: boolean }, by: Actor): Promise<ProvisionMany> {
    const result: ProvisionMany = { accepted: [], skipped: [] };
    const seen = new Set<Mac>();
    const consider = (m: Machine | undefined, asked: Mac): void => {
      const mac = m?.mac ?? asked;
      if (seen.has(mac)) return;
      seen.add(mac);
      const reason = m ? skipReason(m) : 'no such machine';
      if (reason === undefined) result.accepted.push(mac);
      else result.skipped.push({ mac, reason });
    };
    for (const mac of req.macs ?? []) consider(await this.deps.machines.get(mac), mac);
    if (req.allRegistered) for await (const m of eachMachine(this.deps.store, { state: 'registered' })) consider(m, m.mac);
    for (const mac of result.accepted)
      void this.track(
        this.provision(mac, by).then(
          () => undefined,
          (err: unknown) => this.backgroundFailed(mac, err),
        ),
      );
    this.deps.log.info({ accepted: result.accepted.length, skipped: result.skipped.length, by: by.actor }, 'provisioning machines through their BMCs');
    return result;
  }

  /**
   * The boot hook (BootService onScript): a trusted `/ipxe` was served. A powered run is booted;
   * a precache stage served arms the network boot again, so that the live environment's own
   * reboot comes back to edgeboot for the install stage and not to a disk with an old system.
   */
  onScript(served: ServedBoot): void {
    if (!served.trust.trusted || this.stopped) return;
    const m = served.machine;
    void this.track(this.runs.scripted(m).catch((err: unknown) => this.deps.log.error({ mac: m.mac, err }, 'a BMC run could not be marked booted')));
    const d = served.decision;
    if (d.kind === 'boot' && d.stage === 'precache' && hasBmcPassword(m)) void this.track(this.rearm(m));
  }

  /** The reservation hook (machine routes' onSaved): a BMC never read is read now, in the background. */
  onSaved(m: Machine): void {
    if (this.stopped || !hasBmcPassword(m) || m.bmcStatus?.macs !== undefined) return;
    void this.track(this.poller.inventory(m));
  }

  /** Follows the runs on record, then sweeps them and polls the BMCs on timers (unref'd). */
  async start(): Promise<void> {
    const followed = await this.runs.load();
    if (followed > 0) this.deps.log.info({ runs: followed }, 'following BMC runs still waiting for a network boot');
    const every = (ms: number, work: () => Promise<unknown>, what: string): void => {
      const t = setInterval(() => void this.track(work().catch((err: unknown) => this.deps.log.error({ err }, `${what} failed`))), ms);
      t.unref();
      this.timers.push(t);
    };
    every(this.runs.sweepMs, () => this.runs.sweep(), 'the BMC run sweep');
    every(this.deps.config.pollSeconds * 1000, () => this.pollRound(), 'the BMC poll');
  }

  /** Timers off, queued work dropped, work in flight waited for up to STOP_GRACE_MS and then abandoned (logged). */
  stop(graceMs = STOP_GRACE_MS): Promise<void> {
    this.stopped ??= (async () => {
      for (const t of this.timers) clearInterval(t);
      this.timers = [];
      this.limiter.close();
      if (!(await this.inFlight.settled(graceMs))) {
        this.deps.log.warn({ operations: this.inFlight.size }, `BMC operations still running after ${graceMs} ms: abandoned at stop`);
      }
    })();
    return this.stopped;
  }

  /** One poll round at a time: a round slower than the interval is not stacked on. */
  pollRound(): Promise<unknown> {
    this.polling ??= this.poller.pollAll().finally(() => (this.polling = undefined));
    return this.polling;
  }

  /** Sweeps the runs now (tests; the timer does it otherwise). */
  sweep(): Promise<void> {
    return this.runs.sweep();
  }

  /** A machine, read fresh (404 when absent): its run and status. */
  machine(mac: Mac): Promise<Machine> {
    return this.deps.machines.mustGet(mac);
  }

  private async rearm(m: DrivenMachine): Promise<void> {
    const reason = 'next boot: install stage';
    try {
      const done = await this.driver.run(m, 're-arm', async (s) => {
        const view = await s.system();
        return { view, override: await s.setOneTimeBoot(this.target(view, m)) };
      });
      await this.driver.write(m.mac, (cur) => ({
        machine: { ...cur, bmcStatus: this.driver.statusOf(done.view, cur.bmcStatus) },
        events: [overrideEvent(done.override, reason)],
      }));
    } catch (err) {
      this.backgroundFailed(m.mac, err);
    }
  }

  private target(view: SystemView, m: DrivenMachine): NetworkTarget {
    return networkTarget(view, m, this.deps.config.bootTarget, this.httpBootUri());
  }

  private httpBootUri(): string {
    return `${this.deps.bootBaseUrl()}${IPXE_BIN_PREFIX}/${this.deps.efiBinary ?? 'ipxe.efi'}`;
  }

  private provisionable(m: Machine): DrivenMachine {
    const driven = withBmc(m);
    if (!PROVISIONABLE.has(m.state)) {
      throw new ConflictError(
        'not_provisionable',
        `machine ${m.mac} is ${m.state}: its next boot is not a network boot edgeboot serves; reset it first (POST /api/v1/machines/${m.mac}/reset)`,
        { state: m.state },
      );
    }
    return driven;
  }

  /** A failure of background work: a BMC's is on the timeline already; a stop is expected; anything else is a bug to log. */
  private backgroundFailed(mac: Mac, err: unknown): void {
    if (err instanceof BmcFailedError || err instanceof LimiterClosedError) this.deps.log.debug({ mac, err: err.message }, 'background BMC work ended');
    else if (err instanceof ConflictError) this.refusedLater(mac, err);
    else this.deps.log.error({ mac, err }, 'background BMC work failed');
  }

  /** A machine accepted for provision of many that its state no longer allows by the time its turn came: on its timeline. */
  private refusedLater(mac: Mac, err: ConflictError): void {
    this.deps.log.info({ mac, reason: err.message }, 'machine not provisioned');
    const event: NewEvent = { type: 'bmc-error', source: 'bmc', message: `not provisioned: ${err.message}`, data: { code: err.code, during: 'provision' } };
    void this.track(
      this.deps.store.appendEvents(mac, [event]).catch((e: unknown) => this.deps.log.warn({ mac, err: e }, 'could not record an event on its machine')),
    );
  }

  private track<T>(work: Promise<T>): Promise<T> {
    return this.inFlight.track(work);
  }
}

function withBmc(m: Machine): DrivenMachine {
  if (!hasBmcPassword(m)) {
    const why = m.bmc ? 'its BMC has no password: set bmc.password' : 'it has no BMC: set bmc.address, bmc.username and bmc.password';
    throw new ConflictError('no_bmc', `machine ${m.mac} cannot be driven through a BMC: ${why}`);
  }
  return m;
}

/** Why a machine is not provisioned with many, or undefined when it is. */
function skipReason(m: Machine): string | undefined {
  if (!hasBmcPassword(m)) return m.bmc ? 'its BMC has no password' : 'it has no BMC';
  if (!PROVISIONABLE.has(m.state)) return `it is ${m.state}: reset it first`;
  if (m.bmcRun?.phase === 'powered') return 'a provisioning run is already waiting for its network boot';
  return undefined;
}

/** An admin's act on the timeline names who did it, from where. */
function withActor(e: NewEvent, by: Actor): NewEvent {
  return { ...e, data: { ...e.data, actor: by.actor, client: by.client } };
}
