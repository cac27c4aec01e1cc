import type { Logger } from 'pino';
import type { Config } from '../config/config.js';
import { ApiError } from '../errors.js';
import { macHyphenated, type Mac, type Uuid } from '../machines/mac.js';
import type { Machine, NewEvent, Observed } from '../machines/model.js';
import type { MachineService } from '../machines/service.js';
import type { ProfileSet } from '../profiles/profile.js';
import type { MachinePlaceholder } from '../profiles/template.js';
import type { MachineChange, Store } from '../store/store.js';
import { renderIgnition, type IgnitionConfig } from './ignition.js';
import { staticIpKarg } from './kargs.js';
import { isAssistedChain, planBoot, withHubAnswer, type BootDecision } from './planner.js';
import { rewriteAssistedBoot, type AssistedBoot } from './assisted.js';
import type { HubAnswer } from './hub.js';
import type { ArtifactCache } from '../cache/artifacts.js';
import { RenderError, renderScript } from './render.js';
import { UnsafeValueError } from './safe.js';
import { checkMachineToken, machineToken } from './tokens.js';
import { bootLoopReason, precacheBooted } from '../precache/lifecycle.js';

/** How long a signed Ignition URL stays good: a slow live boot still makes it. */
export const IGNITION_URL_TTL_SECONDS = 2 * 3600;

/** What a booting machine told `/ipxe`, parsed and validated. */
export interface BootQuery {
  mac: Mac;
  macs: Mac[];
  uuid?: Uuid;
  observed: Omit<Observed, 'lastSeenAt'>;
}

export interface BootServiceDeps {
  store: Store;
  machines: MachineService;
  profiles: () => ProfileSet;
  config: Pick<Config, 'boot' | 'dhcp' | 'precache'>;
  secret: string;
  log: Logger;
  now?: () => Date;
  /** Fetches a machine's assisted script server-side (`boot.assistedChain: rewrite`). */
  hub?: (url: string, mac: Mac) => Promise<HubAnswer>;
  /** Gives hub artifacts the ids of edgeboot's `/assets/hub/<id>/<name>` URLs. */
  artifacts?: Pick<ArtifactCache, 'register'>;
  /** The precache job script (src/precache/job.sh) the Ignition of a precaching machine carries. */
  precacheJob?: string;
  /** Told of each machine failed for a boot loop (the precache metrics). */
  onBootLoop?: () => void;
}

/**
 * The shell around the planner: finds the machine by any MAC or its UUID, records what it
 * reported (a `discovered` machine when unknown), applies the state move that serving the
 * script causes, and renders the script — all of it in one transaction per request.
 */
export class BootService {
  private readonly now: () => Date;

  constructor(private readonly deps: BootServiceDeps) {
    this.now = deps.now ?? (() => new Date());
  }

