/**
 * Whether a request to `/ipxe` (or the Ignition URL) comes from the machine it names (pure).
 * Firmware cannot authenticate, so edgeboot binds a machine's secrets — its events token, its
 * signed Ignition URL and the precache job's token inside that Ignition — to its address, as
 * Tinkerbell's metadata service does: the request's source address must be the machine's
 * reservation `ip`, or an address that edgeboot's DHCP lease or the kernel's neighbour table
 * gives to one of the machine's MACs.
 */
import type { Mac } from '../machines/mac.js';
import { allMacs, type Machine } from '../machines/model.js';

export type VerifyClient = 'source' | 'off';

export type ClientTrust = { trusted: true; by: 'reservation-ip' | 'mac-at-address' | 'verify-off' } | { trusted: false; address: string; reason: string };

/**
 * @param addressMac the MAC at `address`: edgeboot's bound DHCP lease, else the neighbour
 *   table (server.ts `macAt`); undefined when neither knows the address.
 */
export function clientTrust(m: Pick<Machine, 'mac' | 'macs' | 'ip'>, address: string, addressMac: Mac | undefined, mode: VerifyClient): ClientTrust {
  if (mode === 'off') return { trusted: true, by: 'verify-off' };
  if (m.ip !== undefined && m.ip === address) return { trusted: true, by: 'reservation-ip' };
  if (addressMac !== undefined && allMacs(m).includes(addressMac)) return { trusted: true, by: 'mac-at-address' };
  const seen = addressMac === undefined ? 'no DHCP lease or neighbour entry of this server names it' : `it belongs to ${addressMac}`;
  return { trusted: false, address, reason: `the request came from ${address}, which is not an address of ${m.mac} (${seen})` };
}

/** Whether a request from an address may have this machine's secrets. */
export type TrustCheck = (m: Pick<Machine, 'mac' | 'macs' | 'ip'>, address: string) => ClientTrust;

/**
 * clientTrust with the server's `boot.verifyClient` and its MAC-at-address lookup bound in;
 * with verification off the lookup (a file read of the neighbour table) is never made.
 */
export function trustCheck(mode: VerifyClient, macAt?: (address: string) => Mac | undefined): TrustCheck {
  return (m, address) => clientTrust(m, address, mode === 'off' ? undefined : macAt?.(address), mode);
}
