/**
 * boot.verifyClient: a machine's secrets (its events token, its signed Ignition URL and the
 * precache job's token inside that Ignition) and the state moves of its boot go to its own
 * address only — here its reservation's ip; the DHCP lease and neighbour-table cases run in
 * namespaces (test/system/verify-client-netns.test.ts). And tokens rotate: each precache or
 * install boot makes the credentials of the boot before worthless. Each test replays an
 * attack that worked before (issue 15 §2) and shows it fails, and the machine's own boot
 * still works.
 */
import t, { type Test } from 'tap';
import type { LightMyRequestResponse } from 'fastify';
import type { Mac } from '../../src/machines/mac.js';
import type { Machine } from '../../src/machines/model.js';
import { testApp, type ErrorBody, type TestApp, type EventBody } from '../helpers/app.js';

const VICTIM = '52:54:00:12:34:56';
const VICTIM_HYP = '52-54-00-12-34-56';
/** The victim's reservation ip: where its own requests come from. */
const VICTIM_IP = '10.77.0.50';
/** Another host on the provisioning network. */
const STRANGER = '10.77.0.99';
const HOST = '10.77.0.1:8080';
const HUB = 'https://hub.example.com/api/assisted-install/v2/infra-envs/1234/downloads/files?file_name=ipxe-script&api_key=abc.def';
/** What a script holds when it carries a secret: a token, a signature, the Ignition URL. */
const SECRET = /token=|sig=|ignition\.config\.url=|\/ignition\?/;

interface Lab {
  ta: TestApp;
  ipxe(from: string): Promise<LightMyRequestResponse>;
  /** GET of an absolute URL of this server (the Ignition URL), from `from`. */
  get(url: string, from: string): Promise<LightMyRequestResponse>;
  post(path: string, token: string, payload: Record<string, unknown>, from?: string): Promise<LightMyRequestResponse>;
  machine(): Promise<Machine>;
  events(): Promise<EventBody[]>;
}

async function setup(t: Test, boot: Record<string, unknown> = {}): Promise<Lab> {
  // assistedChain: chain: the install stage hands the hub's URL over, nothing is fetched.
  const ta = await testApp(t, { cache: {}, config: { boot: { assistedChain: 'chain', ...boot }, precache: { maxBoots: 3 } } });
  const put = await ta.app.inject({
    method: 'PUT',
    url: `/api/v1/machines/${VICTIM}`,
    headers: ta.auth,
    payload: { profile: 'precache-assisted', assisted: { ipxeScriptUrl: HUB }, hostname: 'sno-1', ip: VICTIM_IP },
  });
  if (put.statusCode !== 201) throw new Error(`PUT: ${put.statusCode} ${put.body}`);
  const local = (url: string) => {
    const u = new URL(url);
    return `${u.pathname}${u.search}`;
  };
  return {
    ta,
    ipxe: (from) => ta.app.inject({ method: 'GET', url: `/ipxe?mac=${VICTIM_HYP}`, headers: { host: HOST }, remoteAddress: from }),
    get: (url, from) => ta.app.inject({ method: 'GET', url: local(url), headers: { host: HOST }, remoteAddress: from }),
    post: (path, token, payload, from = VICTIM_IP) =>
      ta.app.inject({
        method: 'POST',
        url: `/api/v1/machines/${VICTIM_HYP}/${path}`,
        headers: { host: HOST, authorization: `Bearer ${token}` },
        payload,
        remoteAddress: from,
      }),
    machine: async () => (await ta.app.inject({ method: 'GET', url: `/api/v1/machines/${VICTIM}`, headers: ta.auth })).json<Machine>(),
    events: async () =>
      (await ta.app.inject({ method: 'GET', url: `/api/v1/machines/${VICTIM}/events`, headers: ta.auth })).json<{ events: EventBody[] }>().events,
  };
}

const ignitionUrlOf = (script: string): string | undefined => /ignition\.config\.url=(\S+)/.exec(script)?.[1];

