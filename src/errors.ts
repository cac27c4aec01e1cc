/**
 * What domain code (boot/, machines/, precache/) throws when it refuses a request: a stable
 * code, a sentence for people, and details, with no transport in them. The HTTP layer alone
 * gives each kind its status (src/http/errors.ts).
 */
export type DomainErrorKind = 'invalid' | 'not-found' | 'conflict' | 'refused' | 'not-ready' | 'upstream';

export abstract class DomainError extends Error {
  abstract readonly kind: DomainErrorKind;

  constructor(
    /** Stable, for programs: `machine_not_found`, `invalid_transition`… */
    readonly code: string,
    message: string,
    readonly details?: Readonly<Record<string, unknown>>,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** The request itself is wrong: a field, a cursor, a name that does not exist. */
export class InvalidError extends DomainError {
  readonly kind = 'invalid';
}

/** The thing the request names does not exist. */
export class NotFoundError extends DomainError {
  readonly kind = 'not-found';
}

/** The request does not fit the current state: a state move the machine refuses, a MAC in use. */
export class ConflictError extends DomainError {
  readonly kind = 'conflict';
}

/** Not for this caller: a bad or expired signature, an address that is not the machine's. */
export class RefusedError extends DomainError {
  readonly kind = 'refused';
}

/** Not yet: what the request needs is still being made; ask again after `retryAfterSeconds`. */
export class NotReadyError extends DomainError {
  readonly kind = 'not-ready';

  constructor(
    code: string,
    message: string,
    details: Readonly<Record<string, unknown>> | undefined,
    readonly retryAfterSeconds: number,
  ) {
    super(code, message, details);
  }
}

/** A device edgeboot drives for the request failed it: a machine's BMC unreachable, or refusing (code bmc_unreachable, bmc_error). */
export class BmcFailedError extends DomainError {
  readonly kind = 'upstream';
}
