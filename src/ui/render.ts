import type { FastifyReply, FastifyRequest } from 'fastify';
import { refusalOf, type ApiAnswer } from './api.js';
import { formatters } from './format.js';

/** Renders a dashboard template with what every page needs: who is logged in, a CSRF token for its forms, the formatters. */
export async function page(
  req: FastifyRequest,
  reply: FastifyReply,
  view: string,
  data: Record<string, unknown> & { title: string; nav?: string },
): Promise<FastifyReply> {
  const role = req.uiSession?.role ?? 'viewer';
  return reply.view(view, { nav: undefined, ...data, role, admin: role === 'admin', csrf: reply.generateCsrf(), f: formatters, now: new Date() });
}

/** `?fragment=<name>`: an htmx request for one part of a page, rendered alone. */
export function fragmentOf(req: FastifyRequest): string | undefined {
  const f = (req.query as { fragment?: unknown }).fragment;
  return typeof f === 'string' ? f : undefined;
}

/** The page of an API refusal: its message, its status (a server error of the API is a 502 here), a way back. */
export async function refusedPage(req: FastifyRequest, reply: FastifyReply, answer: ApiAnswer, back: string): Promise<FastifyReply> {
  const status = answer.status >= 500 ? 502 : answer.status;
  return page(req, reply.code(status), 'error', { title: 'Refused', status, message: refusalOf(answer).message, back });
}
