import { parseRange } from './range.js';

/** What a complete file is known by: its length and validators. */
export interface FileValidators {
  size: number;
  /** A strong entity tag, quotes included (`"sha256:…"`, or `"<mtime>-<size>"` as nginx makes one). */
  etag: string;
  lastModified: Date;
}

/** A file still being written (an artifact downloading into the cache): its length, and no validators yet. */
export interface FileInProgress {
  size: number;
  inProgress: true;
}

export interface RequestConditions {
  method: string;
  range?: string | undefined;
  ifMatch?: string | undefined;
  ifNoneMatch?: string | undefined;
  ifModifiedSince?: string | undefined;
  ifUnmodifiedSince?: string | undefined;
  ifRange?: string | undefined;
}

/** How to answer a GET or HEAD of a file: a status, and for 200/206 the bytes [start, end]. */
export type FileAnswer = { status: 200 | 206; start: number; end: number } | { status: 304 } | { status: 412 } | { status: 416 };

/**
 * The one answer to a GET or HEAD of a file, for every file route. The preconditions of RFC 9110
 * §13.2.2, in its order, then the range (§14.2): If-Match (strong comparison) or else
 * If-Unmodified-Since may fail with 412; If-None-Match (weak) or else If-Modified-Since give
 * 304; a Range is honoured on GET only, and under If-Range only if that names the current
 * entity tag (strong) or its exact Last-Modified date (§13.1.5). A file in progress has no
 * validators to evaluate the preconditions or If-Range against yet: its range alone counts.
 */
export function answerFileRequest(req: RequestConditions, file: FileValidators | FileInProgress): FileAnswer {
  const whole = { status: 200 as const, start: 0, end: file.size - 1 };
  if ('etag' in file) {
    const held = preconditions(req, file);
    if (held) return held;
  }
  if (req.method !== 'GET' || req.range === undefined) return whole;
  if ('etag' in file && req.ifRange !== undefined && !ifRangeHolds(req.ifRange, file.etag, seconds(file.lastModified))) return whole;
  const range = parseRange(req.range, file.size);
  if (range.kind === 'unsatisfiable') return { status: 416 };
  if (range.kind === 'whole') return whole;
  return { status: 206, start: range.start, end: range.end };
}

/** §13.2.2 steps 1 to 4: the 412 or 304 the conditions give, or undefined when they let the request through. */
function preconditions(req: RequestConditions, file: FileValidators): { status: 304 | 412 } | undefined {
  const modified = seconds(file.lastModified);
  if (req.ifMatch !== undefined) {
    if (!tagListMatches(req.ifMatch, file.etag, 'strong')) return { status: 412 };
  } else if (req.ifUnmodifiedSince !== undefined) {
    const since = httpDateSeconds(req.ifUnmodifiedSince);
    if (since !== undefined && modified > since) return { status: 412 };
  }
  if (req.ifNoneMatch !== undefined) {
    if (tagListMatches(req.ifNoneMatch, file.etag, 'weak')) return { status: 304 };
  } else if (req.ifModifiedSince !== undefined) {
    const since = httpDateSeconds(req.ifModifiedSince);
    if (since !== undefined && modified <= since) return { status: 304 };
  }
  return undefined;
}

/** HTTP dates have whole seconds. */
function seconds(date: Date): number {
  return Math.floor(date.getTime() / 1000);
}

function ifRangeHolds(value: string, etag: string, modified: number): boolean {
  const v = value.trim();
  if (v.startsWith('"') || v.startsWith('W/')) return !v.startsWith('W/') && v === etag;
  return httpDateSeconds(v) === modified;
}

/** `*` or a comma-separated list of entity tags (§8.8.3), compared strongly or weakly (§8.8.3.2). */
function tagListMatches(list: string, etag: string, comparison: 'strong' | 'weak'): boolean {
  if (list.trim() === '*') return true;
  const opaque = (tag: string) => (tag.startsWith('W/') ? tag.slice(2) : tag);
  return list.split(',').some((raw) => {
    const tag = raw.trim();
    if (comparison === 'strong') return !tag.startsWith('W/') && tag === etag;
    return opaque(tag) === opaque(etag);
  });
}

function httpDateSeconds(value: string): number | undefined {
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? undefined : Math.floor(ms / 1000);
}

/** nginx's entity tag for a file: its mtime in seconds and its size, in hex. */
export function fileEtag(mtime: Date, size: number): string {
  return `"${seconds(mtime).toString(16)}-${size.toString(16)}"`;
}
