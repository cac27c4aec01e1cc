import type { Logger } from 'pino';
import type { Config } from '../config/config.js';
import type { Mac, Uuid } from '../machines/mac.js';
import type { Machine, NewEvent, Observed } from '../machines/model.js';
import type { MachineService } from '../machines/service.js';
import type { MachineState } from '../machines/state.js';
import type { ProfileSet } from '../profiles/profile.js';
import { redactSecrets } from '../secrets/redact.js';
import type { MachineChange, Store } from '../store/store.js';
import { bootMove, scriptServedEvent } from './boot-move.js';
import { DiscoveryLimiter } from './discovery.js';
import type { HubAnswer } from './hub.js';
import type { IgnitionConfig } from './ignition.js';
import { IgnitionService } from './ignition-service.js';
import { MachineLinks, type TokenHolder } from './links.js';
import { hubScriptUrl, isBootLoop, planBoot, pxeAnswer, type BootDecision, type PlanInput, type PxeAnswer } from './planner.js';
import { BootScripts, RENDER_FAILED, type HubArtifactIds } from './scripts.js';
import { trustCheck, type ClientTrust, type TrustCheck } from './trust.js';

export { IGNITION_URL_TTL_SECONDS } from './links.js';

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
  artifacts?: HubArtifactIds;
  /** The precache job script (src/precache/job.sh) the Ignition of a precaching machine carries. */
  precacheJob?: string;
  /** Told of each machine failed for a boot loop (the precache metrics). */
  onBootLoop?: () => void;
  /**
   * The MAC at a client address: edgeboot's bound DHCP lease, else the kernel's neighbour
   * table (server.ts). Absent: only a reservation's `ip` identifies a machine's address.
   */
  macAt?: (address: string) => Mac | undefined;
  /** The planner (boot/planner.ts); a test may count its calls. */
  plan?: (input: PlanInput) => BootDecision;
  /** Told of each `/ipxe` served to the machine's own address (the BMC service); it must only schedule work, never block. */
  onScript?: (served: ServedScript) => void;
}

/** What `/ipxe` served: the script, the decision, the machine as saved, and whether the request was the machine's. */
export interface ServedScript {
  script: string;
  decision: BootDecision;
  machine: Machine;
  trust: ClientTrust;
}

/** `previewScript`: the script with its secrets cut, the decision, and the state serving it would move the machine to. */
export interface ScriptPreview {
  machine: Machine;
  script: string;
  decision: BootDecision;
  wouldMoveTo?: MachineState;
}

/** What serving one `/ipxe` request does, before it is saved. */
interface Served {
  script: string;
  decision: BootDecision;
  machine: Machine;
  events: NewEvent[];
}

/**
 * The shell around the planner (pixiecore's Booter): finds the machine by any MAC or its UUID,
 * records what it reported (a `discovered` machine when unknown), plans its boot once, applies
 * the state move that serving the script causes, and renders the script — all of it in one
 * transaction per request.
 */
export class BootService {
  private readonly now: () => Date;
  private readonly plan: (input: PlanInput) => BootDecision;
  private readonly links: MachineLinks;
  private readonly scripts: BootScripts;
  private readonly ignitions: IgnitionService;
  /** Whether a request from an address may have a machine's secrets (boot.verifyClient). */
  readonly trust: TrustCheck;
  /** Per-address rate and overall cap of the records unknown MACs leave (boot/discovery.ts). */
  readonly discovery: DiscoveryLimiter;

  constructor(private readonly deps: BootServiceDeps) {
    const { config } = deps;
    this.now = deps.now ?? (() => new Date());
    this.plan = deps.plan ?? planBoot;
    this.links = new MachineLinks(deps.secret, this.now);
    this.scripts = new BootScripts({ links: this.links, config, ...(deps.artifacts && { hubArtifacts: deps.artifacts }) });
    this.trust = trustCheck(config.boot.verifyClient, deps.macAt);
    const job = deps.precacheJob === undefined ? {} : { precacheJob: deps.precacheJob };
    this.ignitions = new IgnitionService({ store: deps.store, links: this.links, trust: this.trust, config, log: deps.log, ...job });
    const limits = { perMinute: config.boot.discoverPerMinute, maxDiscovered: config.boot.maxDiscovered };
    this.discovery = new DiscoveryLimiter({ ...limits, now: () => this.now().getTime() });
  }

