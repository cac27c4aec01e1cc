/**
 * The udp_pktinfo socket on a real multi-homed host, built from network namespaces: one server
 * namespace with two veth links to two client namespaces on two subnets.
 *
 *   client A  10.201.1.2/24 (ca) ──veth── (sa) 10.201.1.1/24 ┐
 *                                                           ├ server: binds 0.0.0.0:67
 *   client B  10.201.2.2/24 (cb) ──veth── (sb) 10.201.2.1/24 ┘
 *
 * Each client binds 0.0.0.0:68 and broadcasts to 255.255.255.255:67, as DHCP clients do; the server
 * answers every datagram to 255.255.255.255:68 out of the arrival interface (IP_PKTINFO ipi_ifindex) with that
 * interface's own address as source (ipi_spec_dst), the way a DHCP server must. Each client has to
 * get exactly one reply, from the server's address on its own subnet, and never the other's (both
 * listen on the same port, so a reply sent out of the wrong interface would be seen).
 *
 * Needs root and iproute2 (`ip netns`). All traffic stays inside the namespaces, whose names are
 * unique to this process (eb-pk-<pid>-<n>); they are deleted in teardown (and on process exit)
 * even when the test fails, and the test ends by checking `ip netns list` for leftovers.
 *
 * The server and the clients are Node child processes started with `ip netns exec`. The server
 * imports src/net/pktinfo-socket.ts through the TypeScript loader the tests run under (tsx, package.json's
 * tap node-arg), so it does not depend on dist/ being built or fresh; the clients use plain dgram.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import t from 'tap';
import { createLab, netnsList, netnsSkip, type Lab } from '../helpers/netns.js';

const WAIT_MS = 5_000;
const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const TS_LOADER = import.meta.resolve('tsx');
const WRAPPER = pathToFileURL(`${REPO_ROOT}src/net/pktinfo-socket.ts`).href;

// The DHCP ports: free inside namespaces of our own, whatever the host runs.
const SERVER_PORT = 67;
const CLIENT_PORT = 68;

const skip = netnsSkip();

/**
 * Runs `node <args>` inside `ns`; `done` resolves with stdout once it exits 0, within `ms`.
 * `lines` sees each stdout line as it comes.
 */
function nodeIn(lab: Lab, ns: string, args: string[], ms: number, lines: (line: string) => void = () => {}): { child: ChildProcess; done: Promise<string> } {
  const bg = lab.start(ns, [process.execPath, ...args]);
  let stdout = '';
  let partial = '';
  bg.child.stdout?.on('data', (d: string) => {
    stdout += d;
    partial += d;
    let nl: number;
    while ((nl = partial.indexOf('\n')) >= 0) {
      lines(partial.slice(0, nl));
      partial = partial.slice(nl + 1);
    }
  });
  const done = new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      bg.child.kill('SIGKILL');
      reject(new Error(`node in ${ns} did not exit within ${ms} ms; output: ${bg.output()}`));
    }, ms);
    void bg.exited.then(({ code, signal }) => {
      clearTimeout(timer);
      if (code === 0) resolve(stdout);
      else reject(new Error(`node in ${ns} exited ${code ?? signal}; output: ${bg.output()}`));
    });
  });
  return { child: bg.child, done };
}

/**
 * The server: binds 0.0.0.0:67 with the addon, prints {ready, port, interfaces}, then for each
 * datagram prints what arrived and answers JSON {nonce, ifindex, name, local, source} to
 * 255.255.255.255:<sender's port> out of the arrival interface from that interface's address.
 * It is killed in teardown, and exits after 20 s on its own in any case.
 */
const SERVER_JS = `
import { openPktinfoSocket, interfaceAddresses } from ${JSON.stringify(WRAPPER)};
const ifaces = interfaceAddresses();
const sock = openPktinfoSocket({ address: '0.0.0.0', port: ${SERVER_PORT} }, (m) => {
  const iface = ifaces.get(m.ifindex);
  let nonce = null;
  try { nonce = JSON.parse(m.data.toString()).nonce; } catch {}
  const reply = { nonce, ifindex: m.ifindex, name: iface?.name ?? null, local: m.local, source: iface?.address ?? null };
  console.log(JSON.stringify({ got: { from: m.from, ifindex: m.ifindex, to: m.to, local: m.local, truncated: m.truncated, nonce } }));
  if (!iface) return;
  sock.send({ data: Buffer.from(JSON.stringify(reply)), address: '255.255.255.255', port: m.from.port, ifindex: m.ifindex, source: iface.address });
});
console.log(JSON.stringify({ ready: true, port: sock.localPort, interfaces: [...ifaces].map(([i, v]) => ({ ifindex: i, name: v.name, address: v.address })) }));
setTimeout(() => { sock.close(); process.exit(0); }, 20000).unref();
setInterval(() => {}, 1000);
`;