  async script(q: BootQuery, baseUrl: string): Promise<{ script: string; machine: Machine; decision: BootDecision }> {
    const { store, config } = this.deps;
    const known = await store.findMachine({ macs: [q.mac, ...q.macs], uuid: q.uuid });
    // The hub is asked before the transaction: it is a network round trip.
    const hub = await this.askHub(known);
    let out: { script: string; decision: BootDecision } | undefined;
    const res = await store.mutateMachine(known?.mac ?? q.mac, (cur): MachineChange => {
      const time = this.now().toISOString();
      const observed: Observed = { ...cur?.observed, ...q.observed, ...(q.uuid && { uuid: q.uuid }), ...(q.macs.length > 0 && { nics: q.macs }), lastSeenAt: time };
      const events: NewEvent[] = [];
      let machine: Machine;
      if (cur) {
        machine = { ...cur, observed };
      } else {
        // Only the booting NIC: the others stay free for a reservation to claim (observed.nics).
        machine = { mac: q.mac, macs: [], labels: {}, state: 'discovered', observed, createdAt: time, updatedAt: time };
        events.push({ type: 'discovered', source: 'http', to: 'discovered', data: { ...q.observed, macs: q.macs, uuid: q.uuid ?? null } });
      }
      const planned = planBoot({ machine, profiles: this.deps.profiles(), unknownMachines: config.boot.unknownMachines });
      const d = this.withBootLoop(machine, hub && isAssistedChain(planned) ? withHubAnswer(planned, hub, machine.state) : planned);
      // Render before committing the state move: a script that cannot be rendered moves nothing.
      const moved = d.transition ? this.deps.machines.transition(machine, d.transition, 'http', d.reason) : undefined;
      let next = moved?.kind === 'save' ? moved.machine : machine;
      if (d.kind === 'boot' && d.stage === 'precache') next = { ...next, precacheProgress: precacheBooted(machine.precacheProgress, machine.state, time) };
      try {
        out = { script: renderScript(d, { ...this.context(next, baseUrl), ...(d.kind === 'boot' && d.hub && { hubLines: this.hubLines(d.hub, baseUrl) }) }), decision: d };
        if (moved?.kind === 'save') events.push(...(moved.events ?? []));
        events.push(served(d));
        return { kind: 'save', machine: next, events };
      } catch (err) {
        if (!(err instanceof RenderError || err instanceof UnsafeValueError)) throw err;
        const failed: BootDecision = { kind: 'error', reason: "the server cannot render this machine's boot script: see its events" };
        out = { script: renderScript(failed, this.context(machine, baseUrl)), decision: failed };
        events.push({ type: 'boot-error', source: 'http', message: err.message }, served(failed));
        return { kind: 'save', machine, events };
      }
    });
    const machine = res.machine as Machine;
    const r = out as { script: string; decision: BootDecision };
    if (r.decision.kind === 'error') this.deps.log.error({ mac: machine.mac, reason: r.decision.reason }, 'machine cannot boot: configuration error');
    // Only a boot loop waits with a state move (withBootLoop).
    if (r.decision.kind === 'wait' && r.decision.transition?.kind === 'error') {
      this.deps.log.warn({ mac: machine.mac, reason: r.decision.reason }, 'precache boot loop: machine failed');
      this.deps.onBootLoop?.();
    }
    return { ...r, machine };
  }

  /** One precache boot too many without a result fails the machine instead of booting it again. */
  private withBootLoop(m: Machine, d: BootDecision): BootDecision {
    if (d.kind !== 'boot' || d.stage !== 'precache') return d;
    const loop = bootLoopReason(m, this.deps.config.precache.maxBoots);
    return loop ? { kind: 'wait', reason: `provisioning failed: ${loop}; reset it on the server to retry`, transition: { kind: 'error', reason: loop } } : d;
  }

  /** The hub's answer for a machine whose next boot is an assisted chain, in rewrite mode. */
  private async askHub(m: Machine | undefined): Promise<HubAnswer | undefined> {
    const { hub, artifacts, config } = this.deps;
    if (!m?.assisted || !hub || !artifacts || config.boot.assistedChain !== 'rewrite') return undefined;
    if (!isAssistedChain(this.preview(m))) return undefined;
    const answer = await hub(m.assisted.ipxeScriptUrl, m.mac);
    if (answer.kind === 'error') this.deps.log.warn({ mac: m.mac, reason: answer.reason }, "the hub's script could not be used");
    return answer;
  }

  /**
   * The hub's initrd and kernel lines with edgeboot's URLs: kernel and rootfs (unsigned,
   * shared by every InfraEnv of a version and architecture) and the per-InfraEnv initrd,
   * revalidated at each boot, all through the cache.
   */
  private hubLines(script: AssistedBoot, baseUrl: string): string[] {
    const artifacts = this.deps.artifacts as Pick<ArtifactCache, 'register'>;
    return rewriteAssistedBoot(script, (url, role) => `${baseUrl}/assets/hub/${artifacts.register({ url, ...(role === 'initrd' && { revalidate: true }) })}/${role}`);
  }

  /**
   * A PXE client's DHCP exchange: what it said about itself goes on its machine (a
   * `discovered` one when unknown) and the reply onto its timeline.
   */
  async observeDhcp(mac: Mac, seen: Omit<Observed, 'lastSeenAt' | 'nics'>, event: NewEvent): Promise<void> {
    await this.deps.store.mutateMachine(mac, (cur): MachineChange => {
      const time = this.now().toISOString();
      const observed: Observed = { ...cur?.observed, ...seen, lastSeenAt: time };
      if (cur) return { kind: 'save', machine: { ...cur, observed }, events: [event] };
      const machine: Machine = { mac, macs: [], labels: {}, state: 'discovered', observed, createdAt: time, updatedAt: time };
      return { kind: 'save', machine, events: [{ type: 'discovered', source: event.source, to: 'discovered', data: { ...seen } }, event] };
    });
  }