  /**
   * Plan, transition, render: the script for the machine a `/ipxe` request names.
   * @param client the request's source address: a machine's secrets and the state moves of
   *   its boot are for its own address alone (boot.verifyClient, boot/trust.ts).
   */
  async script(q: BootQuery, baseUrl: string, client: string): Promise<ServedScript> {
    const { store, log } = this.deps;
    const known = await store.findMachine({ macs: [q.mac, ...q.macs], uuid: q.uuid });
    // Decided before the transaction (the neighbour table is a file read), on the machine the
    // request names, or the discovered record it would make.
    const trust = this.trust(known ?? { mac: q.mac, macs: [] }, client);
    // The hub is asked before the transaction: it is a network round trip. Not for a stranger,
    // who gets no hub script anyway.
    const hub = trust.trusted ? await this.askHub(known) : undefined;
    // A record for an unknown MAC is made only within the client's rate (boot.discoverPerMinute).
    const gate = this.discovery.gate(() => this.discovery.allowNew(client));
    const { result } = await store.updateMachine(known?.mac ?? q.mac, (cur) => {
      const time = this.now().toISOString();
      const seen = observe(cur, q, time);
      const decision = this.plan(this.planInput(seen.machine, hub));
      if (!trust.trusted && (decision.kind === 'boot' || decision.transition !== undefined)) {
        const w = this.withheld(cur, seen, decision, trust, baseUrl);
        const admitted = gate.admit(cur, w.change);
        return { change: admitted.change, result: { ...w.served, withheld: true, creation: admitted.creation } };
      }
      const s = this.serve(seen.machine, decision, baseUrl, time);
      const change: MachineChange = { kind: 'save', machine: s.machine, events: [...seen.events, ...s.events] };
      const admitted = gate.admit(cur, change);
      return { change: admitted.change, result: { script: s.script, decision: s.decision, machine: s.machine, withheld: false, creation: admitted.creation } };
    });
    const { machine, withheld, creation, ...served } = result;
    if (creation === 'refused') log.debug({ mac: machine.mac, client }, 'unknown machine not recorded: boot.discoverPerMinute reached for this address');
    if (creation === 'made') await this.discovery.cap(store, log);
    if (withheld && !trust.trusted) {
      log.warn({ mac: machine.mac, client, reason: trust.reason }, 'boot script without secrets: the request is not from the machine');
    } else if (served.decision.kind === 'error') {
      log.error({ mac: machine.mac, reason: served.decision.reason }, 'machine cannot boot: configuration error');
    } else if (isBootLoop(served.decision)) {
      log.warn({ mac: machine.mac, reason: served.decision.reason }, 'precache boot loop: machine failed');
      this.deps.onBootLoop?.();
    }
    const out: ServedScript = { ...served, machine, trust };
    if (trust.trusted) this.deps.onScript?.(out);
    return out;
  }

  /**
   * What serving `/ipxe` to the machine's own address does now, computed and not applied: the
   * machine as it would be saved (state move, precache boot, next token generation), the
   * events, and the script rendered for that machine. `script` saves it; `previewScript`
   * shows it and saves nothing.
   */
  private serve(machine: Machine, d: BootDecision, baseUrl: string, time: string): Served {
    const moved = bootMove(machine, d, time, (m, t, source, message) => this.deps.machines.transition(m, t, source, message));
    // Rendered before the state move is committed: a script that cannot be rendered moves nothing.
    const rendered = this.scripts.render(moved.machine, d, baseUrl);
    if (rendered.ok) return { script: rendered.script, decision: d, machine: moved.machine, events: [...moved.events, scriptServedEvent(d)] };
    const failed = this.scripts.renderFailed(machine, rendered.problem, baseUrl);
    return { script: failed.script, decision: RENDER_FAILED, machine, events: [failed.event, scriptServedEvent(RENDER_FAILED)] };
  }

