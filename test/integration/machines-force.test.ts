/**
 * Getting a stuck machine out, through the admin API on a real store: `POST …/reset` with
 * `force` from any state of the flow, recorded on the timeline with who did it, from where and
 * from which state, and ending the credentials of the boot it was forced out of; the plain
 * reset keeps its rules. And the reservation address rule: in full DHCP mode an `ip` outside
 * every `dhcp.subnets` cidr is refused naming the key; in proxy mode it is the machine's
 * static address and accepted; `machinesOutsideSubnets` lists stored ones for a start-up warning.
 */
import t, { type Test } from 'tap';
import type { LightMyRequestResponse } from 'fastify';
import type { Mac } from '../../src/machines/mac.js';
import type { Machine } from '../../src/machines/model.js';
import { machinesOutsideSubnets } from '../../src/machines/addresses.js';
import { testApp, type ErrorBody, type EventBody, type TestApp } from '../helpers/app.js';

const MAC = '52:54:00:f0:00:01' as Mac;
const MAC_HYP = '52-54-00-f0-00-01';
const MACHINE_IP = '10.77.0.71';
const HOST = '10.77.0.1:8080';
const HUB = 'https://hub.example.com/api/assisted-install/v2/infra-envs/9/downloads/files?file_name=ipxe-script&api_key=k';
const SUBNET = { cidr: '10.77.0.0/24', pool: ['10.77.0.100', '10.77.0.199'], router: '10.77.0.1' };

const url = (rest = '') => `/api/v1/machines/${MAC_HYP}${rest}`;

async function registered(t: Test): Promise<TestApp> {
  const ta = await testApp(t, { config: { boot: { assistedChain: 'chain' } } });
  const payload = { profile: 'precache-assisted', assisted: { ipxeScriptUrl: HUB }, ip: MACHINE_IP };
  const put = await ta.app.inject({ method: 'PUT', url: url(), headers: ta.auth, payload });
  if (put.statusCode !== 201) throw new Error(`PUT: ${put.statusCode} ${put.body}`);
  return ta;
}

const boot = (ta: TestApp): Promise<LightMyRequestResponse> =>
  ta.app.inject({ method: 'GET', url: `/ipxe?mac=${MAC_HYP}`, headers: { host: HOST }, remoteAddress: MACHINE_IP });
const reset = (ta: TestApp, payload: Record<string, unknown>, remoteAddress = '192.0.2.7'): Promise<LightMyRequestResponse> =>
  ta.app.inject({ method: 'POST', url: url('/reset'), headers: ta.auth, payload, remoteAddress });
const state = async (ta: TestApp): Promise<string | undefined> => (await ta.store.getMachine(MAC))?.state;
const lastEvent = async (ta: TestApp): Promise<EventBody | undefined> => (await ta.store.listEvents(MAC)).at(-1);

/** The events token of the machine's current boot, as the precache live environment holds it (in its Ignition). */
async function liveToken(t: Test, ta: TestApp, script: string): Promise<string> {
  const ignitionUrl = /ignition\.config\.url=(\S+)/.exec(script)?.[1];
  t.ok(ignitionUrl, 'the precache script names its Ignition');
  const u = new URL(ignitionUrl ?? 'http://x/');
  const ign = await ta.app.inject({ method: 'GET', url: `${u.pathname}${u.search}`, headers: { host: HOST }, remoteAddress: MACHINE_IP });
  t.equal(ign.statusCode, 200, 'the machine fetches its Ignition');
  // Its files are data URLs; the precache job's environment file holds the token.
  const files = [...ign.body.matchAll(/data:;base64,([A-Za-z0-9+/=]+)/g)].map((d) => Buffer.from(d[1] ?? '', 'base64').toString());
  const token = files.map((f) => /^EDGEBOOT_TOKEN='([A-Za-z0-9_-]+)'$/m.exec(f)?.[1]).find((x) => x !== undefined);
  t.ok(token, 'which carries its events token');
  return token ?? '';
}

