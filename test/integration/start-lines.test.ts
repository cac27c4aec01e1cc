/**
 * The start-up lines of the real `edgeboot serve` on loopback: one line per server with the
 * address it bound and who can reach it, `edgeboot serving` last, and none of Fastify's
 * "Server listening at …" lines; the HTTP logger is only silent while it binds (a request after
 * the start is logged). The same lines for 0.0.0.0 and for DHCP are in test/system/nonroot-start.
 */
import { createSocket } from 'node:dgram';
import t from 'tap';
import { startServer, tempDir } from '../helpers/process.js';

t.test('one line per server with what it bound, then edgeboot serving; no Fastify listening line', async (t) => {
  const srv = await startServer(t, { dataDir: `${tempDir(t)}/data`, logLevel: 'debug' });
  const msgs = srv.logLines.map((l) => l.msg);
  const http = srv.logLines.find((l) => l.msg === 'HTTP serving');
  t.match(http, { listen: `127.0.0.1:${srv.port}`, reach: 'loopback only' }, 'HTTP: the bound address and port, loopback only');
  const tftp = srv.logLines.find((l) => l.msg === 'TFTP serving');
  t.match(tftp, { listen: /^127\.0\.0\.1:[1-9][0-9]*$/, reach: 'loopback only' }, `TFTP: the bound address and its real port (${String(tftp?.listen)})`);
  t.ok(msgs.includes('DHCP off (dhcp.mode: off): the site DHCP server must hand iPXE clients the entry script'), 'DHCP off says so');
  t.equal(msgs.at(-1), 'edgeboot serving', `edgeboot serving comes last, after every server's line (${msgs.join(' | ')})`);
  t.equal(srv.logLines.at(-1)?.http, `127.0.0.1:${srv.port}`, 'and names the bound HTTP address');
  t.notOk(
    msgs.some((m) => /listening/i.test(m)),
    'no "Server listening at" line',
  );
  t.same(srv.otherStdout, [], 'nothing but JSON lines on stdout');

  const res = await fetch(`${srv.url}/healthz`);
  t.equal(res.status, 200, '/healthz answers');
  let request;
  for (let i = 0; i < 100 && !request; i++) {
    request = srv.logLines.find((l) => l.msg === 'request' && l.url === '/healthz');
    if (!request) await new Promise((r) => setTimeout(r, 20));
  }
  t.match(request, { method: 'GET', status: 200 }, 'the HTTP logger speaks again after the bind: the request is logged (debug)');
  t.equal((await srv.stop()).code, 0, 'SIGTERM: clean exit');
});

/** A UDP port free on every address now (bound to 0.0.0.0:0 and let go). */
async function freeUdpPort(): Promise<number> {
  const s = createSocket('udp4');
  await new Promise<void>((resolve) => s.bind(0, '0.0.0.0', resolve));
  const { port } = s.address();
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

t.test('a reservation full-mode DHCP cannot lease is named at start', async (t) => {
  const dataDir = `${tempDir(t)}/data`;
  // In proxy and off mode a machine's ip is its static address: any address is accepted.
  const first = await startServer(t, { dataDir });
  const put = await fetch(`${first.url}/api/v1/machines/52:54:00:aa:00:01`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${first.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ profile: 'local-disk', ip: '10.9.9.9' }),
  });
  t.equal(put.status, 201, `registered with an ip outside 10.77.0.0/24 while DHCP is off (${put.status})`);
  t.equal((await first.stop()).code, 0);

  const port = await freeUdpPort();
  const full = await startServer(t, { dataDir, env: { EDGEBOOT_DHCP_MODE: 'full', EDGEBOOT_DHCP_LISTEN_PORT: String(port) } });
  const warning = full.logLines.find((l) => l.level === 40 && l.mac === '52:54:00:aa:00:01');
  t.match(
    warning,
    { ip: '10.9.9.9', msg: /^ip: 10\.9\.9\.9 is outside every dhcp\.subnets cidr \(10\.77\.0\.0\/24\): full-mode DHCP will not lease it$/ },
    'one warning naming the machine, its ip and the subnets',
  );
  t.equal(full.logLines.filter((l) => l.msg.includes('outside every dhcp.subnets')).length, 1, 'and only that machine');
  t.equal((await full.stop()).code, 0);
});
