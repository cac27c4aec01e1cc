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
import { isAssistedChain, planBoot, pxeAnswer, withHubAnswer, type BootDecision, type PxeAnswer } from './planner.js';
import { rewriteAssistedBoot, type AssistedBoot } from './assisted.js';
import type { HubAnswer } from './hub.js';
import type { ArtifactCache } from '../cache/artifacts.js';
import { RenderError, renderScript } from './render.js';
import { UnsafeValueError } from './safe.js';
import { checkMachineToken, machineToken } from './tokens.js';
import { DiscoveryLimiter } from './discovery.js';
import { clientTrust, type ClientTrust } from './trust.js';
import { bootLoopReason, precacheBooted } from '../precache/lifecycle.js';
import { redactSecrets } from '../secrets/redact.js';
import type { MachineState } from '../machines/state.js';

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
  /**
   * The MAC at a client address: edgeboot's bound DHCP lease, else the kernel's neighbour
   * table (server.ts). Absent: only a reservation's `ip` identifies a machine's address.
   */
  macAt?: (address: string) => Mac | undefined;
}

/**
 * The shell around the planner: finds the machine by any MAC or its UUID, records what it
 * reported (a `discovered` machine when unknown), applies the state move that serving the
 * script causes, and renders the script — all of it in one transaction per request.
 */
export class BootService {
  private readonly now: () => Date;
  /** Per-address rate and overall cap of the records unknown MACs leave (boot/discovery.ts). */
  readonly discovery: DiscoveryLimiter;

  constructor(private readonly deps: BootServiceDeps) {
    this.now = deps.now ?? (() => new Date());
    this.discovery = new DiscoveryLimiter({ perMinute: deps.config.boot.discoverPerMinute, maxDiscovered: deps.config.boot.maxDiscovered, now: () => this.now().getTime() });
  }

  /**
   * @param client the request's source address: a machine's secrets and the state moves of
   *   its boot are for its own address alone (boot.verifyClient, boot/trust.ts).
   */
  async script(q: BootQuery, baseUrl: string, client: string): Promise<{ script: string; machine: Machine; decision: BootDecision; trust: ClientTrust }> {
    const { store, config } = this.deps;
    const known = await store.findMachine({ macs: [q.mac, ...q.macs], uuid: q.uuid });
    // Decided before the transaction (the neighbour table is a file read), on the machine the
    // request names, or the discovered record it would make.
    const trust = this.trust(known ?? { mac: q.mac, macs: [] }, client);
    // The hub is asked before the transaction: it is a network round trip. Not for a stranger,
    // who gets no hub script anyway.
    const hub = trust.trusted ? await this.askHub(known) : undefined;
    let out: { script: string; decision: BootDecision } | undefined;
    let withheld = false;
    // A record for an unknown MAC is made only within the client's rate (boot.discoverPerMinute).
    const gate = this.discovery.gate(() => this.discovery.allowNew(client));
    const res = await store.mutateMachine(known?.mac ?? q.mac, gate.wrap((cur): MachineChange => {
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
      if (!trust.trusted && (planned.kind === 'boot' || planned.transition !== undefined)) {
        withheld = true;
        return this.untrustedChange(cur, machine, planned, trust, baseUrl, events, (r) => (out = r));
      }
      const s = this.serve(machine, planned, hub, baseUrl, time);
      out = { script: s.script, decision: s.decision };
      events.push(...s.events);
      return { kind: 'save', machine: s.machine, events };
    }));
    const machine = res.machine ?? (gate.refused as Machine);
    if (gate.refused) this.deps.log.debug({ mac: machine.mac, client }, 'unknown machine not recorded: boot.discoverPerMinute reached for this address');
    if (gate.created) await this.discovery.cap(store, this.deps.log);
    const r = out as { script: string; decision: BootDecision };
    if (withheld && !trust.trusted) {
      this.deps.log.warn({ mac: machine.mac, client, reason: trust.reason }, 'boot script without secrets: the request is not from the machine');
      return { ...r, machine, trust };
    }
    if (r.decision.kind === 'error') this.deps.log.error({ mac: machine.mac, reason: r.decision.reason }, 'machine cannot boot: configuration error');
    // Only a boot loop waits with a state move (withBootLoop).
    if (r.decision.kind === 'wait' && r.decision.transition?.kind === 'error') {
      this.deps.log.warn({ mac: machine.mac, reason: r.decision.reason }, 'precache boot loop: machine failed');
      this.deps.onBootLoop?.();
    }
    return { ...r, machine, trust };
  }

