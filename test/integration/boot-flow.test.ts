/**
 * The boot of one machine through HTTP only, as firmware, the live environment and an admin
 * drive it: discovered → registered → precaching → precached → installing → installed, a
 * reset, and the timeline that records it. Then the policies for unknown machines, multi-NIC
 * identity, the entry script, profiles, health and the API docs.
 */
import t from 'tap';
import type { LightMyRequestResponse } from 'fastify';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Mac } from '../../src/machines/mac.js';
import type { Machine } from '../../src/machines/model.js';
import { tempDir, testApp, type ErrorBody, type TestApp, type EventBody } from '../helpers/app.js';

interface BootInfo {
  mac: string;
  state: string;
  profile?: string;
  next: { kind: string; stage?: string; profile?: string; reason: string };
  scriptUrl: string;
  entryUrl: string;
  eventsUrl?: string;
}

interface IgnitionBody {
  ignition: { version: string };
  storage?: { files: { path: string; contents: { source: string } }[] };
  systemd: { units: { name: string; enabled: boolean; contents: string }[] };
}

interface ProfileBody {
  name: string;
  description: string;
  kind: string;
  builtin: boolean;
  file: string;
  artifacts: Record<string, { url: string; sha256?: string }>;
  flow?: { precache?: string; install: string };
  requires: string[];
}

const MAC = '52:54:00:ab:cd:ef';
const MAC_HYP = '52-54-00-ab-cd-ef';
const MAC2 = '52:54:00:ab:cd:f0';
const UUID = '4c4c4544-0042-3510-8052-b4c04f333532';
const HUB = 'https://hub.example.com/api/assisted-install/v2/infra-envs/1234/downloads/files?file_name=ipxe-script&api_key=abc.def';
/** The address machines reach edgeboot at in these tests: the Host header of every boot request. */
const HOST = '10.77.0.2:8080';
const BASE = `http://${HOST}`;
/** The machine's own address (its reservation's ip): where its boot requests come from (boot.verifyClient). */
const MACHINE_IP = '10.77.0.50';
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

const path = (mac: string, rest = '') => `/api/v1/machines/${mac}${rest}`;

function ipxe(ta: TestApp, query: string): Promise<LightMyRequestResponse> {
  return ta.app.inject({ method: 'GET', url: `/ipxe?${query}`, headers: { host: HOST }, remoteAddress: MACHINE_IP });
}

function adminGet(ta: TestApp, url: string): Promise<LightMyRequestResponse> {
  return ta.app.inject({ method: 'GET', url, headers: { ...ta.auth, host: HOST } });
}

async function machine(ta: TestApp, mac: string): Promise<Machine> {
  const res = await adminGet(ta, path(mac));
  if (res.statusCode !== 200) throw new Error(`GET ${mac}: ${res.statusCode} ${res.body}`);
  return res.json<Machine>();
}

async function timeline(ta: TestApp, mac: string): Promise<EventBody[]> {
  const res = await adminGet(ta, path(mac, '/events'));
  if (res.statusCode !== 200) throw new Error(`GET events ${mac}: ${res.statusCode} ${res.body}`);
  return res.json<{ events: EventBody[] }>().events;
}

async function bootInfo(ta: TestApp, mac: string): Promise<BootInfo> {
  const res = await adminGet(ta, path(mac, '/boot'));
  if (res.statusCode !== 200) throw new Error(`GET boot ${mac}: ${res.statusCode} ${res.body}`);
  return res.json<BootInfo>();
}

/** Path and query of an absolute URL on this server, for app.inject. */
function local(url: string): string {
  const u = new URL(url);
  if (u.origin !== BASE) throw new Error(`${url} is not on ${BASE}`);
  return `${u.pathname}${u.search}`;
}

/** The local-boot script: UEFI exits to the next boot entry, BIOS boots the first disk. */
const LOCAL_BOOT = /\niseq \$\{platform\} pcbios \|\| exit\nsanboot --no-describe --drive 0x80 \|\| exit\n$/;

