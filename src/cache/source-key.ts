/**
 * The key under which an upstream artifact is indexed: its URL without the query parameters
 * that carry credentials. The assisted installer signs per-InfraEnv URLs with `api_key` (or
 * `image_token`); the same file fetched with another key is the same file, and a key must
 * never reach the index, a log line or an API answer (research/openshift-precache.md §2).
 */
export const SECRET_PARAMS: readonly string[] = ['api_key', 'image_token', 'token', 'sig', 'signature', 'access_token'];

const isSecret = (name: string): boolean => SECRET_PARAMS.includes(name.toLowerCase()) || /^x-amz-(signature|credential|security-token)$/i.test(name);

/** The URL without secret query parameters; other parameters keep their order. Throws on a bad URL. */
export function sourceKey(url: string): string {
  const u = new URL(url);
  u.hash = '';
  u.username = '';
  u.password = '';
  const kept = [...u.searchParams].filter(([name]) => !isSecret(name));
  u.search = kept.length === 0 ? '' : `?${new URLSearchParams(kept).toString()}`;
  return u.toString();
}
