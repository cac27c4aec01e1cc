/**
 * Public URL paths that more than one layer names: HTTP serves them, DHCP and the boot scripts
 * point machines at them. A leaf module (no imports), so DHCP can name a path without loading
 * the HTTP routes that serve it.
 */

/** Where UEFI HTTP Boot clients fetch the iPXE binaries of the TFTP roots (`dhcp/pxe.ts`). */
export const IPXE_BIN_PREFIX = '/ipxe-bin';

/** The iPXE entry script every booting machine chains to. */
export const BOOT_SCRIPT_PATH = '/boot.ipxe';
