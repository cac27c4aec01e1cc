import { createHmac, randomBytes } from 'node:crypto';
import type { Mac } from '../machines/mac.js';
import { sameSecret } from '../secrets/compare.js';

/**
 * Per-machine credentials derived from one server secret: a machine's events token and its
 * expiring Ignition signature are good for that machine alone, and need no table. The
 * machine's token generation (`Machine.tokenGeneration`, bumped by each precache or install
 * boot served to it) is mixed in, so the credentials of an earlier boot stop working.
 */
export type TokenPurpose = 'events' | 'ignition';

export interface TokenScope {
  /** The machine's token generation; 0 (or absent) before its first precache or install boot. */
  generation?: number;
  /** Seconds since the epoch: the Ignition URL's `exp`. */
  expiresAt?: number;
}

export const newSecret = (): string => randomBytes(32).toString('base64url');

function mac(secret: string, text: string): string {
  return createHmac('sha256', secret).update(text).digest('base64url').slice(0, 32);
}

export function machineToken(secret: string, m: Mac, purpose: TokenPurpose, scope: TokenScope = {}): string {
  // Generation 0 keeps the input of the tokens issued before generations existed.
  const generation = scope.generation ? `\n${scope.generation}` : '';
  return mac(secret, `${purpose}\n${m}\n${scope.expiresAt ?? ''}${generation}`);
}

export function checkMachineToken(secret: string, m: Mac, purpose: TokenPurpose, token: string, scope: TokenScope = {}): boolean {
  return sameSecret(token, machineToken(secret, m, purpose, scope));
}
