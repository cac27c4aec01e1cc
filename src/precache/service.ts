/**
 * The server side of the precache job: the live environment posts its inventory, fetches its
 * plan, reports progress (as events) and posts its result; each moves the machine's record in
 * one transaction. A sweep fails the precaching machines that went silent.
 */
import { setImmediate } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { PrecacheConfig } from '../config/config.js';
import { ConflictError, NotReadyError } from '../errors.js';
import type { Mac } from '../machines/mac.js';
import type { Inventory, Machine, NewEvent } from '../machines/model.js';
import { machineNotFound, type MachineService } from '../machines/service.js';
import { eachMachine, type MachineChange, type Store } from '../store/store.js';
import type { BundleBuilder, BundleSpec, BundleStatus } from './bundles.js';
import { heartbeat, heartbeatLapsed } from '../machines/precache-run.js';
import { gib, makePlan, type PrecachePlan } from './plan.js';

export interface PrecacheResult {
  ok: boolean;
  step?: string;
  message?: string;
  data?: Record<string, unknown>;
}

/** How precache runs ended (precached, job-failed, plan-refused, heartbeat-lost, boot-loop), and plans served. */
export interface PrecacheStats {
  ended: Record<string, number>;
  plans: number;
}

/** Who called: the machine's own job, or an admin acting for it. */
type Caller = 'machine' | 'api';

type MachineBundle =
  | { kind: 'ready'; status: BundleStatus & { manifest: NonNullable<BundleStatus['manifest']> } }
  | { kind: 'waiting'; id: string; message: string }
  | { kind: 'unusable'; id?: string; message: string };

export interface PrecacheServiceDeps {
  store: Store;
  machines: MachineService;
  bundles: Pick<BundleBuilder, 'status' | 'build'>;
  config: PrecacheConfig;
  log: Logger;
  now?: () => Date;
}

/** How long the job waits before asking again for a plan whose bundle is still building. */
const BUNDLE_RETRY_SECONDS = 10;

export class PrecacheService {
  private readonly now: () => Date;
  private timer: NodeJS.Timeout | undefined;
  private sweeping = false;
  readonly stats: PrecacheStats = { ended: {}, plans: 0 };

  constructor(private readonly deps: PrecacheServiceDeps) {
    this.now = deps.now ?? (() => new Date());
  }

  async inventory(mac: Mac, reported: Omit<Inventory, 'reportedAt'>, source: Caller = 'machine'): Promise<Inventory> {
    const inventory: Inventory = { ...reported, reportedAt: this.now().toISOString() };
    const summary = inventory.disks.map((d) => `${d.path} ${gib(d.sizeBytes)}`).join(', ');
    await this.mutate(mac, (cur) => ({
      kind: 'save',
      machine: { ...this.beat(cur, { step: 'inventory' }), inventory },
      events: [
        {
          type: 'inventory',
          source,
          message: `disks: ${summary || 'none'}`,
          data: { disks: inventory.disks.length, macs: inventory.macs, memoryBytes: inventory.memoryBytes ?? null, serial: inventory.serial ?? null },
        },
      ],
    }));
    return inventory;
  }

