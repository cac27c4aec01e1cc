/**
 * The one list of what counts as a secret in a URL or a document, and the pure functions that
 * cut secrets out of text before it reaches a log line, an error body, an event, an API answer
 * or the metrics. Below every layer (no imports), so the cache, the boot code, the HTTP app,
 * the logger and the CLI all use the same list.
 *
 * A machine is still served its own secrets: redaction is for what people and other programs
 * read, never for the script or Ignition a machine boots from.
 */

/** What a secret value is replaced with. It passes the API's URL pattern (safe.ts), so a redacted URL read from the API can be sent back unchanged (see `keepRedacted`). */
export const REDACTED = '*redacted*';

/**
 * Query parameters and keys that carry credentials, compared after percent-decoding,
 * case-folding and dropping `-` and `_` (so `X-Amz-Signature`, `x_amz_signature` and
 * `%58-Amz-Signature` are one name). The assisted installer signs per-InfraEnv URLs with
 * `api_key` or `image_token`; S3 and GCS presigned URLs carry `X-Amz-*` and `X-Goog-*`.
 */
export const SECRET_PARAMS: readonly string[] = [
  'token',
  'sig',
  'signature',
  'api_key',
  'apikey',
  'image_token',
  'access_token',
  'refresh_token',
  'id_token',
  'client_secret',
  'password',
  'passwd',
  'secret',
  'X-Amz-Credential',
  'X-Amz-Signature',
  'X-Amz-Security-Token',
  'X-Goog-Credential',
  'X-Goog-Signature',
  'X-Goog-Security-Token',
];

/** Document keys whose values are secrets beyond the query names: headers and config keys. */
const SECRET_KEYS: readonly string[] = ['authorization', 'cookie', 'adminToken', 'pullSecret', 'credentials'];

const squash = (name: string): string => name.toLowerCase().replace(/[-_]/g, '');
const SECRET_PARAM_SET = new Set(SECRET_PARAMS.map(squash));
const SECRET_KEY_SET = new Set([...SECRET_PARAMS, ...SECRET_KEYS].map(squash));

/** `%XX` sequences decoded as UTF-8 where they form it; a malformed escape stays as it is. */
function percentDecode(s: string): string {
  return s.replace(/(?:%[0-9A-Fa-f]{2})+/g, (run) => {
    try {
      return decodeURIComponent(run);
    } catch {
      // not UTF-8 (e.g. a lone %FF): keep the escape; it is compared as text
      return run;
    }
  });
}

/**
 * A parameter name as a server would read it: `+` is a space in a query (WHATWG URL,
 * application/x-www-form-urlencoded), percent escapes decoded (again, up to three times, for
 * a double-encoded `%2574oken`), surrounding spaces and `+` trimmed, case folded, `-`/`_` dropped.
 */
export function normaliseName(raw: string): string {
  let name = raw.replace(/\+/g, ' ');
  for (let i = 0; i < 3; i++) {
    const next = percentDecode(name);
    if (next === name) break;
    name = next;
  }
  return squash(name.replace(/^[\s+]+|[\s+]+$/g, ''));
}

/** Whether a query parameter (raw or decoded) names a secret. */
export const isSecretParam = (name: string): boolean => SECRET_PARAM_SET.has(normaliseName(name));

/** Whether a document key (a header, a config key, a JSON field) holds a secret. */
export const isSecretKey = (name: string): boolean => SECRET_KEY_SET.has(normaliseName(name));

