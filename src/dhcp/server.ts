import type { Logger } from 'pino';
import type { AddressInfo } from 'node:net';
import type { Config } from '../config/config.js';
import { macRefusal, parseMac, parseUuid, type Mac, type Uuid } from '../machines/mac.js';
import type { NewEvent, Observed } from '../machines/model.js';
import { InFlight, STOP_GRACE_MS, type ProtocolServer } from '../protocol.js';
import { bindError, PRIVILEGED_PORT_FIX } from '../net/bind-error.js';
import { isSendBusy, openDatagramSocket, type DatagramSocket, type OpenDatagramSocket, type PktinfoMessage, type PktinfoSend } from '../net/pktinfo-socket.js';
import type { LeaseRepository } from '../store/store.js';
import { decodeDhcp, hardwareAddress, type DhcpPacket, type DropReason } from './codec.js';
import { inSubnet, LeasePool, parseSubnet, type Lease, type Subnet } from './leases.js';
import { messageType } from './options.js';
import { ARCH_NAMES, DEFAULT_BINARIES, classifyClient } from './pxe.js';
import { respond, type KnownClient, type ResponderConfig } from './responder.js';
import type { PxeAnswer } from '../boot/planner.js';
import { IPXE_BIN_PREFIX } from '../urls.js';

export interface NetInterface {
  ifindex: number;
  name: string;
  address: string;
}

export interface DhcpBootHooks {
  observeDhcp(mac: Mac, seen: Omit<Observed, 'lastSeenAt' | 'nics'>, event: NewEvent): Promise<void>;
  reservation(mac: Mac): Promise<{ ip?: string; hostname?: string } | undefined>;
  /** Proxy mode: whether edgeboot boots this PXE client (the boot planner decides, not DHCP). */
  pxeAnswer(client: { mac: Mac; uuid?: Uuid }): Promise<PxeAnswer>;
}

export interface DhcpServerDeps {
  boot: DhcpBootHooks;
  store: Pick<LeaseRepository, 'listLeases' | 'writeLeases'>;
  log: Logger;
  /** Opens each listener on 0.0.0.0 (broadcasts); a native IP_PKTINFO socket unless a test gives a fake. */
  openSocket?: OpenDatagramSocket;
  /** The host's IPv4 interfaces now (re-read when a packet names an unknown ifindex). */
  interfaces: () => NetInterface[];
  /** The HTTP port machines reach (read when a reply is built: HTTP may bind port 0). */
  httpPort: () => number;
  /**
   * The lease table, filled from the store at start; given when others read it too (whose
   * address a request comes from: macAtAddress). A table of the server's own when absent.
   */
  leases?: LeasePool;
  advertiseAddress: string;
  now?: () => number;
  /** How long stop() waits for requests being answered (STOP_GRACE_MS). */
  stopGraceMs?: number;
}

type Drop = DropReason | 'oversized' | 'bad_chaddr' | 'unknown_interface' | 'interface_not_served' | 'handler_error' | 'send_busy' | 'send_failed';

export interface DhcpStats {
  received: Record<string, number>;
  sent: Record<string, number>;
  dropped: Partial<Record<Drop, number>>;
  ignored: number;
}

export interface DhcpServer extends ProtocolServer {
  stats(): DhcpStats;
  leases(): Lease[];
}

/**
 * The DHCP shell: sockets in, the pure responder in the middle, leases journaled to the store
 * (group commit: every lease written before its reply leaves), PXE clients recorded on their
 * machines. A bad packet is counted and dropped; nothing a client sends stops the server.
 * stop() keeps the contract of src/protocol.ts: requests in flight are answered (within the
 * grace), every lease they gave is journaled, then the sockets close.
 */
