/**
 * A lossy UDP relay for TFTP on loopback: clients send their request to `port`; each client
 * (address and port) gets its own relay socket, which forwards the request to the server's
 * listener, learns the server's transfer port from the first reply, and then carries the
 * transfer both ways — so the client sees a transfer port other than the one it asked, as with
 * a real server. Packets of the transfer are dropped with probability `drop` and sent twice
 * (the copy a few milliseconds later, so it may also arrive out of order) with probability
 * `dup`, in both directions, decided by a seeded PRNG. Requests (what arrives on `port`) are
 * never dropped or duplicated, and neither is the option handshake (the OACK, and ACK 0 before
 * any DATA): atftp 0.8 aborts the transfer on a second OACK ("unexpected OACK"), which a
 * duplicated OACK, or an OACK the server resends because ACK 0 was lost, would be.
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { prng } from './dhcp-mutate.js';

export interface LossyRelayOptions {
  /** The server's listener port on 127.0.0.1. */
  serverPort: number;
  seed: number;
  drop: number;
  dup: number;
}

export interface RelayCounts {
  requests: number;
  toServer: number;
  toClient: number;
  dropped: { toServer: number; toClient: number };
  duplicated: { toServer: number; toClient: number };
}

export interface LossyRelay {
  port: number;
  counts: RelayCounts;
  close(): Promise<void>;
}

interface Leg {
  sock: Socket;
  client: { address: string; port: number };
  /** The server's transfer port, once a reply came from it. */
  serverTid: number | undefined;
  /** A DATA packet went to the client: the option handshake is over. */
  sawData: boolean;
}

const OACK = 6;
const DATA = 3;
const ACK = 4;
const opcode = (msg: Buffer): number => (msg.length >= 2 ? msg.readUInt16BE(0) : -1);

function bind(): Promise<Socket> {
  const sock = createSocket('udp4');
  return new Promise((resolve, reject) => {
    sock.once('error', reject);
    sock.bind(0, '127.0.0.1', () => {
      sock.removeListener('error', reject);
      // A send to a closed port comes back as ECONNREFUSED on some kernels' next call: not ours.
      sock.on('error', () => undefined);
      resolve(sock);
    });
  });
}

export async function startLossyRelay(o: LossyRelayOptions): Promise<LossyRelay> {
  const r = prng(o.seed);
  const counts: RelayCounts = { requests: 0, toServer: 0, toClient: 0, dropped: { toServer: 0, toClient: 0 }, duplicated: { toServer: 0, toClient: 0 } };
  const legs = new Map<string, Leg>();
  const pending = new Set<NodeJS.Timeout>();
  const front = await bind();
  let closed = false;

  const send = (sock: Socket, msg: Buffer, port: number): void => {
    if (closed) return;
    sock.send(msg, port, '127.0.0.1', () => undefined);
  };

  /** Forwards one transfer packet, maybe dropped, maybe twice. */
  const lossy = (leg: Leg, msg: Buffer, port: number, way: 'toServer' | 'toClient'): void => {
    const sock = leg.sock;
    const op = opcode(msg);
    if (way === 'toClient' && op === DATA) leg.sawData = true;
    const handshake = op === OACK || (op === ACK && !leg.sawData && msg.length >= 4 && msg.readUInt16BE(2) === 0);
    if (handshake) {
      counts[way] += 1;
      send(sock, msg, port);
      return;
    }
    if (r.int(1_000_000) < o.drop * 1_000_000) {
      counts.dropped[way] += 1;
      return;
    }
    counts[way] += 1;
    send(sock, msg, port);
    if (r.int(1_000_000) < o.dup * 1_000_000) {
      counts.duplicated[way] += 1;
      const copy = Buffer.from(msg);
      const timer = setTimeout(() => {
        pending.delete(timer);
        send(sock, copy, port);
      }, r.int(4));
      pending.add(timer);
    }
  };

  const openLeg = async (client: RemoteInfo): Promise<Leg> => {
    const leg: Leg = { sock: await bind(), client: { address: client.address, port: client.port }, serverTid: undefined, sawData: false };
    leg.sock.on('message', (msg, from) => {
      if (from.port === leg.client.port && from.address === leg.client.address) {
        // Client to server: to the transfer port once known (before that, the client can only be
        // resending its request, which goes to the listener unharmed).
        if (leg.serverTid === undefined) send(leg.sock, msg, o.serverPort);
        else lossy(leg, msg, leg.serverTid, 'toServer');
        return;
      }
      // Server to client. An ERROR refusing the request comes from the listener itself.
      if (leg.serverTid === undefined && from.port !== o.serverPort) leg.serverTid = from.port;
      lossy(leg, msg, leg.client.port, 'toClient');
    });
    return leg;
  };

  const opening = new Map<string, Promise<Leg>>();
  front.on('message', (msg, from) => {
    counts.requests += 1;
    const key = `${from.address}:${from.port}`;
    const leg = legs.get(key);
    if (leg) {
      send(leg.sock, msg, o.serverPort);
      return;
    }
    let p = opening.get(key);
    if (!p) {
      p = openLeg(from).then((l) => {
        legs.set(key, l);
        opening.delete(key);
        return l;
      });
      opening.set(key, p);
    }
    void p.then((l) => send(l.sock, msg, o.serverPort));
  });

  return {
    port: front.address().port,
    counts,
    async close() {
      closed = true;
      for (const timer of pending) clearTimeout(timer);
      await Promise.all(opening.values());
      const all = [front, ...[...legs.values()].map((l) => l.sock)];
      await Promise.all(all.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    },
  };
}
