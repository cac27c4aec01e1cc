// A TCP → unix-socket relay for the VM tests: edgeboot runs in the lab's server namespace and
// cannot reach the test process's loopback, so a Redfish emulator in the test process listens on
// a unix socket (a filesystem path, which every namespace sees) and this relay, started in the
// server namespace, listens on TCP there and pipes each connection to it, both ways.
//
//   node tcp-unix-relay.mjs HOST:PORT SOCKET [HOST:PORT SOCKET ...]
//
// Prints one JSON line per pair once it listens ({"listening":"HOST:PORT","socket":…}), then
// {"ready":N}. A connection whose socket cannot be reached (the emulator closed) is reset, as
// a BMC that is gone refuses it.
import { connect, createServer } from 'node:net';

const args = process.argv.slice(2);
if (args.length === 0 || args.length % 2 !== 0) {
  console.error('usage: tcp-unix-relay.mjs HOST:PORT SOCKET [HOST:PORT SOCKET ...]');
  process.exit(2);
}

function relay(listen, socketPath) {
  const at = listen.lastIndexOf(':');
  const host = listen.slice(0, at);
  const port = Number(listen.slice(at + 1));
  const server = createServer((client) => {
    client.pause();
    const upstream = connect(socketPath);
    upstream.once('connect', () => {
      client.pipe(upstream);
      upstream.pipe(client);
      client.resume();
    });
    // Either side gone: end the other. An upstream that never connected resets the client.
    upstream.on('error', () => (client.destroyed ? undefined : client.resetAndDestroy()));
    client.on('error', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    client.on('close', () => upstream.destroy());
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      const bound = server.address();
      console.log(JSON.stringify({ listening: `${host}:${bound.port}`, port: bound.port, socket: socketPath }));
      resolve();
    });
  });
}

const pairs = [];
for (let i = 0; i < args.length; i += 2) pairs.push(relay(args[i], args[i + 1]));
await Promise.all(pairs);
console.log(JSON.stringify({ ready: pairs.length }));
process.on('SIGTERM', () => process.exit(0));
