/**
 * Which upstream registries the mirror may reach (`registry.allowedUpstreams`), so that `/v2/`
 * is not an open proxy: a rule is a host (`quay.io`, `registry.lab:5000`) or a host and a
 * namespace prefix (`quay.io/openshift-release-dev`). A name is allowed when its host equals a
 * rule's host (case-insensitive; a port only matches the same port, no port only no port) and
 * the rule's path is a prefix of its repository *by path segment*: `quay.io/openshift` allows
 * `quay.io/openshift/origin-cli`, never `quay.io/openshift-evil/x`. Names that are not plain
 * distribution names (`..`, `%2e`, empty segments, upper case) are never allowed. Pure: no I/O.
 * The default list, and why, is in config/schema.ts.
 */
import { isRepositoryName } from './reference.js';

export interface AllowRule {
  /** Lower case, with `:port` when the rule names one (leading zeros dropped). */
  host: string;
  /** Namespace segments the repository must start with; empty: the whole host. */
  path: readonly string[];
}

const LABEL = '[a-z0-9](?:[a-z0-9-]*[a-z0-9])?';
const HOST = new RegExp(`^(${LABEL}(?:\\.${LABEL})*|\\[[0-9a-f:.]+\\])(?::([0-9]{1,5}))?$`);

/** `host[:port]` lower-cased with a canonical port, or undefined when it is not a plain host. */
export function normaliseHost(text: string): string | undefined {
  const m = HOST.exec(text.toLowerCase());
  if (!m) return undefined;
  if (m[2] === undefined) return m[1];
  const port = Number(m[2]);
  return port >= 1 && port <= 65535 ? `${m[1]}:${port}` : undefined;
}

/** `host[:port][/namespace…]` (a trailing `/` allowed), or why not. */
export function parseAllowRule(text: string): AllowRule | { error: string } {
  const trimmed = text.trim().replace(/\/+$/, '');
  const slash = trimmed.indexOf('/');
  const hostText = slash < 0 ? trimmed : trimmed.slice(0, slash);
  const host = normaliseHost(hostText);
  if (host === undefined) return { error: `${JSON.stringify(text)}: ${JSON.stringify(hostText)} is not a registry host[:port]` };
  if (slash < 0) return { host, path: [] };
  const namespace = trimmed.slice(slash + 1);
  if (!isRepositoryName(namespace))
    return { error: `${JSON.stringify(text)}: ${JSON.stringify(namespace)} is not a repository namespace (lower-case name segments separated by /)` };
  return { host, path: namespace.split('/') };
}

/** Every rule parsed; the first bad one throws, naming where it came from. */
export function parseAllowRules(entries: readonly { text: string; from: string }[]): AllowRule[] {
  return entries.map(({ text, from }) => {
    const r = parseAllowRule(text);
    if ('error' in r) throw new Error(`${from}: ${r.error}`);
    return r;
  });
}

/** Whether `host/repository` may be asked of the upstream under these rules. */
export function upstreamAllowed(rules: readonly AllowRule[], host: string, repository: string): boolean {
  const h = normaliseHost(host);
  if (h === undefined || !isRepositoryName(repository)) return false;
  const segments = repository.split('/');
  return rules.some((r) => r.host === h && r.path.length <= segments.length && r.path.every((s, i) => segments[i] === s));
}

/** A name the allow-list refuses: the distribution API's DENIED (403), with no upstream contacted. */
export class UpstreamDeniedError extends Error {
  constructor(
    /** `host/repository` as refused. */
    readonly image: string,
  ) {
    super(`${image} is not in registry.allowedUpstreams: this mirror only reaches the upstreams it is configured for`);
    this.name = 'UpstreamDeniedError';
  }
}
