import { ApiError } from './errors.js';
import { parseUnicastMac, type Mac } from '../machines/mac.js';

/** Request checks several route modules share; each throws the `ApiError` the route answers with. */

/** A MAC of the API: well-formed and a machine's (unicast), else 400 `invalid_mac` saying why. */
export function macOf(s: string): Mac {
  const m = parseUnicastMac(s);
  if (!m.ok) throw new ApiError('invalid_mac', m.reason, 400);
  return m.mac;
}

/**
 * Refuses, before anything starts, a job or bundle that names an image outside
 * `registry.allowedUpstreams`: 403 `upstream_denied`, every such image in `details.images`, so
 * that a typo in a registry or namespace shows at once rather than as failed pulls later.
 */
export function refuseDenied(denied: readonly string[]): void {
  if (denied.length === 0) return;
  const message = `${denied.join(', ')}: not in registry.allowedUpstreams (add the registry or namespace there if it is meant)`;
  throw new ApiError('upstream_denied', message, 403, { images: denied });
}
