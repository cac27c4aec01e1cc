import type { SubnetConfig } from '../config/config.js';
import { inCidr, maskText, parseCidr, parseIpv4 } from '../net/ipv4.js';

export function subnetOf(ip: string, subnets: readonly SubnetConfig[]): { subnet: SubnetConfig; mask: string } | undefined {
  if (parseIpv4(ip) === undefined) return undefined;
  for (const s of subnets) {
    const prefix = parseCidr(s.cidr);
    if (prefix && inCidr(prefix, ip)) return { subnet: s, mask: maskText(prefix) };
  }
  return undefined;
}

/**
 * dracut / nm-initrd-generator static configuration:
 * `ip=<client-IP>:[<peer>]:<gateway-IP>:<netmask>:<client_hostname>:<interface>:none[:<dns1>]`.
 * The interface is left empty: Linux names a NIC only after boot, and an empty name applies the
 * address to the interface that comes up. Gateway, mask and DNS come from the subnet that holds
 * the address; without one, those fields stay empty.
 */
export function staticIpKarg(ip: string, hostname: string | undefined, subnets: readonly SubnetConfig[]): string {
  const found = subnetOf(ip, subnets);
  const gw = found?.subnet.router ?? '';
  const mask = found?.mask ?? '';
  const dns = found?.subnet.dns?.[0];
  return `ip=${ip}::${gw}:${mask}:${hostname ?? ''}::none${dns ? `:${dns}` : ''}`;
}