  /**
   * What serving `/ipxe` to the machine's own address does now, computed and not applied: the
   * decision (the hub's answer and a boot loop included), the machine as it would be saved
   * (state move, precache boot, next token generation), the events, and the script rendered
   * for that machine. `script` saves it; `previewScript` shows it and saves nothing.
   */
  private serve(machine: Machine, planned: BootDecision, hub: HubAnswer | undefined, baseUrl: string, time: string): Served {
    const d = this.withBootLoop(machine, hub && isAssistedChain(planned) ? withHubAnswer(planned, hub, machine.state) : planned);
    // Render before committing the state move: a script that cannot be rendered moves nothing.
    const moved = d.transition ? this.deps.machines.transition(machine, d.transition, 'http', d.reason) : undefined;
    let next = moved?.kind === 'save' ? moved.machine : machine;
    if (d.kind === 'boot' && d.stage === 'precache') next = { ...next, precacheProgress: precacheBooted(machine.precacheProgress, machine.state, time) };
    // Each precache or install boot of the machine's flow gets fresh credentials: those of
    // the boot before (an old precache.env, a leaked script) stop working.
    if (d.kind === 'boot' && d.transition) next = { ...next, tokenGeneration: (next.tokenGeneration ?? 0) + 1 };
    try {
      const script = renderScript(d, { ...this.context(next, baseUrl), ...(d.kind === 'boot' && d.hub && { hubLines: this.hubLines(d.hub, baseUrl) }) });
      return { script, decision: d, machine: next, events: [...(moved?.kind === 'save' ? (moved.events ?? []) : []), served(d)] };
    } catch (err) {
      if (!(err instanceof RenderError || err instanceof UnsafeValueError)) throw err;
      const failed: BootDecision = { kind: 'error', reason: "the server cannot render this machine's boot script: see its events" };
      const script = renderScript(failed, this.context(machine, baseUrl));
      return { script, decision: failed, machine, events: [{ type: 'boot-error', source: 'http', message: err.message }, served(failed)] };
    }
  }

  /**
   * The script `/ipxe` would serve the machine now, from its own address, with every secret
   * cut (secrets/redact.ts): its events token, its signed Ignition URL, the hub's keys. Nothing
   * is saved — no state move, no boot counted, no token generation, no event. The hub is asked
   * as `/ipxe` asks it (a GET of the machine's assisted script, in rewrite mode), so the preview
   * shows the script the machine would get; what the hub answers moves nothing here either.
   * Throws a 404 ApiError for a MAC no machine has.
   */
  async previewScript(mac: Mac, baseUrl: string): Promise<ScriptPreview> {
    const machine = await this.deps.machines.mustGet(mac);
    const hub = await this.askHub(machine);
    const s = this.serve(machine, this.preview(machine), hub, baseUrl, this.now().toISOString());
    return { machine, script: redactSecrets(s.script), decision: s.decision, ...(s.machine.state !== machine.state && { wouldMoveTo: s.machine.state }) };
  }

  /** Whether a request from `address` may have this machine's secrets (boot.verifyClient). */
  trust(m: Pick<Machine, 'mac' | 'macs' | 'ip'>, address: string): ClientTrust {
    const mode = this.deps.config.boot.verifyClient;
    return clientTrust(m, address, mode === 'off' ? undefined : this.deps.macAt?.(address), mode);
  }

