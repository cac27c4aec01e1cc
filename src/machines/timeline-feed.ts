/**
 * Every change the store commits to a machine or its timeline, told to whoever listens (the
 * dashboard's `/ui/events` stream). It is fed by the store itself (`feedingStore`), so it sees
 * exactly the events the timeline records, from every source, after they are committed.
 */
import type { MachineChange, Store } from '../store/store.js';
import type { Mac } from './mac.js';
import type { MachineEvent } from './model.js';
import type { MachineState } from './state.js';

/** One committed change: the machine's events (possibly none) and its state after, if it still exists. */
export interface TimelineChange {
  mac: Mac;
  events: readonly MachineEvent[];
  /** Absent when the change deleted the machine or only appended events. */
  state?: MachineState;
  /** The change deleted the machine. */
  deleted?: boolean;
}

export type TimelineListener = (change: TimelineChange) => void;

export class TimelineFeed {
  private readonly listeners = new Set<TimelineListener>();

  /** Calls `listener` for every change from now on; the function it returns stops that. */
  subscribe(listener: TimelineListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  get listenerCount(): number {
    return this.listeners.size;
  }

  publish(change: TimelineChange): void {
    for (const listener of this.listeners) listener(change);
  }
}

/**
 * The store, with every committed machine change and appended event published on `feed`. A
 * listener that throws is its own bug: it must not undo a write that is already committed, so
 * publishing happens after the store answered and a throw is reported to `onListenerError`.
 */
export function feedingStore(store: Store, feed: TimelineFeed, onListenerError: (err: unknown) => void): Store {
  const publish = (change: TimelineChange): void => {
    try {
      feed.publish(change);
    } catch (err) {
      onListenerError(err);
    }
  };
  const wrapped: Partial<Store> = {
    async appendEvents(mac, events) {
      const appended = await store.appendEvents(mac, events);
      const first = appended[0];
      if (first) publish({ mac: first.mac, events: appended });
      return appended;
    },
    async mutateMachine(mac, change) {
      // The callback may run again on a fresh row: the kind of its last run is what committed.
      const committed = { kind: 'keep' as MachineChange['kind'] };
      const result = await store.mutateMachine(mac, (cur) => {
        const c = change(cur);
        committed.kind = c.kind;
        return c;
      });
      if (committed.kind !== 'keep' || result.events.length > 0) publish(changeOf(mac, result));
      return result;
    },
    async updateMachine(mac, change) {
      const committed = { kind: 'keep' as MachineChange['kind'] };
      const result = await store.updateMachine(mac, (cur) => {
        const r = change(cur);
        committed.kind = r.change.kind;
        return r;
      });
      if (committed.kind !== 'keep' || result.events.length > 0) publish(changeOf(mac, result));
      return result;
    },
    async saveMachine(machine, expected) {
      const version = await store.saveMachine(machine, expected);
      publish({ mac: machine.mac, events: [], state: machine.state });
      return version;
    },
  };
  return new Proxy(store, {
    get(target, name, receiver) {
      const own = typeof name === 'string' ? (wrapped as Record<string, unknown>)[name] : undefined;
      if (own !== undefined) return own;
      const value: unknown = Reflect.get(target, name, receiver);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

function changeOf(mac: Mac, result: { machine: { mac: Mac; state: MachineState } | undefined; events: readonly MachineEvent[] }): TimelineChange {
  if (!result.machine) return { mac, events: result.events, deleted: true };
  return { mac: result.machine.mac, events: result.events, state: result.machine.state };
}