t.test('precache-assisted, end to end over HTTP', async (t) => {
  let clock = Date.parse('2025-03-01T09:00:00.000Z');
  const tick = (seconds = 1) => {
    clock += seconds * 1000;
    return new Date(clock).toISOString();
  };
  const ta = await testApp(t, { now: () => new Date(clock) });
  const times: string[] = [];

  // 1. An unknown machine boots: discovered, told to boot its disk (boot.unknownMachines: exit).
  times.push(tick());
  let res = await ipxe(ta, `mac=${MAC_HYP}&uuid=${UUID.toUpperCase()}&arch=x86_64&platform=efi&serial=ABC`);
  t.equal(res.statusCode, 200);
  t.match(res.headers['content-type'], /^text\/plain/);
  t.match(res.body, /^#!ipxe\necho edgeboot: 52:54:00:ab:cd:ef: no profile assigned \(boot\.unknownMachines: exit\) \(state discovered\)\n/);
  t.match(res.body, LOCAL_BOOT, 'exit / sanboot: the local disk');
  let m = await machine(ta, MAC);
  t.equal(m.state, 'discovered');
  t.equal(m.profile, undefined);
  t.same(m.observed, { uuid: UUID, arch: 'x86_64', platform: 'efi', serial: 'ABC', lastSeenAt: times[0] }, 'what the machine reported is recorded');
  t.equal(m.createdAt, times[0]);
  t.same(
    (await adminGet(ta, '/api/v1/machines?state=discovered')).json<{ machines: Machine[] }>().machines.map((x) => x.mac),
    [MAC],
  );

  // 2. An admin assigns the profile: registered.
  times.push(tick());
  res = await ta.app.inject({
    method: 'PUT',
    url: path(MAC),
    headers: ta.auth,
    payload: { profile: 'precache-assisted', assisted: { ipxeScriptUrl: HUB }, hostname: 'sno-1', ip: MACHINE_IP },
  });
  t.equal(res.statusCode, 200, `the discovered machine is replaced, not created (${res.body})`);
  m = res.json<Machine>();
  t.equal(m.state, 'registered');
  t.same(m.observed, { uuid: UUID, arch: 'x86_64', platform: 'efi', serial: 'ABC', lastSeenAt: times[0] }, 'observed survives the PUT');

  // What the hub asks: no side effects.
  const eventsBeforePreview = (await timeline(ta, MAC)).length;
  let info = await bootInfo(ta, MAC);
  t.match(
    info.eventsUrl,
    new RegExp(`^${BASE}/api/v1/machines/${MAC_HYP}/events\\?token=[A-Za-z0-9_-]{16,}$`),
    'the events URL the hub can post install-done to',
  );
  delete info.eventsUrl;
  t.same(info, {
    mac: MAC,
    state: 'registered',
    profile: 'precache-assisted',
    next: { kind: 'boot', stage: 'precache', profile: 'rhcos-live', reason: 'precache stage: rhcos-live' },
    scriptUrl: `${BASE}/ipxe?mac=${MAC_HYP}`,
    entryUrl: `${BASE}/boot.ipxe`,
  });
  t.equal((await machine(ta, MAC)).state, 'registered', 'GET /boot moves no state');
  t.equal((await timeline(ta, MAC)).length, eventsBeforePreview, 'and records no event');

  // 3. The next boot: the precache live environment, from the cache, with its Ignition URL.
  times.push(tick());
  res = await ipxe(ta, `mac=${MAC_HYP}&uuid=${UUID}&arch=x86_64&platform=efi&serial=ABC`);
  t.equal(res.statusCode, 200);
  const script = res.body;
  const kernel = script.split('\n').find((l) => l.startsWith('kernel '));
  t.ok(kernel, 'a kernel line');
  const args = (kernel ?? '').split(' ');
  t.equal(args[1], `${BASE}/assets/rhcos-live/kernel`, 'kernel from /assets/rhcos-live/');
  t.ok(args.includes('initrd=initramfs'));
  t.ok(args.includes(`coreos.live.rootfs_url=${BASE}/assets/rhcos-live/rootfs`));
  t.ok(args.includes('ignition.firstboot') && args.includes('ignition.platform.id=metal'));
  t.match(kernel ?? '', / \|\| goto edgeboot-failed$/);
  t.ok(script.includes(`\ninitrd --name initramfs ${BASE}/assets/rhcos-live/initramfs || goto edgeboot-failed\n`));
  t.ok(script.includes('\nboot || goto edgeboot-failed\n'));
  const ignArg = args.find((a) => a.startsWith('ignition.config.url='));
  t.ok(ignArg, 'ignition.config.url= on the kernel line');
  const ignitionUrl = (ignArg ?? '').slice('ignition.config.url='.length);
  t.match(ignitionUrl, new RegExp(`^${BASE}/api/v1/machines/${MAC_HYP}/ignition\\?exp=\\d+&sig=[A-Za-z0-9_-]+$`));
  t.equal((await machine(ta, MAC)).state, 'precaching');

  // 4. The live environment fetches its Ignition: no admin token, the signed URL is the key.
  res = await ta.app.inject({ method: 'GET', url: local(ignitionUrl), headers: { host: HOST }, remoteAddress: MACHINE_IP });
  t.equal(res.statusCode, 200, res.body);
  const ign = res.json<IgnitionBody>();
  t.equal(ign.ignition.version, '3.4.0');
  const files = new Map((ign.storage?.files ?? []).map((f) => [f.path, f.contents.source]));
  t.same([...files.keys()], ['/etc/hostname', '/etc/edgeboot/precache.env', '/usr/local/bin/edgeboot-precache'], 'the hostname, the job and its settings');
  t.equal(files.get('/etc/hostname'), 'data:,sno-1');
  const fromData = (url: string | undefined) => Buffer.from((url ?? '').replace(/^data:;base64,/, ''), 'base64').toString();
  t.match(fromData(files.get('/usr/local/bin/edgeboot-precache')), /^#!\/bin\/bash\n/, 'the precache job');
  const unit = ign.systemd.units.find((u) => u.name === 'edgeboot-precache.service');
  t.ok(unit?.enabled, 'the precache unit is enabled');
  t.match(unit?.contents, /\nExecStart=\/bin\/bash \/usr\/local\/bin\/edgeboot-precache\n/, 'and runs the job');
  const env = Object.fromEntries(
    fromData(files.get('/etc/edgeboot/precache.env'))
      .trim()
      .split('\n')
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 2, -1)]),
  );
  t.equal(env.EDGEBOOT_MACHINE_URL, `${BASE}/api/v1/machines/${MAC_HYP}`, "the job's machine URL");
  t.equal(env.EDGEBOOT_MAC, MAC);
  const eventsUrl = `${env.EDGEBOOT_MACHINE_URL}/events?token=${env.EDGEBOOT_TOKEN}`;
  t.equal(eventsUrl, ta.boot.eventsUrl(BASE, (await ta.store.getMachine(MAC as Mac)) ?? { mac: MAC as Mac }), "its token is the machine's events token");
  const token = env.EDGEBOOT_TOKEN ?? '';

  const ign403 = async (url: string, code: string, why: string) => {
    const r = await ta.app.inject({ method: 'GET', url, headers: { host: HOST } });
    t.equal(r.statusCode, 403, `${why}: 403`);
    const e = r.json<ErrorBody>();
    t.equal(e.error, code, why);
    t.type(e.message, 'string');
  };
  const u = new URL(ignitionUrl);
  const sig = u.searchParams.get('sig') ?? '';
  const exp = Number(u.searchParams.get('exp'));
  t.equal(exp, Math.floor(clock / 1000) + 2 * 3600, 'the URL is good for two hours');
  const flipped = `${sig.slice(0, -1)}${sig.endsWith('A') ? 'B' : 'A'}`;
  await ign403(`${u.pathname}?exp=${exp}&sig=${flipped}`, 'bad_signature', 'a tampered signature');
  await ign403(`${u.pathname}?exp=${exp + 3600}&sig=${sig}`, 'bad_signature', 'a tampered expiry');
  await ign403(`${path('52-54-00-00-00-01', '/ignition')}?exp=${exp}&sig=${sig}`, 'bad_signature', "another machine's path");
  await ign403(`${u.pathname}?exp=${Math.floor(clock / 1000) - 1}&sig=${sig}`, 'url_expired', 'an expiry in the past');
  t.equal((await ta.app.inject({ method: 'GET', url: u.pathname })).statusCode, 400, 'no signature at all: 400');

  // 5. The live environment reports in, then its result. A wrong token is refused.
  times.push(tick());
  res = await ta.app.inject({
    method: 'POST',
    url: local(eventsUrl),
    headers: { host: HOST },
    payload: { type: 'booted', message: 'live environment reached multi-user' },
  });
  t.equal(res.statusCode, 201, res.body);
  const eventsBeforeWrong = (await timeline(ta, MAC)).length;
  for (const wrong of [
    `${token.slice(0, -1)}${token.endsWith('A') ? 'B' : 'A'}`,
    'x',
    ta.boot.eventsUrl(BASE, { mac: MAC2 as Mac }).split('token=')[1] ?? '',
  ]) {
    res = await ta.app.inject({ method: 'POST', url: `${path(MAC_HYP, '/events')}?token=${wrong}`, payload: { type: 'precache-done' } });
    t.equal(res.statusCode, 401, 'a wrong token: 401');
    t.equal(res.json<ErrorBody>().error, 'unauthorized');
    t.match(res.json<ErrorBody>().message, /token/);
  }
  res = await ta.app.inject({ method: 'POST', url: path(MAC_HYP, '/events'), payload: { type: 'precache-done' } });
  t.equal(res.statusCode, 401, 'no token: 401');
  t.equal((await timeline(ta, MAC)).length, eventsBeforeWrong, 'refused posts record nothing');
  t.equal((await machine(ta, MAC)).state, 'precaching', 'and move nothing');

  times.push(tick());
  res = await ta.app.inject({ method: 'POST', url: local(eventsUrl), headers: { host: HOST }, payload: { type: 'precache-done', data: { files: 3 } } });
  t.equal(res.statusCode, 201, res.body);
  const posted = res.json<{ events: EventBody[] }>().events;
  t.same(
    posted.map((e) => [e.type, e.source, e.from, e.to]),
    [
      ['precache-done', 'machine', undefined, undefined],
      ['state-changed', 'machine', 'precaching', 'precached'],
    ],
  );
  m = await machine(ta, MAC);
  t.equal(m.state, 'precached');
  t.equal(m.precachedAt, times[4]);
  info = await bootInfo(ta, MAC);
  t.same(info.next, { kind: 'boot', stage: 'install', profile: 'assisted', reason: 'install stage: assisted' });

  // 6. The next boot chains into the assisted installer; a 404 from the hub leaves to the disk.
  times.push(tick());
  res = await ipxe(ta, `mac=${MAC_HYP}`);
  t.equal(res.statusCode, 200);
  t.match(res.body, /^#!ipxe\necho edgeboot: 52:54:00:ab:cd:ef: install stage: assisted \(state installing\)\n/);
  t.ok(res.body.endsWith(`\nchain --replace --autofree ${HUB} || exit\n`), 'chain to the hub, || exit');
  t.equal((await machine(ta, MAC)).state, 'installing');

  // 7. The install is done, posted with the token of this boot (the hub has it from GET …/boot;
  // a bearer token works too). The precache job's token was rotated away by the install boot.
  res = await ta.app.inject({
    method: 'POST',
    url: path(MAC_HYP, '/events'),
    headers: { authorization: `Bearer ${token}` },
    payload: { type: 'install-done' },
  });
  t.equal(res.statusCode, 401, "the precache boot's token no longer works");
  times.push(tick());
  const installToken = new URL((await bootInfo(ta, MAC)).eventsUrl ?? '').searchParams.get('token') ?? '';
  t.not(installToken, token, 'the install boot has a token of its own');
  res = await ta.app.inject({
    method: 'POST',
    url: path(MAC_HYP, '/events'),
    headers: { authorization: `Bearer ${installToken}` },
    payload: { type: 'install-done' },
  });
  t.equal(res.statusCode, 201, res.body);
  t.equal((await machine(ta, MAC)).state, 'installed');
  t.same((await bootInfo(ta, MAC)).next, { kind: 'local', reason: 'installed: booting from the local disk' });

  // 8. From now on it boots its disk.
  times.push(tick());
  res = await ipxe(ta, `mac=${MAC_HYP}`);
  t.match(res.body, /installed: booting from the local disk \(state installed\)\n/);
  t.match(res.body, LOCAL_BOOT);
  t.notOk(res.body.includes('chain'), 'no chain for an installed machine');
  t.equal((await machine(ta, MAC)).state, 'installed');

  // 9. A reinstall that keeps the precache.
  times.push(tick());
  res = await ta.app.inject({ method: 'POST', url: path(MAC, '/reset'), headers: ta.auth, payload: { to: 'precached' } });
  t.equal(res.statusCode, 200, res.body);
  t.equal(res.json<Machine>().state, 'precached');
  t.equal(res.json<Machine>().precachedAt, times[4], 'the precache is kept');

  // The signed Ignition URL expires.
  tick(2 * 3600 + 1);
  await ign403(local(ignitionUrl), 'url_expired', 'after two hours');

  // The timeline: every step, in order, with its source, from/to on state moves, and its time.
  const events = await timeline(ta, MAC);
  const expected: [string, string, string | undefined, string | undefined, string | undefined][] = [
    // type, source, from, to, time
    ['discovered', 'http', undefined, 'discovered', times[0]],
    ['script-served', 'http', undefined, undefined, times[0]],
    ['reservation-updated', 'api', undefined, undefined, times[1]],
    ['state-changed', 'api', 'discovered', 'registered', times[1]],
    ['state-changed', 'http', 'registered', 'precaching', times[2]],
    ['script-served', 'http', undefined, undefined, times[2]],
    ['booted', 'machine', undefined, undefined, times[3]],
    ['precache-done', 'machine', undefined, undefined, times[4]],
    ['state-changed', 'machine', 'precaching', 'precached', times[4]],
    ['state-changed', 'http', 'precached', 'installing', times[5]],
    ['script-served', 'http', undefined, undefined, times[5]],
    ['install-done', 'machine', undefined, undefined, times[6]],
    ['state-changed', 'machine', 'installing', 'installed', times[6]],
    ['script-served', 'http', undefined, undefined, times[7]],
    ['state-changed', 'api', 'installed', 'precached', times[8]],
  ];
  t.same(
    events.map((e) => [e.type, e.source, e.from, e.to, e.time]),
    expected,
    'the timeline',
  );
  for (const e of events) t.match(e.time, ISO, `event ${e.id} has an ISO time`);
  t.ok(
    events.every((e, i) => i === 0 || e.id > (events[i - 1]?.id ?? Infinity)),
    'ids increase',
  );
  t.same(
    events.filter((e) => e.type === 'script-served').map((e) => e.data),
    [{ kind: 'local' }, { kind: 'boot', stage: 'precache', profile: 'rhcos-live' }, { kind: 'boot', stage: 'install', profile: 'assisted' }, { kind: 'local' }],
    'what each boot was served',
  );
  t.same(events.find((e) => e.type === 'precache-done')?.data, { files: 3 }, 'posted data kept');
  t.equal(events.find((e) => e.type === 'booted')?.message, 'live environment reached multi-user');
  t.same(events.find((e) => e.type === 'discovered')?.data, { arch: 'x86_64', platform: 'efi', serial: 'ABC', macs: [], uuid: UUID });

  // Paging: after= and limit=.
  const firstId = events[0]?.id ?? 0;
  const page = (await adminGet(ta, `${path(MAC, '/events')}?after=${firstId}&limit=2`)).json<{ events: EventBody[] }>().events;
  t.same(
    page.map((e) => e.type),
    ['script-served', 'reservation-updated'],
  );

  // The next /ipxe serves the installer again: the precache is not redone.
  res = await ipxe(ta, `mac=${MAC_HYP}`);
  t.ok(res.body.includes(`chain --replace --autofree ${HUB} || exit`));
  t.equal((await machine(ta, MAC)).state, 'installing');
});

