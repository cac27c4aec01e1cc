/**
 * Redfish sessions (DSP0266 § "Session management"): POST to the Sessions collection with
 * UserName/Password makes one (201, X-Auth-Token, Location), DELETE of its Location ends it.
 * The counter may be shared by many emulators, so a benchmark can see how many sessions a client
 * held open at once across all its BMCs.
 */
import { randomBytes } from 'node:crypto';

export class SessionCounter {
  open = 0;
  maxOpen = 0;
  created = 0;
  deleted = 0;

  opened(): void {
    this.open++;
    this.created++;
    if (this.open > this.maxOpen) this.maxOpen = this.open;
  }

  closed(): void {
    this.open--;
    this.deleted++;
  }
}

export interface Session {
  id: string;
  token: string;
  username: string;
  createdAt: number;
}

export const SESSIONS_PATH = '/redfish/v1/SessionService/Sessions';

/** One emulator's live sessions, counted in a (possibly shared) SessionCounter. */
export class SessionStore {
  private readonly byId = new Map<string, Session>();
  private nextId = 1;

  constructor(readonly counter: SessionCounter) {}

  create(username: string): Session {
    const session: Session = { id: String(this.nextId++), token: randomBytes(16).toString('hex'), username, createdAt: Date.now() };
    this.byId.set(session.id, session);
    this.counter.opened();
    return session;
  }

  byToken(token: string): Session | undefined {
    for (const session of this.byId.values()) if (session.token === token) return session;
    return undefined;
  }

  get(id: string): Session | undefined {
    return this.byId.get(id);
  }

  delete(id: string): boolean {
    if (!this.byId.delete(id)) return false;
    this.counter.closed();
    return true;
  }

  list(): Session[] {
    return [...this.byId.values()];
  }

  /** The emulator stops: its sessions end with it (a BMC reboot forgets them too). */
  clear(): void {
    for (const id of [...this.byId.keys()]) this.delete(id);
  }
}

export function sessionPath(id: string): string {
  return `${SESSIONS_PATH}/${id}`;
}