t.test('a plain reset keeps its rules; a forced one takes a precaching machine back, on the record', async (t) => {
  const ta = await registered(t);
  const served = await boot(ta);
  t.equal(await state(ta), 'precaching');
  const token = await liveToken(t, ta, served.body);
  const post = (type: string) => ta.app.inject({ method: 'POST', url: url(`/events?token=${token}`), payload: { type }, remoteAddress: MACHINE_IP });
  t.equal((await post('booted')).statusCode, 201, 'the live environment can post with its token');

  const plain = await reset(ta, { to: 'registered' });
  t.equal(plain.statusCode, 409, 'a plain reset of a precaching machine is refused');
  t.match(plain.json<ErrorBody>().message, /in state precaching: without force, only failed or installed machines can be reset/);
  t.equal(await state(ta), 'precaching', 'nothing moved');

  const forced = await reset(ta, { to: 'registered', force: true });
  t.equal(forced.statusCode, 200, forced.body);
  t.equal(forced.json<Machine>().state, 'registered');
  const e = await lastEvent(ta);
  t.match(
    e,
    {
      type: 'state-changed',
      source: 'api',
      from: 'precaching',
      to: 'registered',
      message: 'forced reset to registered from precaching',
      data: { cause: 'reset', forced: true, actor: 'admin', client: '192.0.2.7' },
    },
    'the timeline names the forced reset, who, from where, and the state it was forced from',
  );
  const m = await ta.store.getMachine(MAC);
  t.equal(m?.precacheProgress, undefined, 'the precache run it was forced out of is forgotten');

  const stale = await post('precache-failed');
  t.equal(stale.statusCode, 401, "the forced-out boot's token no longer posts…");
  t.equal(await state(ta), 'registered', '…so it cannot fail the machine it was forced out of');

  const again = await boot(ta);
  t.equal(again.statusCode, 200);
  t.equal(await state(ta), 'precaching', 'the next boot starts the precache over');
  t.equal((await ta.store.getMachine(MAC))?.precacheProgress?.boots, 1, 'as boot 1 of a new run');
});

t.test('forced: an install that never reported back, back to precached; a discovered machine has no flow', async (t) => {
  const ta = await registered(t);
  await boot(ta);
  const done = await ta.app.inject({ method: 'POST', url: url('/events'), headers: ta.auth, payload: { type: 'precache-done' } });
  t.equal(done.statusCode, 201);
  const precachedAt = (await ta.store.getMachine(MAC))?.precachedAt;
  await boot(ta);
  t.equal(await state(ta), 'installing');

  const res = await reset(ta, { to: 'precached', force: true }, '198.51.100.3');
  t.equal(res.statusCode, 200, res.body);
  t.equal(res.json<Machine>().state, 'precached', 'reinstall, keeping the partition');
  t.equal(res.json<Machine>().precachedAt, precachedAt, 'the precache is kept');
  t.match(await lastEvent(ta), { from: 'installing', to: 'precached', data: { forced: true, actor: 'admin', client: '198.51.100.3' } });

  const plain = await reset(ta, { to: 'registered' });
  t.equal(plain.statusCode, 409, 'precached is not failed or installed: a plain reset still refuses');

  const STRANGER = '52:54:00:f0:00:99';
  const seen = await ta.app.inject({ method: 'GET', url: `/ipxe?mac=${STRANGER}`, headers: { host: HOST } });
  t.equal(seen.statusCode, 200, 'an unknown machine leaves a discovered record');
  const disc = await ta.app.inject({ method: 'POST', url: `/api/v1/machines/${STRANGER}/reset`, headers: ta.auth, payload: { force: true } });
  t.equal(disc.statusCode, 409);
  t.match(disc.json<ErrorBody>().message, /a discovered machine has no flow to reset: assign it a profile/);

  const unknown = await ta.app.inject({ method: 'POST', url: '/api/v1/machines/52:54:00:f0:00:aa/reset', headers: ta.auth, payload: { force: true } });
  t.equal(unknown.statusCode, 404, 'an unknown MAC is a 404');
  const badFlag = await reset(ta, { force: 'yes' });
  t.equal(badFlag.statusCode, 400, 'force is a boolean');
});

