/**
 * TFTP in the real `edgeboot serve` process on loopback: what it logs when it serves and when it
 * is off, a curl tftp:// fetch of boot.ipxe against the port it logged, a refused name, the
 * metrics of both, and a TFTP port that another socket already holds (serve exits non-zero,
 * says which port and why, and leaves no HTTP server behind).
 */
import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import t from 'tap';
import { closedPort, runCli, startServer, tempDir, type LogLine, type ServerProcess } from '../helpers/process.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The first log line with `msg`; the lines after `edgeboot serving` come in the same tick. */
async function logLine(server: ServerProcess, msg: string, timeoutMs = 2_000): Promise<LogLine | undefined> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const line = server.logLines.find((l) => l.msg === msg);
    if (line || Date.now() > deadline) return line;
    await sleep(20);
  }
}

/** curl (no shell) to completion, killed after 10 s. */
function curl(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('curl', ['-sS', '--max-time', '5', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Whether something accepts TCP connections on 127.0.0.1:port. */
function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.setTimeout(2_000);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
    s.once('timeout', () => {
      s.destroy();
      resolve(false);
    });
  });
}

t.test('default env: TFTP serves on a loopback port, logged, and boot.ipxe comes from it', async (t) => {
  const srv = await startServer(t);
  const line = await logLine(srv, 'TFTP serving');
  t.ok(line, `logs "TFTP serving" (lines: ${srv.logLines.map((l) => l.msg).join(' | ')})`);
  const m = /^127\.0\.0\.1:([0-9]+)$/.exec(String(line?.listen));
  t.ok(m, `listen is the bound loopback address and port: ${String(line?.listen)}`);
  const port = Number(m?.[1]);
  t.ok(port > 0 && port < 65536, `a real port, not 0 (${port})`);
  t.notOk(
    srv.logLines.some((l) => l.msg.startsWith('TFTP off')),
    'and not "TFTP off"',
  );

  const boot = await curl([`tftp://127.0.0.1:${port}/boot.ipxe`]);
  t.equal(boot.code, 0, `curl tftp:// boot.ipxe exit 0 (${boot.stderr})`);
  t.match(boot.stdout, /^#!ipxe\n/, 'an iPXE script');
  t.match(
    boot.stdout,
    new RegExp(`^chain --replace --autofree http://127\\.0\\.0\\.1:${srv.port}/ipxe\\?mac=`, 'm'),
    `chains to the HTTP port on the address used (127.0.0.1:${srv.port})`,
  );

  const missing = await curl([`tftp://127.0.0.1:${port}/no-such-file.efi`]);
  // curl 68 is CURLE_TFTP_NOTFOUND: the server answered ERROR 1. (Its message is unreliable:
  // curl 7.88 prints a stale getpeername() error instead, curl/curl#11332.)
  t.equal(missing.code, 68, `a missing file: curl exit 68, TFTP file not found (${missing.stderr.trim()})`);

  const metrics = await curl([`${srv.url}/metrics`]);
  t.match(metrics.stdout, /^edgeboot_tftp_transfers_total\{outcome="complete"\} 1$/m, 'metrics: one complete transfer');
  t.match(metrics.stdout, /^edgeboot_tftp_refused_total\{reason="not_found"\} 1$/m, 'metrics: one refusal, not found');
  t.match(metrics.stdout, /^edgeboot_tftp_requests_total 2$/m, 'metrics: two requests');

  const exit = await srv.stop();
  t.equal(exit.code, 0, 'SIGTERM: clean exit');
  // The listener is gone with the process: the port can be bound again.
  const again = createSocket('udp4');
  t.teardown(() => new Promise<void>((r) => again.close(() => r())));
  await t.resolves(
    new Promise<void>((resolve, reject) => {
      again.once('error', reject);
      again.bind(port, '127.0.0.1', () => resolve());
    }),
    `UDP 127.0.0.1:${port} is free after the exit`,
  );
});

t.test('EDGEBOOT_TFTP_ENABLED=false: TFTP off', async (t) => {
  const srv = await startServer(t, { env: { EDGEBOOT_TFTP_ENABLED: 'false' } });
  const off = await logLine(srv, 'TFTP off (tftp.enabled: false)');
  t.ok(off, `logs "TFTP off" (lines: ${srv.logLines.map((l) => l.msg).join(' | ')})`);
  t.notOk(
    srv.logLines.some((l) => l.msg === 'TFTP serving'),
    'and not "TFTP serving"',
  );
  const metrics = await curl([`${srv.url}/metrics`]);
  t.match(metrics.stdout, /^edgeboot_tftp_active_transfers 0$/m, 'metrics answer');
  t.notMatch(metrics.stdout, /^edgeboot_tftp_requests_total [1-9]/m, 'with no TFTP counts');
  t.equal((await srv.stop()).code, 0, 'SIGTERM: clean exit');
});

t.test('a TFTP port another socket holds: serve exits non-zero, says so, leaves no HTTP behind', async (t) => {
  const holder = createSocket('udp4');
  t.teardown(() => new Promise<void>((r) => holder.close(() => r())));
  await new Promise<void>((resolve, reject) => {
    holder.once('error', reject);
    holder.bind(0, '127.0.0.1', () => resolve());
  });
  const port = holder.address().port;
  const httpPort = await closedPort();
  const r = await runCli(t, ['serve', '--set', `http.listen=127.0.0.1:${httpPort}`], {
    cwd: tempDir(t),
    env: { EDGEBOOT_TFTP_LISTEN: `127.0.0.1:${port}` },
    timeoutMs: 15_000,
  });
  t.not(r.code, 0, `exits non-zero (${r.code})`);
  t.equal(r.signal, null, 'by itself, without being killed');
  t.match(r.stderr, new RegExp(`UDP 127\\.0\\.0\\.1:${port}\\b[^\\n]*already holds it`), `stderr names the port and why: ${r.stderr.trim()}`);
  t.match(r.stderr, /EDGEBOOT_TFTP_ENABLED=false/, 'and how to leave TFTP to the other server');
  t.match(
    r.stdout,
    new RegExp(`"server":"http","listen":\\["127\\.0\\.0\\.1:${httpPort}"\\],"msg":"stopped: another server could not start"`),
    'HTTP had started before TFTP failed, and was stopped',
  );
  t.notMatch(r.stdout, /"msg":"edgeboot serving"/, 'it never said it was serving');
  t.notOk(await listening(httpPort), `nothing listens on the HTTP port ${httpPort} afterwards`);
});
