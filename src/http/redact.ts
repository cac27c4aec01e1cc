const SECRET_QUERY = /([?&](?:token|sig|api_key)=)[^&]*/gi;

/** A URL fit for a log line or an error message: the values of secret query parameters cut. */
export const redactUrl = (url: string): string => url.replace(SECRET_QUERY, '$1<redacted>');
