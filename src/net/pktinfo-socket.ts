/**
 * A UDP/IPv4 socket that tells on which interface each datagram arrived and can send out of a
 * chosen interface with a chosen source address: what a DHCP server on a multi-homed host needs
 * and Node's dgram lacks (no IP_PKTINFO, no SO_BINDTODEVICE; see
 * research/deps-dhcp-tftp.md §4.4). A thin typed layer over the native addon in
 * native/udp_pktinfo.c (built by binding.gyp into build/Release/udp_pktinfo.node on `npm ci`).
 *
 * Linux only. Receive buffers hold 4096 bytes: a longer datagram is delivered cut, with
 * `truncated: true`, for the caller to drop.
 */
import { readFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { loadAddon } from '../native.js';

/** Opaque handle of the addon. */
type NativeHandle = object;

type NativeCallback = (
  err: NodeJS.ErrnoException | null,
  data: Buffer,
  fromAddress: string,
  fromPort: number,
  ifindex: number,
  to: string,
  local: string,
  truncated: boolean,
) => void;

interface NativeAddon {
  open(address: string, port: number, device: string | null, cb: NativeCallback): NativeHandle;
  send(handle: NativeHandle, data: Uint8Array, address: string, port: number, ifindex: number, source: string): number;
  close(handle: NativeHandle): void;
  localAddress(handle: NativeHandle): { address: string; port: number };
  readonly RECV_MAX: number;
}

function native(): NativeAddon {
  return loadAddon<NativeAddon>('udp_pktinfo');
}

/** The largest datagram delivered whole; longer ones arrive with `truncated: true`. */
export const PKTINFO_RECV_MAX = 4096;

export interface PktinfoMessage {
  /** The payload (at most PKTINFO_RECV_MAX bytes). */
  data: Buffer;
  from: { address: string; port: number };
  /** The interface the datagram arrived on (IP_PKTINFO ipi_ifindex); 0 if unknown. */
  ifindex: number;
  /** The destination address in the IP header (ipi_addr), e.g. 255.255.255.255 for a broadcast. */
  to: string;
  /**
   * The local address of the arrival interface that a reply should come from (ipi_spec_dst):
   * the interface's address on the sender's subnet, also for broadcasts.
   */
  local: string;
  /** The datagram was longer than PKTINFO_RECV_MAX and `data` is cut: drop it. */
  truncated: boolean;
}

export interface PktinfoSocketOptions {
  /** Dotted-quad IPv4 address to bind; '0.0.0.0' to see 255.255.255.255 broadcasts. */
  address: string;
  /** Port to bind; 0 picks a free one (see `localPort`). */
  port: number;
  /** SO_BINDTODEVICE: receive from and send to this interface only. */
  device?: string;
  /**
   * Receive errors other than EAGAIN/EINTR (rare on an unconnected UDP socket). After one with
   * `syscall: 'recvmsg'` receiving goes on; after one with `syscall: 'poll'` libuv has stopped
   * watching the socket, so close it and open a new one. Without a handler they are dropped.
   */
  onError?: (err: NodeJS.ErrnoException) => void;
}

export interface PktinfoSend {
  data: Uint8Array;
  /** Destination address; 255.255.255.255 is allowed (SO_BROADCAST is on). */
  address: string;
  port: number;
  /** Leave by this interface (ipi_ifindex); 0 or omitted lets routing choose. */
  ifindex?: number;
  /** Source address (ipi_spec_dst); must be local. '0.0.0.0' or omitted lets routing choose. */
  source?: string;
}

export interface PktinfoSocket {
  /** The bound port (the real one when 0 was asked for). */
  readonly localPort: number;
  readonly localAddress: string;
  readonly closed: boolean;
  /**
   * Sends one datagram synchronously. Throws an Error with `code` (e.g. ENETUNREACH, EINVAL,
   * EAGAIN) on failure, and ERR_SOCKET_DGRAM_NOT_RUNNING once closed.
   */
  send(message: PktinfoSend): void;
  /** Stops receiving at once and closes the socket. Safe to call more than once. */
  close(): void;
}

/**
 * Opens the socket: AF_INET UDP, SO_REUSEADDR off (a port clash is an error), SO_BROADCAST and
 * IP_PKTINFO on, optionally SO_BINDTODEVICE, bound to `address:port`. Throws an Error whose
 * `code` names the errno (EADDRINUSE, EACCES, ENODEV, EPERM, …). `onMessage` runs on the event
 * loop for each datagram; an exception thrown by it is an uncaught exception, as in dgram.
 */
export function openPktinfoSocket(options: PktinfoSocketOptions, onMessage: (message: PktinfoMessage) => void): PktinfoSocket {
  const addonApi = native();
  const { onError } = options;
  const handle = addonApi.open(options.address, options.port, options.device ?? null, (err, data, fromAddress, fromPort, ifindex, to, local, truncated) => {
    if (err !== null) {
      onError?.(err);
      return;
    }
    onMessage({ data, from: { address: fromAddress, port: fromPort }, ifindex, to, local, truncated });
  });
  const bound = addonApi.localAddress(handle);
  let closed = false;
  return {
    localPort: bound.port,
    localAddress: bound.address,
    get closed() {
      return closed;
    },
    send({ data, address, port, ifindex = 0, source = '0.0.0.0' }: PktinfoSend): void {
      addonApi.send(handle, data, address, port, ifindex, source);
    },
    close(): void {
      closed = true;
      addonApi.close(handle);
    },
  };
}

/** What DHCP and TFTP use of a socket: the seam their tests replace with an in-process fake. */
export type DatagramSocket = Pick<PktinfoSocket, 'send' | 'close' | 'localPort' | 'localAddress'>;

/** Opens a datagram socket on `address:port` (IP_PKTINFO); throws the errno error as openPktinfoSocket does. */
export type OpenDatagramSocket = (address: string, port: number, onMessage: (message: PktinfoMessage) => void) => DatagramSocket;

export const openDatagramSocket: OpenDatagramSocket = (address, port, onMessage) => openPktinfoSocket({ address, port }, onMessage);

/**
 * Whether a send failed only because the socket's send queue is full (a burst outran the
 * link): EAGAIN/EWOULDBLOCK from a non-blocking sendmsg, or ENOBUFS from a full device queue.
 * The datagram is lost like one dropped on the wire; the socket itself is fine.
 */
export function isSendBusy(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return code === 'EAGAIN' || code === 'EWOULDBLOCK' || code === 'ENOBUFS';
}

export interface InterfaceAddress {
  /** Interface name, e.g. eth0. */
  name: string;
  /** Its first IPv4 address. */
  address: string;
  netmask: string;
  /** Every IPv4 address of the interface, first one first. */
  addresses: { address: string; netmask: string; cidr: string | null }[];
}

/**
 * The IPv4 interfaces of this network namespace by ifindex (read from
 * /sys/class/net/<name>/ifindex), for mapping PktinfoMessage.ifindex to a name and subnet.
 * Interfaces without an IPv4 address, or whose ifindex cannot be read, are left out.
 */
export function interfaceAddresses(): Map<number, InterfaceAddress> {
  const byIndex = new Map<number, InterfaceAddress>();
  for (const [label, infos] of Object.entries(networkInterfaces())) {
    const v4 = (infos ?? []).filter((info) => info.family === 'IPv4');
    const first = v4[0];
    if (first === undefined) continue;
    // getifaddrs reports a labelled secondary address as "eth0:1"; the device is "eth0".
    const name = label.split(':')[0] ?? label;
    const ifindex = readIfindex(name);
    if (ifindex === undefined) continue;
    const addresses = v4.map((info) => ({ address: info.address, netmask: info.netmask, cidr: info.cidr }));
    const known = byIndex.get(ifindex);
    if (known !== undefined) {
      known.addresses.push(...addresses);
      continue;
    }
    byIndex.set(ifindex, { name, address: first.address, netmask: first.netmask, addresses });
  }
  return byIndex;
}

function readIfindex(name: string): number | undefined {
  if (!/^[^/\0]{1,15}$/.test(name) || name === '.' || name === '..') return undefined;
  try {
    const n = Number(readFileSync(`/sys/class/net/${name}/ifindex`, 'utf8').trim());
    return Number.isInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}
