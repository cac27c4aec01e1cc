import { isSecretParam } from '../secrets/redact.js';

/**
 * The key under which an upstream artifact is indexed: its URL without the query parameters
 * that carry credentials. The assisted installer signs per-InfraEnv URLs with `api_key` (or
 * `image_token`); the same file fetched with another key is the same file, and a key must
 * never reach the index, a log line or an API answer (research/openshift-precache.md §2). The
 * names are the one list of src/secrets/redact.ts. Other parameters keep their order. Throws
 * on a bad URL.
 */
export function sourceKey(url: string): string {
  const u = new URL(url);
  u.hash = '';
  u.username = '';
  u.password = '';
  const kept = [...u.searchParams].filter(([name]) => !isSecretParam(name));
  u.search = kept.length === 0 ? '' : `?${new URLSearchParams(kept).toString()}`;
  return u.toString();
}
