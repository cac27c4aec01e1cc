import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import type { BlobStore } from '../cache/blobs.js';
import type { Config } from '../config/config.js';
import type { Store } from '../store/store.js';
import { credentialsFor, parsePullSecret, type PullSecret } from './auth.js';
import { parseAllowRules, upstreamAllowed } from './allow.js';
import { RegistryClient } from './client.js';
import { RegistryMirror } from './mirror.js';
import { parseImageRef } from './reference.js';

export interface Mirrors {
  /** The mirror /v2/ serves, with `registry.pullSecret`. */
  mirror: RegistryMirror;
  /** A mirror over the same store whose upstream credentials come from `secret` first (an image job's own pull secret). */
  withSecret(secret: PullSecret): RegistryMirror;
  /** The image references (`host/repository:tag`) among `refs` that the allow-list refuses; unparsable ones are left to the caller. */
  denied(refs: readonly string[]): string[];
}

/**
 * The mirror as `registry.*` configures it: the pull secret read once at start (a broken one
 * stops the start with its path and reason), `insecureRegistries` over plain http,
 * `upstreams` prefixes standing for a host:port, and the allow-list: `allowedUpstreams` plus
 * every host `upstreams` and `insecureRegistries` name.
 */
export function buildRegistryMirrors(config: Config['registry'], deps: { blobs: BlobStore; store: Store; log: Logger }): Mirrors {
  let secret: PullSecret = { auths: {} };
  if (config.pullSecret !== '') {
    try {
      secret = parsePullSecret(readFileSync(config.pullSecret, 'utf8'));
    } catch (err) {
      throw new Error(`registry.pullSecret ${config.pullSecret}: ${(err as Error).message}`, { cause: err });
    }
  }
  const rules = parseAllowRules([
    ...config.allowedUpstreams.map((text) => ({ text, from: 'registry.allowedUpstreams' })),
    ...Object.values(config.upstreams).map((text) => ({ text, from: 'registry.upstreams' })),
    ...config.insecureRegistries.map((text) => ({ text, from: 'registry.insecureRegistries' })),
  ]);
  const upstreamHost = (component: string) => (Object.hasOwn(config.upstreams, component) ? (config.upstreams[component] as string) : component);
  const allowed = (host: string, repository: string) => upstreamAllowed(rules, host, repository);
  const make = (first: PullSecret | undefined) =>
    new RegistryMirror({
      client: new RegistryClient({
        insecure: new Set(config.insecureRegistries),
        credentials: (host, repository) => (first && credentialsFor(first, host, repository)) ?? credentialsFor(secret, host, repository),
        log: deps.log,
      }),
      blobs: deps.blobs,
      store: deps.store,
      log: deps.log,
      pullThrough: config.pullThrough,
      upstreamHost,
      allowed,
    });
  const denied = (refs: readonly string[]) =>
    refs.filter((text) => {
      const r = parseImageRef(text);
      return !('error' in r) && !allowed(upstreamHost(r.host), r.repository);
    });
  return { mirror: make(undefined), withSecret: (s) => make(s), denied };
}
