/**
 * The captured DHCP traffic in test/fixtures (see its README for each capture's source) for the
 * DHCP unit tests: which captures hold DHCP, their DHCP datagrams, and a decode that throws.
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeDhcp, type DhcpPacket } from '../../src/dhcp/codec.js';
import { readCapture, type UdpPacket } from './pcap.js';

/** test/fixtures: the packet captures and schemas the tests read, carried in the repository. */
export const TESTDATA_DIR = fileURLToPath(new URL('../fixtures/', import.meta.url));

/** The captures holding DHCP (the pcapng files hold TFTP only). */
export const DHCP_CAPTURES = ['netboot-dhcp4.pcap', 'qemu-ovmf-full-boot.pcap', 'qemu-ovmf-proxy-boot.pcap', 'qemu-ipxe-bios-full-boot.pcap'] as const;
export type DhcpCapture = (typeof DHCP_CAPTURES)[number];

/** DHCP server, client and PXE boot-server (proxyDHCP) ports. */
export const DHCP_PORTS: readonly number[] = [67, 68, 4011];

export const isDhcpDatagram = (u: UdpPacket): boolean => DHCP_PORTS.includes(u.srcPort) || DHCP_PORTS.includes(u.dstPort);

const cache = new Map<string, UdpPacket[]>();

/** Every UDP datagram of a capture in testdata (read once per process). */
export function captureDatagrams(name: string): UdpPacket[] {
  let packets = cache.get(name);
  if (!packets) {
    packets = readCapture(join(TESTDATA_DIR, name));
    cache.set(name, packets);
  }
  return packets;
}

/** The DHCP datagrams (to or from port 67, 68 or 4011) of a capture. */
export const dhcpDatagrams = (name: DhcpCapture): UdpPacket[] => captureDatagrams(name).filter(isDhcpDatagram);

/** Decodes a payload the test knows is a valid DHCP packet; anything else throws. */
export function mustDecode(payload: Buffer): DhcpPacket {
  const r = decodeDhcp(payload);
  if (!r.ok) throw new Error(`payload does not decode: ${r.reason}`);
  return r.value;
}
