/**
 * Character sets for everything that reaches an iPXE script or a kernel command line. iPXE has
 * no quoting: whitespace splits arguments, `#` starts a comment, `${…}` expands settings and
 * `||`, `&&` and `;` chain commands, so a value carrying any of them would be an injection.
 * These patterns are used as JSON Schema `pattern`s at the API boundary and re-checked by the
 * renderer before anything is written into a script.
 */

/** RFC 1123 host name: labels of letters, digits and inner hyphens, 253 characters at most. */
export const HOSTNAME_PATTERN = '^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$';

/**
 * An http(s) URL without whitespace, quotes, `#`, `$`, braces, `|`, `;`, `\` or control bytes.
 * `&`, `=`, `%` and `?` stay: query strings need them and iPXE treats them as plain text.
 */
export const SAFE_URL_PATTERN = '^https?://[A-Za-z0-9._~:/?&=%+,@!*()\\[\\]-]+$';

/**
 * Tokens of a kernel command line or an iPXE argument: no whitespace, quotes or iPXE syntax.
 * `&` is plain text inside a token, but a token that is exactly `&&` ends an iPXE command.
 */
export const IPXE_TOKEN_PATTERN = '^(?!&&$)[A-Za-z0-9._~:/?&=%+,@!*()\\[\\]-]*$';

/** Linux block device path. */
export const DISK_PATTERN = '^/dev/[A-Za-z0-9/_.:-]+$';

const token = new RegExp(IPXE_TOKEN_PATTERN);
const url = new RegExp(SAFE_URL_PATTERN);
const hostname = new RegExp(HOSTNAME_PATTERN);

export const isIpxeToken = (s: string): boolean => token.test(s);
export const isSafeUrl = (s: string): boolean => url.test(s);
export const isHostname = (s: string): boolean => hostname.test(s);

/** Raised by the renderer when a value slipped past the boundary checks. */
export class UnsafeValueError extends Error {
  constructor(
    readonly what: string,
    value: string,
  ) {
    super(`refusing to put ${what} ${JSON.stringify(value.slice(0, 80))} into an iPXE script: it contains characters iPXE would interpret`);
    this.name = 'UnsafeValueError';
  }
}

export function ipxeToken(what: string, s: string): string {
  if (!isIpxeToken(s)) throw new UnsafeValueError(what, s);
  return s;
}

export function safeUrl(what: string, s: string): string {
  if (!isSafeUrl(s)) throw new UnsafeValueError(what, s);
  return s;
}
