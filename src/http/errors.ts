import type { FastifyError, FastifyInstance } from 'fastify';
import { ApiError } from '../errors.js';

/** One shape for every error that leaves the API: `{ error, message, details? }`; 5xx text hidden. */
export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError | ApiError, req, reply) => {
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
    const status = err.statusCode && err.statusCode >= 400 ? err.statusCode : 500;
    if (status >= 500) {
      req.log.error({ err }, 'request failed');
      return reply.code(status).send({ error: 'internal_error', message: 'the server failed to handle this request; see its log' });
    }
    return reply.code(status).send({ error: (err.code ?? 'bad_request').toLowerCase(), message: err.message });
  });
  app.setNotFoundHandler((req, reply) =>
    reply.code(404).send({ error: 'not_found', message: `no route for ${req.method} ${req.url.split('?')[0]}` }),
  );
}

type Problem = NonNullable<FastifyError['validation']>[number];

const describeProblem = (where: string) => (v: Problem): string => {
  const at = v.instancePath || where;
  const extra = (v.params as { additionalProperty?: unknown }).additionalProperty;
  return extra === undefined ? `${at} ${v.message ?? 'is invalid'}` : `${at} has unknown field ${JSON.stringify(extra)}`;
};
