import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Mac } from '../machines/mac.js';

/**
 * Per-machine credentials derived from one server secret: a machine's events token and its
 * expiring Ignition signature are good for that machine alone, and need no table.
 */
export type TokenPurpose = 'events' | 'ignition';

export const newSecret = (): string => randomBytes(32).toString('base64url');

function mac(secret: string, text: string): string {
  return createHmac('sha256', secret).update(text).digest('base64url').slice(0, 32);
}

export function machineToken(secret: string, m: Mac, purpose: TokenPurpose, expiresAt?: number): string {
  return mac(secret, `${purpose}\n${m}\n${expiresAt ?? ''}`);
}

export function checkMachineToken(secret: string, m: Mac, purpose: TokenPurpose, token: string, expiresAt?: number): boolean {
  const want = Buffer.from(machineToken(secret, m, purpose, expiresAt));
  const got = Buffer.from(token);
  return got.length === want.length && timingSafeEqual(got, want);
}

/** Constant-time comparison of a presented bearer token with each configured one. */
export function matchesAny(token: string, tokens: readonly string[]): boolean {
  const got = Buffer.from(token);
  let found = false;
  for (const t of tokens) {
    const want = Buffer.from(t);
    if (want.length === got.length && timingSafeEqual(want, got)) found = true;
  }
  return found;
}
