import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { ArtifactRequest } from '../cache/artifacts.js';
import { sourceKey } from '../cache/source-key.js';
import { redactSecrets } from '../secrets/redact.js';
import type { Store } from '../store/store.js';

/** The store's hub-artifact rows: what the registry reads and writes. */
export type HubArtifactStore = Pick<Store, 'putHubArtifact' | 'getHubArtifact'>;

export interface HubArtifactsOptions {
  store: HubArtifactStore;
  log: Logger;
  now: () => Date;
}

/** How long a hub artifact id outlives the last script that named it. */
const HUB_ARTIFACT_DAYS = 7;

/**
 * The ids a rewritten hub script names in edgeboot's own URLs (`/assets/hub/<id>/<name>`)
 * instead of the hub's upstream URL and its api_key: `register` when the script is served, and
 * `registered` when the machine fetches the artifact through the cache.
 */
export class HubArtifacts {
  /** Upstream URLs (secrets included) of artifacts named by hub scripts, by edgeboot's id. */
  private readonly sources = new Map<string, ArtifactRequest>();

  constructor(private readonly o: HubArtifactsOptions) {}

  /**
   * The id of an upstream URL: the first 16 hex digits of the sha256 of its source key, so the
   * same file under another key gets the same id. Kept in the store too, for HUB_ARTIFACT_DAYS:
   * the RHCOS initramfs fetches its rootfs minutes after the script was served, across a
   * restart of edgeboot perhaps. A failed write is logged; the id still works until the next
   * restart.
   */
  register(req: ArtifactRequest): string {
    const id = createHash('sha256').update(sourceKey(req.url)).digest('hex').slice(0, 16);
    this.sources.set(id, req);
    const now = this.o.now();
    const keepSince = new Date(now.getTime() - HUB_ARTIFACT_DAYS * 86_400_000).toISOString();
    this.o.store.putHubArtifact(id, JSON.stringify(req), now.toISOString(), keepSince).catch((err: unknown) => {
      this.o.log.error({ err, id, url: redactSecrets(req.url) }, 'could not keep a hub artifact id in the store: it is good until edgeboot restarts');
    });
    return id;
  }

  /** The request an id was registered for, from memory or the store; undefined if unknown (or expired). */
  async registered(id: string): Promise<ArtifactRequest | undefined> {
    const known = this.sources.get(id);
    if (known) return known;
    const stored = await this.o.store.getHubArtifact(id);
    const req = stored === undefined ? undefined : parseStoredRequest(stored);
    if (req) this.sources.set(id, req);
    return req;
  }
}

/** A request as `register` stored it (JSON; its `headers` function is not kept), or undefined if the row is not one. */
function parseStoredRequest(text: string): ArtifactRequest | undefined {
  const v: unknown = JSON.parse(text);
  if (!isRecord(v) || typeof v.url !== 'string') return undefined;
  const { url, sha256, size, revalidate, key } = v;
  return {
    url,
    ...(typeof sha256 === 'string' && { sha256 }),
    ...(typeof size === 'number' && { size }),
    ...(typeof revalidate === 'boolean' && { revalidate }),
    ...(typeof key === 'string' && { key }),
  };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