  async plan(mac: Mac, fileUrl: (bundle: string, file: string) => string, source: Caller = 'machine'): Promise<PrecachePlan> {
    const m = await this.deps.machines.mustGet(mac);
    if (m.state !== 'precaching') throw notPrecaching(m);
    const bundle = await this.bundleOf(m);
    if (bundle.kind === 'waiting') {
      await this.mutate(mac, (cur) => ({ kind: 'save', machine: this.beat(cur, { step: 'waiting-for-bundle', message: bundle.message }) }));
      throw new NotReadyError('bundle_building', bundle.message, { bundle: bundle.id }, BUNDLE_RETRY_SECONDS);
    }
    const outcome =
      bundle.kind === 'unusable'
        ? ({ ok: false, problem: 'no_bundle', reason: bundle.message } as const)
        : makePlan({
            inventory: m.inventory,
            ...(m.precache?.disk !== undefined && { disk: m.precache.disk }),
            ...(m.precache?.sizeGiB !== undefined && { sizeGiB: m.precache.sizeGiB }),
            bundle: { id: bundle.status.id, bytes: bundle.status.manifest.bytes, files: bundle.status.manifest.files },
            config: this.deps.config,
            fileUrl: (file) => fileUrl(bundle.status.id, file),
          });
    await this.mutate(mac, (cur): MachineChange => {
      if (cur.state !== 'precaching') throw notPrecaching(cur);
      if (!outcome.ok) {
        // Without an inventory the job can still post it and ask again; the rest is for good.
        if (outcome.problem === 'no_inventory') return { kind: 'keep' };
        return this.deps.machines.transition(this.beat(cur, { step: 'plan' }), { kind: 'error', reason: outcome.reason }, source);
      }
      const { plan } = outcome;
      const progress = { step: 'plan', filesDone: 0, filesTotal: plan.files.length, bytesDone: 0, bytesTotal: plan.files.reduce((n, f) => n + f.size, 0) };
      const machine = this.beat(cur, progress);
      if (machine.precacheProgress) machine.precacheProgress = { ...machine.precacheProgress, disk: plan.disk, bundle: plan.bundle.id };
      const data = { disk: plan.disk, sizeGiB: plan.partition.sizeGiB, bundle: plan.bundle.id, files: plan.files.length, bytes: progress.bytesTotal };
      return {
        kind: 'save',
        machine,
        events: [
          {
            type: 'precache-plan',
            source,
            message: `${plan.files.length} files, ${progress.bytesTotal} bytes onto a ${plan.partition.sizeGiB} GiB data partition of ${plan.disk}`,
            data,
          },
        ],
      };
    });
    if (!outcome.ok) {
      if (outcome.problem !== 'no_inventory') this.countEnd('plan-refused');
      throw new ConflictError(outcome.problem, outcome.reason);
    }
    this.stats.plans++;
    return outcome.plan;
  }

  async result(mac: Mac, r: PrecacheResult, source: Caller = 'machine'): Promise<Machine> {
    const step = r.ok ? 'done' : (r.step ?? 'unknown');
    const reason = `precache failed at ${step}: ${r.message ?? 'no message'}`;
    const { result } = await this.update(mac, (cur) => {
      const posted: NewEvent = {
        type: 'precache-result',
        source,
        message: r.ok ? (r.message ?? 'precache done') : reason,
        data: { ok: r.ok, step, ...r.data },
      };
      const change = this.deps.machines.transition(this.beat(cur, { step }), r.ok ? { kind: 'precache-succeeded' } : { kind: 'error', reason }, source);
      if (change.kind !== 'save') return { change, result: cur };
      return { change: { ...change, events: [posted, ...(change.events ?? [])] }, result: change.machine };
    });
    this.countEnd(r.ok ? 'precached' : 'job-failed');
    return result;
  }

  /**
   * Starts building the bundle of a reservation that names a release or images, so that it is
   * ready, or on its way, when the machine boots; the plan waits for it either way.
   */
  async prepare(m: Machine): Promise<void> {
    const spec = bundleSpecOf(m);
    if (!spec || m.precache?.bundle !== undefined || m.state === 'discovered') return;
    try {
      const s = await this.deps.bundles.build(spec, undefined, 4);
      this.deps.log.info({ mac: m.mac, bundle: s.id, state: s.state }, 'precache bundle of a reservation');
    } catch (err) {
      // The reservation is saved; the plan will try again and report what stops it.
      this.deps.log.warn({ mac: m.mac, err }, 'the precache bundle of a reservation could not be started');
    }
  }

  /**
   * Fails every precaching machine silent for longer than the heartbeat timeout; how many. After
   * an outage longer than the timeout every run has lapsed at once: each failure is its own
   * synchronous transaction, so the sweep yields to the event loop between them (without, 1,429
   * lapsed machines held HTTP for 4 s, bench/ui.sh), and a sweep still running skips the next tick.
   */
  async sweep(): Promise<number> {
    if (this.sweeping) return 0;
    this.sweeping = true;
    try {
      return await this.sweepLapsed();
    } finally {
      this.sweeping = false;
    }
  }