  /**
   * A request for a boot stage or a state move of a machine, from an address that is not the
   * machine's: a wait that re-checks, with no secret and no state move. The firmware keeps
   * asking, and boots as soon as its address is known (a DHCP lease, a neighbour entry or the
   * reservation's ip). An existing machine's record is left as it was, with a `boot-untrusted`
   * event naming the address. Anything else (the local disk, a wait) holds no secret and is
   * served as it is.
   */
  private untrustedChange(
    cur: Machine | undefined,
    machine: Machine,
    planned: BootDecision,
    trust: Extract<ClientTrust, { trusted: false }>,
    baseUrl: string,
    events: NewEvent[],
    done: (r: { script: string; decision: BootDecision }) => void,
  ): MachineChange {
    const decision: BootDecision = { kind: 'wait', reason: `not served to this address: ${trust.reason}` };
    done({ script: renderScript(decision, { ...this.context(machine, baseUrl, false), untrusted: trust.reason }), decision });
    const untrusted: NewEvent = {
      type: 'boot-untrusted',
      source: 'http',
      message: trust.reason,
      data: { client: trust.address, withheld: planned.kind === 'boot' ? `${planned.stage} stage ${planned.profile.name}` : planned.kind },
    };
    events.push(untrusted);
    return cur ? { kind: 'keep', events } : { kind: 'save', machine, events };
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
    const gate = this.discovery.gate();
    await this.deps.store.mutateMachine(mac, gate.wrap((cur): MachineChange => {
      const time = this.now().toISOString();
      const observed: Observed = { ...cur?.observed, ...seen, lastSeenAt: time };
      if (cur) return { kind: 'save', machine: { ...cur, observed }, events: [event] };
      const machine: Machine = { mac, macs: [], labels: {}, state: 'discovered', observed, createdAt: time, updatedAt: time };
      return { kind: 'save', machine, events: [{ type: 'discovered', source: event.source, to: 'discovered', data: { ...seen } }, event] };
    }));
    if (gate.created) await this.discovery.cap(this.deps.store, this.deps.log);
  }

