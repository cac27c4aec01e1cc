/**
 * The start-up lines of the real `edgeboot serve` on loopback: one line per server with the
 * address it bound and who can reach it, `edgeboot serving` last, and none of Fastify's
 * "Server listening at …" lines; the HTTP logger is only silent while it binds (a request after
 * the start is logged). The same lines for 0.0.0.0 and for DHCP are in test/system/nonroot-start.
 */
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
  t.notOk(msgs.some((m) => /listening/i.test(m)), 'no "Server listening at" line');
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
