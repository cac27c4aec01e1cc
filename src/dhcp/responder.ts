import { MIN_MAX_MESSAGE, buildReply, hardwareAddress, ipv4Bytes, type DhcpPacket } from './codec.js';
import { OFFER_HOLD_MS, inSubnet, maskText, type Lease, type LeasePool, type Subnet } from './leases.js';
import {
  MessageType,
  Opt,
  maxMessageSize,
  messageType,
  parameterRequestList,
  relayAgent,
  requestedIp,
  serverId,
  u32,
  u8,
  encodeSubOptions,
  type MessageTypeName,
} from './options.js';
import { chooseBootFile, classifyClient, type BootFile, type BootFileConfig, type PxeClient } from './pxe.js';
import type { PxeAnswer } from '../boot/planner.js';

/** The IP datagram that fits one Ethernet frame. */
const ETHERNET_MAX_MESSAGE = 1500;
/**
 * The DHCP decisions of RFC 2131 §4.3 and of PXE proxyDHCP, as a pure function of the request,
 * where it arrived, the client's reservation and the lease pool. The socket shell sends what it
 * returns and persists the lease changes before it sends.
 */
export interface ResponderConfig {
  mode: 'full' | 'proxy';
  pxeLeaseSeconds: number;
  declineSeconds: number;
  boot: Omit<BootFileConfig, 'httpBase'>;
}

export interface Arrival {
  /** `dhcp`: port 67; `proxy`: the port-4011 boot-server exchange. */
  listener: 'dhcp' | 'proxy';
  /** Our address on the interface the request arrived on: server identifier and next-server. */
  serverAddress: string;
  /** The subnet the client is on: the one that holds giaddr, else the arrival interface's. */
  subnet: Subnet | undefined;
  httpBase: string;
  from: { address: string; port: number };
}

export interface ClientReservation {
  ip?: string;
  hostname?: string;
}

/** What edgeboot's machines say about the client, looked up by the shell before it responds. */
export interface KnownClient {
  /** Full mode: the machine's fixed address and host name. */
  reservation?: ClientReservation;
  /**
   * Proxy mode, for a PXE client: whether edgeboot boots it (the boot planner's pxeAnswer).
   * Absent, a proxy answers nobody: it fails closed.
   */
  pxe?: PxeAnswer;
}

export interface Destination {
  address: string;
  port: number;
  broadcast: boolean;
}

export type Outcome =
  | {
      kind: 'reply';
      type: MessageTypeName;
      packet: Buffer;
      to: Destination;
      client: PxeClient;
      bootFile: BootFile | undefined;
      yiaddr: string;
      /** A NAK's reason, also in its option 56 (cut to 200 bytes there). */
      reason?: string;
      /** Lease changes to persist before sending. */
      save: Lease[];
      remove: string[];
    }
  | { kind: 'silent'; reason: string; client: PxeClient | undefined; save: Lease[]; remove: string[] };

const silent = (reason: string, client?: PxeClient, save: Lease[] = [], remove: string[] = []): Outcome => ({ kind: 'silent', reason, client, save, remove });

const ZERO = '0.0.0.0';

