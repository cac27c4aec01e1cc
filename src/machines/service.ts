import { ConflictError, InvalidError, NotFoundError } from '../errors.js';
import type { ProfileSet } from '../profiles/profile.js';
import type { MachinePlaceholder } from '../profiles/template.js';
import { StoreConflictError, type MachineChange, type MachineFilter, type Store } from '../store/store.js';
import { finished, heartbeat, progressReport } from './precache-run.js';
import { TRANSITION_EVENTS } from './events.js';
import { parseMac, type Mac } from './mac.js';
import { allMacs, type Machine, type MachineEvent, type NewEvent, type Reservation } from './model.js';
import { applyTransition, type MachineState, type Transition } from './state.js';
import { reservationAddressProblem, type DhcpAddressing } from './addresses.js';

/** The operations of the admin API on machines: validation beyond the schemas, then one transaction. */
export class MachineService {
  private readonly now: () => Date;
  private readonly dhcp: DhcpAddressing | undefined;

  /** `dhcp`: the mode and subnets a reservation's `ip` must fit (machines/addresses.ts); absent, any `ip` goes. */
  constructor(
    private readonly store: Store,
    private readonly profiles: () => ProfileSet,
    opts: { now?: () => Date; dhcp?: DhcpAddressing } = {},
  ) {
    this.now = opts.now ?? (() => new Date());
    this.dhcp = opts.dhcp;
  }

  get(mac: Mac): Promise<Machine | undefined> {
    return this.store.getMachine(mac);
  }

  async mustGet(mac: Mac): Promise<Machine> {
    const m = await this.store.getMachine(mac);
    if (!m) throw machineNotFound(mac);
    return m;
  }

  /**
   * One page of machines in MAC order; `nextCursor` (absent on the last page) continues after
   * it with the same filter.
   */
  async list(filter: MachineFilter, page: { cursor?: string; limit: number }): Promise<{ machines: Machine[]; nextCursor?: string }> {
    const after = page.cursor === undefined ? undefined : decodeCursor(page.cursor);
    if (page.cursor !== undefined && after === undefined) {
      throw new InvalidError('invalid_cursor', 'cursor is not one this server handed out: pass nextCursor from the previous page unchanged');
    }
    // One row more than asked tells whether a next page exists without a count.
    const rows = await this.store.listMachines(filter, { ...(after && { after }), limit: page.limit + 1 });
    const machines = rows.slice(0, page.limit);
    const last = machines.at(-1);
    return rows.length > page.limit && last ? { machines, nextCursor: encodeCursor(last.mac) } : { machines };
  }

  /** PUT: create, or replace the reservation of, the machine whose primary MAC is `r.mac`. */
  async put(r: Reservation): Promise<{ machine: Machine; created: boolean }> {
    this.checkReservation(r);
    const absorbed = await this.absorbDiscovered(r);
    const merged = absorbed.map((d): NewEvent => ({
      type: 'discovered-record-merged',
      source: 'api',
      message: `the discovered record of ${d.mac} now belongs to this machine`,
      data: { mac: d.mac, observed: d.observed },
    }));
    const { result } = await this.update(r.mac, (cur) => {
      const time = this.now().toISOString();
      if (cur && cur.mac !== r.mac) {
        throw new ConflictError('mac_in_use', `MAC ${r.mac} is a further MAC of machine ${cur.mac}; change that machine instead`, { owner: cur.mac });
      }
      if (!cur) {
        const state: MachineState = r.profile ? 'registered' : 'discovered';
        const machine: Machine = { ...r, state, observed: absorbed[0]?.observed ?? {}, createdAt: time, updatedAt: time };
        const events: NewEvent[] = [{ type: 'reservation-created', source: 'api', to: state, data: { profile: r.profile ?? null } }, ...merged];
        return { change: { kind: 'save', machine, events }, result: { machine, created: true } };
      }
      const change = this.replace(cur, r, time);
      return { change: { ...change, events: [...change.events, ...merged] }, result: { machine: change.machine, created: false } };
    });
    return result;
  }

