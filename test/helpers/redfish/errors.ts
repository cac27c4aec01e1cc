/**
 * Redfish error bodies (DSP0266 "Error responses"): an `error` object with a code, a message and
 * @Message.ExtendedInfo, the messages taken from DMTF's Base registry unless a vendor has its own.
 */

export const BASE = 'Base.1.8';

export interface RedfishFailure {
  status: number;
  messageId: string;
  message: string;
  headers?: Record<string, string>;
}

export function failure(status: number, messageId: string, message: string, headers?: Record<string, string>): RedfishFailure {
  return { status, messageId, message, ...(headers === undefined ? {} : { headers }) };
}

export function errorBody(f: RedfishFailure): Record<string, unknown> {
  return {
    error: {
      code: `${BASE}.GeneralError`,
      message: 'A general error has occurred. See ExtendedInfo for more information.',
      '@Message.ExtendedInfo': [{ '@odata.type': '#Message.v1_1_1.Message', MessageId: f.messageId, Message: f.message, Severity: 'Warning' }],
    },
  };
}

export const notFound = (path: string): RedfishFailure => failure(404, `${BASE}.ResourceMissingAtURI`, `The resource at the URI ${path} was not found.`);
export const malformedJson = (): RedfishFailure =>
  failure(400, `${BASE}.MalformedJSON`, 'The request body submitted was malformed JSON and could not be parsed by the receiving service.');
export const inTransition = (): RedfishFailure =>
  failure(409, `${BASE}.ResourceInUse`, 'The change to the requested resource failed because the resource is in use or in transition.');

/** DSP0266: 401 with a WWW-Authenticate challenge for Basic, the other scheme a client may use. */
export function unauthorized(): RedfishFailure {
  return failure(401, 'Base.1.8.NoValidSession', 'There is no valid session established with the implementation.', {
    'WWW-Authenticate': 'Basic realm="RedfishService"',
  });
}