export function respond(req: DhcpPacket, at: Arrival, cfg: ResponderConfig, pool: LeasePool, known: KnownClient, now: number): Outcome {
  if (req.op !== 1) return silent('not a request (op 2)');
  const type = messageType(req.options);
  if (!type) return silent('no message type (BOOTP is not served)');
  const client = classifyClient(req);
  const mac = hardwareAddress(req);
  if (cfg.mode === 'proxy' || at.listener === 'proxy') return proxy(req, type, client, at, cfg, known.pxe);
  const { reservation } = known;
  const s = at.subnet;
  if (!s) return silent('no configured subnet for this interface or relay', client);
  switch (type) {
    case 'discover': {
      // A reservation on another subnet does not apply here (as for REQUEST below).
      const fixed = reservation?.ip !== undefined && inSubnet(s, reservation.ip) ? reservation.ip : undefined;
      const ip = pool.choose(s, mac, now, fixed, requestedIp(req.options));
      if (!ip) return silent(fixed ? `fixed address ${fixed} is not free in ${s.cidr}` : `pool of ${s.cidr} exhausted`, client);
      const lease: Lease = { ip, mac, state: 'offered', expiresAt: now + OFFER_HOLD_MS, ...(reservation?.hostname && { hostname: reservation.hostname }) };
      const bound = pool.get(ip);
      // An address this client holds bound stays bound while it is offered again.
      const keep = bound?.mac === mac && bound.state === 'bound' && bound.expiresAt > now;
      return reply(req, 'offer', ip, client, at, cfg, s, reservation, keep ? [] : [lease], []);
    }
    case 'request': {
      const sid = serverId(req.options);
      const asked = requestedIp(req.options);
      if (sid !== undefined && sid !== at.serverAddress) {
        // SELECTING another server's offer: free ours (RFC 2131 §4.3.2).
        const ours = pool.ofMac(mac);
        return silent(`client chose server ${sid}`, client, [], ours?.state === 'offered' ? [ours.ip] : []);
      }
      const ip = asked ?? (req.ciaddr !== ZERO ? req.ciaddr : undefined);
      if (!ip) return nak(req, 'no requested address', client, at);
      if (!inSubnet(s, ip)) return nak(req, `${ip} is not on ${s.cidr}`, client, at);
      if (reservation?.ip && reservation.ip !== ip && inSubnet(s, reservation.ip)) return nak(req, `this client's address is ${reservation.ip}`, client, at);
      const held = pool.get(ip);
      const mine = held?.mac === mac && held.state !== 'declined';
      if (!mine) {
        if (sid === undefined && !held && !pool.inPool(s, ip) && reservation?.ip !== ip) {
          // INIT-REBOOT or RENEW for an address we have no record of: stay silent (§4.3.2).
          return silent(`no record of ${ip} for ${mac}`, client);
        }
        if (!pool.isFreeFor(ip, mac, now) || (!pool.inPool(s, ip) && reservation?.ip !== ip))
          return nak(req, `${ip} is not available to this client`, client, at);
      }
      const seconds = leaseSecondsFor(client, s, cfg);
      const lease: Lease = { ip, mac, state: 'bound', expiresAt: now + seconds * 1000, ...(reservation?.hostname && { hostname: reservation.hostname }) };
      return reply(req, 'ack', ip, client, at, cfg, s, reservation, [lease], []);
    }
    case 'decline': {
      const ip = requestedIp(req.options);
      if (!ip || serverId(req.options) !== at.serverAddress) return silent('decline for another server', client);
      // RFC 2131 §4.3.3: the address is in use by someone else; quarantine it.
      return silent(`declined ${ip}: quarantined`, client, [{ ip, mac: '', state: 'declined', expiresAt: now + cfg.declineSeconds * 1000 }], []);
    }
    case 'release': {
      const l = pool.get(req.ciaddr);
      if (l?.mac !== mac) return silent(`release of ${req.ciaddr}, which ${mac} does not hold`, client);
      return silent(`released ${req.ciaddr}`, client, [], [req.ciaddr]);
    }
    case 'inform':
      // RFC 2131 §4.3.5: configuration only; no lease, no yiaddr, unicast to ciaddr.
      if (req.ciaddr === ZERO) return silent('inform without ciaddr', client);
      return reply(req, 'ack', ZERO, client, at, cfg, s, reservation, [], [], true);
    default:
      return silent(`${type} is a server message`, client);
  }
}

function leaseSecondsFor(c: PxeClient, s: Subnet, cfg: ResponderConfig): number {
  // PXE firmware and iPXE hold their address for one boot: give back the pool quickly.
  return c.pxe || c.ipxe ? Math.min(cfg.pxeLeaseSeconds, s.leaseSeconds) : s.leaseSeconds;
}

