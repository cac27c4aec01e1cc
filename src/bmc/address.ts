/**
 * A BMC's address as the operator writes it: `redfish://host[:port]` (HTTPS), `redfish+http://host:port`
 * (plain HTTP, for labs and tests), or a vendor alias such as `idrac-redfish://host` that also picks the
 * vendor profile (vendors.ts). The names follow Ironic's redfish driver (`redfish+http`, `idrac-redfish`,
 * `ilo5-redfish`…). Pure: the API checks input with it and the client connects with its `url`.
 */

export type ParsedBmcAddress = { ok: true; url: string; vendor?: string; systemPath?: string } | { ok: false; reason: string };

/** Each scheme's base name → the vendor profile it picks (undefined: detect it from the BMC). */
const BASE_SCHEMES: Record<string, string | undefined> = {
  redfish: undefined,
  'idrac-redfish': 'dell',
  'ilo5-redfish': 'hpe',
  'ilo6-redfish': 'hpe',
  'supermicro-redfish': 'supermicro',
  'ami-redfish': 'ami',
  'xclarity-redfish': 'lenovo',
};

/** Every accepted scheme: the base name is HTTPS, `+https` too, `+http` is plain HTTP. */
const SCHEMES = new Map<string, { protocol: 'https' | 'http'; vendor?: string }>(
  Object.entries(BASE_SCHEMES).flatMap(([base, vendor]) => [
    [base, { protocol: 'https', vendor }],
    [`${base}+https`, { protocol: 'https', vendor }],
    [`${base}+http`, { protocol: 'http', vendor }],
  ]),
);

/** A Redfish ComputerSystem's path (DSP0266: /redfish/v1/Systems/{id}); the id may be percent-encoded. */
const SYSTEM_PATH = /^\/redfish\/v1\/Systems\/[^/]+$/;
/** Paths that name the service itself rather than one system: the client finds the system then. */
const ROOT_PATHS = new Set(['', '/', '/redfish', '/redfish/v1']);

const refuse = (reason: string): ParsedBmcAddress => ({ ok: false, reason });

export function parseBmcAddress(text: string): ParsedBmcAddress {
  if (text === '') return refuse('the BMC address is empty: write redfish://host[:port] or redfish+http://host:port');
  if (/\s/.test(text)) return refuse(`the BMC address "${text.trim()}" has white space in it`);
  const schemeMatch = /^(?<scheme>[A-Za-z][A-Za-z0-9+.-]*):\/\/(?<rest>.*)$/.exec(text)?.groups;
  if (!schemeMatch?.scheme || schemeMatch.rest === undefined)
    return refuse(`the BMC address "${text}" has no scheme: write redfish://host[:port] (HTTPS) or redfish+http://host:port (HTTP)`);
  const scheme = schemeMatch.scheme.toLowerCase();
  const rest = schemeMatch.rest;
  const known = SCHEMES.get(scheme);
  if (!known) return refuse(unknownSchemeReason(scheme));

  const authorityEnd = rest.search(/[/?#]/);
  const authority = authorityEnd === -1 ? rest : rest.slice(0, authorityEnd);
  if (authority.includes('@')) return refuse('the BMC address has a user name or password in it: give them as username and password instead');
  if (/[?#]/.test(rest)) return refuse('the BMC address has a query or a fragment (? or #): write only scheme://host[:port][/redfish/v1/Systems/{id}]');
  if (authority === '' || authority.startsWith(':')) return refuse(`the BMC address "${text}" has no host`);

  let url: URL;
  try {
    url = new URL(`${known.protocol}://${rest}`);
  } catch {
    // WHATWG URL throws a bare TypeError("Invalid URL"); the reason below says what to fix instead.
    return refuse(`the BMC address "${text}" is not a valid host[:port] (an IPv6 literal goes in brackets: [fd00::1]:443)`);
  }
  if (url.hostname === '') return refuse(`the BMC address "${text}" has no host`);
  if (url.port === '0') return refuse(`the BMC address "${text}" has port 0`);

  const path = url.pathname.replace(/\/+$/, '');
  const parsed: ParsedBmcAddress = { ok: true, url: `${url.protocol}//${url.host}` };
  if (known.vendor) parsed.vendor = known.vendor;
  if (ROOT_PATHS.has(path)) return parsed;
  if (!SYSTEM_PATH.test(path)) return refuse(`the BMC address's path "${url.pathname}" is not a system: write /redfish/v1/Systems/{id}, or no path`);
  parsed.systemPath = path;
  return parsed;
}

/** A reason that names the scheme the operator probably meant. */
function unknownSchemeReason(scheme: string): string {
  const aliases = Object.keys(BASE_SCHEMES).slice(1).join(', ');
  const list = `redfish:// (HTTPS), redfish+http:// (HTTP), or a vendor alias (${aliases}, each also +http)`;
  const meant = guessScheme(scheme);
  return `unknown BMC address scheme "${scheme}://"${meant ? `: did you mean ${meant}://?` : ''} Use ${list}`;
}

function guessScheme(scheme: string): string | undefined {
  if (scheme === 'https') return 'redfish';
  if (scheme === 'http') return 'redfish+http';
  let best: { name: string; distance: number } | undefined;
  for (const name of SCHEMES.keys()) {
    const distance = editDistance(scheme, name);
    if (distance <= 3 && (!best || distance < best.distance)) best = { name, distance };
  }
  if (best) return best.name;
  // `idrac://host`, `ilo://`, `ilo5+http://`: a vendor name without the `-redfish` part.
  const vendorPart = scheme.split('+', 1)[0] ?? scheme;
  const alias = Object.keys(BASE_SCHEMES).find((base) => base !== 'redfish' && base.startsWith(vendorPart));
  return alias && vendorPart.length >= 3 ? alias + scheme.slice(vendorPart.length) : undefined;
}

/** Levenshtein distance, for scheme names of a few characters. */
function editDistance(a: string, b: string): number {
  let previous: number[] = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current: number[] = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}
