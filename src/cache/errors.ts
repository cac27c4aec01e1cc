/** The upstream failed: unreachable, an error status, a timeout, or a body cut short too often. */
export class UpstreamError extends Error {
  constructor(
    /** The URL with its secrets cut. */
    readonly upstream: string,
    readonly reason: string,
    readonly timeout: boolean,
    readonly status?: number,
  ) {
    super(`${upstream}: ${reason}`);
    this.name = 'UpstreamError';
  }
}

/** The bytes are not the ones the profile or request named. Nothing was stored. */
export class IntegrityError extends Error {
  constructor(
    readonly upstream: string,
    message: string,
  ) {
    super(`${upstream}: ${message}; nothing was stored`);
    this.name = 'IntegrityError';
  }
}

/** The cache's disk is full. Nothing partial was kept. */
export class CacheFullError extends Error {
  constructor(
    readonly upstream: string,
    dir: string,
    detail?: string,
  ) {
    super(
      `the cache disk (${dir}) is full while storing ${upstream}${detail ? ` (${detail})` : ''}; nothing partial was kept: free space or lower cache.maxBytes`,
    );
    this.name = 'CacheFullError';
  }
}

/** A download stopped on purpose (the cache closing at shutdown). Nothing partial was kept. */
export class DownloadCancelledError extends Error {
  constructor(
    readonly upstream: string,
    reason: string,
  ) {
    super(`${upstream}: ${reason}; nothing partial was kept`);
    this.name = 'DownloadCancelledError';
  }
}

/** What a rejection or an abort carried, as an Error (a signal's reason, a thrown value). */
export function asError(reason: unknown): Error {
  return reason instanceof Error ? reason : new Error(String(reason));
}