function proxy(req: DhcpPacket, type: MessageTypeName, client: PxeClient, at: Arrival, cfg: ResponderConfig, answer: PxeAnswer | undefined): Outcome {
  if (!client.pxe) return silent('proxy mode answers PXE clients only', client);
  // A proxy answers only the machines edgeboot boots: the others' firmware boots its own disk.
  if (!answer) return silent('no boot decision for this client', client);
  if (!answer.answer) return silent(answer.reason, client);
  const bootFile = chooseBootFile(client, { ...cfg.boot, httpBase: at.httpBase });
  if (bootFile.kind === 'none') return silent(bootFile.reason, client);
  if (at.listener === 'dhcp' && type !== 'discover') return silent('proxy mode answers only DISCOVER on port 67 (never a REQUEST, never a NAK)', client);
  if (at.listener === 'proxy' && type !== 'request') return silent('the boot server answers REQUESTs only', client);
  // On port 67 UEFI firmware and iPXE take the boot file from the port-4011 exchange
  // (qemu-ovmf-proxy-boot.pcap); BIOS PXE ROMs take it from the offer with 43.6 = 8.
  const withFile = at.listener === 'proxy' || client.firmware === 'bios' || client.ipxe;
  const options: [number, Buffer][] = [
    [Opt.MessageType, u8(at.listener === 'proxy' ? MessageType.Ack : MessageType.Offer)],
    [Opt.ServerId, ipv4Bytes(at.serverAddress)],
    [Opt.VendorClass, Buffer.from(bootFile.kind === 'http' && bootFile.vendorClass ? bootFile.vendorClass : 'PXEClient')],
  ];
  const uuid = req.options.get(Opt.ClientUuid);
  if (uuid) options.push([Opt.ClientUuid, uuid]);
  if (withFile && at.listener === 'dhcp' && client.firmware === 'bios' && !client.ipxe) {
    // PXE spec §2.4.5: discovery control bit 3: boot from the file in this packet.
    options.push([Opt.VendorSpecific, encodeSubOptions([[6, u8(8)]])]);
  }
  const file = withFile ? bootFileName(bootFile) : undefined;
  if (file !== undefined) {
    options.push([Opt.BootfileName, Buffer.from(file)]);
    if (bootFile.kind === 'tftp') options.push([Opt.TftpServerName, Buffer.from(at.serverAddress)]);
  }
  const to: Destination = at.listener === 'proxy' ? { address: at.from.address, port: at.from.port, broadcast: false } : destination(req, false);
  return finish(req, at.listener === 'proxy' ? 'ack' : 'offer', ZERO, options, at, client, bootFile, to, file, [], []);
}

function bootFileName(b: BootFile): string | undefined {
  return b.kind === 'tftp' ? b.file : b.kind === 'http' ? b.url : undefined;
}

function reply(
  req: DhcpPacket,
  type: 'offer' | 'ack',
  yiaddr: string,
  client: PxeClient,
  at: Arrival,
  cfg: ResponderConfig,
  s: Subnet,
  r: ClientReservation | undefined,
  save: Lease[],
  remove: string[],
  inform = false,
): Outcome {
  const prl = parameterRequestList(req.options);
  const wanted = (code: number) => prl.length === 0 || prl.includes(code);
  const options: [number, Buffer][] = [
    [Opt.MessageType, u8(type === 'offer' ? MessageType.Offer : MessageType.Ack)],
    [Opt.ServerId, ipv4Bytes(at.serverAddress)],
  ];
  if (!inform) {
    const seconds = leaseSecondsFor(client, s, cfg);
    options.push([Opt.LeaseTime, u32(seconds)], [Opt.RenewalTime, u32(Math.floor(seconds / 2))], [Opt.RebindingTime, u32(Math.floor((seconds * 7) / 8))]);
  }
  if (wanted(Opt.SubnetMask)) options.push([Opt.SubnetMask, ipv4Bytes(maskText(s))]);
  if (s.router && wanted(Opt.Router)) options.push([Opt.Router, ipv4Bytes(s.router)]);
  if (s.dns?.length && wanted(Opt.DnsServers)) options.push([Opt.DnsServers, Buffer.concat(s.dns.map(ipv4Bytes))]);
  if (s.domain && wanted(Opt.DomainName)) options.push([Opt.DomainName, Buffer.from(s.domain)]);
  if (r?.hostname && wanted(Opt.HostName)) options.push([Opt.HostName, Buffer.from(r.hostname)]);
  let bootFile: BootFile | undefined;
  let file: string | undefined;
  if (client.pxe || client.ipxe) {
    bootFile = chooseBootFile(client, { ...cfg.boot, httpBase: at.httpBase });
    file = bootFileName(bootFile);
    if (file !== undefined && bootFile.kind !== 'none') {
      options.push([Opt.VendorClass, Buffer.from(bootFile.kind === 'http' && bootFile.vendorClass ? bootFile.vendorClass : 'PXEClient')]);
      // PXE spec §2.4.5: an offer that says PXEClient without option 43 sends the ROM to boot
      // server discovery on port 4011 (OVMF does: PXE-E16 after a minute). Discovery control
      // bit 3: boot the file named in this packet.
      if (bootFile.kind === 'tftp' && !client.ipxe) options.push([Opt.VendorSpecific, encodeSubOptions([[6, u8(8)]])]);
      if (bootFile.kind === 'tftp') options.push([Opt.TftpServerName, Buffer.from(at.serverAddress)]);
      options.push([Opt.BootfileName, Buffer.from(file)]);
      const uuid = req.options.get(Opt.ClientUuid);
      if (uuid) options.push([Opt.ClientUuid, uuid]);
    }
    // iPXE waits ~3 s for proxyDHCP offers unless told there are none (175.176 no-pxedhcp).
    if (client.ipxe) options.push([Opt.Ipxe, encodeSubOptions([[176, u8(1)]])]);
  }
  const to = inform ? { address: req.ciaddr, port: 68, broadcast: false } : destination(req, false);
  return finish(req, type, yiaddr, options, at, client, bootFile, to, file, save, remove);
}

