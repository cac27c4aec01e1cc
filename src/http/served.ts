import type { FastifyReply, FastifyRequest } from 'fastify';
import { clientAddress } from './artifact-responder.js';

/** One artifact response, as the timeline records it. */
export interface AssetServed {
  profile: string;
  artifact: string;
  method: string;
  status: number;
  /** Body bytes the response announced (the range's length for a 206); 0 for HEAD. */
  bytes: number;
  /** The Range header the client sent, if any. */
  range?: string;
  client: string;
  durationMs: number;
}

/** An onResponse hook that reports each response of a file route as `AssetServed`. */
export function servedHook(onServed: (served: AssetServed) => void, what: (req: FastifyRequest) => { profile: string; artifact: string } | undefined) {
  return async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const file = what(req);
    if (!file) return;
    const range = req.headers.range;
    onServed({
      ...file,
      method: req.method,
      status: reply.statusCode,
      bytes: req.method === 'HEAD' ? 0 : Number(reply.getHeader('content-length') ?? 0),
      ...(range !== undefined && { range }),
      client: clientAddress(req),
      durationMs: Math.round(reply.elapsedTime),
    });
  };
}
