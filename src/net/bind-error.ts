/** What to tell the operator when a protocol server cannot bind its port. */
export interface BindHints {
  /** Who usually holds the port, e.g. "another DHCP server (dnsmasq, dhcpd, kea)". */
  holder: string;
  /** What to do when it is held. */
  inUseFix: string;
  /** What to do without the privilege for a port below 1024. */
  accessFix: string;
}

/** `<PROTO>: cannot bind <where>: <why>; <fix>` — the port, the reason and the fixes. */
export function bindError(protocol: string, where: string, err: Error & { code?: string }, hints: BindHints): Error {
  const [why, fix] =
    err.code === 'EACCES'
      ? ['permission denied', hints.accessFix]
      : err.code === 'EADDRINUSE'
        ? [`${hints.holder} already holds it`, hints.inUseFix]
        : err.code === 'EADDRNOTAVAIL'
          ? ['no interface has that address', 'check the address']
          : [err.message, 'check the address and port'];
  return new Error(`${protocol}: cannot bind ${where}: ${why}; ${fix}`, { cause: err });
}