/**
 * A client: binds 0.0.0.0:68 (a socket on a unicast address gets no limited broadcasts) and
 * prints "bound"; on a line on stdin sends one broadcast {nonce} to the server port, then
 * collects every datagram until 1 s after the first reply (or 4 s with none) and prints them as
 * JSON. Both clients are bound before either sends, so neither can miss a stray reply.
 */
function clientJs(serverPort: number, nonce: string): string {
  return `
const dgram = require('node:dgram');
const s = dgram.createSocket('udp4');
const got = [];
let timer;
function finish() { console.log(JSON.stringify(got)); s.close(); process.stdin.destroy(); }
s.on('message', (msg, rinfo) => {
  got.push({ text: msg.toString(), address: rinfo.address, port: rinfo.port });
  if (got.length === 1) { clearTimeout(timer); timer = setTimeout(finish, 1000); }
});
s.bind(${CLIENT_PORT}, '0.0.0.0', () => {
  s.setBroadcast(true);
  console.log('bound');
});
process.stdin.once('data', () => {
  timer = setTimeout(finish, 4000);
  s.send(JSON.stringify({ nonce: ${JSON.stringify(nonce)} }), ${serverPort}, '255.255.255.255', (err) => { if (err) { console.error(err); process.exit(2); } });
});
`;
}

interface Reply {
  nonce: string | null;
  ifindex: number;
  name: string | null;
  local: string;
  source: string | null;
}

interface Received {
  text: string;
  address: string;
  port: number;
}

