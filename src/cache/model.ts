import type { CacheEntry } from '../store/store.js';
import type { Hex } from './blobs.js';
import { sourceKey } from './source-key.js';

/** What a profile (or an operator) asks the cache for. */
export interface ArtifactRequest {
  url: string;
  sha256?: Hex;
  size?: number;
  /**
   * Ask the upstream (HEAD) whether a cached copy is still current before serving it: for
   * artifacts that may change under the same URL, such as an InfraEnv's pxe-initrd. An
   * unreachable upstream keeps the cached copy serving.
   */
  revalidate?: boolean;
  /**
   * The index key, when it is not the URL's source key: a registry blob is one entry per
   * digest (`oci-blob:sha256:<hex>`), whichever repository and URL it is fetched through.
   */
  key?: string;
  /** Request headers for each attempt, such as a registry's bearer token (never stored or logged). */
  headers?: () => Promise<Record<string, string>>;
}

/** The index key of a request. */
export function requestKey(req: ArtifactRequest): string {
  return req.key ?? sourceKey(req.url);
}

/** Where a complete artifact is. */
export interface Cached {
  entry: CacheEntry;
  path: string;
  /** false: it was already cached. */
  fetched: boolean;
}

/** Counters for /metrics, read at scrape time. */
export interface CacheStats {
  hits: number;
  misses: number;
  /** Body bytes received from upstreams (resumes included). */
  upstreamBytes: number;
  /** Body bytes sent to clients from the cache (counted by the route). */
  servedBytes: number;
  evictions: number;
  downloads: number;
  /** Large transfers refused with 503 (cache.maxTransfers), and those running now. */
  busy: number;
  activeTransfers: number;
  /**
   * Downloads cut because the disk fell too far behind an upstream that closes its connection
   * (see UpstreamOutpacedError), then resumed with Range.
   */
  outpacedResumes: number;
}

export function emptyStats(): CacheStats {
  return { hits: 0, misses: 0, upstreamBytes: 0, servedBytes: 0, evictions: 0, downloads: 0, busy: 0, activeTransfers: 0, outpacedResumes: 0 };
}