  /**
   * Whether proxy DHCP answers this PXE client: the planner's pxeAnswer for the machine with
   * this MAC on any of its NICs, or this UUID, found as `/ipxe` finds it.
   */
  async pxeAnswer(client: { mac: Mac; uuid?: Uuid }): Promise<PxeAnswer> {
    const machine = await this.deps.store.findMachine({ macs: [client.mac], ...(client.uuid && { uuid: client.uuid }) });
    return pxeAnswer({ machine, profiles: this.deps.profiles(), unknownMachines: this.deps.config.boot.unknownMachines });
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

  /** Where the machine posts its events, with the token of its current boot. */
  eventsUrl(baseUrl: string, m: TokenHolder): string {
    return `${this.machineUrl(baseUrl, m.mac)}/events?token=${this.eventsToken(m)}`;
  }

  ignitionUrl(baseUrl: string, m: TokenHolder): string {
    const expiresAt = Math.floor(this.now().getTime() / 1000) + IGNITION_URL_TTL_SECONDS;
    const sig = machineToken(this.deps.secret, m.mac, 'ignition', { expiresAt, generation: m.tokenGeneration });
    return `${baseUrl}/api/v1/machines/${macHyphenated(m.mac)}/ignition?exp=${expiresAt}&sig=${sig}`;
  }

  /**
   * The events URL for hub automation (`GET …/{mac}/boot`, admin only): with the token of the
   * machine's next generation, so that it works now and after the next boot too. The hub may
   * read it while edgeboot asks it for the install script, just before the boot that rotates
   * the machine's tokens, and post install-done once the machine is installing.
   */
  hubEventsUrl(baseUrl: string, m: TokenHolder): string {
    return this.eventsUrl(baseUrl, { mac: m.mac, tokenGeneration: (m.tokenGeneration ?? 0) + 1 });
  }

  private eventsToken(m: TokenHolder): string {
    return machineToken(this.deps.secret, m.mac, 'events', { generation: m.tokenGeneration });
  }

  /**
   * The check of a machine's events token: the machine's current generation, or the next one
   * (handed to admins only, by hubEventsUrl). A token of an earlier boot fails. A MAC no
   * machine has is checked at generation 0 (the route answers 404).
   */
  async eventsTokenCheck(mac: Mac): Promise<(token: string) => boolean> {
    const generation = (await this.deps.store.getMachine(mac))?.tokenGeneration ?? 0;
    const { secret } = this.deps;
    return (token) => checkMachineToken(secret, mac, 'events', token, { generation }) || checkMachineToken(secret, mac, 'events', token, { generation: generation + 1 });
  }

  /**
   * The Ignition config behind a signed URL. The signature is the secret, and it went to the
   * machine's address alone; the source address is checked here too (defence in depth: a URL
   * copied off a console or a log is no good elsewhere), with the same rule as `/ipxe`.
   */
  async ignition(mac: Mac, exp: number, sig: string, baseUrl: string, client: string): Promise<IgnitionConfig> {
    if (exp * 1000 < this.now().getTime()) throw new ApiError('url_expired', 'this Ignition URL has expired: boot the machine again for a new one', 403);
    const found = await this.deps.store.getMachine(mac);
    if (!checkMachineToken(this.deps.secret, mac, 'ignition', sig, { expiresAt: exp, generation: found?.tokenGeneration })) {
      throw new ApiError('bad_signature', 'this Ignition URL is not signed for this machine, or is from an earlier boot of it', 403);
    }
    const m = found ?? (await this.deps.machines.mustGet(mac));
    const trust = this.trust(m, client);
    if (!trust.trusted) {
      await this.deps.store.appendEvents(m.mac, [{ type: 'boot-untrusted', source: 'http', message: trust.reason, data: { client, withheld: 'ignition' } }]);
      this.deps.log.warn({ mac: m.mac, client, reason: trust.reason }, 'Ignition refused: the request is not from the machine');
      throw new ApiError('untrusted_client', `this Ignition config is served to the machine's own address only: ${trust.reason}`, 403);
    }
    const job = this.deps.precacheJob;
    const precache = m.state === 'precaching' && job !== undefined ? { machineUrl: this.machineUrl(baseUrl, m.mac), token: this.eventsToken(m), mac: m.mac, after: this.deps.config.precache.after, script: job } : undefined;
    return renderIgnition({ eventsUrl: this.eventsUrl(baseUrl, m), ...(m.hostname && { hostname: m.hostname }), ...(precache && { precache }) });
  }

  private secretValues(m: Machine, baseUrl: string): Partial<Record<MachinePlaceholder, string>> {
    const ignitionUrl = this.ignitionUrl(baseUrl, m);
    return { 'machine.eventsUrl': this.eventsUrl(baseUrl, m), 'machine.ignitionUrl': ignitionUrl, 'kargs.ignition': `ignition.config.url=${ignitionUrl}` };
  }

  /** The values a script is rendered with; `secrets: false` leaves out the events and Ignition URLs. */
  private context(m: Machine, baseUrl: string, secrets = true) {
    const values: Partial<Record<MachinePlaceholder, string>> = {
      'server.url': baseUrl,
      'machine.mac': m.mac,
      ...(secrets && this.secretValues(m, baseUrl)),
      'kargs.staticIp': m.ip ? staticIpKarg(m.ip, m.hostname, this.deps.config.dhcp.subnets) : '',
      ...(m.hostname && { 'machine.hostname': m.hostname }),
      ...(m.ip && { 'machine.ip': m.ip }),
      ...(m.assisted && { 'machine.assistedScriptUrl': m.assisted.ipxeScriptUrl }),
    };
    return { baseUrl, mac: m.mac, state: m.state, values, recheckSeconds: this.deps.config.boot.recheckSeconds };
  }
}

/** What serving one `/ipxe` request does, before it is saved. */
interface Served {
  script: string;
  decision: BootDecision;
  machine: Machine;
  events: NewEvent[];
}

/** `previewScript`: the script with its secrets cut, the decision, and the state serving it would move the machine to. */
export interface ScriptPreview {
  machine: Machine;
  script: string;
  decision: BootDecision;
  wouldMoveTo?: MachineState;
}

/** What the tokens of a machine are derived from. */
type TokenHolder = Pick<Machine, 'mac' | 'tokenGeneration'>;

function served(d: BootDecision): NewEvent {
  const data: Record<string, unknown> = { kind: d.kind };
  if (d.kind === 'boot') {
    data.stage = d.stage;
    data.profile = d.profile.name;
    if (d.hub) data.hub = 'rewritten';
  }
  return { type: 'script-served', source: 'http', message: d.reason, data };
}
