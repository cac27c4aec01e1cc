import { renderEntryScript } from './render.js';

/** The name TFTP serves the entry script under, for firmware or a DHCP server that hands out a TFTP file name only. */
export const TFTP_ENTRY_NAME = 'boot.ipxe';

/** What the entry script needs of a TFTP request: the local address the client sent to. */
export interface TftpEntryRequest {
  local: string;
}

/**
 * The names TFTP generates instead of reading them from its roots (tftp/server.ts
 * `handlers`): `boot.ipxe`, the entry script, which chains to this server's HTTP port at the
 * address the client reached TFTP on (`server.advertiseAddress: auto`), else the advertised one.
 */
export function tftpEntryHandlers(advertise: string, httpPort: () => number): Map<string, (req: TftpEntryRequest) => Buffer> {
  const entry = (req: TftpEntryRequest): Buffer => Buffer.from(renderEntryScript(`http://${advertise === 'auto' ? req.local : advertise}:${httpPort()}`));
  return new Map([[TFTP_ENTRY_NAME, entry]]);
}
