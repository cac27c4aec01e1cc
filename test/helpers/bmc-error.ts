/** The BmcError a promise rejects with (for the Redfish client's tests); any other outcome fails the test. */
import { BmcError } from '../../src/bmc/types.js';

export async function bmcError(promise: Promise<unknown>): Promise<BmcError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof BmcError) return error;
    throw error;
  }
  throw new Error('expected a BmcError, and the promise resolved');
}
