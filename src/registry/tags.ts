/**
 * Tag lists of the distribution API (distribution-spec "Listing Tags", end-8a/end-8b):
 * `GET /v2/<name>/tags/list?n=<int>&last=<tag>` answers `{name, tags}` in lexical order, at most
 * `n` tags, only those lexically after `last`, and a `Link: <…?n=…&last=…>; rel="next"` header
 * (RFC 8288) when more follow. Pure: paging a stored list, and reading an upstream's Link.
 */
import { parseReference } from './reference.js';

export interface TagPage {
  tags: string[];
  /** The `last` of the next page, when the page was cut at `n`. */
  next?: string;
}

/** Sorted (lexically, by code unit, as distribution does), duplicates and non-tags dropped. */
export function sortTags(tags: readonly string[]): string[] {
  return [...new Set(tags.filter((t) => parseReference(t)?.kind === 'tag'))].sort();
}

/** One page of a sorted list: the tags after `last`, at most `n` (all of them with no `n`). */
export function pageTags(sorted: readonly string[], n: number | undefined, last: string | undefined): TagPage {
  const after = last === undefined ? sorted : sorted.filter((t) => t > last);
  if (n === undefined || after.length <= n) return { tags: [...after] };
  const tags = after.slice(0, n);
  const tail = tags[tags.length - 1];
  // n=0 gives an empty page; a next link from it would not move on.
  return tail === undefined ? { tags } : { tags, next: tail };
}

/** The `Link` header pointing at the next page of `/v2/<name>/tags/list`. */
export function nextPageLink(name: string, n: number, last: string): string {
  return `</v2/${name}/tags/list?${new URLSearchParams({ n: String(n), last }).toString()}>; rel="next"`;
}

/** A query value as the client sent it: Fastify gives a string, or an array of them for a repeated key. */
const queryText = (v: unknown): string => (Array.isArray(v) ? v.map(queryText).join(',') : typeof v === 'string' ? v : JSON.stringify(v));

/** `n` and `last` of a tags/list query, or why not (distribution's PAGINATION_NUMBER_INVALID). */
export function parseTagQuery(query: { n?: unknown; last?: unknown }): { n?: number; last?: string } | { error: string } {
  const out: { n?: number; last?: string } = {};
  if (query.n !== undefined) {
    if (typeof query.n !== 'string' || !/^[0-9]{1,9}$/.test(query.n)) return { error: `n=${queryText(query.n)}: expected one whole number of tags` };
    out.n = Number(query.n);
  }
  if (query.last !== undefined) {
    if (typeof query.last !== 'string') return { error: 'last: expected one tag' };
    out.last = query.last;
  }
  return out;
}

/**
 * The path and query of the next page an upstream's `Link` header names, when it is a
 * `rel="next"` link to the same repository's tags/list on the same origin; anything else
 * (another host, another path) is not followed, so an upstream cannot send edgeboot elsewhere.
 */
export function upstreamNextPage(header: string | string[] | undefined, origin: string, repository: string): string | undefined {
  const text = Array.isArray(header) ? header.join(', ') : (header ?? '');
  for (const m of text.matchAll(/<([^>]*)>\s*((?:;\s*[^;,]*)*)/g)) {
    if (!/;\s*rel\s*=\s*"?next"?/i.test(m[2] ?? '')) continue;
    if (!URL.canParse(m[1] ?? '', origin)) return undefined;
    const url = new URL(m[1] ?? '', origin);
    if (url.origin !== origin || url.pathname !== `/v2/${repository}/tags/list`) return undefined;
    return `${url.pathname}${url.search}`;
  }
  return undefined;
}