// `scheme://userinfo@` (RFC 3986 §3.2.1): userinfo has no `/`, `?`, `#` or `@`. Found from
// its `://`, which the engine seeks fast, rather than trying a scheme at every letter.
const USERINFO = /:\/\/[^\s/?#@"'<>\\]+@/g;
/** Where a parameter name may start: after these, or at the start of the text. */
const NAME_BOUNDARY = new Set(['?', '&', '#', ' ', '\t', '\n', '\r', '"', "'", '(', ',', ';']);
/** What cannot be part of a name. */
const NAME_STOP = new Set([...NAME_BOUNDARY, '=', '<', '>', '\\']);
/** Where a value ends: the next parameter, the fragment, a space, a quote or a bracket. */
const VALUE_STOP = new Set(['&', '#', ' ', '\t', '\n', '\r', '"', "'", '<', '>', '`']);

/**
 * `name=value` pairs, found from each `=` (a linear scan: a regular expression trying a name
 * at every boundary took 100 ns a byte on a page of machines). The name runs back to a
 * boundary; the value runs to the next `&` or `#`, a space, a quote or a JSON-escaped quote
 * (`\"`), so a value inside a JSON log line stops at its string's end.
 */
function redactParams(text: string): string {
  let out = '';
  let copied = 0;
  let eq = text.indexOf('=');
  while (eq !== -1) {
    let start = eq;
    while (start > 0 && !NAME_STOP.has(text.charAt(start - 1))) start--;
    let end = eq + 1;
    while (end < text.length && !VALUE_STOP.has(text.charAt(end)) && !(text.charAt(end) === '\\' && text.charAt(end + 1) === '"')) end++;
    const named = start < eq && start >= copied && (start === 0 || NAME_BOUNDARY.has(text.charAt(start - 1)));
    const value = text.slice(eq + 1, end);
    if (named && value !== '' && value !== REDACTED && isSecretParam(text.slice(start, eq))) {
      out += `${text.slice(copied, eq + 1)}${REDACTED}`;
      copied = end;
    }
    eq = text.indexOf('=', named ? end : eq + 1);
  }
  return copied === 0 ? text : out + text.slice(copied);
}

/**
 * Text (a URL, an error message, a log line) with the values of secret parameters and any
 * URL userinfo replaced by REDACTED; everything else is left byte for byte.
 */
export function redactSecrets(text: string): string {
  const cut = text.includes('://') ? text.replace(USERINFO, `://${REDACTED}@`) : text;
  return cut.includes('=') ? redactParams(cut) : cut;
}

// `"key": "value"` in JSON text, for the secret keys only (any case, `-`/`_` anywhere): an
// alternation of the names is found far faster than every member tried and then checked.
const keyPattern = (squashed: string): string =>
  Array.from(squashed)
    .map((c) => c.replace(/[^a-z0-9]/g, '\\$&'))
    .join('[-_]?');
const JSON_MEMBER = new RegExp(`"(${[...SECRET_KEY_SET].map(keyPattern).join('|')})"(\\s*:\\s*)"((?:[^"\\\\]|\\\\.)*)"`, 'gi');

/**
 * JSON text (a log line, a response body) with `redactSecrets` applied and the string values
 * of secret keys (`"password": "…"`, `"authorization": "…"`) replaced. The JSON stays valid:
 * only whole string contents are replaced, with REDACTED, which needs no escape.
 */
export function redactJsonText(json: string): string {
  return redactSecrets(json).replace(JSON_MEMBER, (whole: string, key: string, colon: string, value: string) =>
    value !== REDACTED && value !== '' ? `"${key}"${colon}"${REDACTED}"` : whole,
  );
}

/**
 * For a write of a value that was read back redacted: `incoming` is what a client sent,
 * `current` what is stored. When the client sent the redacted form of the stored value (a
 * GET, an edit elsewhere, a PUT), the stored value is kept; a redacted value that does not
 * match is refused (the caller says how), since storing it would break the machine's boot.
 */
export function keepRedacted(incoming: string, current: string | undefined): { value: string } | { refused: string } {
  if (!incoming.includes(REDACTED)) return { value: incoming };
  if (current !== undefined && redactSecrets(current) === incoming) return { value: current };
  return { refused: `it holds ${REDACTED}, the mark of a secret cut from an API answer, and is not the stored value's redacted form: send the full value` };
}