  /** The reservation DHCP needs in full mode: fixed address and host name. */
  async reservation(mac: Mac): Promise<{ ip?: string; hostname?: string } | undefined> {
    const m = await this.deps.store.getMachine(mac);
    return m ? { ...(m.ip && { ip: m.ip }), ...(m.hostname && { hostname: m.hostname }) } : undefined;
  }

  /** What `GET /api/v1/machines/{mac}/boot` reports: the decision without side effects. */
  preview(machine: Machine): BootDecision {
    return planBoot({ machine, profiles: this.deps.profiles(), unknownMachines: this.deps.config.boot.unknownMachines });
  }

  machineUrl(baseUrl: string, mac: Mac): string {
    return `${baseUrl}/api/v1/machines/${macHyphenated(mac)}`;
  }

  eventsUrl(baseUrl: string, mac: Mac): string {
    return `${this.machineUrl(baseUrl, mac)}/events?token=${machineToken(this.deps.secret, mac, 'events')}`;
  }

  ignitionUrl(baseUrl: string, mac: Mac): string {
    const exp = Math.floor(this.now().getTime() / 1000) + IGNITION_URL_TTL_SECONDS;
    return `${baseUrl}/api/v1/machines/${macHyphenated(mac)}/ignition?exp=${exp}&sig=${machineToken(this.deps.secret, mac, 'ignition', exp)}`;
  }

  checkEventsToken(mac: Mac, token: string): boolean {
    return checkMachineToken(this.deps.secret, mac, 'events', token);
  }

  async ignition(mac: Mac, exp: number, sig: string, baseUrl: string): Promise<IgnitionConfig> {
    if (exp * 1000 < this.now().getTime()) throw new ApiError('url_expired', 'this Ignition URL has expired: boot the machine again for a new one', 403);
    if (!checkMachineToken(this.deps.secret, mac, 'ignition', sig, exp)) {
      throw new ApiError('bad_signature', 'this Ignition URL is not signed for this machine', 403);
    }
    const m = await this.deps.machines.mustGet(mac);
    const job = this.deps.precacheJob;
    const precache = m.state === 'precaching' && job !== undefined ? { machineUrl: this.machineUrl(baseUrl, m.mac), token: machineToken(this.deps.secret, m.mac, 'events'), mac: m.mac, after: this.deps.config.precache.after, script: job } : undefined;
    return renderIgnition({ eventsUrl: this.eventsUrl(baseUrl, m.mac), ...(m.hostname && { hostname: m.hostname }), ...(precache && { precache }) });
  }

  private context(m: Machine, baseUrl: string) {
    const ignitionUrl = this.ignitionUrl(baseUrl, m.mac);
    const values: Partial<Record<MachinePlaceholder, string>> = {
      'server.url': baseUrl,
      'machine.mac': m.mac,
      'machine.eventsUrl': this.eventsUrl(baseUrl, m.mac),
      'machine.ignitionUrl': ignitionUrl,
      'kargs.ignition': `ignition.config.url=${ignitionUrl}`,
      'kargs.staticIp': m.ip ? staticIpKarg(m.ip, m.hostname, this.deps.config.dhcp.subnets) : '',
      ...(m.hostname && { 'machine.hostname': m.hostname }),
      ...(m.ip && { 'machine.ip': m.ip }),
      ...(m.assisted && { 'machine.assistedScriptUrl': m.assisted.ipxeScriptUrl }),
    };
    return { baseUrl, mac: m.mac, state: m.state, values, recheckSeconds: this.deps.config.boot.recheckSeconds };
  }
}

function served(d: BootDecision): NewEvent {
  const data: Record<string, unknown> = { kind: d.kind };
  if (d.kind === 'boot') {
    data.stage = d.stage;
    data.profile = d.profile.name;
    if (d.hub) data.hub = 'rewritten';
  }
  return { type: 'script-served', source: 'http', message: d.reason, data };
}