  /**
   * A request for a boot stage or a state move of a machine, from an address that is not the
   * machine's: a wait that re-checks, with no secret and no state move. The firmware keeps
   * asking, and boots as soon as its address is known (a DHCP lease, a neighbour entry or the
   * reservation's ip). An existing machine's record is left as it was, with a `boot-untrusted`
   * event naming the address. Anything else (the local disk, a wait) holds no secret and is
   * served as it is.
   */
  private withheld(
    cur: Machine | undefined,
    seen: Observation,
    planned: BootDecision,
    trust: Extract<ClientTrust, { trusted: false }>,
    baseUrl: string,
  ): { change: MachineChange; served: Omit<ServedScript, 'trust'> } {
    const decision: BootDecision = { kind: 'wait', reason: `not served to this address: ${trust.reason}` };
    const untrusted: NewEvent = {
      type: 'boot-untrusted',
      source: 'http',
      message: trust.reason,
      data: { client: trust.address, withheld: planned.kind === 'boot' ? `${planned.stage} stage ${planned.profile.name}` : planned.kind },
    };
    const events = [...seen.events, untrusted];
    return {
      change: cur ? { kind: 'keep', events } : { kind: 'save', machine: seen.machine, events },
      served: { script: this.scripts.renderWithheld(seen.machine, decision, trust.reason, baseUrl), decision, machine: cur ?? seen.machine },
    };
  }

  /**
   * The script `/ipxe` would serve the machine now, from its own address, with every secret
   * cut (secrets/redact.ts): its events token, its signed Ignition URL, the hub's keys. Nothing
   * is saved — no state move, no boot counted, no token generation, no event. The hub is asked
   * as `/ipxe` asks it (a GET of the machine's assisted script, in rewrite mode), so the preview
   * shows the script the machine would get; what the hub answers moves nothing here either.
   * Throws a NotFoundError for a MAC no machine has.
   */
  async previewScript(mac: Mac, baseUrl: string): Promise<ScriptPreview> {
    const machine = await this.deps.machines.mustGet(mac);
    const hub = await this.askHub(machine);
    const s = this.serve(machine, this.plan(this.planInput(machine, hub)), baseUrl, this.now().toISOString());
    return { machine, script: redactSecrets(s.script), decision: s.decision, ...(s.machine.state !== machine.state && { wouldMoveTo: s.machine.state }) };
  }

  /**
   * What `GET /api/v1/machines/{mac}/boot` reports: the decision, without side effects and
   * without asking the hub (hub automation reads it while edgeboot asks the hub).
   */
  preview(machine: Machine): BootDecision {
    return this.plan(this.planInput(machine));
  }

  /** The hub's answer for a machine whose next boot is an assisted chain, in rewrite mode. */
  private async askHub(m: Machine | undefined): Promise<HubAnswer | undefined> {
    const { hub, artifacts, config, log } = this.deps;
    if (!m || !hub || !artifacts || config.boot.assistedChain !== 'rewrite') return undefined;
    const url = hubScriptUrl(this.planInput(m));
    if (url === undefined) return undefined;
    const answer = await hub(url, m.mac);
    if (answer.kind === 'error') log.warn({ mac: m.mac, reason: answer.reason }, "the hub's script could not be used");
    return answer;
  }

  private planInput(machine: Machine | undefined, hub?: HubAnswer): PlanInput {
    const { boot, precache } = this.deps.config;
    return { machine, profiles: this.deps.profiles(), unknownMachines: boot.unknownMachines, precache, ...(hub && { hub }) };
  }

