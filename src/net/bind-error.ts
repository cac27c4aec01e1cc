/** What to tell the operator when a protocol server cannot bind its port. */
export interface BindHints {
  /** Who usually holds the port, e.g. "another DHCP server (dnsmasq, dhcpd, kea)". */
  holder: string;
  /** What to do when it is held. */
  inUseFix: string;
  /** What to do without the privilege for a port below 1024. */
  accessFix: string;
}

/**
 * The command that lets an unprivileged node bind ports below 1024 (DHCP 67, TFTP 69) and send
 * DHCP's broadcasts: the capabilities go on the node binary itself, hence readlink -f (setcap
 * refuses a symlink, and `which node` is often one, e.g. under nvm or /usr/bin/node → nodejs).
 */
export const SETCAP_NODE = 'setcap cap_net_bind_service,cap_net_raw+ep "$(readlink -f "$(which node)")"';

/** The fix for EACCES on a port below 1024, as every protocol server words it. */
export const PRIVILEGED_PORT_FIX = `run edgeboot as root, or give node the capability (as root, once): ${SETCAP_NODE}`;

/** A failed bind, with the errno code kept so the caller can tell "not allowed" from "taken". */
export class BindError extends Error {
  constructor(
    message: string,
    readonly protocol: string,
    readonly where: string,
    readonly code: string | undefined,
    cause: Error,
  ) {
    super(message, { cause });
    this.name = 'BindError';
  }
}

/** `<PROTO>: cannot bind <where>: <why>; <fix>` — the port, the reason and the fixes. */
export function bindError(protocol: string, where: string, err: Error & { code?: string }, hints: BindHints): BindError {
  const [why, fix] =
    err.code === 'EACCES'
      ? ['permission denied', hints.accessFix]
      : err.code === 'EADDRINUSE'
        ? [`${hints.holder} already holds it`, hints.inUseFix]
        : err.code === 'EADDRNOTAVAIL'
          ? ['no interface has that address', 'check the address']
          : [err.message, 'check the address and port'];
  return new BindError(`${protocol}: cannot bind ${where}: ${why}; ${fix}`, protocol, where, err.code, err);
}
