/**
 * The real `curl` against a real `edgeboot serve` on loopback: what a shell script or an
 * operator with nothing but curl sees of the boot scripts and the admin API.
 */
import { spawn } from 'node:child_process';
import t from 'tap';
import type { Machine } from '../../src/machines/model.js';
import { startServer } from '../helpers/process.js';

interface CurlResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs curl to completion, at most 15 s (curl's own --max-time is 10 s). */
function curl(args: string[]): Promise<CurlResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('curl', ['--max-time', '10', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    t.teardown(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (d: string) => (stdout += d));
    child.stderr.on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`curl ${args.join(' ')} did not finish within 15 s`));
    }, 15_000);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`curl could not be run: ${err.message}`));
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

const srv = await startServer(t);
const base = srv.url;

t.test('GET /boot.ipxe: the entry script chains to /ipxe?mac=', async (t) => {
  const r = await curl(['-fsS', `${base}/boot.ipxe`]);
  t.equal(r.code, 0, `curl -f succeeds (stderr: ${r.stderr})`);
  t.match(r.stdout, /^#!ipxe\n/, 'starts with #!ipxe');
  t.match(
    r.stdout,
    new RegExp(`^chain --replace --autofree ${base.replaceAll('.', '\\.')}/ipxe\\?mac=\\$\\{netX/mac:hexhyp\\}&`, 'm'),
    'chains to /ipxe?mac= on the URL curl used',
  );
  const head = await curl(['-sS', '-o', '/dev/null', '-w', '%{http_code} %{content_type}', `${base}/boot.ipxe`]);
  t.equal(head.stdout, '200 text/plain; charset=utf-8', 'status 200, text/plain');
});

t.test('GET /ipxe?mac=aa-bb-cc-dd-ee-ff: a script for an unknown machine', async (t) => {
  const r = await curl(['-fsS', `${base}/ipxe?mac=aa-bb-cc-dd-ee-ff`]);
  t.equal(r.code, 0, `curl -f succeeds (stderr: ${r.stderr})`);
  t.match(r.stdout, /^#!ipxe\necho edgeboot: aa:bb:cc:dd:ee:ff: /, 'an iPXE script naming the machine');
  t.match(r.stdout, /\bexit\b/, 'unknown machines leave to the local disk by default');

  const none = await curl(['-sS', '-w', '\n%{http_code}', `${base}/ipxe`]);
  t.match(none.stdout, /^#!ipxe\necho edgeboot: \/ipxe needs mac=.*\n400$/s, 'no mac=: 400 with an iPXE script that says why');
});

t.test('the admin API with curl and a bearer token', async (t) => {
  const body = JSON.stringify({ macs: ['52:54:00:cc:00:02'], hostname: 'curl-1', profile: 'local-disk', labels: { via: 'curl' } });
  const put = await curl([
    '-fsS',
    '-X',
    'PUT',
    '-H',
    `Authorization: Bearer ${srv.token}`,
    '-H',
    'Content-Type: application/json',
    '--data-binary',
    body,
    '-w',
    '\n%{http_code}',
    `${base}/api/v1/machines/52-54-00-cc-00-01`,
  ]);
  t.equal(put.code, 0, `PUT succeeds (stderr: ${put.stderr})`);
  const [json, status] = put.stdout.split('\n');
  t.equal(status, '201', '201 Created');
  const m = JSON.parse(json ?? '') as Machine;
  t.equal(m.mac, '52:54:00:cc:00:01', 'the machine');
  t.same(m.macs, ['52:54:00:cc:00:02'], 'its further MAC');
  t.equal(m.state, 'registered', 'registered with its profile');

  const get = await curl(['-fsS', '-H', `Authorization: Bearer ${srv.token}`, `${base}/api/v1/machines/52:54:00:cc:00:02`]);
  t.equal(get.code, 0, 'GET by the further MAC succeeds');
  t.equal((JSON.parse(get.stdout) as Machine).hostname, 'curl-1', 'and returns it');

  const script = await curl(['-fsS', `${base}/ipxe?mac=525400CC0002`]);
  t.match(script.stdout, /^#!ipxe\necho edgeboot: 52:54:00:cc:00:01: /, 'the boot script finds it by the further MAC in another form');
});

t.test('without a token: 401 with a JSON body', async (t) => {
  const r = await curl(['-sS', '-D', '-', `${base}/api/v1/machines`]);
  t.equal(r.code, 0, 'curl itself succeeds');
  const [head = '', body = ''] = r.stdout.split('\r\n\r\n');
  t.match(head, /^HTTP\/1\.1 401 /, 'status 401');
  t.match(head, /^www-authenticate: Bearer\r?$/im, 'with WWW-Authenticate: Bearer');
  t.match(head, /^content-type: application\/json/im, 'JSON');
  t.same(JSON.parse(body), { error: 'unauthorized', message: 'this endpoint needs an admin token: send Authorization: Bearer <token>' }, 'the error body');

  const f = await curl(['-fsS', '-X', 'PUT', '-H', 'Content-Type: application/json', '--data-binary', '{}', `${base}/api/v1/machines/52-54-00-cc-00-09`]);
  t.equal(f.code, 22, 'curl -f fails with 22 on the 401');
  t.match(f.stderr, /401/, 'and names the status');

  const wrong = await curl(['-sS', '-H', 'Authorization: Bearer nope-nope-nope-nope', '-w', '\n%{http_code}', `${base}/api/v1/machines`]);
  t.match(wrong.stdout, /"error":"unauthorized".*\n401$/s, 'a wrong token: 401 too');
  const check = await curl([
    '-sS',
    '-o',
    '/dev/null',
    '-w',
    '%{http_code}',
    '-H',
    `Authorization: Bearer ${srv.token}`,
    `${base}/api/v1/machines/52-54-00-cc-00-09`,
  ]);
  t.equal(check.stdout, '404', 'the refused PUT wrote nothing');
});

t.test('with server.advertiseAddress set and port 0, the scripts name the port actually bound', async (t) => {
  const adv = await startServer(t, { args: ['--set', 'server.advertiseAddress=127.0.0.1'] });
  const entry = await curl(['-fsS', '-H', 'Host: ignored.example:1234', `${adv.url}/boot.ipxe`]);
  t.equal(entry.code, 0, `curl -f succeeds (stderr: ${entry.stderr})`);
  t.match(
    entry.stdout,
    new RegExp(`^chain --replace --autofree http://127\\.0\\.0\\.1:${adv.port}/ipxe\\?mac=`, 'm'),
    `the entry script chains to 127.0.0.1:${adv.port}`,
  );
  t.notMatch(entry.stdout, /127\.0\.0\.1:0\//, 'never to port 0');
  t.notMatch(entry.stdout, /ignored\.example/, 'the advertise address wins over the Host header');
  const boot = await curl(['-fsS', '-H', `Authorization: Bearer ${adv.token}`, `${adv.url}/api/v1/machines/52-54-00-cc-00-01/boot`]);
  t.equal(boot.code, 22, 'no such machine on this fresh server');
  const put = await curl([
    '-fsS',
    '-X',
    'PUT',
    '-H',
    `Authorization: Bearer ${adv.token}`,
    '-H',
    'Content-Type: application/json',
    '--data-binary',
    '{"labels":{}}',
    `${adv.url}/api/v1/machines/52-54-00-cc-00-01`,
  ]);
  t.equal(put.code, 0, 'PUT a machine');
  const info = await curl(['-fsS', '-H', `Authorization: Bearer ${adv.token}`, `${adv.url}/api/v1/machines/52-54-00-cc-00-01/boot`]);
  const doc = JSON.parse(info.stdout) as { scriptUrl: string; entryUrl: string };
  t.equal(doc.entryUrl, `http://127.0.0.1:${adv.port}/boot.ipxe`, 'the boot info names the bound port too');
  t.equal(doc.scriptUrl, `http://127.0.0.1:${adv.port}/ipxe?mac=52-54-00-cc-00-01`, 'and the script URL');
});