t.test('boot.unknownMachines: wait — re-check until a profile is assigned, then boot it', async (t) => {
  const ta = await testApp(t, { config: { boot: { unknownMachines: 'wait', recheckSeconds: 7 } } });
  for (let i = 0; i < 3; i++) {
    const res = await ipxe(ta, `mac=${MAC_HYP}`);
    t.equal(res.statusCode, 200);
    t.match(res.body, /^#!ipxe\necho edgeboot: 52:54:00:ab:cd:ef: no profile assigned yet: waiting for an admin to assign one \(state discovered\)\n/);
    t.match(res.body, /\nsleep 7\n/, 'sleeps recheckSeconds');
    t.ok(res.body.includes(`\nchain --replace --autofree ${BASE}/boot.ipxe || goto edgeboot-recheck\n`), 're-checks through the entry script');
    t.notOk(/\bexit\b/.test(res.body), 'does not leave PXE');
    t.equal((await machine(ta, MAC)).state, 'discovered', `boot ${i + 1}: still discovered`);
  }
  t.equal((await bootInfo(ta, MAC)).next.kind, 'wait');
  const served = (await timeline(ta, MAC)).filter((e) => e.type === 'script-served');
  t.equal(served.length, 3);
  t.ok(served.every((e) => e.data?.kind === 'wait'));

  const put = await ta.app.inject({
    method: 'PUT',
    url: path(MAC_HYP),
    headers: ta.auth,
    payload: { profile: 'assisted', assisted: { ipxeScriptUrl: HUB }, ip: MACHINE_IP },
  });
  t.equal(put.statusCode, 200);
  t.equal(put.json<Machine>().state, 'registered');
  const res = await ipxe(ta, `mac=${MAC_HYP}`);
  t.ok(res.body.endsWith(`\nchain --replace --autofree ${HUB} || exit\n`), 'the assigned profile boots: no precache, straight to the installer');
  t.equal((await machine(ta, MAC)).state, 'installing');
});

t.test('boot.unknownMachines: local-disk — an unknown machine boots its disk and stays discovered', async (t) => {
  const ta = await testApp(t, { config: { boot: { unknownMachines: 'local-disk' } } });
  const res = await ipxe(ta, `mac=${MAC_HYP}&arch=i386&platform=pcbios`);
  t.equal(res.statusCode, 200);
  t.match(res.body, /^#!ipxe\necho edgeboot: 52:54:00:ab:cd:ef: unknown machine: profile local-disk boots the local disk \(state discovered\)\n/);
  t.match(res.body, LOCAL_BOOT);
  const m = await machine(ta, MAC);
  t.equal(m.state, 'discovered');
  t.equal(m.profile, undefined, 'the policy assigns no profile');
  t.same((await bootInfo(ta, MAC)).next, { kind: 'local', reason: 'unknown machine: profile local-disk boots the local disk' });
});

t.test('a multi-NIC machine booting from its second NIC is the same machine', async (t) => {
  const ta = await testApp(t);
  const put = await ta.app.inject({
    method: 'PUT',
    url: path(MAC),
    headers: ta.auth,
    payload: { macs: [MAC2.toUpperCase()], profile: 'assisted', assisted: { ipxeScriptUrl: HUB }, ip: MACHINE_IP },
  });
  t.equal(put.statusCode, 201);
  // The entry script sends netX (the NIC that booted) as mac= and every NIC, comma-ended, as macs=.
  const res = await ipxe(ta, `mac=52-54-00-ab-cd-f0&macs=${MAC_HYP},52-54-00-ab-cd-f0,&uuid=${UUID}&arch=x86_64&platform=efi`);
  t.equal(res.statusCode, 200);
  t.match(res.body, /^#!ipxe\necho edgeboot: 52:54:00:ab:cd:ef: /, 'named by its primary MAC');
  t.ok(res.body.includes(`chain --replace --autofree ${HUB} || exit`), "boots the machine's profile");
  const m = await machine(ta, MAC2);
  t.equal(m.mac, MAC);
  t.same(m.macs, [MAC2]);
  t.equal(m.state, 'installing');
  t.equal(m.observed.arch, 'x86_64');
  t.match(m.observed.lastSeenAt ?? '', ISO);
  const all = (await adminGet(ta, '/api/v1/machines')).json<{ machines: Machine[] }>().machines;
  t.equal(all.length, 1, 'no second machine for the second NIC');

  // Only the second NIC, without the list: still found.
  const again = await ipxe(ta, 'mac=525400ABCDF0');
  t.match(again.body, /52:54:00:ab:cd:ef: install stage: assisted \(state installing\)/);
  // A NIC not in the reservation, with the reservation's UUID: found by UUID.
  const byUuid = await ta.app.inject({
    method: 'PUT',
    url: path('02:00:00:00:00:0a'),
    headers: ta.auth,
    payload: { uuid: '11111111-2222-3333-4444-555555555555', profile: 'local-disk' },
  });
  t.equal(byUuid.statusCode, 201);
  const viaUuid = await ipxe(ta, 'mac=02-00-00-00-00-0b&uuid=11111111-2222-3333-4444-555555555555');
  t.match(viaUuid.body, /02:00:00:00:00:0a: profile local-disk boots the local disk/);
  t.equal((await adminGet(ta, path('02:00:00:00:00:0b'))).statusCode, 404, 'the unknown NIC made no machine of its own');
  t.equal((await adminGet(ta, '/api/v1/machines')).json<{ machines: Machine[] }>().machines.length, 2);
});

t.test('GET /boot.ipxe: the entry script with the base URL from the Host header', async (t) => {
  const ta = await testApp(t);
  for (const host of ['edgeboot.lab.example:8080', '10.77.0.2', '[fd00::2]:8080']) {
    const res = await ta.app.inject({ method: 'GET', url: '/boot.ipxe', headers: { host } });
    t.equal(res.statusCode, 200);
    t.match(res.headers['content-type'], /^text\/plain/);
    t.match(res.body, /^#!ipxe\n/);
    t.ok(
      res.body.includes(
        `\nchain --replace --autofree http://${host}/ipxe?mac=\${netX/mac:hexhyp}&macs=\${edgeboot-macs}&uuid=\${uuid}&serial=\${serial:uristring}&arch=\${buildarch}&platform=\${platform} || goto edgeboot-retry\n`,
      ),
      `chains to http://${host}/ipxe with every NIC`,
    );
    t.ok(res.body.includes(`echo edgeboot: cannot reach http://${host}/ipxe, retrying in 10 s\n`));
    t.match(res.body, /\nset edgeboot-macs \$\{edgeboot-macs\}\$\{net\$\{edgeboot-idx\}\/mac:hexhyp\},\n/, 'collects every NIC');
  }
  const none = await ta.app.inject({ method: 'GET', url: '/ipxe' });
  t.equal(none.statusCode, 400, '/ipxe without a MAC: 400');
  t.match(none.body, /^#!ipxe\necho edgeboot: \/ipxe needs mac= /, 'with a script that says why');
});

t.test('profiles: list, one, 404', async (t) => {
  const dir = tempDir('edgeboot-profiles-');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'site-disk.yaml'), 'name: site-disk\ndescription: a user profile\nlocal: true\n');
  writeFileSync(join(dir, 'broken.yaml'), 'name: broken\nchain: "{{ machine.nope }}"\n');
  const ta = await testApp(t, { profileDirs: [dir] });

  let res = await adminGet(ta, '/api/v1/profiles');
  t.equal(res.statusCode, 200);
  const list = res.json<{ profiles: ProfileBody[]; problems: { file: string; message: string }[] }>();
  t.same(
    list.profiles.map((p) => [p.name, p.kind, p.builtin]),
    [
      ['assisted', 'chain', true],
      ['local-disk', 'local', true],
      ['precache-assisted', 'flow', true],
      ['rhcos-live', 'kernel', true],
      ['site-disk', 'local', false],
    ],
  );
  t.equal(list.problems.length, 1, 'the broken file is reported');
  t.match(list.problems[0]?.file ?? '', /broken\.yaml$/);
  t.match(list.problems[0]?.message ?? '', /unknown placeholder \{\{ machine\.nope \}\}/);

  res = await adminGet(ta, '/api/v1/profiles/rhcos-live');
  t.equal(res.statusCode, 200);
  const live = res.json<ProfileBody>();
  t.equal(live.name, 'rhcos-live');
  t.equal(live.kind, 'kernel');
  t.equal(live.builtin, true);
  t.same(Object.keys(live.artifacts).sort(), ['initramfs', 'kernel', 'rootfs']);
  t.match(live.artifacts.kernel?.url ?? '', /^https:\/\/.*live-kernel/);
  t.same(live.requires, []);
  t.match(live.file, /profiles\/rhcos-live\.yaml$/);

  const flow = (await adminGet(ta, '/api/v1/profiles/precache-assisted')).json<ProfileBody>();
  t.same(flow.flow, { precache: 'rhcos-live', install: 'assisted' });
  const assisted = (await adminGet(ta, '/api/v1/profiles/assisted')).json<ProfileBody>();
  t.same(assisted.requires, ['machine.assistedScriptUrl']);

  res = await adminGet(ta, '/api/v1/profiles/no-such-profile');
  t.equal(res.statusCode, 404);
  t.equal(res.json<ErrorBody>().error, 'profile_not_found');
  t.match(res.json<ErrorBody>().message, /no profile named no-such-profile/);
  res = await adminGet(ta, '/api/v1/profiles/broken');
  t.equal(res.statusCode, 404, 'a profile that failed to load is not served');
  res = await ta.app.inject({ method: 'GET', url: '/api/v1/profiles/rhcos-live' });
  t.equal(res.statusCode, 401);
  t.equal(res.json<ErrorBody>().error, 'unauthorized');
});

t.test('/healthz and /readyz', async (t) => {
  const ta = await testApp(t);
  let res = await ta.app.inject({ method: 'GET', url: '/healthz' });
  t.equal(res.statusCode, 200);
  t.same(res.json<{ status: string }>(), { status: 'ok' });
  res = await ta.app.inject({ method: 'GET', url: '/readyz' });
  t.equal(res.statusCode, 200);
  t.same(res.json<{ status: string; checks: Record<string, string> }>(), { status: 'ready', checks: { store: 'ok', profiles: 'ok' } });

  await ta.store.close();
  res = await ta.app.inject({ method: 'GET', url: '/readyz' });
  t.equal(res.statusCode, 503, 'a closed store: not ready');
  const body = res.json<{ status: string; checks: Record<string, string> }>();
  t.equal(body.status, 'not ready');
  t.match(body.checks.store ?? '', /^failing: /);
  t.equal(body.checks.profiles, 'ok');
  res = await ta.app.inject({ method: 'GET', url: '/healthz' });
  t.equal(res.statusCode, 200, 'the process is still up');
});

t.test('/docs serves the OpenAPI UI; /docs/json lists the machine routes', async (t) => {
  const ta = await testApp(t);
  let res = await ta.app.inject({ method: 'GET', url: '/docs' });
  t.equal(res.statusCode, 200);
  t.match(res.headers['content-type'], /^text\/html/);
  t.match(res.body, /swagger-ui/i);
  res = await ta.app.inject({ method: 'GET', url: '/docs/json' });
  t.equal(res.statusCode, 200);
  const doc = res.json<{ openapi: string; info: { title: string }; paths: Record<string, Record<string, { security?: unknown; summary?: string }>> }>();
  t.match(doc.openapi, /^3\./);
  t.equal(doc.info.title, 'edgeboot');
  const ops = (p: string) => Object.keys(doc.paths[p] ?? {}).sort();
  t.same(ops('/api/v1/machines'), ['get']);
  t.same(ops('/api/v1/machines/{mac}'), ['delete', 'get', 'patch', 'put']);
  t.same(ops('/api/v1/machines/{mac}/events'), ['get', 'post']);
  t.same(ops('/api/v1/machines/{mac}/reset'), ['post']);
  t.same(ops('/api/v1/machines/{mac}/boot'), ['get']);
  t.same(ops('/api/v1/profiles'), ['get']);
  t.same(ops('/ipxe'), ['get']);
  t.same(ops('/boot.ipxe'), ['get']);
  t.same(doc.paths['/api/v1/machines/{mac}']?.put?.security, [{ bearer: [] }], 'admin routes declare the bearer scheme');
});
