import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ApiError } from './errors.js';

/**
 * How deep a JSON request body may nest. Fastify's parser copes with any depth, but the code
 * that walks a body afterwards (the merge patch, serialisers, the redaction of logged values)
 * recurses: a 150,000-level body overflowed the stack. No body of the API needs more than a
 * handful of levels (an inventory's disks are 3).
 */
export const MAX_JSON_DEPTH = 32;

/** True when `value` nests objects or arrays more than `limit` deep (`{}` is 1). Walks without recursion. */
export function jsonDepthExceeds(value: unknown, limit: number): boolean {
  const pending: { value: object; depth: number }[] = value !== null && typeof value === 'object' ? [{ value, depth: 1 }] : [];
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    if (next.depth > limit) return true;
    for (const child of Object.values(next.value)) {
      if (child !== null && typeof child === 'object') pending.push({ value: child as object, depth: next.depth + 1 });
    }
  }
  return false;
}

/**
 * `application/json` and `application/merge-patch+json` bodies: Fastify's own parser (a 400 for
 * broken JSON, `__proto__` and `constructor.prototype` members refused rather than turned into
 * the prototype of a merged document), then the depth cap, also a 400.
 */
export function installJsonBodyParsers(app: FastifyInstance): void {
  const parse = app.getDefaultJsonParser('error', 'error');
  const bounded = (req: FastifyRequest, body: string, done: (err: Error | null, value?: unknown) => void): void => {
    void parse(req, body, (err: Error | null, value?: unknown) => {
      if (err) return done(err);
      if (jsonDepthExceeds(value, MAX_JSON_DEPTH)) {
        return done(new ApiError('invalid_request', `the JSON body nests deeper than ${MAX_JSON_DEPTH} levels of objects and arrays`, 400));
      }
      return done(null, value);
    });
  };
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, bounded);
  app.addContentTypeParser('application/merge-patch+json', { parseAs: 'string' }, bounded);
}