  /**
   * A PXE client's DHCP exchange: what it said about itself goes on its machine (a
   * `discovered` one when unknown) and the reply onto its timeline.
   */
  async observeDhcp(mac: Mac, seen: Omit<Observed, 'lastSeenAt' | 'nics'>, event: NewEvent): Promise<void> {
    const gate = this.discovery.gate();
    const { result: creation } = await this.deps.store.updateMachine(mac, (cur) => {
      const time = this.now().toISOString();
      const observed: Observed = { ...cur?.observed, ...seen, lastSeenAt: time };
      const discovered: NewEvent = { type: 'discovered', source: event.source, to: 'discovered', data: { ...seen } };
      const change: MachineChange = cur
        ? { kind: 'save', machine: { ...cur, observed }, events: [event] }
        : { kind: 'save', machine: discoveredMachine(mac, observed, time), events: [discovered, event] };
      const admitted = gate.admit(cur, change);
      return { change: admitted.change, result: admitted.creation };
    });
    if (creation === 'made') await this.discovery.cap(this.deps.store, this.deps.log);
  }

  /**
   * Whether proxy DHCP answers this PXE client: the planner's pxeAnswer for the machine with
   * this MAC on any of its NICs, or this UUID, found as `/ipxe` finds it.
   */
  async pxeAnswer(client: { mac: Mac; uuid?: Uuid }): Promise<PxeAnswer> {
    const machine = await this.deps.store.findMachine({ macs: [client.mac], ...(client.uuid && { uuid: client.uuid }) });
    return pxeAnswer(this.planInput(machine));
  }

  /** The reservation DHCP needs in full mode: fixed address and host name. */
  async reservation(mac: Mac): Promise<{ ip?: string; hostname?: string } | undefined> {
    const m = await this.deps.store.getMachine(mac);
    return m ? { ...(m.ip && { ip: m.ip }), ...(m.hostname && { hostname: m.hostname }) } : undefined;
  }

  machineUrl(baseUrl: string, mac: Mac): string {
    return this.links.machineUrl(baseUrl, mac);
  }

  /** Where the machine posts its events, with the token of its current boot. */
  eventsUrl(baseUrl: string, m: TokenHolder): string {
    return this.links.eventsUrl(baseUrl, m);
  }

  ignitionUrl(baseUrl: string, m: TokenHolder): string {
    return this.links.ignitionUrl(baseUrl, m);
  }

  /** The events URL for hub automation, good now and through the machine's next boot (MachineLinks). */
  hubEventsUrl(baseUrl: string, m: TokenHolder): string {
    return this.links.hubEventsUrl(baseUrl, m);
  }

  /**
   * The check of a machine's events token: the machine's current generation, or the next one
   * (handed to admins only, by hubEventsUrl). A token of an earlier boot fails. A MAC no
   * machine has is checked at generation 0 (the route answers 404).
   */
  async eventsTokenCheck(mac: Mac): Promise<(token: string) => boolean> {
    const generation = (await this.deps.store.getMachine(mac))?.tokenGeneration ?? 0;
    return this.links.eventsTokenCheck(mac, generation);
  }

  /** The Ignition config behind a signed URL, to the machine's own address only (IgnitionService). */
  ignition(mac: Mac, exp: number, sig: string, baseUrl: string, client: string): Promise<IgnitionConfig> {
    return this.ignitions.config(mac, exp, sig, baseUrl, client);
  }
}

/** A machine with what the request reported about it, and the events that recording it makes. */
interface Observation {
  machine: Machine;
  events: NewEvent[];
}

/** The machine with what `/ipxe` says about it: a new `discovered` one when unknown. */
function observe(cur: Machine | undefined, q: BootQuery, time: string): Observation {
  const observed: Observed = { ...cur?.observed, ...q.observed, ...(q.uuid && { uuid: q.uuid }), ...(q.macs.length > 0 && { nics: q.macs }), lastSeenAt: time };
  if (cur) return { machine: { ...cur, observed }, events: [] };
  // Only the booting NIC: the others stay free for a reservation to claim (observed.nics).
  const discovered: NewEvent = { type: 'discovered', source: 'http', to: 'discovered', data: { ...q.observed, macs: q.macs, uuid: q.uuid ?? null } };
  return { machine: discoveredMachine(q.mac, observed, time), events: [discovered] };
}

function discoveredMachine(mac: Mac, observed: Observed, time: string): Machine {
  return { mac, macs: [], labels: {}, state: 'discovered', observed, createdAt: time, updatedAt: time };
}