t.test('replies leave by the arrival interface with that interface’s address', { skip }, async (t) => {
  if (!existsSync(`${REPO_ROOT}build/Release/udp_pktinfo.node`)) throw new Error('the udp_pktinfo addon is not built (npm ci builds it)');
  const lab = createLab(t, 'pk');
  const started = Date.now();
  const NS = { server: lab.netns('server'), a: lab.netns('client-a'), b: lab.netns('client-b') };
  // The veth pairs are created inside the server namespace, the peer end moved straight into
  // the client namespace: nothing touches the host's own namespace.
  lab.veth({ ns: NS.server, dev: 'sa' }, { ns: NS.a, dev: 'ca' });
  lab.veth({ ns: NS.server, dev: 'sb' }, { ns: NS.b, dev: 'cb' });
  lab.ipIn(NS.server, 'addr', 'add', '10.201.1.1/24', 'dev', 'sa');
  lab.ipIn(NS.server, 'addr', 'add', '10.201.2.1/24', 'dev', 'sb');
  lab.ipIn(NS.a, 'addr', 'add', '10.201.1.2/24', 'dev', 'ca');
  lab.ipIn(NS.b, 'addr', 'add', '10.201.2.2/24', 'dev', 'cb');
  // A client sends to 255.255.255.255 with no interface named: it needs a route for that.
  lab.ipIn(NS.a, 'route', 'add', 'default', 'dev', 'ca');
  lab.ipIn(NS.b, 'route', 'add', 'default', 'dev', 'cb');
  // The server gets no default route at all: only IP_PKTINFO can steer a limited broadcast.
  const ifindex = (ns: string, dev: string): number => {
    const m = /^(\d+):/.exec(lab.ipIn(ns, '-o', 'link', 'show', 'dev', dev));
    return Number(m?.[1]);
  };
  const sa = ifindex(NS.server, 'sa');
  const sb = ifindex(NS.server, 'sb');
  t.not(sa, sb, 'two distinct server interfaces');
  t.comment(`namespaces up in ${Date.now() - started} ms (sa=${sa}, sb=${sb})`);

  // The server, in its namespace, through the tests' TypeScript loader.
  const server = nodeIn(lab, NS.server, [`--import=${TS_LOADER}`, '--input-type=module', '-e', SERVER_JS], 30_000);
  server.done.catch(() => {}); // it is killed in teardown; a failure to start shows below
  const serverLines: Record<string, unknown>[] = [];
  const ready = new Promise<{ port: number; interfaces: { ifindex: number; name: string; address: string }[] }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server not ready within ${WAIT_MS * 3} ms`)), WAIT_MS * 3);
    let buf = '';
    server.child.stdout?.on('data', (d: string) => {
      buf += d;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = JSON.parse(buf.slice(0, nl)) as Record<string, unknown>;
        buf = buf.slice(nl + 1);
        serverLines.push(line);
        if (line.ready === true) {
          clearTimeout(timer);
          resolve(line as never);
        }
      }
    });
    server.done.catch((err: unknown) => {
      clearTimeout(timer);
      reject(err instanceof Error ? err : new Error(String(err)));
    });
  });
  const { port, interfaces } = await ready;
  t.equal(port, SERVER_PORT, `server bound 0.0.0.0:${port}`);
  // interfaceAddresses() inside the server namespace: lo, sa and sb with their ifindexes.
  t.same(
    interfaces.filter((i) => i.name !== 'lo').sort((x, y) => x.ifindex - y.ifindex),
    [
      { ifindex: sa, name: 'sa', address: '10.201.1.1' },
      { ifindex: sb, name: 'sb', address: '10.201.2.1' },
    ].sort((x, y) => x.ifindex - y.ifindex),
    'interfaceAddresses() in the server namespace',
  );

  // Both clients bound first, then both sending at once, so that a reply sent out of the wrong
  // interface would be seen by the other client.
  const t0 = Date.now();
  let bound = 0;
  let go: () => void = () => {};
  const allBound = new Promise<void>((resolve) => (go = resolve));
  const onLine = (line: string) => {
    if (line === 'bound' && ++bound === 2) go();
  };
  const clientA = nodeIn(lab, NS.a, ['-e', clientJs(port, 'nonce-a')], WAIT_MS * 2, onLine);
  const clientB = nodeIn(lab, NS.b, ['-e', clientJs(port, 'nonce-b')], WAIT_MS * 2, onLine);
  const failed = Promise.race([clientA.done, clientB.done]).then(() => {
    throw new Error('a client exited before both were bound');
  });
  await Promise.race([allBound, failed]);
  failed.catch(() => {});
  clientA.child.stdin?.write('go\n');
  clientB.child.stdin?.write('go\n');
  const [outA, outB] = await Promise.all([clientA.done, clientB.done]);
  t.comment(`clients done in ${Date.now() - t0} ms`);
  const lastLine = (out: string) => out.trim().split('\n').pop() ?? '[]';
  const gotA = JSON.parse(lastLine(outA)) as Received[];
  const gotB = JSON.parse(lastLine(outB)) as Received[];

  const check = (got: Received[], who: string, nonce: string, serverAddr: string, serverIfindex: number, dev: string) => {
    t.equal(got.length, 1, `client ${who} got exactly one reply (got ${JSON.stringify(got)})`);
    const r = got[0];
    if (r === undefined) return;
    t.equal(r.address, serverAddr, `client ${who}: the reply's source is the server's address on its subnet`);
    t.equal(r.port, port, `client ${who}: from the server port`);
    const body = JSON.parse(r.text) as Reply;
    t.same(body, { nonce, ifindex: serverIfindex, name: dev, local: serverAddr, source: serverAddr }, `client ${who}: its own request, seen on ${dev}`);
  };
  check(gotA, 'A', 'nonce-a', '10.201.1.1', sa, 'sa');
  check(gotB, 'B', 'nonce-b', '10.201.2.1', sb, 'sb');
  t.notOk(
    gotA.some((r) => r.text.includes('nonce-b') || r.address === '10.201.2.1'),
    'client A never saw the reply meant for subnet 2',
  );
  t.notOk(
    gotB.some((r) => r.text.includes('nonce-a') || r.address === '10.201.1.1'),
    'client B never saw the reply meant for subnet 1',
  );

  // What the server saw: each broadcast once, to 255.255.255.255, on its own interface, with
  // ipi_spec_dst the interface's address.
  interface Seen {
    from: { address: string; port: number };
    ifindex: number;
    to: string;
    local: string;
    truncated: boolean;
    nonce: string | null;
  }
  const seen = serverLines.flatMap((l) => (l.got ? [l.got as Seen] : []));
  t.equal(seen.length, 2, `the server saw each broadcast once (${JSON.stringify(seen)})`);
  const byNonce = new Map(seen.map((s) => [s.nonce, s]));
  const expectSeen = { to: '255.255.255.255', truncated: false };
  t.match(
    byNonce.get('nonce-a'),
    { ...expectSeen, from: { address: '10.201.1.2', port: CLIENT_PORT }, ifindex: sa, local: '10.201.1.1' },
    'server side: A on sa',
  );
  t.match(
    byNonce.get('nonce-b'),
    { ...expectSeen, from: { address: '10.201.2.2', port: CLIENT_PORT }, ifindex: sb, local: '10.201.2.1' },
    'server side: B on sb',
  );

  lab.cleanup();
  t.same(
    netnsList().filter((n) => Object.values(NS).includes(n)),
    [],
    '`ip netns list` shows none of ours',
  );
});
