import { randomBytes } from 'node:crypto';
import { matchesAny } from '../secrets/compare.js';

/** What a dashboard login may do: an admin acts, a viewer only reads (and never sees a secret). */
export type UiRole = 'admin' | 'viewer';

export interface UiSession {
  id: string;
  role: UiRole;
  expiresAt: number;
}

/** Logins kept at once; past it the one that expires first is dropped (a login storm cannot grow memory). */
const MAX_SESSIONS = 10_000;

/**
 * Dashboard logins: a token is exchanged once for a random session id, which the browser keeps
 * in a signed HttpOnly cookie. Kept in memory: a restart or a logout ends every one of them, and
 * nothing of a session is ever written to disk.
 */
export class UiSessions {
  private readonly sessions = new Map<string, UiSession>();

  constructor(private readonly o: { adminTokens: readonly string[]; viewerTokens: readonly string[]; ttlMs: number; now?: () => number }) {}

  private now(): number {
    return this.o.now?.() ?? Date.now();
  }

  /** The role a presented token logs in as, or undefined. Both lists are compared in full, so the time does not tell which one matched. */
  roleOf(token: string): UiRole | undefined {
    const admin = matchesAny(token, this.o.adminTokens);
    const viewer = matchesAny(token, this.o.viewerTokens);
    return admin ? 'admin' : viewer ? 'viewer' : undefined;
  }

  start(role: UiRole): UiSession {
    this.sweep();
    if (this.sessions.size >= MAX_SESSIONS) {
      const first = this.sessions.keys().next().value;
      if (first !== undefined) this.sessions.delete(first);
    }
    const session = { id: randomBytes(32).toString('base64url'), role, expiresAt: this.now() + this.o.ttlMs };
    this.sessions.set(session.id, session);
    return session;
  }

  get(id: string): UiSession | undefined {
    const s = this.sessions.get(id);
    if (s && s.expiresAt <= this.now()) {
      this.sessions.delete(id);
      return undefined;
    }
    return s;
  }

  end(id: string): void {
    this.sessions.delete(id);
  }

  get size(): number {
    return this.sessions.size;
  }

  /** Drops the expired ones; sessions are kept in start order, which is expiry order. */
  private sweep(): void {
    const now = this.now();
    for (const [id, s] of this.sessions) {
      if (s.expiresAt > now) return;
      this.sessions.delete(id);
    }
  }
}
