/**
 * The udp_pktinfo addon through src/net/pktinfo-socket.ts, on loopback only: what arrives (payload,
 * source, ifindex, destination), a reply sent with IP_PKTINFO reaching a plain dgram socket,
 * truncation of long datagrams, close() twice, and a port clash named EADDRINUSE.
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import t, { type Test } from 'tap';
import { interfaceAddresses, openPktinfoSocket, PKTINFO_RECV_MAX, type PktinfoMessage, type PktinfoSocket } from '../../src/net/pktinfo-socket.js';

const WAIT_MS = 5_000;
const LO_IFINDEX = Number(readFileSync('/sys/class/net/lo/ifindex', 'utf8').trim());

/** A pktinfo socket on 127.0.0.1:0 whose messages queue up for `next()`. */
function openServer(tt: Test): { sock: PktinfoSocket; next: () => Promise<PktinfoMessage> } {
  const queue: PktinfoMessage[] = [];
  const waiters: ((m: PktinfoMessage) => void)[] = [];
  const sock = openPktinfoSocket({ address: '127.0.0.1', port: 0 }, (m) => {
    const w = waiters.shift();
    if (w) w(m);
    else queue.push(m);
  });
  tt.teardown(() => sock.close());
  return {
    sock,
    next: () =>
      within(
        new Promise<PktinfoMessage>((resolve) => {
          const m = queue.shift();
          if (m) resolve(m);
          else waiters.push(resolve);
        }),
        'a datagram on the pktinfo socket',
      ),
  };
}

/** A plain dgram client on 127.0.0.1:0. */
async function openClient(tt: Test): Promise<Socket> {
  const c = createSocket('udp4');
  tt.teardown(() => new Promise<void>((resolve) => c.close(() => resolve())));
  await new Promise<void>((resolve, reject) => {
    c.once('error', reject);
    c.bind(0, '127.0.0.1', () => resolve());
  });
  return c;
}