/** The precache job's token from an Ignition config's precache.env. */
function jobToken(ignition: LightMyRequestResponse): string {
  const files = ignition.json<{ storage?: { files: { path: string; contents: { source: string } }[] } }>().storage?.files ?? [];
  const env = Buffer.from(files.find((f) => f.path === '/etc/edgeboot/precache.env')?.contents.source.replace(/^data:;base64,/, '') ?? '', 'base64').toString();
  return /^EDGEBOOT_TOKEN='([^']*)'$/m.exec(env)?.[1] ?? '';
}

t.test("a stranger's GET /ipxe?mac=<victim> gets no secret, moves nothing, and is on the victim's timeline", async (t) => {
  const lab = await setup(t);
  const before = (await lab.events()).length;
  const res = await lab.ipxe(STRANGER);
  t.equal(res.statusCode, 200, 'the script is still served');
  t.notMatch(res.body, SECRET, 'without an events token, a signature or an Ignition URL');
  t.notMatch(res.body, /\nkernel |\nchain [^\n]*hub/, 'and without the live environment or the hub');
  t.match(
    res.body,
    /^#!ipxe\n# edgeboot: no secrets and no state move for this request: the request came from 10\.77\.0\.99, which is not an address of 52:54:00:12:34:56/,
    'a comment says why',
  );
  t.match(res.body, /\nsleep \d+\nchain --replace --autofree http:\/\/10\.77\.0\.1:8080\/boot\.ipxe/, 'it waits and asks again');
  const m = await lab.machine();
  t.equal(m.state, 'registered', 'no state move');
  t.equal(m.precacheProgress, undefined, 'no precache run begun');
  const added = (await lab.events()).slice(before);
  t.same(
    added.map((e) => e.type),
    ['boot-untrusted'],
    'one boot-untrusted event, nothing else',
  );
  t.match(added[0], { source: 'http', data: { client: STRANGER, withheld: 'precache stage rhcos-live' } }, 'it names the address and what was withheld');

  const own = await lab.ipxe(VICTIM_IP);
  t.match(
    own.body,
    /\nkernel [^\n]*ignition\.config\.url=http:\/\/10\.77\.0\.1:8080\/api\/v1\/machines\/52-54-00-12-34-56\/ignition\?exp=\d+&sig=/,
    'from its reservation ip the machine gets its live environment and Ignition URL',
  );
  t.equal((await lab.machine()).state, 'precaching', 'and moves to precaching');
});

t.test('four GETs of a stranger do not fail a precaching machine as a boot loop', async (t) => {
  const lab = await setup(t);
  await lab.ipxe(VICTIM_IP);
  t.equal((await lab.machine()).precacheProgress?.boots, 1, 'the machine booted its live environment once');
  for (let i = 0; i < 4; i++) t.notMatch((await lab.ipxe(STRANGER)).body, SECRET, `stranger GET ${i + 1}: no secret`);
  const m = await lab.machine();
  t.equal(m.state, 'precaching', 'still precaching');
  t.equal(m.precacheProgress?.boots, 1, 'no boot counted for the stranger');
  t.equal((await lab.events()).filter((e) => e.type === 'boot-untrusted').length, 4);
  // The machine's own boots still count: boot-loop detection is not weakened.
  for (let i = 0; i < 2; i++) await lab.ipxe(VICTIM_IP);
  t.equal((await lab.machine()).precacheProgress?.boots, 3);
  t.match((await lab.ipxe(VICTIM_IP)).body, /boot loop/, "the machine's own fourth boot is a boot loop");
  t.equal((await lab.machine()).state, 'failed');
});

