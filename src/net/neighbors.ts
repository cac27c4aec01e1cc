/**
 * The kernel's IPv4 neighbour (ARP) table: which MAC an on-link address belongs to. TFTP and
 * HTTP see only a client's address; a machine that just talked to us is in this table, so its
 * transfers can be put on its timeline even when no DHCP lease of ours names it (proxy mode).
 */
import { readFileSync } from 'node:fs';
import { parseMac, type Mac } from '../machines/mac.js';

/** ATF_COM: the entry is complete (the MAC is known). */
const ATF_COM = 0x2;

/** Parses /proc/net/arp: `IP address  HW type  Flags  HW address  Mask  Device` rows. */
export function parseArpTable(text: string): Map<string, Mac> {
  const out = new Map<string, Mac>();
  for (const line of text.split('\n').slice(1)) {
    const [ip, , flags, hw] = line.trim().split(/\s+/);
    if (!ip || !flags || !hw) continue;
    if ((Number.parseInt(flags, 16) & ATF_COM) === 0) continue;
    const mac = parseMac(hw);
    if (mac && mac !== '00:00:00:00:00:00') out.set(ip, mac);
  }
  return out;
}

/** The MAC of an on-link IPv4 address, if the kernel knows it. */
export function neighborMac(ip: string, table = '/proc/net/arp'): Mac | undefined {
  let text: string;
  try {
    text = readFileSync(table, 'utf8');
  } catch (err) {
    // Not Linux, or /proc not mounted: no neighbour table to ask.
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  return parseArpTable(text).get(ip);
}
