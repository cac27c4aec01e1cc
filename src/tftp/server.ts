/**
 * The TFTP shell: one listener, requests decoded and checked, each accepted read on its own
 * session socket. Read-only. A bad packet is counted and dropped; nothing a client sends stops
 * the server. stop() keeps the contract of src/protocol.ts: no new request, transfers running
 * finish within the grace or end with an ERROR packet, their records handed over.
 */
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { Config } from '../config/config.js';
import type { Mac } from '../machines/mac.js';
import { openDatagramSocket, type DatagramSocket, type OpenDatagramSocket, type PktinfoMessage } from '../net/pktinfo-socket.js';
import { InFlight, STOP_GRACE_MS, type ProtocolServer } from '../protocol.js';
import { bindError, PRIVILEGED_PORT_FIX } from '../net/bind-error.js';
import { decodePacket, encodeError, ErrorCode, Opcode, type DropReason, type RequestPacket } from './codec.js';
import { bufferContent, fileContent, readWhole, toNetascii, type TftpContent } from './content.js';
import { negotiate } from './options.js';
import { normaliseName, openInRoots } from './roots.js';
import { Session, type SessionCounters, type SessionInfo, type TransferRecord } from './session.js';
import type { Outcome } from './transfer.js';

export type { TransferRecord } from './session.js';

export interface TftpRequest {
  /** The normalised name (relative, `/`-separated). */
  file: string;
  client: { address: string; port: number };
  /** The local address the client sent to. */
  local: string;
}

/** Generated content for a name, or undefined to fall through to the roots. */
export type TftpHandler = (req: TftpRequest) => Buffer | undefined | Promise<Buffer | undefined>;

export interface TftpServerDeps {
  log: Logger;
  /** Names served from code instead of the roots (exact, after normalisation). */
  handlers?: ReadonlyMap<string, TftpHandler>;
  /**
   * Every transfer that ended, probes included, with the client's MAC when `macAt` knew it.
   * A promise returned (the record being written) is waited for by stop().
   */
  onTransfer?: (record: TransferRecord, mac: Mac | undefined) => void | Promise<void>;
  /**
   * The MAC at a client address (a DHCP lease of ours, the neighbour table), for the log lines
   * and records of its transfers: asked once per request, never per block.
   */
  macAt?: (address: string) => Mac | undefined;
  /** Opens the listener; a native IP_PKTINFO socket unless a test gives a fake. */
  openSocket?: OpenDatagramSocket;
  /** How long stop() lets running transfers finish before it ends them (STOP_GRACE_MS). */
  stopGraceMs?: number;
}

type Drop = DropReason | 'oversized' | 'unexpected_on_listener' | 'duplicate_request' | 'handler_error';
type Refusal = 'write' | 'not_found' | 'access' | 'mode' | 'busy' | 'client_busy' | 'netascii_too_large' | 'read_error' | 'socket';

export interface TftpStats {
  requests: number;
  dropped: Partial<Record<Drop, number>>;
  refused: Partial<Record<Refusal, number>>;
  transfers: Partial<Record<Outcome, number>>;
  active: number;
  blocksSent: number;
  bytesSent: number;
  /** Packets a transfer ignored, by reason (duplicate ACKs, stale ACKs, garbage). */
  ignored: Record<string, number>;
}

export interface TftpServer extends ProtocolServer {
  stats(): TftpStats;
}

/** Netascii needs the whole converted file in memory; larger files must be fetched as octet. */
export const NETASCII_MAX_BYTES = 16 * 1024 * 1024;