t.test('install-done with a token a stranger took from /ipxe is refused', async (t) => {
  const lab = await setup(t);
  // The attack of issue 15: the victim's script, then its Ignition, then precache.env's token.
  const script = (await lab.ipxe(STRANGER)).body;
  const url = ignitionUrlOf(script);
  t.equal(url, undefined, 'the stranger gets no Ignition URL');
  const stolen = url ? jobToken(await lab.get(url, STRANGER)) : '';
  // The machine goes on: precache boot, precache done (admin), install boot.
  await lab.ipxe(VICTIM_IP);
  const done = await lab.ta.app.inject({ method: 'POST', url: `/api/v1/machines/${VICTIM}/events`, headers: lab.ta.auth, payload: { type: 'precache-done' } });
  t.equal(done.statusCode, 201);
  t.match((await lab.ipxe(VICTIM_IP)).body, /chain --replace --autofree https:\/\/hub\.example\.com\//, 'the install boot chains to the hub');
  t.equal((await lab.machine()).state, 'installing');
  const res = await lab.ta.app.inject({
    method: 'POST',
    url: `/api/v1/machines/${VICTIM_HYP}/events?token=${encodeURIComponent(stolen)}`,
    payload: { type: 'install-done' },
    remoteAddress: STRANGER,
  });
  t.equal(res.statusCode, 401, 'the stranger cannot post install-done');
  t.equal((await lab.machine()).state, 'installing', 'the machine is not moved to installed');
});

t.test("tokens rotate: an earlier boot's token and Ignition URL stop working at the next precache and install boot", async (t) => {
  const lab = await setup(t);
  const url1 = ignitionUrlOf((await lab.ipxe(VICTIM_IP)).body) ?? '';
  const ign1 = await lab.get(url1, VICTIM_IP);
  t.equal(ign1.statusCode, 200, 'boot 1: the Ignition');
  const t1 = jobToken(ign1);
  t.match(t1, /^[A-Za-z0-9_-]{32}$/, 'boot 1: the job token');
  t.equal((await lab.post('events', t1, { type: 'booted' })).statusCode, 201, 'boot 1: its token works');

  // The machine reboots into its live environment: boot 2.
  const url2 = ignitionUrlOf((await lab.ipxe(VICTIM_IP)).body) ?? '';
  t.not(url2, url1);
  const inventory = { disks: [{ path: '/dev/vda', name: 'vda', sizeBytes: 2 ** 34, type: 'disk', removable: false, readOnly: false }], macs: [VICTIM] };
  t.equal((await lab.post('events', t1, { type: 'precache-progress' })).statusCode, 401, "boot 1's token: events 401");
  t.equal((await lab.post('inventory', t1, inventory)).statusCode, 401, "boot 1's token: inventory 401");
  t.equal((await lab.post('result', t1, { ok: true })).statusCode, 401, "boot 1's token: result 401");
  const plan = await lab.ta.app.inject({ method: 'GET', url: `/api/v1/machines/${VICTIM_HYP}/plan`, headers: { authorization: `Bearer ${t1}` } });
  t.equal(plan.statusCode, 401, "boot 1's token: plan 401");
  const old = await lab.get(url1, VICTIM_IP);
  t.equal(old.statusCode, 403, "boot 1's Ignition URL: 403");
  t.equal(old.json<ErrorBody>().error, 'bad_signature');
  t.equal((await lab.machine()).state, 'precaching', 'nothing the old token tried moved the machine');

  const ign2 = await lab.get(url2, VICTIM_IP);
  t.equal(ign2.statusCode, 200, "boot 2's Ignition URL works");
  const t2 = jobToken(ign2);
  t.not(t2, t1, 'boot 2 has a token of its own');
  t.equal((await lab.post('inventory', t2, inventory)).statusCode, 200, "boot 2's token works");
  t.equal((await lab.post('events', t2, { type: 'precache-done' })).statusCode, 201);
  t.equal((await lab.machine()).state, 'precached');

  // Hub automation reads the machine's events URL (GET …/boot, admin) as edgeboot asks it for
  // the install script: just before the install boot.
  const hubToken = async () =>
    new URL(
      (await lab.ta.app.inject({ method: 'GET', url: `/api/v1/machines/${VICTIM}/boot`, headers: lab.ta.auth })).json<{ eventsUrl: string }>().eventsUrl,
    ).searchParams.get('token') ?? '';
  const hub = await hubToken();
  t.not(hub, t2, "the hub's token is not the machine's");
  // The install boot rotates again: the precache job's token is done with.
  await lab.ipxe(VICTIM_IP);
  t.equal((await lab.machine()).state, 'installing');
  t.equal((await lab.post('events', t2, { type: 'install-done' })).statusCode, 401, "the precache boot's token after the install boot: 401");
  t.equal(
    (await lab.post('events', hub, { type: 'booted' }, STRANGER)).statusCode,
    201,
    'the token the hub read before the install boot works after it (from the hub, anywhere)',
  );
  t.equal((await lab.post('events', await hubToken(), { type: 'install-done' })).statusCode, 201, 'and so does one read now');
  t.equal((await lab.machine()).state, 'installed');
  // One boot further, the hub's earlier token is done with too.
  await lab.ta.app.inject({ method: 'POST', url: `/api/v1/machines/${VICTIM}/reset`, headers: lab.ta.auth, payload: { to: 'precached' } });
  await lab.ipxe(VICTIM_IP);
  t.equal((await lab.post('events', hub, { type: 'booted' })).statusCode, 401, "the hub's token of two boots ago: 401");
});

t.test("the Ignition URL is served to the machine's own address only", async (t) => {
  const lab = await setup(t);
  const url = ignitionUrlOf((await lab.ipxe(VICTIM_IP)).body) ?? '';
  const res = await lab.get(url, STRANGER);
  t.equal(res.statusCode, 403, 'a copied Ignition URL fetched from elsewhere: 403');
  const e = res.json<ErrorBody>();
  t.equal(e.error, 'untrusted_client');
  t.match(e.message, /10\.77\.0\.99/, 'the message names the address');
  t.notMatch(res.body, /token|EDGEBOOT/, 'and holds no secret');
  t.match((await lab.events()).at(-1), { type: 'boot-untrusted', data: { client: STRANGER, withheld: 'ignition' } });
  t.equal((await lab.get(url, VICTIM_IP)).statusCode, 200, 'the machine itself gets it');
});

t.test('boot.verifyClient: off serves anyone who names the MAC, as before (networks behind NAT)', async (t) => {
  const lab = await setup(t, { verifyClient: 'off' });
  const res = await lab.ipxe(STRANGER);
  const url = ignitionUrlOf(res.body);
  t.ok(url, 'the Ignition URL goes to any address');
  t.equal((await lab.machine()).state, 'precaching', 'and the boot moves the machine');
  t.equal((await lab.get(url ?? '', STRANGER)).statusCode, 200, 'the Ignition too');
  t.notOk(
    (await lab.events()).some((e) => e.type === 'boot-untrusted'),
    'nothing is untrusted',
  );
});

t.test('what holds no secret is served to anyone as before: an unknown MAC, an installed machine', async (t) => {
  const lab = await setup(t);
  const unknown = await lab.ta.app.inject({ method: 'GET', url: '/ipxe?mac=52-54-00-00-00-77&arch=x86_64', headers: { host: HOST }, remoteAddress: STRANGER });
  t.match(unknown.body, /no profile assigned \(boot\.unknownMachines: exit\)/);
  t.notMatch(unknown.body, /no secrets/);
  const m = (await lab.ta.app.inject({ method: 'GET', url: '/api/v1/machines/52:54:00:00:00:77', headers: lab.ta.auth })).json<Machine>();
  t.equal(m.state, 'discovered', 'the unknown MAC is discovered');
  await lab.ta.store.mutateMachine(VICTIM as Mac, (cur) => (cur ? { kind: 'save', machine: { ...cur, state: 'installed' } } : { kind: 'keep' }));
  const installed = await lab.ipxe(STRANGER);
  t.match(installed.body, /installed: booting from the local disk/, 'an installed machine: its local-disk script');
  t.notOk(
    (await lab.events()).some((e) => e.type === 'boot-untrusted'),
    'nothing was withheld',
  );
});
