/**
 * The all-zero MAC, the broadcast MAC and any multicast MAC name no machine: every API route
 * that takes a MAC (path, or a reservation's `mac`/`macs`) answers 400 `invalid_mac` with a
 * message that says why, and `/ipxe` its 400 iPXE script. Nothing is stored. Over the real app
 * with inject, and a real server with curl.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import t from 'tap';
import type { ErrorBody } from '../helpers/app.js';
import { testApp } from '../helpers/app.js';
import { startServer } from '../helpers/process.js';

const run = promisify(execFile);
const GOOD = '52:54:00:ab:cd:ef';
/** Each refused MAC in one of the three accepted spellings, and what the message must say. */
const REFUSED: [string, RegExp][] = [
  ['00:00:00:00:00:00', /all-zero/],
  ['FF-FF-FF-FF-FF-FF', /broadcast/],
  ['01005e0000fb', /multicast/],
  ['33:33:00:00:00:01', /multicast/],
  ['03-00-00-00-00-00', /multicast/],
];

t.test('every MAC-taking route refuses them with 400 invalid_mac', async (t) => {
  const ta = await testApp(t, { cache: {} });
  const h = ta.auth;
  t.equal((await ta.app.inject({ method: 'PUT', url: `/api/v1/machines/${GOOD}`, headers: h, payload: {} })).statusCode, 201, 'a good machine to PATCH');
  for (const [mac, why] of REFUSED) {
    const p = `/api/v1/machines/${mac}`;
    const requests: { method: 'GET' | 'PUT' | 'PATCH' | 'DELETE' | 'POST'; url: string; payload?: object; headers?: Record<string, string> }[] = [
      { method: 'GET', url: p, headers: h },
      { method: 'PUT', url: p, headers: h, payload: { hostname: 'x' } },
      { method: 'PATCH', url: p, headers: h, payload: { hostname: 'x' } },
      { method: 'DELETE', url: p, headers: h },
      { method: 'POST', url: `${p}/reset`, headers: h, payload: {} },
      { method: 'GET', url: `${p}/events`, headers: h },
      { method: 'POST', url: `${p}/events`, headers: h, payload: { type: 'booted' } },
      { method: 'GET', url: `${p}/boot`, headers: h },
      { method: 'GET', url: `${p}/ignition?exp=9999999999&sig=abc` },
      { method: 'GET', url: `${p}/plan` },
      { method: 'POST', url: `${p}/inventory`, payload: { disks: [], macs: [] } },
      { method: 'POST', url: `${p}/result`, payload: { ok: true } },
      // In a reservation body: the primary, a further MAC, and a PATCH that adds one.
      { method: 'PUT', url: `/api/v1/machines/${GOOD}`, headers: h, payload: { mac, hostname: 'x' } },
      { method: 'PUT', url: '/api/v1/machines/52:54:00:ab:cd:01', headers: h, payload: { macs: ['52:54:00:ab:cd:02', mac] } },
      { method: 'PATCH', url: `/api/v1/machines/${GOOD}`, headers: h, payload: { macs: [mac] } },
    ];
    for (const r of requests) {
      const res = await ta.app.inject(r);
      const what = `${r.method} ${r.url}${r.payload ? ` ${JSON.stringify(r.payload)}` : ''}`;
      t.equal(res.statusCode, 400, `${what}: 400`);
      const body = res.json<ErrorBody>();
      t.equal(body.error, 'invalid_mac', `${what}: invalid_mac`);
      t.match(body.message, why, `${what}: says why (${body.message})`);
    }
  }
  const left = await ta.store.listMachines();
  t.same(
    left.map((m) => [m.mac, m.macs, m.hostname]),
    [[GOOD, [], undefined]],
    'nothing was stored or changed',
  );
});

t.test('/ipxe: a refused mac= is its 400 script; a good MAC in macs= still boots', async (t) => {
  const ta = await testApp(t);
  for (const [mac] of REFUSED) {
    const res = await ta.app.inject({ method: 'GET', url: `/ipxe?mac=${mac}` });
    t.equal(res.statusCode, 400, `/ipxe?mac=${mac}: 400`);
    t.match(
      res.body,
      /^#!ipxe\necho edgeboot: \/ipxe needs mac= with a MAC address .*not all-zero, broadcast or multicast\nexit 1\n$/,
      'the iPXE script says why',
    );
    const both = await ta.app.inject({ method: 'GET', url: `/ipxe?mac=${mac}&macs=${mac},52-54-00-ab-cd-10` });
    t.equal(both.statusCode, 200, 'with a good MAC among macs=, that one boots');
  }
  const stored = (await ta.store.listMachines()).map((m) => [m.mac, m.observed.nics]);
  t.same(stored, [['52:54:00:ab:cd:10', ['52:54:00:ab:cd:10']]], 'only the good MAC is recorded, and no refused one among its NICs');
});

t.test('a real server refuses them over curl', async (t) => {
  const srv = await startServer(t);
  const { stdout } = await run('curl', [
    '-sS',
    '--max-time',
    '5',
    '-X',
    'PUT',
    '-H',
    `authorization: Bearer ${srv.token}`,
    '-H',
    'content-type: application/json',
    '-d',
    '{}',
    '-w',
    '\n%{http_code}',
    `${srv.url}/api/v1/machines/01-00-5e-00-00-fb`,
  ]);
  const [body = '', code] = stdout.split('\n');
  t.equal(code, '400');
  t.match(JSON.parse(body) as ErrorBody, { error: 'invalid_mac', message: /multicast/ });
  const ipxe = await run('curl', ['-sS', '--max-time', '5', '-w', '%{http_code}', `${srv.url}/ipxe?mac=ff-ff-ff-ff-ff-ff`]);
  t.match(ipxe.stdout, /^#!ipxe\n.*\n400$/s, '/ipxe: the 400 script');
});
