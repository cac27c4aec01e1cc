/**
 * `withBmc`: one session on one BMC for the length of a callback. It parses the address, opens an
 * undici Agent of its own (the machine's TLS choice, the timeouts), logs in, finds the system and
 * the vendor profile, runs the callback, and then always deletes the session and closes the Agent,
 * whether the callback returned or threw.
 */
import { parseBmcAddress } from './address.js';
import { BmcHttp, isRecord } from './http.js';
import type { BmcContext } from './context.js';
import { createOperations } from './operations.js';
import { linkOf, RedfishClient, SERVICE_ROOT } from './session.js';
import { BmcError, type BmcClientOptions, type BmcSession, type BmcTarget } from './types.js';
import { detectVendor, vendorQuirks } from './vendors.js';

export async function withBmc<T>(target: BmcTarget, opts: BmcClientOptions, fn: (s: BmcSession) => Promise<T>): Promise<T> {
  const address = parseBmcAddress(target.address);
  if (!address.ok) throw new BmcError('protocol', address.reason);
  const http = new BmcHttp(address.url, { timeoutMs: opts.timeoutMs, verifyTls: target.verifyTls, ...(opts.ca ? { ca: opts.ca } : {}) });
  const client = new RedfishClient(http, { username: target.username, password: target.password });
  try {
    await client.open();
    try {
      const context = await connect(client, target, address);
      return await fn(createOperations(context));
    } finally {
      await client.close();
    }
  } finally {
    await http.close();
  }
}

/** The system's path and the vendor profile, from the address, the target and what the BMC says of itself. */
async function connect(client: RedfishClient, target: BmcTarget, address: { vendor?: string; systemPath?: string }): Promise<BmcContext> {
  const systemPath = await findSystem(client, target, address.systemPath);
  const system = await readSystemOrExplain(client, systemPath, target);
  const root = client.root;
  const vendor = detectVendor({
    ...(address.vendor ? { alias: address.vendor } : {}),
    ...(typeof root.Vendor === 'string' ? { rootVendor: root.Vendor } : {}),
    rootOemKeys: isRecord(root.Oem) ? Object.keys(root.Oem) : [],
    ...(typeof system.Manufacturer === 'string' ? { manufacturer: system.Manufacturer } : {}),
  });
  return { client, systemPath, quirks: vendorQuirks(vendor), bootMode: target.bootMode };
}

/** target.systemId, else the address's system path, else the only member of the Systems collection. */
async function findSystem(client: RedfishClient, target: BmcTarget, addressPath: string | undefined): Promise<string> {
  const collection = linkOf(client.root.Systems) ?? `${SERVICE_ROOT}/Systems`;
  if (target.systemId) return `${collection}/${encodeURIComponent(target.systemId)}`;
  if (addressPath) return addressPath;
  const { body } = await client.getObject(collection);
  const members = (Array.isArray(body.Members) ? body.Members : []).map(linkOf).filter((path): path is string => path !== undefined);
  const [only] = members;
  if (members.length === 1 && only) return only;
  const where = client.http.baseUrl;
  if (members.length === 0) throw new BmcError('protocol', `${where}: ${collection} lists no systems`);
  const ids = members.map((path) => path.split('/').pop() ?? path).join(', ');
  throw new BmcError('refused', `${where}: the BMC has ${members.length} systems (${ids}): set the machine's bmc systemId to the one to drive`);
}

async function readSystemOrExplain(client: RedfishClient, path: string, target: BmcTarget): Promise<Record<string, unknown>> {
  try {
    return (await client.getObject(path)).body;
  } catch (error) {
    if (error instanceof BmcError && error.status === 404) {
      const which = target.systemId ? `systemId "${target.systemId}"` : `the address's path ${path}`;
      throw new BmcError('refused', `${client.http.baseUrl}: no system at ${path} (HTTP 404): check ${which} against /redfish/v1/Systems`, 404);
    }
    throw error;
  }
}