function within<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no ${what} within ${WAIT_MS} ms`)), WAIT_MS);
    }),
  ]).finally(() => clearTimeout(timer));
}

function sendFrom(c: Socket, data: Buffer, port: number): Promise<void> {
  return new Promise((resolve, reject) => c.send(data, port, '127.0.0.1', (err) => (err ? reject(err) : resolve())));
}

function nextReply(c: Socket): Promise<{ msg: Buffer; rinfo: RemoteInfo }> {
  return within(new Promise((resolve) => c.once('message', (msg, rinfo) => resolve({ msg, rinfo }))), 'reply on the dgram client');
}

t.test('lo has ifindex 1', async (t) => {
  t.equal(LO_IFINDEX, 1);
});

t.test('a datagram from dgram arrives with its source, lo as ifindex and 127.0.0.1 as destination', async (t) => {
  const { sock, next } = openServer(t);
  t.equal(sock.localAddress, '127.0.0.1');
  t.ok(sock.localPort > 0 && sock.localPort < 65536, `port 0 became a real port (${sock.localPort})`);
  const client = await openClient(t);
  const payload = Buffer.from('hello pktinfo\x00\xff', 'latin1');
  await sendFrom(client, payload, sock.localPort);
  const m = await next();
  t.same(m.data, payload, 'payload byte for byte');
  t.ok(Buffer.isBuffer(m.data), 'payload is a Buffer');
  t.same(m.from, { address: '127.0.0.1', port: client.address().port }, 'source address and port');
  t.equal(m.ifindex, LO_IFINDEX, 'arrived on lo');
  t.equal(m.to, '127.0.0.1', 'header destination (ipi_addr)');
  t.equal(m.local, '127.0.0.1', 'local address of the arrival interface (ipi_spec_dst)');
  t.equal(m.truncated, false);
});

t.test('a reply sent with IP_PKTINFO (lo, source 127.0.0.1) reaches the dgram socket', async (t) => {
  const { sock, next } = openServer(t);
  const client = await openClient(t);
  await sendFrom(client, Buffer.from('ping'), sock.localPort);
  const m = await next();
  const reply = nextReply(client);
  sock.send({ data: Buffer.from('pong'), address: m.from.address, port: m.from.port, ifindex: m.ifindex, source: '127.0.0.1' });
  const r = await reply;
  t.equal(r.msg.toString(), 'pong');
  t.same({ address: r.rinfo.address, port: r.rinfo.port }, { address: '127.0.0.1', port: sock.localPort }, 'from the pktinfo socket');

  // A Uint8Array works as well as a Buffer; ifindex and source may be left to routing.
  const again = nextReply(client);
  sock.send({ data: new Uint8Array([1, 2, 3]), address: '127.0.0.1', port: m.from.port });
  t.same([...(await again).msg], [1, 2, 3]);
});

t.test('several datagrams in a burst all arrive, in order', async (t) => {
  const { sock, next } = openServer(t);
  const client = await openClient(t);
  for (let i = 0; i < 100; i++) await sendFrom(client, Buffer.from(`n${i}`), sock.localPort);
  for (let i = 0; i < 100; i++) {
    const m = await next();
    if (m.data.toString() !== `n${i}`) return t.fail(`datagram ${i} was ${m.data.toString()}`);
  }
  t.pass('100 datagrams in order');
});

t.test(`a datagram longer than ${PKTINFO_RECV_MAX} bytes is cut and flagged`, async (t) => {
  const { sock, next } = openServer(t);
  const client = await openClient(t);
  const exact = Buffer.alloc(PKTINFO_RECV_MAX, 0xab);
  await sendFrom(client, exact, sock.localPort);
  const a = await next();
  t.equal(a.data.length, PKTINFO_RECV_MAX);
  t.equal(a.truncated, false, `${PKTINFO_RECV_MAX} bytes fit`);
  const long = Buffer.alloc(PKTINFO_RECV_MAX + 1000, 0xcd);
  await sendFrom(client, long, sock.localPort);
  const b = await next();
  t.equal(b.truncated, true, 'flagged');
  t.equal(b.data.length, PKTINFO_RECV_MAX, 'cut to the buffer size');
  t.same(b.data, long.subarray(0, PKTINFO_RECV_MAX));
  // The socket goes on receiving after a truncated datagram.
  await sendFrom(client, Buffer.from('after'), sock.localPort);
  t.equal((await next()).data.toString(), 'after');
});

t.test('close() twice is safe; send after close throws; nothing arrives after close', async (t) => {
  let got = 0;
  const sock = openPktinfoSocket({ address: '127.0.0.1', port: 0 }, () => got++);
  const port = sock.localPort;
  t.equal(sock.closed, false);
  sock.close();
  t.doesNotThrow(() => sock.close(), 'second close');
  t.equal(sock.closed, true);
  t.throws(() => sock.send({ data: Buffer.from('x'), address: '127.0.0.1', port: 9 }), { code: 'ERR_SOCKET_DGRAM_NOT_RUNNING' }, 'send on a closed socket');
  // The port is free again as soon as close() returns.
  const again = openPktinfoSocket({ address: '127.0.0.1', port }, () => got++);
  again.close();
  t.equal(got, 0);
});

t.test('close() from inside the message callback stops delivery of the rest of the burst', async (t) => {
  const seen: string[] = [];
  const client = await openClient(t);
  let port = 0;
  const closedInCallback = new Promise<void>((resolve) => {
    const sock = openPktinfoSocket({ address: '127.0.0.1', port: 0 }, (m) => {
      seen.push(m.data.toString());
      sock.close();
      resolve();
    });
    port = sock.localPort;
    t.teardown(() => sock.close());
  });
  for (let i = 0; i < 5; i++) await sendFrom(client, Buffer.from(`b${i}`), port);
  await within(closedInCallback, 'first datagram');
  await new Promise((resolve) => setTimeout(resolve, 50));
  t.same(seen, ['b0'], 'only the first datagram was delivered');
});

t.test('binding a port already bound gives an error naming EADDRINUSE', async (t) => {
  const { sock } = openServer(t);
  t.throws(() => openPktinfoSocket({ address: '127.0.0.1', port: sock.localPort }, () => {}), { code: 'EADDRINUSE', syscall: 'bind', message: /EADDRINUSE/ });
  // SO_REUSEADDR is off: a dgram socket with reuseAddr cannot share the port either.
  const d = createSocket({ type: 'udp4', reuseAddr: true });
  const err = await new Promise<Error | null>((resolve) => {
    d.once('error', resolve);
    d.bind(sock.localPort, '127.0.0.1', () => resolve(null));
  });
  d.close();
  t.match(err, { code: 'EADDRINUSE' }, 'dgram reuseAddr is refused too');
});

t.test('bad arguments are TypeErrors', async (t) => {
  t.throws(() => openPktinfoSocket({ address: 'localhost', port: 0 }, () => {}), TypeError);
  t.throws(() => openPktinfoSocket({ address: '127.0.0.1', port: 70000 }, () => {}), TypeError);
  t.throws(() => openPktinfoSocket({ address: '127.0.0.1', port: 0, device: 'x'.repeat(20) }, () => {}), TypeError);
  const { sock } = openServer(t);
  t.throws(() => sock.send({ data: Buffer.from('x'), address: '127.0.0.1', port: 0 }), TypeError);
  t.throws(() => sock.send({ data: Buffer.from('x'), address: '127.0.0.1', port: 9, source: 'nope' }), TypeError);
});

t.test('SO_BINDTODEVICE to an unknown device names ENODEV', async (t) => {
  t.throws(() => openPktinfoSocket({ address: '127.0.0.1', port: 0, device: 'eb-no-such0' }, () => {}), {
    code: 'ENODEV',
  });
  const sock = openPktinfoSocket({ address: '127.0.0.1', port: 0, device: 'lo' }, () => {});
  t.teardown(() => sock.close());
  t.ok(sock.localPort > 0, 'binding to lo works');
});

t.test('interfaceAddresses() maps lo’s ifindex to lo and 127.0.0.1/255.0.0.0', async (t) => {
  const lo = interfaceAddresses().get(LO_IFINDEX);
  t.match(lo, { name: 'lo', address: '127.0.0.1', netmask: '255.0.0.0' });
  t.ok(lo?.addresses.some((a) => a.cidr === '127.0.0.1/8'));
});
