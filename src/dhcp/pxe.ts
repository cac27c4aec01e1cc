import type { DhcpPacket } from './codec.js';
import { Opt, clientArchs, clientNdi, clientUuid, ipxeOptions, userClasses, vendorClass } from './options.js';

/**
 * RFC 4578 §2.1 and the IANA "Processor Architecture Types" registry. Note that x86-64 UEFI
 * firmware sends 7 (qemu-ovmf-full-boot.pcap) although RFC 4578 first named 9 for it.
 */
export const ARCH_NAMES: Readonly<Record<number, string>> = {
  0: 'x86-bios',
  1: 'nec-pc98',
  2: 'itanium',
  3: 'dec-alpha',
  4: 'arc-x86',
  5: 'intel-lean-client',
  6: 'efi-ia32',
  7: 'efi-x86-64',
  8: 'efi-xscale',
  9: 'efi-bc',
  10: 'efi-arm32',
  11: 'efi-arm64',
  12: 'ppc-open-firmware',
  13: 'ppc-epapr',
  14: 'ppc-opal',
  15: 'efi-x86-http',
  16: 'efi-x86-64-http',
  17: 'efi-bc-http',
  18: 'efi-arm32-http',
  19: 'efi-arm64-http',
  20: 'x86-bios-http',
  21: 'arm32-uboot',
  22: 'arm64-uboot',
  23: 'arm32-uboot-http',
  24: 'arm64-uboot-http',
  25: 'efi-riscv32',
  26: 'efi-riscv32-http',
  27: 'efi-riscv64',
  28: 'efi-riscv64-http',
  29: 'efi-riscv128',
  30: 'efi-riscv128-http',
  31: 's390-basic',
  32: 's390-extended',
  33: 'efi-mips32',
  34: 'efi-mips64',
  35: 'efi-sunway32',
  36: 'efi-sunway64',
  37: 'efi-loongarch32',
  38: 'efi-loongarch32-http',
  39: 'efi-loongarch64',
  40: 'efi-loongarch64-http',
  41: 'arm-rpiboot',
};

/** The firmware families edgeboot hands an iPXE binary to. */
export type Firmware = 'bios' | 'efi-ia32' | 'efi-x86-64' | 'efi-arm32' | 'efi-arm64';

const FIRMWARE_BY_ARCH: Readonly<Record<number, { firmware: Firmware; http: boolean }>> = {
  0: { firmware: 'bios', http: false },
  6: { firmware: 'efi-ia32', http: false },
  7: { firmware: 'efi-x86-64', http: false },
  9: { firmware: 'efi-x86-64', http: false },
  10: { firmware: 'efi-arm32', http: false },
  11: { firmware: 'efi-arm64', http: false },
  15: { firmware: 'efi-ia32', http: true },
  16: { firmware: 'efi-x86-64', http: true },
  17: { firmware: 'efi-x86-64', http: true },
  18: { firmware: 'efi-arm32', http: true },
  19: { firmware: 'efi-arm64', http: true },
  20: { firmware: 'bios', http: true },
};

/** What a DHCP request says about the client's boot firmware. */
export interface PxeClient {
  /** Option 60 starts with `PXEClient` (or `HTTPClient`): network-boot firmware. */
  pxe: boolean;
  /** Option 60 starts with `HTTPClient`, or the architecture is an HTTP one: UEFI HTTP Boot. */
  httpBoot: boolean;
  /** iPXE: user class `iPXE` or iPXE's encapsulated option 175. */
  ipxe: boolean;
  /** iPXE announced HTTP support (175.19); undefined when it sent no feature list. */
  ipxeHttp: boolean | undefined;
  archs: number[];
  /** The first architecture we have a binary family for. */
  firmware: Firmware | undefined;
  /** From option 60 `PXEClient:Arch:xxxxx:…` when option 93 is absent (dhcpcd sends none). */
  vendorClass: string | undefined;
  uuid: string | undefined;
  undi: { major: number; minor: number } | undefined;
  userClasses: string[];
}

const ARCH_IN_VENDOR_CLASS = /^(?:PXEClient|HTTPClient):Arch:(\d{5})/;

export function classifyClient(p: Pick<DhcpPacket, 'options'>): PxeClient {
  const o = p.options;
  const vc = vendorClass(o);
  const classes = userClasses(o);
  const ipxeSubs = ipxeOptions(o);
  let archs = clientArchs(o);
  if (archs.length === 0 && vc) {
    const m = ARCH_IN_VENDOR_CLASS.exec(vc);
    if (m?.[1]) archs = [Number(m[1])];
  }
  const known = archs.map((a) => FIRMWARE_BY_ARCH[a]).find((f) => f !== undefined);
  const httpVendor = vc?.startsWith('HTTPClient') ?? false;
  return {
    pxe: (vc?.startsWith('PXEClient') ?? false) || httpVendor,
    httpBoot: httpVendor || (known?.http ?? false),
    // Option 175 at all, parseable or not, means iPXE: sending it the iPXE binary again would loop.
    ipxe: classes.includes('iPXE') || o.has(Opt.Ipxe),
    ipxeHttp: ipxeSubs === undefined || ipxeSubs.size === 0 ? undefined : ipxeSubs.has(19),
    archs,
    firmware: known?.firmware,
    vendorClass: vc,
    uuid: clientUuid(o),
    undi: clientNdi(o),
    userClasses: classes,
  };
}

export interface BootFileConfig {
  /** `http://<server>:<port>` machines reach edgeboot's HTTP at. */
  httpBase: string;
  /** iPXE binary per firmware family, as TFTP paths. */
  binaries: Readonly<Record<Firmware, string>>;
  /** URL prefix under which the HTTP server serves the same binaries, for UEFI HTTP Boot. */
  httpBinariesPath: string;
}

export const DEFAULT_BINARIES: Readonly<Record<Firmware, string>> = {
  bios: 'undionly.kpxe',
  'efi-ia32': 'ipxe-i386.efi',
  'efi-x86-64': 'ipxe.efi',
  'efi-arm32': 'ipxe-arm32.efi',
  'efi-arm64': 'ipxe-arm64.efi',
};

export type BootFile = { kind: 'tftp'; file: string } | { kind: 'http'; url: string; vendorClass: 'HTTPClient' | undefined } | { kind: 'none'; reason: string };

/**
 * What a network-booting client gets as its boot file. iPXE gets the HTTP entry script (the
 * chainload loop break: handing it the iPXE binary again would loop); UEFI HTTP Boot gets an
 * http:// URL of the binary and `HTTPClient` echoed in option 60; PXE firmware gets the iPXE
 * binary of its family over TFTP.
 */
export function chooseBootFile(c: PxeClient, cfg: BootFileConfig): BootFile {
  if (c.ipxe) {
    if (c.ipxeHttp === false) return { kind: 'none', reason: 'this iPXE build has no HTTP support' };
    return { kind: 'http', url: `${cfg.httpBase}/boot.ipxe`, vendorClass: undefined };
  }
  if (!c.pxe) return { kind: 'none', reason: 'not a network-boot client' };
  if (!c.firmware) return { kind: 'none', reason: `no iPXE binary for architecture ${c.archs.map((a) => ARCH_NAMES[a] ?? a).join(', ') || 'unknown'}` };
  const binary = cfg.binaries[c.firmware];
  if (c.httpBoot) return { kind: 'http', url: `${cfg.httpBase}${cfg.httpBinariesPath}/${binary}`, vendorClass: 'HTTPClient' };
  return { kind: 'tftp', file: binary };
}