export function createDhcpServer(cfg: Config['dhcp'], deps: DhcpServerDeps): DhcpServer {
  const now = deps.now ?? Date.now;
  const subnets: Subnet[] = cfg.subnets.map(parseSubnet);
  const responder: ResponderConfig = {
    mode: cfg.mode === 'full' ? 'full' : 'proxy',
    pxeLeaseSeconds: cfg.pxeLeaseSeconds,
    declineSeconds: cfg.declineSeconds,
    boot: { binaries: { ...DEFAULT_BINARIES, 'efi-x86-64': cfg.efiBinary }, httpBinariesPath: IPXE_BIN_PREFIX },
  };
  const stats: DhcpStats = { received: {}, sent: {}, dropped: {}, ignored: 0 };
  const sockets: DatagramSocket[] = [];
  const pool = deps.leases ?? new LeasePool();
  let ifaces = new Map<number, NetInterface>();
  let addresses: AddressInfo[] = [];
  /** No new request is taken; `cancelled`: the grace is over, requests still waiting give up. */
  let stopped = false;
  let cancelled = false;
  let stopping: Promise<void> | undefined;
  const inFlight = new InFlight();
  const journal = groupCommit(deps.store);

  const count = (m: Record<string, number>, k: string) => (m[k] = (m[k] ?? 0) + 1);
  const drop = (reason: Drop, detail?: Record<string, unknown>) => {
    stats.dropped[reason] = (stats.dropped[reason] ?? 0) + 1;
    if (deps.log.isLevelEnabled('debug')) deps.log.debug({ reason, ...detail }, 'dhcp drop');
  };
  /** Sends a reply; a failed send is a counted drop, never an exception out of the handler. */
  const send = (socket: DatagramSocket, out: PktinfoSend, mac: Mac | undefined): boolean => {
    try {
      socket.send(out);
      return true;
    } catch (err) {
      // A burst filled the send queue: the reply is lost as if on the wire, the client retries
      // (RFC 2131 §4.1). Counted, and at most a debug line: thousands may come in a second.
      if (isSendBusy(err)) drop('send_busy', { mac, to: out.address });
      else {
        drop('send_failed');
        const e = err as NodeJS.ErrnoException;
        deps.log.warn({ mac, to: out.address, code: e.code, message: e.message }, 'dhcp reply not sent');
      }
      return false;
    }
  };
  const refreshInterfaces = () => (ifaces = new Map(deps.interfaces().map((i) => [i.ifindex, i])));

  /**
   * What the machines say about a client: in full mode its reservation (which also tells a
   * known MAC); in proxy mode, for a PXE client, whether edgeboot boots it (the planner's
   * answer). Nothing is looked up for the rest: a proxy ignores them anyway.
   */
  async function knownClient(req: DhcpPacket, mac: Mac): Promise<KnownClient> {
    if (responder.mode === 'full') return { reservation: await deps.boot.reservation(mac) };
    const client = classifyClient(req);
    if (!client.pxe) return {};
    const uuid = client.uuid === undefined ? undefined : parseUuid(client.uuid);
    return { pxe: await deps.boot.pxeAnswer({ mac, ...(uuid && { uuid }) }) };
  }

  async function handle(listener: 'dhcp' | 'proxy', m: PktinfoMessage, socket: DatagramSocket): Promise<void> {
    if (m.truncated) {
      drop('oversized', { from: m.from.address });
      return;
    }
    const d = decodeDhcp(m.data);
    if (!d.ok) {
      drop(d.reason, { from: m.from.address });
      return;
    }
    const req = d.value;
    let iface = ifaces.get(m.ifindex);
    iface ??= refreshInterfaces().get(m.ifindex);
    if (!iface) {
      drop('unknown_interface', { ifindex: m.ifindex });
      return;
    }
    if (cfg.interfaces.length > 0 && !cfg.interfaces.includes(iface.name)) {
      drop('interface_not_served', { interface: iface.name });
      return;
    }
    count(stats.received, messageType(req.options) ?? 'unknown');
    // The interface's address on the client's subnet (an interface may carry several).
    const ours = m.local !== '0.0.0.0' && m.local !== '' ? m.local : iface.address;
    const clientAt = req.giaddr !== '0.0.0.0' ? req.giaddr : ours;
    const subnet = subnets.find((s) => inSubnet(s, clientAt));
    const mac = parseMac(hardwareAddress(req));
    // chaddr is the client's own address (RFC 2131 §2); an all-zero or group (multicast,
    // broadcast) Ethernet address is no client's: answering it would record no machine.
    if (mac && req.htype === 1 && macRefusal(mac)) {
      drop('bad_chaddr', { from: m.from.address, chaddr: mac });
      return;
    }
    const known = mac ? await knownClient(req, mac) : {};
    if (cancelled) return;
    const httpHost = deps.advertiseAddress === 'auto' ? ours : deps.advertiseAddress;
    const out = respond(
      req,
      { listener, serverAddress: ours, subnet, httpBase: `http://${httpHost}:${deps.httpPort()}`, from: m.from },
      responder,
      pool,
      known,
      now(),
    );
    for (const ip of out.remove) pool.remove(ip);
    for (const l of out.save) pool.put(l);
    const durable = out.save.filter((l) => l.state !== 'offered');
    if (durable.length > 0 || out.remove.length > 0) await journal(durable, out.remove);
    if (out.kind === 'silent') {
      stats.ignored++;
      if (deps.log.isLevelEnabled('debug')) deps.log.debug({ mac, reason: out.reason, listener }, 'dhcp request not answered');
    } else if (send(socket, { data: out.packet, address: out.to.address, port: out.to.port, ifindex: iface.ifindex, source: ours }, mac)) {
      count(stats.sent, out.type);
      const bootFile = out.bootFile?.kind === 'none' ? undefined : out.bootFile;
      deps.log.info(
        { mac, type: out.type, yiaddr: out.yiaddr, interface: iface.name, bootFile, ...(out.reason !== undefined && { reason: out.reason }) },
        'dhcp reply',
      );
    }
    const c = out.client;
    // PXE clients are recorded on their machines; any other client's NAK only on a machine it has.
    const nakOfKnown = out.kind === 'reply' && out.type === 'nak' && known.reservation !== undefined;
    if (mac && c && (c.pxe || c.ipxe || nakOfKnown)) {
      const seen: Omit<Observed, 'lastSeenAt' | 'nics'> = {
        ...(c.archs[0] !== undefined && { arch: ARCH_NAMES[c.archs[0]] ?? String(c.archs[0]) }),
        ...(c.vendorClass && { vendorClass: c.vendorClass }),
        ...(c.uuid && { uuid: c.uuid }),
      };
      const event: NewEvent =
        out.kind === 'reply'
          ? {
              type: `dhcp-${out.type}`,
              source: 'dhcp',
              ...(out.reason !== undefined && { message: out.reason }),
              data: { listener, interface: iface.name, yiaddr: out.yiaddr, bootFile: out.bootFile ?? null, ipxe: c.ipxe },
            }
          : { type: 'dhcp-ignored', source: 'dhcp', message: out.reason, data: { listener, interface: iface.name } };
      const recorded = deps.boot.observeDhcp(mac, seen, event);
      void inFlight.track(recorded.catch((err: unknown) => deps.log.warn({ mac, err }, 'could not record the DHCP client on its machine')));
    }
  }

  const onMessage = (listener: 'dhcp' | 'proxy', socketRef: () => DatagramSocket | undefined) => (m: PktinfoMessage) => {
    const socket = socketRef();
    if (!socket || stopped) return;
    void inFlight.track(
      handle(listener, m, socket).catch((err: unknown) => {
        drop('handler_error');
        deps.log.error({ err, from: m.from.address }, 'dhcp request failed');
      }),
    );
  };

  function open(listener: 'dhcp' | 'proxy', port: number): void {
    let socket: DatagramSocket | undefined;
    try {
      socket = (deps.openSocket ?? openDatagramSocket)(
        '0.0.0.0',
        port,
        onMessage(listener, () => socket),
      );
    } catch (err) {
      throw bindError('DHCP', `UDP port ${port}`, err as Error & { code?: string }, {
        holder: 'another DHCP server (dnsmasq, dhcpd, kea)',
        inUseFix:
          'stop the other server, or set dhcp.mode: proxy beside it (EDGEBOOT_DHCP_MODE=proxy) — in proxy mode edgeboot still needs port 67 to itself on this host',
        accessFix: PRIVILEGED_PORT_FIX,
      });
    }
    sockets.push(socket);
    addresses.push({ address: '0.0.0.0', family: 'IPv4', port });
  }

  /** The stop contract: no new request, the ones in flight answered (bounded), their leases journaled, sockets closed. */
  async function drain(): Promise<void> {
    stopped = true;
    if (!(await inFlight.settled(deps.stopGraceMs ?? STOP_GRACE_MS))) {
      cancelled = true;
      deps.log.warn({ requests: inFlight.size }, 'dhcp stopped with requests still waiting on the store or the boot planner; they are dropped');
    }
    await journal.flush();
    for (const s of sockets.splice(0)) s.close();
    addresses = [];
  }

  return {
    name: 'dhcp',
    get addresses() {
      return addresses;
    },
    async start() {
      if (cfg.mode === 'off') return;
      pool.reset(await deps.store.listLeases());
      refreshInterfaces();
      try {
        open('dhcp', cfg.listenPort);
        if (cfg.mode === 'proxy') open('proxy', cfg.proxyPort);
      } catch (err) {
        for (const s of sockets.splice(0)) s.close();
        addresses = [];
        throw err;
      }
    },
    stop() {
      stopping ??= drain();
      return stopping;
    },
    stats: () => stats,
    leases: () => pool.all(),
  };
}