t.test('a forced reset of a machine already in that state moves nothing but is on the record and ends its credentials', async (t) => {
  const ta = await registered(t);
  const before = await ta.store.getMachine(MAC);
  const res = await reset(ta, { to: 'registered', force: true });
  t.equal(res.statusCode, 200);
  const after = await ta.store.getMachine(MAC);
  t.equal(after?.state, 'registered', 'still registered');
  t.equal(after?.tokenGeneration ?? 0, (before?.tokenGeneration ?? 0) + 1, 'the credentials handed out so far end');
  t.match(await lastEvent(ta), {
    type: 'reset',
    source: 'api',
    message: 'forced reset: already registered',
    data: { cause: 'reset', actor: 'admin', client: '192.0.2.7', forced: true },
  });
  const plain = await reset(ta, { to: 'registered' });
  t.equal(plain.statusCode, 409, 'without force a registered machine is still refused');
});

t.test('a plain reset is recorded with who did it too', async (t) => {
  const ta = await registered(t);
  await ta.app.inject({ method: 'POST', url: url('/events'), headers: ta.auth, payload: { type: 'failed', message: 'disk on fire' } });
  t.equal(await state(ta), 'failed');
  const res = await reset(ta, {});
  t.equal(res.statusCode, 200);
  const e = await lastEvent(ta);
  t.match(e, { from: 'failed', to: 'registered', message: 'reset to registered', data: { cause: 'reset', actor: 'admin', client: '192.0.2.7' } });
  t.equal((e?.data as { forced?: boolean }).forced, undefined, 'not marked forced');
});

t.test('full DHCP mode: a reservation ip outside every subnet is a 400 naming the key', async (t) => {
  const ta = await testApp(t, { config: { dhcp: { mode: 'full', subnets: [SUBNET] } } });
  const put = (ip: string) => ta.app.inject({ method: 'PUT', url: url(), headers: ta.auth, payload: { profile: 'local-disk', ip } });
  const outside = await put('10.9.9.9');
  t.equal(outside.statusCode, 400);
  t.same(outside.json<ErrorBody>(), {
    error: 'address_outside_subnets',
    message: 'ip: 10.9.9.9 is outside every dhcp.subnets cidr (10.77.0.0/24)',
    details: { field: 'ip' },
  });
  t.equal(await ta.store.getMachine(MAC), undefined, 'nothing saved');

  t.equal((await put('10.77.0.80')).statusCode, 201, 'an address inside the subnet is saved');
  const patch = await ta.app.inject({ method: 'PATCH', url: url(), headers: ta.auth, payload: { ip: '10.77.1.80' } });
  t.equal(patch.statusCode, 400, 'a PATCH that moves it out is refused too');
  t.match(patch.json<ErrorBody>().message, /^ip: 10\.77\.1\.80 is outside every dhcp\.subnets cidr/);
  t.equal((await ta.store.getMachine(MAC))?.ip, '10.77.0.80', 'the stored address stays');
  t.same(await machinesOutsideSubnets(ta.store, ta.config.dhcp), [], 'nothing stored outside');
});

t.test('proxy mode: ip is a static address, not a lease, and any address goes; the start-up list finds it for full mode', async (t) => {
  const ta = await testApp(t, { config: { dhcp: { mode: 'proxy', subnets: [SUBNET] } } });
  const res = await ta.app.inject({ method: 'PUT', url: url(), headers: ta.auth, payload: { profile: 'local-disk', ip: '10.9.9.9' } });
  t.equal(res.statusCode, 201, 'accepted in proxy mode');
  const inside = { profile: 'local-disk', ip: '10.77.0.90' };
  const other = await ta.app.inject({ method: 'PUT', url: '/api/v1/machines/52:54:00:f0:00:02', headers: ta.auth, payload: inside });
  t.equal(other.statusCode, 201);
  t.same(await machinesOutsideSubnets(ta.store, ta.config.dhcp), [], 'proxy mode: no lease to warn about');
  t.same(
    await machinesOutsideSubnets(ta.store, { mode: 'full', subnets: ta.config.dhcp.subnets }),
    [{ mac: MAC, ip: '10.9.9.9', problem: 'ip: 10.9.9.9 is outside every dhcp.subnets cidr (10.77.0.0/24)' }],
    'the same store under full mode: the one machine outside, with the sentence to log',
  );
});
