/**
 * DHCP's stop under load (the stop contract of src/protocol.ts): full mode over a real SQLite
 * store, 60 clients' REQUESTs in flight (each waiting on its reservation lookup, then on a slow
 * group commit) when stop() is called. After stop() resolves nothing of the server runs: no
 * lookup, no lease write, no send; every client ACKed has its lease in the store, reopened from
 * disk. With a lookup that outlives the grace, stop() resolves after the grace and the late
 * request neither writes nor answers.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { checkConfig } from '../../src/config/load.js';
import { createDhcpServer, type DhcpServer } from '../../src/dhcp/server.js';
import { createLogger } from '../../src/log.js';
import type { PktinfoMessage } from '../../src/net/pktinfo-socket.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import type { Lease } from '../../src/store/lease.js';
import { DHCP_TYPE, decodeOrThrow, encodeRequest, opt } from '../helpers/dhcp-packets.js';

/** A subtest's `t` (the last overload of t.test takes the callback alone). */
type Test = Parameters<Parameters<typeof t.test>[0]>[0];

const SERVER = '10.77.0.1';
const CLIENTS = 60;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const macOf = (i: number) => `52:54:00:17:00:${i.toString(16).padStart(2, '0')}`;

interface Harness {
  dhcp: DhcpServer;
  dbPath: string;
  /** Replies sent, decoded. */
  replies: { type: number | undefined; mac: string; yiaddr: string }[];
  /** Calls into the store, the boot hooks or the socket, counted while `watching`. */
  late: string[];
  watch(): void;
  deliver(data: Buffer): void;
  closeStore(): Promise<void>;
}

async function harness(t: Test, lookupMs: () => number, stopGraceMs?: number): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), 'edgeboot-dhcp-stop-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const dbPath = join(dir, 'edgeboot.db');
  const store = openSqliteStore({ path: dbPath });
  const config = checkConfig({ dhcp: { mode: 'full', subnets: [{ cidr: '10.77.0.0/24', pool: ['10.77.0.100', '10.77.0.199'], router: SERVER }] } });
  const late: string[] = [];
  let watching = false;
  const touch = (what: string) => watching && late.push(what);
  const replies: Harness['replies'] = [];
  let onMessage: ((m: PktinfoMessage) => void) | undefined;
  let closed = false;
  const dhcp = createDhcpServer(config.dhcp, {
    boot: {
      observeDhcp: async () => void touch('observeDhcp'),
      reservation: async () => {
        await sleep(lookupMs());
        touch('reservation resumed');
        return undefined;
      },
      pxeAnswer: () => Promise.reject(new Error('not asked in full mode')),
    },
    store: {
      listLeases: () => store.listLeases(),
      // A slow disk: every group commit takes 40 ms.
      writeLeases: async (save: readonly Lease[], remove: readonly string[]) => {
        touch('writeLeases');
        await sleep(40);
        await store.writeLeases(save, remove);
      },
    },
    log: createLogger('silent'),
    openSocket: (address, port, cb) => {
      onMessage = cb;
      return {
        localPort: port,
        localAddress: address,
        send: (out) => {
          touch('send');
          if (closed) throw Object.assign(new Error('socket closed'), { code: 'ERR_SOCKET_DGRAM_NOT_RUNNING' });
          const p = decodeOrThrow(Buffer.from(out.data));
          replies.push({ type: p.options.get(53)?.[0], mac: p.chaddr.subarray(0, 6).toString('hex'), yiaddr: p.yiaddr });
        },
        close: () => void (closed = true),
      };
    },
    interfaces: () => [{ ifindex: 2, name: 'eth0', address: SERVER }],
    httpPort: () => 8080,
    advertiseAddress: 'auto',
    ...(stopGraceMs !== undefined && { stopGraceMs }),
  });
  await dhcp.start();
  return {
    dhcp,
    dbPath,
    replies,
    late,
    watch: () => void (watching = true),
    deliver: (data) => onMessage?.({ data, from: { address: '0.0.0.0', port: 68 }, ifindex: 2, to: '255.255.255.255', local: SERVER, truncated: false }),
    closeStore: () => store.close(),
  };
}

const discover = (i: number) => encodeRequest({ type: DHCP_TYPE.discover, mac: macOf(i), xid: 0x1700 + i });
const requestFor = (i: number, ip: string) =>
  encodeRequest({
    type: DHCP_TYPE.request,
    mac: macOf(i),
    xid: 0x1700 + i,
    options: [
      [50, opt.ip(ip)],
      [54, opt.ip(SERVER)],
    ],
  });

async function offers(h: Harness): Promise<Map<number, string>> {
  for (let i = 0; i < CLIENTS; i++) h.deliver(discover(i));
  for (let n = 0; n < 500 && h.replies.length < CLIENTS; n++) await sleep(10);
  const byClient = new Map<number, string>();
  for (let i = 0; i < CLIENTS; i++) {
    const offer = h.replies.find((r) => r.type === DHCP_TYPE.offer && r.mac === macOf(i).replaceAll(':', ''));
    if (offer) byClient.set(i, offer.yiaddr);
  }
  return byClient;
}

t.test('stop() with 60 REQUESTs in flight: every ACKed lease is on disk, nothing runs after', async (t) => {
  const h = await harness(t, () => 5 + Math.floor(Math.random() * 30));
  const offered = await offers(h);
  t.equal(offered.size, CLIENTS, 'every client was offered an address');
  h.replies.length = 0;
  for (const [i, ip] of offered) h.deliver(requestFor(i, ip));
  await h.dhcp.stop();
  h.watch();
  const acks = h.replies.filter((r) => r.type === DHCP_TYPE.ack);
  t.equal(acks.length, CLIENTS, 'every request in flight at stop() was answered before it resolved');
  h.deliver(discover(200));
  await sleep(300);
  t.same(h.late, [], 'after stop() resolved: no lookup, no lease write, no send, not even for a new datagram');
  await h.closeStore();
  const reopened = openSqliteStore({ path: h.dbPath });
  t.teardown(() => reopened.close());
  const leases = await reopened.listLeases();
  for (const ack of acks) {
    const lease = leases.find((l) => l.ip === ack.yiaddr);
    t.ok(lease?.state === 'bound' && lease.mac.replaceAll(':', '') === ack.mac, `lease ${ack.yiaddr} of ${ack.mac} is in the reopened store`);
  }
  t.equal(leases.filter((l) => l.state === 'bound').length, CLIENTS, 'and nothing else is bound');
  await h.dhcp.stop();
  t.pass('a second stop() resolves too');
});

t.test('a request still waiting after the grace is dropped: stop() resolves, the request later writes and sends nothing', async (t) => {
  let slow = false;
  const h = await harness(t, () => (slow ? 1_000 : 1), 100);
  const offered = await offers(h);
  h.replies.length = 0;
  slow = true;
  const [first] = offered;
  t.ok(first, 'one client has an offer');
  if (!first) return;
  h.deliver(requestFor(first[0], first[1]));
  const since = Date.now();
  await h.dhcp.stop();
  const took = Date.now() - since;
  h.watch();
  t.ok(took >= 90, `stop() resolved after the grace (${took} ms), and before the lookup ended: see h.late below`);
  await sleep(1_300);
  t.same(h.late, ['reservation resumed'], 'the late lookup ended, and the request wrote and sent nothing');
  t.same(h.replies, [], 'no ACK for it');
  await h.closeStore();
});
