/**
 * The DHCP server when its send queue is full: a burst of DISCOVERs whose OFFERs cannot leave
 * as fast as they are made. The server's link is throttled with a tbf qdisc (8 kbit/s, a deep
 * queue), so the OFFERs wait in the qdisc and hold the socket's send buffer until sendmsg
 * answers EAGAIN — the real condition, not an injected errno.
 *
 *   client  eth0 ──veth── s0 10.77.0.1/16 (tbf 8kbit)  server: edgeboot, dhcp.mode full
 *
 * Proves: a full send queue is a counted drop (`edgeboot_dhcp_dropped_total{reason="send_busy"}`),
 * with no warning or error line and no stack, and the server still answers a real client once
 * the link is free again. Any other send failure (EPERM from a firewall rule) is one warning
 * line without a stack and `reason="send_failed"`. Needs root, iproute2 (ip, tc), iptables,
 * udhcpc and curl, and a built dist/.
 * Namespaces are eb-db-<pid>-<n>, removed at teardown even on failure.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { dhcpTools, scratchDir, startDhcpServer, udhcpc, writeDhcpSender } from '../helpers/dhcp-system.js';
import { DHCP_TYPE, encodeRequest } from '../helpers/dhcp-packets.js';
import { createLab, netnsList, netnsSkip, requireTools } from '../helpers/netns.js';

const skip = netnsSkip();
const DISCOVERS = 3_000;

t.test('a full send queue is a counted drop, not an error, and the server keeps serving', { skip, timeout: 120_000 }, async (t) => {
  requireTools({ ...dhcpTools('udhcpc', 'curl'), tc: [['-V'], 'iproute2'], iptables: [['-V'], 'iptables'] });
  const lab = createLab(t, 'db');
  const dir = scratchDir(t);
  const srv = lab.netns('server');
  const cli = lab.netns('client');
  lab.veth({ ns: srv, dev: 's0' }, { ns: cli, dev: 'eth0', mac: '02:eb:0d:00:00:01' });
  lab.ipIn(srv, 'addr', 'add', '10.77.0.1/16', 'dev', 's0');
  lab.ipIn(cli, 'addr', 'add', '10.77.0.250/16', 'dev', 'eth0');
  // About three 300-byte OFFERs a second leave; the rest queue in the qdisc (limit 10 MB, so it
  // never drops itself) and hold the server socket's send buffer until sendmsg says EAGAIN.
  const tc = await lab.run(srv, ['tc', 'qdisc', 'add', 'dev', 's0', 'root', 'tbf', 'rate', '8kbit', 'burst', '1600', 'limit', '10000000'], {
    timeoutMs: 5_000,
  });
  t.equal(tc.code, 0, `tbf qdisc on s0: ${tc.stderr}`);
  const server = await startDhcpServer(t, srv, {
    mode: 'full',
    subnets: [{ cidr: '10.77.0.0/16', pool: ['10.77.1.0', '10.77.254.255'], router: '10.77.0.1', leaseSeconds: 3600 }],
  });

  // Well-formed DISCOVERs from distinct MACs, broadcast bit set: each earns an OFFER to
  // 255.255.255.255 out of s0.
  const parts: Buffer[] = [];
  for (let i = 0; i < DISCOVERS; i++) {
    const mac = `02:eb:0d:01:${((i >> 8) & 0xff).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}`;
    const packet = encodeRequest({ type: DHCP_TYPE.discover, mac, xid: 0x0db00000 + i, flags: 0x8000 });
    const len = Buffer.alloc(2);
    len.writeUInt16BE(packet.length);
    parts.push(len, packet);
  }
  const file = join(dir, 'discovers.bin');
  writeFileSync(file, Buffer.concat(parts));
  const sent = await lab.run(cli, [process.execPath, writeDhcpSender(dir), file, '10.77.0.1', '20', '10'], { timeoutMs: 30_000 });
  t.equal(sent.code, 0, `sender finished: ${sent.stderr}`);
  t.match(sent.stdout, new RegExp(`sent ${DISCOVERS}`), 'every DISCOVER was sent');

  const scrape = async () => {
    const r = await lab.run(srv, ['curl', '-sS', '--max-time', '5', `${server.url}/metrics`], { timeoutMs: 8_000 });
    const num = (re: RegExp) => Number(re.exec(r.stdout)?.[1] ?? 0);
    return {
      busy: num(/^edgeboot_dhcp_dropped_total\{reason="send_busy"\} (\d+)$/m),
      failed: num(/^edgeboot_dhcp_dropped_total\{reason="send_failed"\} (\d+)$/m),
      handlerErrors: num(/^edgeboot_dhcp_dropped_total\{reason="handler_error"\} (\d+)$/m),
      discovers: num(/^edgeboot_dhcp_received_total\{type="discover"\} (\d+)$/m),
      offers: num(/^edgeboot_dhcp_sent_total\{type="offer"\} (\d+)$/m),
    };
  };
  // The server works through its receive queue after the sender is done: wait until every
  // DISCOVER it received is answered or counted (bounded).
  let m = await scrape();
  for (const deadline = Date.now() + 20_000; (m.discovers < DISCOVERS || m.offers + m.busy < m.discovers) && Date.now() < deadline;) {
    await new Promise((r) => setTimeout(r, 250));
    m = await scrape();
  }
  t.ok(m.discovers >= DISCOVERS * 0.9, `nearly every DISCOVER reached the server (${m.discovers} of ${DISCOVERS})`);
  t.ok(m.busy > 0, `OFFERs that found the send queue full were counted as send_busy drops (${m.busy})`);
  t.equal(m.offers + m.busy, m.discovers, `every DISCOVER was answered or counted (${m.offers} sent, ${m.busy} busy)`);
  t.equal(m.failed, 0, 'no other send failure');
  t.equal(m.handlerErrors, 0, 'no request failed in the handler');
  const loud = server.logLines.filter((l) => l.level >= 40);
  t.same(
    loud.map((l) => l.msg),
    [],
    'no warning or error line',
  );
  t.notMatch(JSON.stringify(server.logLines), /EAGAIN|"stack"/, 'no EAGAIN and no stack in the log');
  t.equal(server.process.exitCode, null, 'the server is still running');

  // The link free again: a real client gets a lease.
  const del = await lab.run(srv, ['tc', 'qdisc', 'del', 'dev', 's0', 'root'], { timeoutMs: 5_000 });
  t.equal(del.code, 0, `tbf removed: ${del.stderr}`);
  lab.ipIn(cli, 'addr', 'flush', 'dev', 'eth0');
  const lease = await udhcpc(lab, dir, cli, 'eth0');
  t.equal(lease.run.code, 0, `a real DISCOVER after the burst gets a lease: ${lease.run.stdout}${lease.run.stderr}`);
  t.ok(lease.lease?.ip?.startsWith('10.77.'), `address ${lease.lease?.ip}`);

  // Another send error: a firewall rule in the server's namespace makes sendmsg fail with EPERM.
  const rule = ['OUTPUT', '-p', 'udp', '--dport', '68', '-j', 'DROP'];
  const add = await lab.run(srv, ['iptables', '-A', ...rule], { timeoutMs: 5_000 });
  t.equal(add.code, 0, `iptables rule added: ${add.stderr}`);
  const before = (await scrape()).failed;
  const refused = await udhcpc(lab, dir, cli, 'eth0', { tries: 1 });
  t.equal(refused.lease, undefined, 'no lease while replies cannot leave');
  const after = (await scrape()).failed;
  t.ok(after > before, `counted as send_failed (${before} -> ${after})`);
  const warned = server.logLines.filter((l) => l.msg === 'dhcp reply not sent');
  t.ok(
    warned.length > 0 && warned.every((l) => l.level === 40 && l.code === 'EPERM' && l.stack === undefined && l.err === undefined),
    `a warning naming EPERM, without a stack: ${JSON.stringify(warned[0])}`,
  );
  t.same(
    server.logLines.filter((l) => l.level >= 50).map((l) => l.msg),
    [],
    'no error line',
  );
  t.equal(server.process.exitCode, null, 'the server is still running');
  await lab.run(srv, ['iptables', '-D', ...rule], { timeoutMs: 5_000 });
  lab.cleanup();
  t.same(
    netnsList().filter((n) => lab.names().includes(n)),
    [],
    'no namespace of this test is left',
  );
});
