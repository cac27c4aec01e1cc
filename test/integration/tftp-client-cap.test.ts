/**
 * tftp.maxTransfersPerClient: one address that floods read requests and never acknowledges
 * gets its cap of transfers and an ERROR for the rest, while another client is served at once.
 * The flood comes from 127.0.0.2 (600 dgram sockets, one request each), the real client
 * (tftp-hpa) from 127.0.0.1; the refusals show in the stats and in /metrics' text.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { loadConfig } from '../../src/config/load.js';
import { createMetricsRegistry } from '../../src/http/routes/metrics.js';
import { decodePacket, encodeRequest, ErrorCode, Opcode } from '../../src/tftp/codec.js';
import { tempDir } from '../helpers/app.js';
import { RawClient, run, startTftp, tftpHpaGet } from '../helpers/tftp.js';

const dir = tempDir('edgeboot-tftp-cap-');
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const file = Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 13 + 5) & 0xff));
writeFileSync(join(dir, 'undionly.kpxe'), file);

const FLOOD = 600;
const CAP = 16;

t.test('600 unanswered requests from one address take 16 slots; another client is served at once', async (t) => {
  // The default cap (16), a short give-up so the flood's slots come back within the test.
  const tftp = await startTftp(t, [dir], { timeoutSeconds: 1, retries: 1 });
  const flood = await Promise.all(Array.from({ length: FLOOD }, () => RawClient.open(t, '127.0.0.2')));
  const rrq = encodeRequest(Opcode.RRQ, 'undionly.kpxe', 'octet');
  await Promise.all(flood.map((c) => c.send(rrq, tftp.port)));
  // The first answer of each, never acknowledged (bounded: 3 s for all of them together).
  const firsts = await Promise.all(flood.map((c) => c.next(3_000)));

  // At once, while the flood's transfers are still waiting for their ACKs: a real client.
  const dest = join(dir, 'fetched');
  const [cmd, args] = tftpHpaGet(tftp.port, 'undionly.kpxe', dest);
  const fetched = await run(t, cmd, args, { timeoutMs: 10_000 });
  t.equal(fetched.code, 0, `tftp-hpa from 127.0.0.1 exits 0: ${fetched.stderr}${fetched.stdout}`);
  t.notMatch(fetched.stdout + fetched.stderr, /Error/, 'tftp-hpa printed no error (it exits 0 even after an ERROR packet)');
  t.same(readFileSync(dest), file, 'and gets the file, byte for byte');

  const data = firsts.filter((d) => d && decodePacket(d.msg).ok && d.msg.readUInt16BE(0) === Opcode.DATA);
  const errors = firsts.flatMap((d) => {
    const p = d && decodePacket(d.msg);
    return p?.ok && p.packet.op === Opcode.ERROR ? [p.packet] : [];
  });
  t.equal(data.length, CAP, `${CAP} requests from 127.0.0.2 got their first block`);
  t.equal(errors.length, FLOOD - CAP, 'every other one got an ERROR packet');
  t.ok(
    errors.every((e) => e.code === ErrorCode.NotDefined && e.message.includes('Too many transfers from 127.0.0.2: 16 running')),
    `code 0 with a clear message: ${JSON.stringify(errors[0])}`,
  );

  const stats = tftp.server.stats();
  t.equal(stats.refused.client_busy, FLOOD - CAP, 'counted as client_busy refusals');
  t.notOk(stats.refused.busy, 'the server as a whole was never full');
  const registry = createMetricsRegistry({ dhcp: () => undefined, dhcpLeases: () => 0, tftp: () => tftp.server.stats() });
  t.match(await registry.metrics(), new RegExp(`^edgeboot_tftp_refused_total\\{reason="client_busy"\\} ${FLOOD - CAP}$`, 'm'), 'and in /metrics');

  // The flood's transfers give up (1 s, one retry); its slots come back.
  await tftp.record((r) => r.client.address === '127.0.0.2' && r.outcome === 'timeout', 6_000);
  for (const deadline = Date.now() + 6_000; tftp.server.stats().active > 0 && Date.now() < deadline;) await new Promise((r) => setTimeout(r, 100));
  t.equal(tftp.server.stats().active, 0, 'every flood transfer ended');
  const again = await RawClient.open(t, '127.0.0.2');
  await again.send(rrq, tftp.port);
  const reply = await again.next(2_000);
  t.equal(reply?.msg.readUInt16BE(0), Opcode.DATA, 'a new request from 127.0.0.2 is served again');
});

t.test('tftp.maxTransfersPerClient: default 16, EDGEBOOT_TFTP_MAX_TRANSFERS_PER_CLIENT', async (t) => {
  t.equal(loadConfig({ env: {} }).config.tftp.maxTransfersPerClient, 16);
  t.equal(loadConfig({ env: { EDGEBOOT_TFTP_MAX_TRANSFERS_PER_CLIENT: '4' } }).config.tftp.maxTransfersPerClient, 4);
  t.throws(() => loadConfig({ env: { EDGEBOOT_TFTP_MAX_TRANSFERS_PER_CLIENT: '0' } }), /maxTransfersPerClient/, 'at least 1');
});