function nak(req: DhcpPacket, why: string, client: PxeClient, at: Arrival): Outcome {
  const options: [number, Buffer][] = [
    [Opt.MessageType, u8(MessageType.Nak)],
    [Opt.ServerId, ipv4Bytes(at.serverAddress)],
    [Opt.Message, Buffer.from(why.slice(0, 200))],
  ];
  // RFC 2131 §4.3.2: through a relay, set the broadcast bit so the relay broadcasts the NAK.
  const r = req.giaddr !== ZERO ? { ...req, flags: req.flags | 0x8000 } : req;
  const out = finish(r, 'nak', ZERO, options, at, client, undefined, destination(req, true), undefined, [], []);
  return out.kind === 'reply' ? { ...out, reason: why } : out;
}

/** RFC 2131 §4.1: to the relay; else to ciaddr; else broadcast (no ARP injection from Node). */
function destination(req: DhcpPacket, isNak: boolean): Destination {
  if (req.giaddr !== ZERO) return { address: req.giaddr, port: 67, broadcast: false };
  if (!isNak && req.ciaddr !== ZERO) return { address: req.ciaddr, port: 68, broadcast: false };
  return { address: '255.255.255.255', port: 68, broadcast: true };
}

function finish(
  req: DhcpPacket,
  type: MessageTypeName,
  yiaddr: string,
  options: [number, Buffer][],
  at: Arrival,
  client: PxeClient,
  bootFile: BootFile | undefined,
  to: Destination,
  file: string | undefined,
  save: Lease[],
  remove: string[],
): Outcome {
  const agent = relayAgent(req.options);
  const built = buildReply(
    {
      op: 2,
      htype: req.htype,
      hlen: req.hlen,
      hops: 0,
      xid: req.xid,
      secs: 0,
      flags: req.flags,
      ciaddr: type === 'ack' && yiaddr === ZERO ? req.ciaddr : ZERO,
      yiaddr,
      siaddr: file !== undefined && type !== 'nak' ? at.serverAddress : ZERO,
      giaddr: req.giaddr,
      chaddr: req.chaddr,
      ...(file !== undefined && Buffer.byteLength(file) < 128 && { file }),
    },
    options,
    // A client may announce up to 65535 (OVMF: 65280); a reply still has to fit one frame.
    Math.min(maxMessageSize(req.options) ?? MIN_MAX_MESSAGE, ETHERNET_MAX_MESSAGE),
    // RFC 3046 §2.2: echo option 82 unchanged, as the last option.
    agent ? [Opt.RelayAgent, agent.raw] : undefined,
  );
  if (!built.ok) return silent(`reply does not fit: ${built.reason}`, client, [], []);
  return { kind: 'reply', type, packet: built.packet, to, client, bootFile, yiaddr, save, remove };
}