  private async sweepLapsed(): Promise<number> {
    const { config, store, machines } = this.deps;
    let failed = 0;
    for await (const m of eachMachine(store, { state: 'precaching' })) {
      if (!heartbeatLapsed(m, this.now(), config.heartbeatSeconds)) continue;
      await setImmediate();
      await store.mutateMachine(m.mac, (cur) => {
        const reason = cur && heartbeatLapsed(cur, this.now(), config.heartbeatSeconds);
        if (!cur || !reason) return { kind: 'keep' };
        failed++;
        return machines.transition(cur, { kind: 'error', reason }, 'http');
      });
      this.deps.log.warn({ mac: m.mac }, 'precaching machine went silent: failed');
    }
    if (failed > 0) this.countEnd('heartbeat-lost', failed);
    return failed;
  }

  countEnd(end: string, n = 1): void {
    this.stats.ended[end] = (this.stats.ended[end] ?? 0) + n;
  }

  start(): void {
    const everyMs = Math.min(30, this.deps.config.heartbeatSeconds / 4) * 1000;
    this.timer = setInterval(() => {
      this.sweep().catch((err: unknown) => this.deps.log.error({ err }, 'the precache heartbeat sweep failed'));
    }, everyMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** The machine with its heartbeat (and a report) on its run, when it has one. */
  private beat(m: Machine, report: Parameters<typeof heartbeat>[2]): Machine {
    if (!m.precacheProgress) return m;
    return { ...m, precacheProgress: heartbeat(m.precacheProgress, this.now().toISOString(), report) };
  }

  private async bundleOf(m: Machine): Promise<MachineBundle> {
    const p = m.precache ?? {};
    const spec = bundleSpecOf(m);
    let status: BundleStatus | undefined;
    if (p.bundle !== undefined) {
      status = await this.deps.bundles.status(p.bundle);
      if (!status) return { kind: 'unusable', message: `precache.bundle ${p.bundle} is not a bundle of this server (POST /api/v1/bundles builds one)` };
    } else if (spec) {
      status = await this.deps.bundles.build(spec, undefined, 4);
    } else {
      return { kind: 'unusable', message: 'the reservation names no precache bundle, release or images' };
    }
    if (status.state === 'ready' && status.manifest) return { kind: 'ready', status: { ...status, manifest: status.manifest } };
    if (status.state === 'failed')
      return { kind: 'unusable', id: status.id, message: `bundle ${status.id} failed to build: ${status.error ?? 'no reason recorded'}` };
    const a = status.archives;
    return { kind: 'waiting', id: status.id, message: `bundle ${status.id} is building${a ? ` (${a.done} of ${a.total} archives)` : ' (pulling its images)'}` };
  }

  /** One transaction on a machine that must exist (else NotFoundError), with a value computed from its row. */
  private async update<R>(mac: Mac, change: (cur: Machine) => { change: MachineChange; result: R }) {
    return this.deps.store.updateMachine(mac, (cur) => {
      if (!cur) throw machineNotFound(mac);
      return change(cur);
    });
  }

  private async mutate(mac: Mac, change: (cur: Machine) => MachineChange) {
    return this.update(mac, (cur) => ({ change: change(cur), result: undefined }));
  }
}

/** The bundle a reservation's `precache.release` and `precache.images` make, if they name any. */
function bundleSpecOf(m: Machine): BundleSpec | undefined {
  const p = m.precache ?? {};
  if (p.release === undefined && (p.images ?? []).length === 0) return undefined;
  return { ...(p.release !== undefined && { release: p.release }), aiImages: [], images: p.images ?? [], architecture: 'amd64' };
}

function notPrecaching(m: Machine): ConflictError {
  return new ConflictError('invalid_transition', `machine ${m.mac} is ${m.state}: the precache job runs only while it is precaching`, { state: m.state });
}
