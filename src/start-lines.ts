import type { AddressInfo } from 'node:net';
import { networkInterfaces } from 'node:os';
import { resolve } from 'node:path';
import type { Logger } from 'pino';
import { pxeAnswer, type PxeAnswer } from './boot/planner.js';
import type { Config } from './config/config.js';
import { PRIVILEGED_PORT_FIX, type BindError } from './net/bind-error.js';
import type { ProfileSet } from './profiles/profile.js';
import type { ProtocolServer } from './protocol.js';

/** What a start left running (and off), as the start-up lines tell it. */
export interface Started {
  servers: readonly ProtocolServer[];
  denied: readonly { server: string; error: BindError }[];
  profiles: { current(): ProfileSet };
  adminTokenFile: string | undefined;
}

/** `0.0.0.0:8080`, `[::]:8080`. */
export function hostPort(a: Pick<AddressInfo, 'address' | 'port'>): string {
  return a.address.includes(':') ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
}

/** Who can reach a bound address: every interface, loopback alone, or the interface that has it. */
export function reachOf(address: string, interfaces: ReturnType<typeof networkInterfaces> = networkInterfaces()): string {
  if (address === '0.0.0.0' || address === '::') return 'all interfaces';
  if (address.startsWith('127.') || address === '::1') return 'loopback only';
  const name = Object.entries(interfaces).find(([, list]) => list?.some((i) => i.address === address))?.[0];
  return name ? `${name} only` : 'this address only';
}

/**
 * What DHCP answers, where, and how to change it. `strangers` is the boot planner's answer for a
 * machine nobody registered (pxeAnswer with no machine): proxy DHCP is silent to those when
 * their plan is the local disk, so it answers registered machines only.
 */
export function dhcpAnswers(
  dhcp: Pick<Config['dhcp'], 'mode' | 'interfaces' | 'subnets'>,
  policy: Config['boot']['unknownMachines'],
  strangers: PxeAnswer,
): string {
  const named = `${dhcp.interfaces.length === 1 ? 'interface' : 'interfaces'} ${dhcp.interfaces.join(', ')}`;
  const where = dhcp.interfaces.length === 0 ? 'all interfaces' : named;
  const policyText = typeof policy === 'object' ? policy.profile : policy;
  const unknown = !strangers.answer
    ? 'unknown machines boot their own disk'
    : policy === 'wait'
      ? 'an unknown machine waits in iPXE until it is registered'
      : `an unknown machine boots profile ${policyText}`;
  const change = !strangers.answer
    ? 'Register a machine (npx edgeboot machines add MAC --profile NAME) or set boot.unknownMachines: wait'
    : 'To boot registered machines only, set boot.unknownMachines: exit';
  if (dhcp.mode === 'proxy') {
    const answers = strangers.answer ? 'every PXE client' : 'registered machines only';
    return `proxy DHCP on ${where} answers ${answers} (boot.unknownMachines: ${policyText}); ${unknown}. ${change}`;
  }
  const subnets = dhcp.subnets.map((n) => n.cidr).join(', ');
  const leases = `leases addresses in ${subnets} to every client that asks and chains PXE clients to iPXE`;
  return `full DHCP on ${where} ${leases} (boot.unknownMachines: ${policyText}); ${unknown}. ${change}`;
}

/** The start-up lines: one per server with what it bound (or why it is off), then `edgeboot serving`. */
export function describeStart(config: Config, r: Started, log: Logger): void {
  const deniedLine = (name: string, label: string): boolean => {
    const d = r.denied.find((x) => x.server === name);
    if (!d) return false;
    log.warn(
      { server: name, bind: d.error.where, fix: PRIVILEGED_PORT_FIX },
      `${label} off: this user may not bind ${d.error.where} (permission denied); HTTP still serves. To serve ${label}, ${PRIVILEGED_PORT_FIX}`,
    );
    return true;
  };
  const http = r.servers.find((s) => s.name === 'http')?.addresses[0];
  const bound = http ? hostPort(http) : `${config.http.listen.host}:${config.http.listen.port}`;
  if (http) log.info({ listen: bound, reach: reachOf(http.address) }, 'HTTP serving');
  const tftp = r.servers.find((s) => s.name === 'tftp')?.addresses[0];
  if (tftp) log.info({ listen: hostPort(tftp), reach: reachOf(tftp.address), roots: config.tftp.roots }, 'TFTP serving');
  else if (!deniedLine('tftp', 'TFTP')) log.info('TFTP off (tftp.enabled: false)');
  const dhcp = r.servers.find((s) => s.name === 'dhcp');
  const policy = config.boot.unknownMachines;
  if (dhcp && dhcp.addresses.length > 0) {
    log.info(
      {
        mode: config.dhcp.mode,
        ports: dhcp.addresses.map((a) => a.port),
        listen: dhcp.addresses.map(hostPort),
        interfaces: config.dhcp.interfaces.length ? config.dhcp.interfaces : 'all',
        answers: dhcpAnswers(config.dhcp, policy, pxeAnswer({ machine: undefined, profiles: r.profiles.current(), unknownMachines: policy })),
      },
      'DHCP serving',
    );
  } else if (!deniedLine('dhcp', 'DHCP')) {
    log.info('DHCP off (dhcp.mode: off): the site DHCP server must hand iPXE clients the entry script');
  }
  const port = http?.port ?? config.http.listen.port;
  const host = config.server.advertiseAddress === 'auto' ? '<this host>' : config.server.advertiseAddress;
  log.info(
    {
      http: bound,
      entryScript: `http://${host}:${port}/boot.ipxe`,
      api: `http://${host}:${port}/api/v1`,
      docs: `http://${host}:${port}/docs`,
      ui: `http://${host}:${port}/ui/`,
      dataDir: resolve(config.server.dataDir),
      store: config.store.url,
      ...(r.adminTokenFile ? { adminTokenFile: r.adminTokenFile } : { adminTokens: 'from config' }),
    },
    'edgeboot serving',
  );
}
