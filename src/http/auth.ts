import type { FastifyRequest } from 'fastify';
import { ApiError } from './errors.js';
import { matchesAny } from '../secrets/compare.js';

export function bearerToken(req: FastifyRequest): string | undefined {
  const h = req.headers.authorization;
  if (!h) return undefined;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(h);
  return m?.[1];
}

export function isAdmin(req: FastifyRequest, tokens: readonly string[]): boolean {
  const t = bearerToken(req);
  return t !== undefined && matchesAny(t, tokens);
}

/** An onRequest hook for the admin API. */
export function requireAdmin(tokens: readonly string[]) {
  return async (req: FastifyRequest): Promise<void> => {
    if (!bearerToken(req)) {
      throw new ApiError('unauthorized', 'this endpoint needs an admin token: send Authorization: Bearer <token>', 401);
    }
    if (!isAdmin(req, tokens)) throw new ApiError('unauthorized', 'the token is not an admin token of this server', 401);
  };
}

/**
 * Who is speaking for a machine: an admin, or the machine itself with its events token (the
 * `token` query parameter of its events URL, or a Bearer token). Throws 401 for anyone else.
 */
export function machineCaller(req: FastifyRequest, adminTokens: readonly string[], isMachineToken: (token: string) => boolean): 'api' | 'machine' {
  if (isAdmin(req, adminTokens)) return 'api';
  const query = req.query as { token?: unknown } | undefined;
  const token = typeof query?.token === 'string' ? query.token : bearerToken(req);
  if (token !== undefined && isMachineToken(token)) return 'machine';
  throw new ApiError('unauthorized', "this needs the machine's token (?token= from its events URL) or an admin token", 401);
}
