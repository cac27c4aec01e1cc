import { request, type Dispatcher } from 'undici';
import { readUpTo, upstreamDispatcher } from '../net/upstream-agent.js';
import { redactSecrets } from '../secrets/redact.js';
import { parseAssistedScript, redirectUrl, type AssistedBoot } from './assisted.js';

/** What the hub said about one machine. */
export type HubAnswer = { kind: 'boot'; script: AssistedBoot } | { kind: 'installed' } | { kind: 'error'; reason: string };

const MAX_REDIRECTS = 3;
const MAX_SCRIPT_BYTES = 64 * 1024;
/** Redirects stay unfollowed, as with the global dispatcher before: the hub's script is asked for as is. */
const hubDispatcher = upstreamDispatcher({ maxRedirections: 0 });

/**
 * Fetches a machine's assisted iPXE script server-side: follows the boot-order-control
 * redirect with the machine's MAC, and reads a 404 as the hub's word that the host is
 * installed. Errors name the hub with its secrets cut, never the api_key.
 */
export async function fetchHubScript(url: string, mac: string, opts: { dispatcher?: Dispatcher; timeoutMs?: number } = {}): Promise<HubAnswer> {
  let next = url;
  for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
    const shown = redactSecrets(next);
    let status: number;
    let text: string;
    try {
      const res = await request(next, {
        method: 'GET',
        headersTimeout: opts.timeoutMs ?? 10_000,
        bodyTimeout: opts.timeoutMs ?? 10_000,
        dispatcher: opts.dispatcher ?? hubDispatcher,
      });
      status = res.statusCode;
      if (status !== 200) {
        await res.body.dump();
        if (status === 404) return { kind: 'installed' };
        return { kind: 'error', reason: `the hub answered HTTP ${status} for ${shown}` };
      }
      const body = await readUpTo(res.body, MAX_SCRIPT_BYTES);
      if (body === undefined) return { kind: 'error', reason: `the hub's script at ${shown} is over ${MAX_SCRIPT_BYTES} bytes` };
      text = body.toString('utf8');
    } catch (err) {
      const e = err as { code?: string; message?: string };
      return { kind: 'error', reason: `the hub at ${shown} cannot be reached: ${e.code ? `${e.code}: ` : ''}${redactSecrets(e.message ?? String(err))}` };
    }
    const parsed = parseAssistedScript(text);
    if (parsed.kind === 'boot') return { kind: 'boot', script: parsed };
    if (parsed.kind === 'unsupported') return { kind: 'error', reason: `the hub's script at ${shown} cannot be rewritten: ${parsed.reason}` };
    next = redirectUrl(parsed.url, mac);
  }
  return { kind: 'error', reason: `the hub redirected more than ${MAX_REDIRECTS} times` };
}
