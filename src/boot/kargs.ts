import type { SubnetConfig } from '../config/config.js';

function ipv4ToInt(ip: string): number | undefined {
  const parts = ip.split('.');
  if (parts.length !== 4) return undefined;
  let n = 0;
  for (const p of parts) {
    const v = Number(p);
    if (!/^[0-9]{1,3}$/.test(p) || v > 255) return undefined;
    n = n * 256 + v;
  }
  return n;
}

const intToIpv4 = (n: number) => [24, 16, 8, 0].map((s) => (n >>> s) & 255).join('.');

export function subnetOf(ip: string, subnets: readonly SubnetConfig[]): { subnet: SubnetConfig; mask: string } | undefined {
  const addr = ipv4ToInt(ip);
  if (addr === undefined) return undefined;
  for (const s of subnets) {
    const [net, bitsText] = s.cidr.split('/');
    const base = net === undefined ? undefined : ipv4ToInt(net);
    const bits = Number(bitsText);
    if (base === undefined || !(bits >= 0 && bits <= 32)) continue;
    const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
    if (((addr & mask) >>> 0) === ((base & mask) >>> 0)) return { subnet: s, mask: intToIpv4(mask) };
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
