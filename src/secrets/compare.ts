import { timingSafeEqual } from 'node:crypto';

/**
 * Comparing a presented secret with a known one. `timingSafeEqual` takes as long whatever the
 * first differing byte, so the time of a refusal does not tell a caller how much of a guess
 * was right; only the length may differ early, and a length is no secret.
 */
export function sameSecret(presented: string, known: string): boolean {
  const got = Buffer.from(presented);
  const want = Buffer.from(known);
  return got.length === want.length && timingSafeEqual(got, want);
}

/** Whether a presented bearer token is one of the configured ones; every one is compared, so the time does not say which matched. */
export function matchesAny(token: string, tokens: readonly string[]): boolean {
  let found = false;
  for (const t of tokens) {
    if (sameSecret(token, t)) found = true;
  }
  return found;
}
