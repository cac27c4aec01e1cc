/**
 * The native addons when a Node environment tears down with work still on them: a
 * worker_threads Worker loads all three (build/Release), starts sendfile transfers to clients
 * that never read (the bytes stay on the addon's threads), opens a udp_pktinfo socket and a
 * tftp_pump socket, and exits while all of it runs: by process.exit() inside, or terminate()
 * from outside. Twenty rounds: the process does not crash, and every descriptor the addons
 * dup()ed or opened in the Worker is closed again (the workers share this process's fd table).
 */
import { readdirSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import t from 'tap';
import { tempDir } from '../helpers/app.js';

const RELEASE = fileURLToPath(new URL('../../build/Release/', import.meta.url));
const openFds = () => readdirSync('/proc/self/fd').length;

/** CommonJS, run with eval: posts 'running' once every job is under way, then waits to be ended. */
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const net = require('node:net');
const fs = require('node:fs');
const load = (name) => require(workerData.release + name + '.node');
const sendfile = load('http_sendfile');
const pktinfo = load('udp_pktinfo');
const pump = load('tftp_pump');
const server = net.createServer((sock) => {
  const fd = fs.openSync(workerData.file, 'r');
  sendfile.send(sock._handle.fd, fd, 0, workerData.size, 0, 'k', 60000, () => {});
  fs.closeSync(fd);
  if (sendfile.active() === 4) {
    pktinfo.open('127.0.0.1', 0, null, () => {});
    pump.open('127.0.0.1', '127.0.0.1', 9, () => {});
    parentPort.postMessage({ active: sendfile.active() });
    if (workerData.exitInside) setTimeout(() => process.exit(0), 20);
  }
});
server.listen(0, '127.0.0.1', () => {
  for (let i = 0; i < 4; i++) {
    const c = net.connect(server.address().port, '127.0.0.1');
    c.pause();
  }
});
`;

t.test('a Worker that exits while addon jobs run: no crash, no descriptor left', async (t) => {
  const dir = tempDir();
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'big');
  const size = 256 << 20;
  writeFileSync(file, '');
  truncateSync(file, size);
  const before = openFds();
  for (let round = 0; round < 20; round++) {
    const exitInside = round % 2 === 0;
    const worker = new Worker(WORKER, { eval: true, workerData: { release: RELEASE, file, size, exitInside } });
    const running = await new Promise<{ active: number }>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    t.equal(running.active, 4, `round ${round}: four transfers on the addon's threads`);
    const code = exitInside ? await new Promise<number>((resolve) => worker.once('exit', resolve)) : await worker.terminate();
    t.equal(code, exitInside ? 0 : 1, `round ${round}: the Worker ended (${exitInside ? 'process.exit' : 'terminate'})`);
  }
  t.ok(openFds() <= before + 2, `descriptors after 20 rounds: ${openFds()} (before: ${before})`);
});
