/**
 * Registry authentication, the pure parts: the challenges of a 401 (RFC 9110 §11.6.1, with
 * the distribution token spec's `Bearer realm,service,scope`) and the credentials of a pull
 * secret (`{"auths": {"<host>[/<namespace>…]": {"auth": base64(user:password)}}}`, as in
 * `.dockerconfigjson` and containers-auth.json).
 */

export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

export interface Credentials {
  username: string;
  password: string;
}

/**
 * Every challenge in a WWW-Authenticate value, schemes lower-cased. Quay has been seen to send
 * `Basic realm="…", Bearer realm="…",service="…"` in one header.
 */
export function parseChallenges(header: string): Challenge[] {
  const challenges: Challenge[] = [];
  const param = /([A-Za-z][A-Za-z0-9_.-]*)\s*=\s*("(?:[^"\\]|\\.)*"|[^,\s]*)/y;
  const scheme = /([A-Za-z][A-Za-z0-9_.-]*)/y;
  let pos = 0;
  while (pos < header.length) {
    while (pos < header.length && /[\s,]/.test(header[pos] as string)) pos++;
    if (pos >= header.length) break;
    param.lastIndex = pos;
    const p = param.exec(header);
    const current = challenges.at(-1);
    if (p && current) {
      current.params[(p[1] as string).toLowerCase()] = unquote(p[2] as string);
      pos = param.lastIndex;
      continue;
    }
    scheme.lastIndex = pos;
    const w = scheme.exec(header);
    if (!w) break; // not a challenge list past this point
    challenges.push({ scheme: (w[1] as string).toLowerCase(), params: {} });
    pos = scheme.lastIndex;
  }
  return challenges;
}

function unquote(v: string): string {
  return v.startsWith('"') && v.endsWith('"') && v.length >= 2 ? v.slice(1, -1).replace(/\\(.)/g, '$1') : v;
}

export interface PullSecret {
  auths: Record<string, { auth?: string; username?: string; password?: string }>;
}

/** Parses a pull secret's JSON, or says what is wrong with it. */
export function parsePullSecret(text: string): PullSecret {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new Error(`the pull secret is not JSON: ${(err as Error).message}`, { cause: err });
  }
  const auths = (doc as { auths?: unknown } | null)?.auths;
  if (typeof auths !== 'object' || auths === null || Array.isArray(auths)) throw new Error('the pull secret has no "auths" object');
  return { auths: auths as PullSecret['auths'] };
}

/**
 * The credentials for `host/repository`: the most specific key that is the host or a prefix of
 * `host/repository` at a component boundary wins (containers-auth.json's rule). A scheme
 * (`https://`) and a trailing slash in a key are ignored, as Docker's older files have them.
 */
export function credentialsFor(secret: PullSecret, host: string, repository: string): Credentials | undefined {
  const target = `${host}/${repository}`;
  let best: { length: number; creds: Credentials } | undefined;
  for (const [rawKey, entry] of Object.entries(secret.auths)) {
    const key = rawKey
      .replace(/^https?:\/\//, '')
      .replace(/\/+$/, '')
      .replace(/\/v[12]$/, '');
    if (key !== host && !target.startsWith(`${key}/`)) continue;
    const creds = entryCredentials(entry);
    if (creds && (!best || key.length > best.length)) best = { length: key.length, creds };
  }
  return best?.creds;
}

function entryCredentials(entry: { auth?: string; username?: string; password?: string }): Credentials | undefined {
  if (typeof entry.auth === 'string' && entry.auth !== '') {
    const plain = Buffer.from(entry.auth, 'base64').toString('utf8');
    const colon = plain.indexOf(':');
    if (colon > 0) return { username: plain.slice(0, colon), password: plain.slice(colon + 1) };
  }
  if (typeof entry.username === 'string' && typeof entry.password === 'string') return { username: entry.username, password: entry.password };
  return undefined;
}