  /**
   * A machine that PXE-booted before it was registered left a `discovered` record under the
   * MAC it booted from. A reservation that names that MAC, under another primary, takes it
   * over: the record goes, what it observed comes along.
   */
  private async absorbDiscovered(r: Reservation): Promise<Machine[]> {
    const owners = new Map<Mac, Machine>();
    for (const mac of allMacs(r)) {
      const owner = await this.store.getMachine(mac);
      if (owner) owners.set(owner.mac, owner);
    }
    // A PUT that is going to be refused (a MAC in use by a machine that is not a discovered
    // record, or a profile taken from a registered machine) must take over nothing either.
    const own = owners.get(r.mac);
    const refused =
      [...owners.values()].some((o) => o.mac !== r.mac && (o.state !== 'discovered' || o.profile !== undefined)) ||
      (own !== undefined && r.profile === undefined && own.state !== 'discovered');
    if (refused) return [];
    const absorbed: Machine[] = [];
    for (const owner of owners.values()) {
      if (owner.mac === r.mac) continue;
      const res = await this.store.mutateMachine(owner.mac, (cur) =>
        cur?.mac === owner.mac && cur.state === 'discovered' && cur.profile === undefined ? { kind: 'delete' } : { kind: 'keep' },
      );
      if (res.machine === undefined) absorbed.push(owner);
    }
    return absorbed;
  }

  async remove(mac: Mac): Promise<void> {
    const { result: found } = await this.update(mac, (cur) => ({ change: cur ? { kind: 'delete' } : { kind: 'keep' }, result: cur !== undefined }));
    if (!found) throw machineNotFound(mac);
  }

  /**
   * Back to `to`. A plain reset takes failed and installed machines; a forced one takes a
   * machine in any state of its flow (an install that never reported back) and ends the
   * credentials of the boot it was forced out of, so a live environment still running cannot
   * post into the new run. The timeline names who did it, from where, and from which state.
   */
  async reset(mac: Mac, to: 'registered' | 'precached', by: Actor, force = false): Promise<Machine> {
    const { result } = await this.update(mac, (cur) => {
      if (!cur) throw machineNotFound(mac);
      const t: Transition = { kind: 'reset', to, precacheKept: cur.precachedAt !== undefined, ...(force && { force }) };
      const change = this.transition(cur, t, 'api', force ? `forced reset to ${to} from ${cur.state}` : `reset to ${to}`);
      const who = { actor: by.actor, client: by.client, ...(force && { forced: true }) };
      if (change.kind !== 'save') {
        if (!force) return { change, result: cur };
        // Already in that state: no move, but the admin's act is on the timeline and it still
        // ends the credentials handed out so far, as every forced reset does.
        const forced: NewEvent = { type: 'reset', source: 'api', message: `forced reset: already ${cur.state}`, data: { cause: 'reset', ...who } };
        const machine = { ...cur, updatedAt: this.now().toISOString(), tokenGeneration: (cur.tokenGeneration ?? 0) + 1 };
        return { change: { kind: 'save', machine, events: [forced] }, result: machine };
      }
      const events = (change.events ?? []).map((e) => (e.type === 'state-changed' ? { ...e, data: { ...e.data, ...who } } : e));
      const machine = force ? { ...change.machine, tokenGeneration: (cur.tokenGeneration ?? 0) + 1 } : change.machine;
      return { change: { kind: 'save', machine, events }, result: machine };
    });
    return result;
  }

  /** An event from the machine itself or an admin; some types move the state (machines/events.ts). */
  async postEvent(mac: Mac, e: PostedEvent, source: 'machine' | 'api'): Promise<MachineEvent[]> {
    const res = await this.update(mac, (cur) => ({ change: this.eventChange(mac, cur, e, source), result: undefined }));
    return res.events;
  }

