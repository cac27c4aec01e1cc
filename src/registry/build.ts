import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import type { BlobStore } from '../cache/blobs.js';
import type { Config } from '../config/config.js';
import type { Store } from '../store/store.js';
import { credentialsFor, parsePullSecret, type PullSecret } from './auth.js';
import { RegistryClient } from './client.js';
import { RegistryMirror } from './mirror.js';

/**
 * The mirror as `registry.*` configures it: the pull secret read once at start (a broken one
 * stops the start with its path and reason), `insecureRegistries` over plain http, and
 * `upstreams` prefixes standing for a host:port.
 */
export function buildRegistryMirror(config: Config['registry'], deps: { blobs: BlobStore; store: Store; log: Logger }): RegistryMirror {
  let secret: PullSecret = { auths: {} };
  if (config.pullSecret !== '') {
    try {
      secret = parsePullSecret(readFileSync(config.pullSecret, 'utf8'));
    } catch (err) {
      throw new Error(`registry.pullSecret ${config.pullSecret}: ${(err as Error).message}`, { cause: err });
    }
  }
  const client = new RegistryClient({
    insecure: new Set(config.insecureRegistries),
    credentials: (host, repository) => credentialsFor(secret, host, repository),
    log: deps.log,
  });
  return new RegistryMirror({
    client,
    blobs: deps.blobs,
    store: deps.store,
    log: deps.log,
    pullThrough: config.pullThrough,
    upstreamHost: (component) => config.upstreams[component] ?? component,
  });
}
