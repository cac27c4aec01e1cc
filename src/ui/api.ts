import type { FastifyInstance } from 'fastify';

/**
 * The dashboard acts and reads through the JSON API itself, in process (Fastify's inject), as
 * an admin: the same routes, validation, hooks, redaction and events as any API client gets,
 * so the dashboard can never do what the API would refuse nor say it differently.
 */

export type ApiMethod = 'GET' | 'PUT' | 'PATCH' | 'POST' | 'DELETE';

export interface ApiAnswer {
  status: number;
  body: unknown;
}

export type ApiCall = (method: ApiMethod, url: string, body?: unknown) => Promise<ApiAnswer>;

/** What a refused API call says, for a page: one sentence and, for a field it names, the problem by field. */
export interface ApiRefusal {
  message: string;
  fields: Record<string, string>;
}

interface ErrorBody {
  error?: string;
  message?: string;
  details?: unknown;
}

/**
 * An API error body as a form shows it. Validation details name `body/<field>/…` and checks
 * `details.field` (`bmc.address`): the form's fields carry those dotted names. A refused MAC
 * (`invalid_mac`) belongs to the `mac` field.
 */
export function refusalOf(answer: ApiAnswer): ApiRefusal {
  const body = (answer.body ?? {}) as ErrorBody;
  const message = typeof body.message === 'string' ? body.message : `the API answered ${answer.status}`;
  const fields: Record<string, string> = {};
  const add = (field: string, problem: string): void => {
    if (field && !(field in fields)) fields[field] = problem;
  };
  if (Array.isArray(body.details)) {
    for (const d of body.details as { path?: unknown; problem?: unknown; params?: { missingProperty?: unknown } }[]) {
      if (typeof d.path !== 'string') continue;
      const missing = typeof d.params?.missingProperty === 'string' ? d.params.missingProperty : undefined;
      const path = d.path.replace(/^(body|params|querystring)\/?/, '').replaceAll('/', '.');
      add(missing !== undefined ? [path, missing].filter(Boolean).join('.') : path, typeof d.problem === 'string' ? d.problem : 'is invalid');
    }
  } else if (typeof (body.details as { field?: unknown } | undefined)?.field === 'string') {
    add((body.details as { field: string }).field, message);
  }
  if (body.error === 'invalid_mac') add('mac', message);
  return { message, fields };
}

export const isOk = (a: ApiAnswer): boolean => a.status >= 200 && a.status < 300;

/** The API of `app`, called in process with an admin token: what the dashboard's pages read and do. */
export function injectedApi(app: FastifyInstance, adminToken: string): ApiCall {
  return async (method, url, body) => {
    const headers: Record<string, string> = { authorization: `Bearer ${adminToken}` };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const r = await app.inject({ method, url, headers, ...(body !== undefined && { payload: JSON.stringify(body) }) });
    const type = String(r.headers['content-type'] ?? '');
    return { status: r.statusCode, body: type.startsWith('application/json') ? r.json() : r.body };
  };
}
