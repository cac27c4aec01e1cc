import type { Config } from '../config/config.js';
import { cidrOf, inCidr } from '../net/ipv4.js';
import { eachMachine, type Store } from '../store/store.js';
import type { Mac } from './mac.js';

/** What decides whether a reservation's `ip` is an address DHCP can hand out. */
export type DhcpAddressing = Pick<Config['dhcp'], 'mode' | 'subnets'>;

/**
 * Why a reservation's `ip` cannot be its DHCP lease, or undefined when it can. Only in full
 * mode is `ip` a DHCP reservation: edgeboot leases it from the subnet it lies in, and an
 * address outside every `dhcp.subnets` cidr would never be offered. In proxy and off mode it
 * is the machine's static address (kernel arguments, client trust) and any address goes.
 */
export function reservationAddressProblem(ip: string | undefined, dhcp: DhcpAddressing): string | undefined {
  if (ip === undefined || dhcp.mode !== 'full') return undefined;
  if (dhcp.subnets.some((s) => inCidr(cidrOf(s.cidr), ip))) return undefined;
  const cidrs = dhcp.subnets.map((s) => s.cidr).join(', ') || 'none configured';
  return `ip: ${ip} is outside every dhcp.subnets cidr (${cidrs})`;
}

/** A stored machine whose `ip` full-mode DHCP cannot lease, and why. */
export interface AddressOutsideSubnets {
  mac: Mac;
  ip: string;
  problem: string;
}

/**
 * The stored machines whose `ip` lies outside every `dhcp.subnets` cidr (none unless
 * `dhcp.mode` is full): reservations made before the subnets changed, for a warning at start.
 */
export async function machinesOutsideSubnets(store: Pick<Store, 'listMachines'>, dhcp: DhcpAddressing): Promise<AddressOutsideSubnets[]> {
  if (dhcp.mode !== 'full') return [];
  const found: AddressOutsideSubnets[] = [];
  for await (const m of eachMachine(store)) {
    const problem = reservationAddressProblem(m.ip, dhcp);
    if (problem !== undefined && m.ip !== undefined) found.push({ mac: m.mac, ip: m.ip, problem });
  }
  return found;
}