export function createTftpServer(cfg: Config['tftp'], deps: TftpServerDeps): TftpServer {
  const { log } = deps;
  const limits = { maxBlksize: cfg.maxBlockSize, maxWindowsize: cfg.maxWindowSize, timeoutMs: cfg.timeoutSeconds * 1000 };
  const sessions = new Map<string, Session>();
  /** Transfers running or being opened, by client address (not port): tftp.maxTransfersPerClient. */
  const perClient = new Map<string, number>();
  const holdSlot = (address: string): void => void perClient.set(address, (perClient.get(address) ?? 0) + 1);
  const releaseSlot = (address: string): void => {
    const n = (perClient.get(address) ?? 0) - 1;
    if (n > 0) perClient.set(address, n);
    else perClient.delete(address);
  };
  const counters: SessionCounters = { blocksSent: 0, bytesSent: 0, ignored: {} };
  const s: Omit<TftpStats, 'active' | 'blocksSent' | 'bytesSent' | 'ignored'> = { requests: 0, dropped: {}, refused: {}, transfers: {} };
  let listener: DatagramSocket | undefined;
  let addresses: AddressInfo[] = [];
  let starting = 0;
  let stopping: Promise<void> | undefined;
  /** Requests being opened, transfers running, records being taken: what stop() waits for. */
  const opening = new InFlight();
  const running = new InFlight();
  const recording = new InFlight();

  const drop = (reason: Drop): void => {
    s.dropped[reason] = (s.dropped[reason] ?? 0) + 1;
  };

  const macOf = (address: string): Mac | undefined => {
    try {
      return deps.macAt?.(address);
    } catch (err) {
      log.warn({ client: address, err }, 'tftp client MAC not looked up');
      return undefined;
    }
  };

  /** `mac`: the client's, when the caller looked it up already; else looked up if the line is logged. */
  const refuse = (m: PktinfoMessage, reason: Refusal, code: ErrorCode, message: string, file?: string, mac?: Mac): void => {
    s.refused[reason] = (s.refused[reason] ?? 0) + 1;
    // One client flooding requests would flood the log too: its refusals are counted, and debug.
    const level = reason === 'client_busy' ? 'debug' : 'info';
    if (log.isLevelEnabled(level)) {
      const known = mac ?? macOf(m.from.address);
      log[level]({ client: m.from.address, port: m.from.port, ...(known && { mac: known }), file, reason, message }, 'tftp request refused');
    }
    try {
      // An error to a request may come from the listener's port (RFC 1350 §4 allows any TID).
      listener?.send({ data: encodeError(code, message), address: m.from.address, port: m.from.port, source: m.local });
    } catch (err) {
      log.debug({ client: m.from.address, err }, 'tftp error reply not sent');
    }
  };

  const onEnd = (key: string, mac: Mac | undefined) => (r: TransferRecord) => {
    sessions.delete(key);
    releaseSlot(r.client.address);
    s.transfers[r.outcome] = (s.transfers[r.outcome] ?? 0) + 1;
    const line = {
      client: r.client.address,
      port: r.client.port,
      ...(mac && { mac }),
      file: r.file,
      bytes: r.bytes,
      size: r.size,
      ms: Math.round(r.durationMs),
      blksize: r.blksize,
      windowsize: r.windowsize,
      resent: r.resent,
      outcome: r.outcome,
      error: r.error,
    };
    if (r.outcome === 'complete') log.info(line, 'tftp transfer');
    // A size probe (RFC 2349 tsize, then an abort) is how firmware starts: not a failure.
    else if (r.outcome === 'probe' || r.outcome === 'stopped') log.debug(line, 'tftp transfer ended');
    else log.warn(line, 'tftp transfer failed');
    const recordNotTaken = (err: unknown) => log.error({ err }, 'tftp transfer record not taken');
    try {
      const taking = deps.onTransfer?.(r, mac);
      if (taking) void recording.track(taking.catch(recordNotTaken));
    } catch (err) {
      recordNotTaken(err);
    }
  };

  async function open(m: PktinfoMessage, file: string, netascii: boolean, mac: Mac | undefined): Promise<TftpContent | Refusal> {
    const handler = deps.handlers?.get(file);
    if (handler) {
      const generated = await handler({ file, client: m.from, local: m.local });
      if (generated) return bufferContent(netascii ? toNetascii(generated) : generated);
    }
    try {
      const found = await openInRoots(cfg.roots, file);
      if (!found.ok) {
        if (found.kind === 'not-found') refuse(m, 'not_found', ErrorCode.FileNotFound, 'File not found', file, mac);
        else refuse(m, 'access', ErrorCode.AccessViolation, `Access violation: ${found.reason}`, file, mac);
        return found.kind === 'not-found' ? 'not_found' : 'access';
      }
      if (!netascii) return fileContent(found.file, found.size, found.path);
      const whole = await readWhole(found.file, found.size, NETASCII_MAX_BYTES);
      const converted = whole && toNetascii(whole);
      if (!converted || converted.length > NETASCII_MAX_BYTES) {
        refuse(m, 'netascii_too_large', ErrorCode.NotDefined, `Netascii transfers are limited to ${NETASCII_MAX_BYTES} bytes; ask for octet mode`, file, mac);
        return 'netascii_too_large';
      }
      return bufferContent(converted);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') refuse(m, 'not_found', ErrorCode.FileNotFound, 'File not found', file, mac);
      else if (code === 'EACCES' || code === 'EPERM') refuse(m, 'access', ErrorCode.AccessViolation, 'Access violation: not readable', file, mac);
      else refuse(m, 'read_error', ErrorCode.NotDefined, `Cannot read the file (${code ?? 'error'})`, file, mac);
      return 'read_error';
    }
  }

  async function startTransfer(m: PktinfoMessage, req: RequestPacket): Promise<void> {
    const key = `${m.from.address}:${m.from.port}`;
    if (sessions.size + starting >= cfg.maxTransfers) {
      refuse(m, 'busy', ErrorCode.NotDefined, `Server busy: ${cfg.maxTransfers} transfers running, try again`, req.filename);
      return;
    }
    // One address must not take every slot (600 unanswered requests once did, for 5 s). Error
    // code 0 with a message, as RFC 1350 §5 has for errors it does not name.
    if ((perClient.get(m.from.address) ?? 0) >= cfg.maxTransfersPerClient) {
      refuse(
        m,
        'client_busy',
        ErrorCode.NotDefined,
        `Too many transfers from ${m.from.address}: ${cfg.maxTransfersPerClient} running, try again`,
        req.filename,
      );
      return;
    }
    if (req.mode !== 'octet' && req.mode !== 'netascii') {
      refuse(m, 'mode', ErrorCode.IllegalOperation, `Transfer mode ${JSON.stringify(req.mode)} is not supported (octet, netascii)`, req.filename);
      return;
    }
    const name = normaliseName(req.filename, cfg.roots);
    if (!name.ok) {
      refuse(m, 'access', ErrorCode.AccessViolation, `Access violation: ${name.reason}`, req.filename);
      return;
    }
    starting += 1;
    holdSlot(m.from.address);
    // Once per transfer: its refusal, its end line and its record all carry this MAC.
    const mac = macOf(m.from.address);
    let content: TftpContent | Refusal;
    try {
      content = await open(m, name.relative, req.mode === 'netascii', mac);
    } catch (err) {
      releaseSlot(m.from.address);
      throw err;
    } finally {
      starting -= 1;
    }
    if (typeof content === 'string') {
      releaseSlot(m.from.address);
      return;
    }
    if (!listener || sessions.has(key)) {
      content.close();
      releaseSlot(m.from.address);
      return;
    }
    const info: SessionInfo = { client: m.from, local: m.local, file: name.relative, mode: req.mode, requested: Object.fromEntries(req.options) };
    const negotiated = negotiate(req.options, limits, content.size);
    const session = new Session({ info, content, negotiated, maxRetries: cfg.retries, counters, onEnd: onEnd(key, mac) });
    sessions.set(key, session);
    void running.track(session.done);
    try {
      session.start();
    } catch (err) {
      sessions.delete(key);
      releaseSlot(m.from.address);
      content.close();
      refuse(m, 'socket', ErrorCode.NotDefined, `Cannot open a transfer socket (${(err as NodeJS.ErrnoException).code ?? 'error'})`, name.relative, mac);
    }
  }

  function onMessage(m: PktinfoMessage): void {
    if (m.truncated) return drop('oversized');
    const d = decodePacket(m.data);
    if (!d.ok) return drop(d.reason);
    const p = d.packet;
    if (p.op === Opcode.WRQ) {
      s.requests += 1;
      refuse(m, 'write', ErrorCode.AccessViolation, 'Access violation: this server is read-only', p.filename);
      return;
    }
    if (p.op !== Opcode.RRQ) return drop('unexpected_on_listener');
    s.requests += 1;
    // A client resending its request because our first answer was lost: that transfer answers.
    if (sessions.has(`${m.from.address}:${m.from.port}`)) return drop('duplicate_request');
    void opening.track(
      startTransfer(m, p).catch((err: unknown) => {
        drop('handler_error');
        log.error({ client: m.from.address, file: p.filename, err }, 'tftp request failed');
      }),
    );
  }

  /**
   * The stop contract: the listener closes (no new request; one being opened sees no listener and
   * is not started), running transfers get the grace to finish, then end with an ERROR packet.
   */
  async function drain(): Promise<void> {
    listener?.close();
    listener = undefined;
    addresses = [];
    const graceMs = deps.stopGraceMs ?? STOP_GRACE_MS;
    const started = Date.now();
    await opening.settled(graceMs);
    if (!(await running.settled(Math.max(0, graceMs - (Date.now() - started))))) {
      log.info({ transfers: sessions.size }, 'tftp transfers still running at stop are ended');
      for (const session of [...sessions.values()]) session.cancel('Server shutting down');
    }
    await recording.settled();
  }

  return {
    name: 'tftp',
    get addresses() {
      return addresses;
    },
    async start() {
      if (listener) return;
      const { host, port } = cfg.listen;
      const openSocket = deps.openSocket ?? openDatagramSocket;
      try {
        listener = openSocket(host, port, (m) => {
          try {
            onMessage(m);
          } catch (err) {
            drop('handler_error');
            log.error({ err }, 'tftp packet handling failed');
          }
        });
      } catch (err) {
        throw bindError('TFTP', `UDP ${host}:${port}`, err as Error & { code?: string }, {
          holder: 'another TFTP server (tftpd-hpa, atftpd, dnsmasq with enable-tftp, inetd)',
          inUseFix: 'stop the other server, or set tftp.enabled: false (EDGEBOOT_TFTP_ENABLED=false) and serve /usr/lib/ipxe from it',
          accessFix: `${PRIVILEGED_PORT_FIX}; or set tftp.listen to a port above 1023 (EDGEBOOT_TFTP_LISTEN=0.0.0.0:6969) for clients that can be told it`,
        });
      }
      addresses = [{ address: listener.localAddress, family: 'IPv4', port: listener.localPort }];
    },
    stop() {
      stopping ??= drain();
      return stopping;
    },
    stats() {
      return {
        ...s,
        dropped: { ...s.dropped },
        refused: { ...s.refused },
        transfers: { ...s.transfers },
        active: sessions.size,
        blocksSent: counters.blocksSent,
        bytesSent: counters.bytesSent,
        ignored: { ...counters.ignored },
      };
    },
  };
}