  /** What a posted event does to the machine's record: the event, a heartbeat, a state move. */
  private eventChange(mac: Mac, cur: Machine | undefined, e: PostedEvent, source: 'machine' | 'api'): MachineChange {
    if (!cur) throw machineNotFound(mac);
    const posted: NewEvent = { type: e.type, source, ...(e.message !== undefined && { message: e.message }), ...(e.data !== undefined && { data: e.data }) };
    // Anything the live environment says is a heartbeat of its precache run; progress moves its counters.
    const beat = source === 'machine' && cur.state === 'precaching' && cur.precacheProgress;
    const base: Machine = beat
      ? { ...cur, precacheProgress: heartbeat(beat, this.now().toISOString(), e.type === 'precache-progress' ? progressReport(e.data, e.message) : {}) }
      : cur;
    const toTransition = TRANSITION_EVENTS.get(e.type);
    const change = toTransition ? this.transition(base, toTransition(e.message), source, e.message) : ({ kind: 'keep' } as const);
    if (change.kind !== 'save') return beat ? { kind: 'save', machine: base, events: [posted] } : { kind: 'keep', events: [posted] };
    return { ...change, events: [posted, ...(change.events ?? [])] };
  }

  events(mac: Mac, opts: { afterId?: number; limit?: number }): Promise<MachineEvent[]> {
    return this.store.listEvents(mac, opts);
  }

  /**
   * A state move as a store change: refused moves become a 409 that names the rule, accepted
   * ones an event with from/to. Used by the API and by the boot service.
   */
  transition(cur: Machine, t: Transition, source: NewEvent['source'], message?: string): StateChange {
    const step = applyTransition(cur.state, t);
    if (!step.ok) throw new ConflictError('invalid_transition', step.reason, { state: cur.state, transition: t.kind });
    if (!step.changed) return { kind: 'keep' };
    const time = this.now().toISOString();
    const machine: Machine = { ...cur, state: step.to, updatedAt: time };
    const reason = t.kind === 'error' ? t.reason : message;
    if (step.to === 'precached' && t.kind === 'precache-succeeded') machine.precachedAt = time;
    if (t.kind === 'reset' && t.to === 'registered') delete machine.precachedAt;
    if (t.kind === 'reset') delete machine.precacheProgress;
    const run = cur.state === 'precaching' ? cur.precacheProgress : undefined;
    if (run && (step.to === 'precached' || step.to === 'failed'))
      machine.precacheProgress = finished(run, time, step.to, step.to === 'failed' ? reason : undefined);
    return {
      kind: 'save',
      machine,
      events: [{ type: 'state-changed', source, from: cur.state, to: step.to, ...(reason !== undefined && { message: reason }), data: { cause: t.kind } }],
    };
  }

  private replace(cur: Machine, r: Reservation, time: string): Extract<MachineChange, { kind: 'save' }> & { events: NewEvent[] } {
    const machine: Machine = {
      ...r,
      state: cur.state,
      observed: cur.observed,
      createdAt: cur.createdAt,
      updatedAt: time,
      ...(cur.precachedAt !== undefined && { precachedAt: cur.precachedAt }),
      ...(cur.inventory !== undefined && { inventory: cur.inventory }),
      ...(cur.precacheProgress !== undefined && { precacheProgress: cur.precacheProgress }),
      // A new reservation must not bring back the tokens of an earlier boot.
      ...(cur.tokenGeneration !== undefined && { tokenGeneration: cur.tokenGeneration }),
      // What was seen of the BMC, and the run it drives, hold while the machine keeps a BMC at the same address.
      ...(r.bmc !== undefined && r.bmc.address === cur.bmc?.address && bmcKept(cur)),
    };
    const events: NewEvent[] = [{ type: 'reservation-updated', source: 'api', data: { profile: r.profile ?? null } }];
    if (r.profile === undefined && cur.state !== 'discovered') {
      throw new ConflictError('profile_required', `machine ${cur.mac} is ${cur.state}: it keeps a profile; assign another one, or DELETE the machine`);
    }
    if (r.profile !== undefined && cur.state === 'discovered') {
      const step = applyTransition(cur.state, { kind: 'profile-assigned' });
      if (step.ok) {
        machine.state = step.to;
        events.push({
          type: 'state-changed',
          source: 'api',
          from: cur.state,
          to: step.to,
          message: `profile ${r.profile} assigned`,
          data: { cause: 'profile-assigned' },
        });
      }
    }
    return { kind: 'save', machine, events };
  }