/** Batches lease writes of one event-loop turn into one transaction (one fsync). */
interface Batch {
  save: Lease[];
  remove: string[];
  waiters: { resolve: () => void; reject: (e: unknown) => void }[];
}

interface Journal {
  (save: Lease[], remove: string[]): Promise<void>;
  /** Writes the batch not yet written and resolves once every write has ended. */
  flush(): Promise<void>;
}

function groupCommit(store: Pick<LeaseRepository, 'writeLeases'>): Journal {
  let batch: Batch | undefined;
  const writing = new InFlight();
  const commit = (b: Batch): void => {
    if (batch === b) batch = undefined;
    // flush() may have written this batch before its setImmediate came.
    const waiters = b.waiters.splice(0);
    if (waiters.length === 0) return;
    void writing.track(
      store.writeLeases(b.save, b.remove).then(
        () => waiters.forEach((w) => w.resolve()),
        (err: unknown) => waiters.forEach((w) => w.reject(err)),
      ),
    );
  };
  const write = (save: Lease[], remove: string[]): Promise<void> =>
    new Promise((resolve, reject) => {
      if (!batch) {
        const b: Batch = { save: [], remove: [], waiters: [] };
        batch = b;
        setImmediate(() => commit(b));
      }
      batch.save.push(...save);
      batch.remove.push(...remove);
      batch.waiters.push({ resolve, reject });
    });
  return Object.assign(write, {
    async flush(): Promise<void> {
      if (batch) commit(batch);
      await writing.settled();
    },
  });
}
