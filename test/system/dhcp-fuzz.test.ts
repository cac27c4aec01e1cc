/**
 * The DHCP server under garbage: 100,000 mutated packets (seeded from the real captures) sent
 * to edgeboot inside a network namespace, then a real client asks for a lease and gets one.
 *
 *   client  eth0 ──veth── s0 10.77.0.1/24  server: edgeboot, dhcp.mode full
 *
 * Proves: nothing a client sends stops the server; bad packets are counted per drop reason
 * (read from /metrics) rather than thrown. Needs root, iproute2, udhcpc and curl, and a built
 * dist/. Namespaces are eb-df-<pid>-<n>, removed at teardown even on failure.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { mutate, prng } from '../helpers/dhcp-mutate.js';
import { DHCP_CAPTURES, dhcpDatagrams } from '../helpers/dhcp.js';
import { dhcpTools, scratchDir, startDhcpServer, udhcpc, writeDhcpSender } from '../helpers/dhcp-system.js';
import { createLab, netnsList, netnsSkip, requireTools } from '../helpers/netns.js';

const skip = netnsSkip();
const PACKETS = 100_000;
const SEED = 0x0edb_0075;

t.test('100,000 mutated packets, then a real DISCOVER is still answered', { skip, timeout: 180_000 }, async (t) => {
  requireTools(dhcpTools('udhcpc', 'curl'));
  const lab = createLab(t, 'df');
  const dir = scratchDir(t);
  const srv = lab.netns('server');
  const cli = lab.netns('client');
  lab.veth({ ns: srv, dev: 's0' }, { ns: cli, dev: 'eth0', mac: '02:eb:0f:00:00:01' });
  lab.ipIn(srv, 'addr', 'add', '10.77.0.1/16', 'dev', 's0');
  lab.ipIn(cli, 'addr', 'add', '10.77.0.250/16', 'dev', 'eth0');
  const server = await startDhcpServer(t, srv, {
    mode: 'full',
    // Well-formed mutants are clients too: tens of thousands of MACs take addresses. A /16
    // keeps the pool from running dry, which would be a correct answer but prove nothing here.
    subnets: [{ cidr: '10.77.0.0/16', pool: ['10.77.1.0', '10.77.254.255'], router: '10.77.0.1', leaseSeconds: 3600 }],
  });

  const seeds = DHCP_CAPTURES.flatMap((c) => dhcpDatagrams(c).map((u) => u.payload));
  const r = prng(SEED);
  const parts: Buffer[] = [];
  for (let i = 0; i < PACKETS; i++) {
    let m = r.pick(seeds);
    for (let k = 1 + r.int(3); k > 0; k--) m = mutate(r, m);
    const len = Buffer.alloc(2);
    len.writeUInt16BE(Math.min(m.length, 65000));
    parts.push(len, m.subarray(0, 65000));
  }
  const file = join(dir, 'mutants.bin');
  writeFileSync(file, Buffer.concat(parts));
  // About 4,000 a second: what the server takes with every PXE-looking mutant recorded on its
  // machine in SQLite; faster, and the kernel drops what the queue cannot hold.
  const sent = await lab.run(cli, [process.execPath, writeDhcpSender(dir), file, '10.77.0.1', '60', '4'], { timeoutMs: 90_000 });
  t.equal(sent.code, 0, `sender finished: ${sent.stderr}`);
  t.match(sent.stdout, new RegExp(`sent ${PACKETS}`), 'every mutant was sent');
  t.equal(server.process.exitCode, null, 'the server is still running');

  // The client namespace's own address is not in the way of udhcpc: drop it first.
  lab.ipIn(cli, 'addr', 'flush', 'dev', 'eth0');
  const lease = await udhcpc(lab, dir, cli, 'eth0');
  t.equal(lease.run.code, 0, `a real DISCOVER after the storm gets a lease: ${lease.run.stdout}${lease.run.stderr}`);
  t.ok(lease.lease?.ip?.startsWith('10.77.'), `address ${lease.lease?.ip}`);

  const metrics = await lab.run(srv, ['curl', '-sS', '--max-time', '5', `${server.url}/metrics`], { timeoutMs: 8_000 });
  const count = (re: RegExp) => [...metrics.stdout.matchAll(re)].reduce((n, m) => n + Number(m[1]), 0);
  const dropped = count(/^edgeboot_dhcp_dropped_total\{reason="[a-z_]+"\} (\d+)$/gm);
  const received = count(/^edgeboot_dhcp_received_total\{type="[a-z]+"\} (\d+)$/gm);
  const ignored = count(/^edgeboot_dhcp_ignored_total (\d+)$/gm);
  t.ok(dropped > 1000, `bad packets were counted as drops (${dropped})`);
  t.match(metrics.stdout, /edgeboot_dhcp_dropped_total\{reason="bad_magic"\} \d+/, 'per drop reason');
  t.ok(received > 0 && ignored > 0, `well-formed mutants were handled (${received} received, ${ignored} not answered)`);
  // Counted, not lost: nearly every mutant reached the server and was either dropped with a
  // reason or handled (the kernel may still drop a few in a burst).
  t.ok(dropped + received >= PACKETS * 0.9, `${dropped + received} of ${PACKETS} accounted for`);
  t.equal(server.process.exitCode, null, 'still running after the client');
  lab.cleanup();
  t.same(
    netnsList().filter((n) => lab.names().includes(n)),
    [],
    'no namespace of this test is left',
  );
});