  /** Profile exists, and the machine has every value the profile's templates need. */
  private checkReservation(r: Reservation): void {
    const address = this.dhcp && reservationAddressProblem(r.ip, this.dhcp);
    if (address !== undefined) throw new InvalidError('address_outside_subnets', address, { field: 'ip' });
    if (r.profile === undefined) return;
    const profiles = this.profiles();
    const p = profiles.get(r.profile);
    if (!p) {
      throw new InvalidError('unknown_profile', `no profile named ${r.profile} is loaded`, { profiles: profiles.list().map((x) => x.name) });
    }
    const live = r.precache?.liveProfile;
    if (live !== undefined) {
      const lp = profiles.get(live);
      if (!lp || lp.boot?.kind !== 'kernel') {
        const why = `precache.liveProfile ${live} is not a loaded profile that boots a kernel`;
        throw new InvalidError('unknown_profile', why, { field: 'precache.liveProfile' });
      }
    }
    const stages = p.flow ? [p.flow.precache, p.flow.install].filter((n): n is string => n !== undefined) : [];
    const requires = new Set([...p.requires, ...stages.flatMap((n) => profiles.get(n)?.requires ?? [])]);
    const missing = [...requires].filter((k) => machineValue(r, k) === undefined);
    if (missing.length > 0) {
      throw new InvalidError('missing_field', `profile ${r.profile} needs ${missing.map(fieldOf).join(', ')}`, { missing: missing.map(fieldOf) });
    }
  }

  private async update<R>(mac: Mac, change: (cur: Machine | undefined) => { change: MachineChange; result: R }) {
    try {
      return await this.store.updateMachine(mac, change);
    } catch (err) {
      if (err instanceof StoreConflictError) {
        throw new ConflictError('mac_in_use', err.message, { owner: err.owner, mac: err.conflicting });
      }
      throw err;
    }
  }
}

/** A state move as a store change: the move saved, or nothing to save (already there). */
export type StateChange = Extract<MachineChange, { kind: 'keep' | 'save' }>;

/** An event as the API takes it. */
export interface PostedEvent {
  type: string;
  message?: string;
  data?: Record<string, unknown>;
}

/** Who asked for an admin action, as the timeline records it. */
export interface Actor {
  /** The caller's identity as the server knows it: `admin` for an admin token. */
  actor: string;
  /** The request's source address. */
  client: string;
}

/** A listing cursor: the last primary MAC of a page, opaque to clients (they must not build one). */
export function encodeCursor(mac: Mac): string {
  return Buffer.from(`m1:${mac}`).toString('base64url');
}

export function decodeCursor(cursor: string): Mac | undefined {
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(cursor)) return undefined;
  const text = Buffer.from(cursor, 'base64url').toString('latin1');
  const mac = text.startsWith('m1:') ? parseMac(text.slice(3)) : undefined;
  // Only the exact form encodeCursor makes: no other spelling of the same MAC.
  return mac !== undefined && encodeCursor(mac) === cursor ? mac : undefined;
}

/** The one wording of a MAC no machine has, for every service that looks a machine up. */
export const machineNotFound = (mac: Mac): NotFoundError => new NotFoundError('machine_not_found', `no machine has MAC ${mac}`);

/** A reservation's value for a machine placeholder that depends on the reservation alone. */
export function machineValue(r: Reservation, name: MachinePlaceholder): string | undefined {
  switch (name) {
    case 'machine.hostname':
      return r.hostname;
    case 'machine.ip':
      return r.ip;
    case 'machine.assistedScriptUrl':
      return r.assisted?.ipxeScriptUrl;
    case 'machine.mac':
      return r.mac;
    default:
      return '';
  }
}

function fieldOf(p: MachinePlaceholder): string {
  return p === 'machine.assistedScriptUrl' ? 'assisted.ipxeScriptUrl' : p.replace('machine.', '');
}

function bmcKept(cur: Machine): Pick<Machine, 'bmcStatus' | 'bmcRun'> {
  return { ...(cur.bmcStatus !== undefined && { bmcStatus: cur.bmcStatus }), ...(cur.bmcRun !== undefined && { bmcRun: cur.bmcRun }) };
}
