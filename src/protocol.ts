import type { AddressInfo } from 'node:net';

/** The one start/stop shape of every protocol server (DHCP, TFTP, HTTP): main wires them. */
export interface ProtocolServer {
  readonly name: string;
  /** Resolves once bound. */
  start(): Promise<void>;
  /** Idempotent; waits for in-flight work to end or time out. */
  stop(): Promise<void>;
  readonly addresses: readonly AddressInfo[];
}
