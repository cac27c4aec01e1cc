import type { FastifyError, FastifyInstance } from 'fastify';
import { DomainError, NotReadyError, type DomainErrorKind } from '../errors.js';

/** An error that crosses the API: a stable code, a sentence for people, the status to send. */
export class ApiError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly statusCode: number,
    readonly details?: unknown,
    /** Response headers that go with it, such as Retry-After on a 503. */
    readonly headers?: Readonly<Record<string, string>>,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** The HTTP status of each kind of domain error: the one place domain refusals meet HTTP. */
const DOMAIN_STATUS: Readonly<Record<DomainErrorKind, number>> = {
  invalid: 400,
  refused: 403,
  'not-found': 404,
  conflict: 409,
  'not-ready': 503,
  upstream: 502,
};

/** A domain error as the API answers it: its code, message and details, the status of its kind. */
export function apiErrorOf(err: DomainError): ApiError {
  const headers = err instanceof NotReadyError ? { 'retry-after': String(err.retryAfterSeconds) } : undefined;
  return new ApiError(err.code, err.message, DOMAIN_STATUS[err.kind], err.details, headers);
}

/** One shape for every error that leaves the API: `{ error, message, details? }`; 5xx text hidden. */
export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((thrown: FastifyError | ApiError | DomainError, req, reply) => {
    const err = thrown instanceof DomainError ? apiErrorOf(thrown) : thrown;
    if (err instanceof ApiError) {
      if (err.statusCode >= 500) req.log.error({ err }, 'request failed');
      if (err.statusCode === 401) void reply.header('www-authenticate', 'Bearer');
      if (err.headers) void reply.headers(err.headers);
      return reply.code(err.statusCode).send({ error: err.code, message: err.message, ...(err.details !== undefined && { details: err.details }) });
    }
    if (err.validation) {
      const where = err.validationContext ?? 'request';
      const details = err.validation.map((v) => ({ path: `${where}${v.instancePath}`, problem: v.message, params: v.params }));
      return reply.code(400).send({ error: 'invalid_request', message: `invalid ${where}: ${err.validation.map(describeProblem(where)).join('; ')}`, details });
    }
    // Fastify's own client errors (a body too large, a media type it cannot parse) carry a 4xx.
    if (err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500) {
      // FastifyError types `code` as always set; an error a plugin or route throws with a statusCode may have none.
      // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition
      return reply.code(err.statusCode).send({ error: (err.code ?? 'bad_request').toLowerCase(), message: err.message });
    }
    // Anything else is a bug. Its message can hold a path, a URL or a secret: the log gets it
    // (redacted, with the stack), the client only the id to find that line by.
    req.log.error({ err, route: req.routeOptions.url, method: req.method }, 'request failed: unexpected error');
    return reply.code(500).send(internalErrorBody(req.id));
  });
  app.setNotFoundHandler((req, reply) => reply.code(404).send({ error: 'not_found', message: `no route for ${req.method} ${req.url.split('?')[0]}` }));
}

/** The whole body of a 500: nothing of the error itself, only the request id its log line carries. */
export function internalErrorBody(requestId: string): { error: 'internal'; message: string; requestId: string } {
  return { error: 'internal', message: 'internal server error', requestId };
}

type Problem = NonNullable<FastifyError['validation']>[number];

const describeProblem =
  (where: string) =>
  (v: Problem): string => {
    const at = v.instancePath || where;
    const extra = (v.params as { additionalProperty?: unknown }).additionalProperty;
    return extra === undefined ? `${at} ${v.message ?? 'is invalid'}` : `${at} has unknown field ${JSON.stringify(extra)}`;
  };
