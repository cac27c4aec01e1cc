/**
 * The precache job's side of the server, over HTTP as the live environment drives it: the
 * precache boot, the Ignition that carries the job, inventory, plan, progress and result, and
 * the ways a run fails without a result — a disk too small, a heartbeat timeout, a boot loop —
 * on a real SQLite store with a bundle on disk in the layout `POST /api/v1/bundles` writes.
 * The bundle that is still building is a real (stalled) upstream registry on loopback.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import type { Mac } from '../../src/machines/mac.js';
import type { Machine } from '../../src/machines/model.js';
import { bundleId } from '../../src/precache/bundles.js';
import type { PrecachePlan } from '../../src/precache/plan.js';
import { tempDir, testApp, type ErrorBody, type TestApp, type EventBody } from '../helpers/app.js';

const HOST = '10.77.0.1:8080';
const BASE = `http://${HOST}`;
/** The address the machines of these tests boot from: their reservations' ip. */
const MACHINE_IP = '10.77.0.50';
const GiB = 2 ** 30;
const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

/** A ready bundle as BundleBuilder leaves it: the files and bundle.json under <cache>/bundles/<id>. */
function writeBundle(ta: TestApp, id: string, files: Record<string, Buffer | string>): { name: string; size: number; sha256: string }[] {
  const dir = join(ta.dir, 'cache', 'bundles', id);
  mkdirSync(dir, { recursive: true });
  const list = Object.entries(files).map(([name, content]) => {
    writeFileSync(join(dir, name), content);
    return { name, size: Buffer.byteLength(content), sha256: sha256(content) };
  });
  const bytes = list.reduce((n, f) => n + f.size, 0);
  const manifest = {
    id,
    spec: { aiImages: [], images: ['example.com/x:1'], architecture: 'amd64' },
    files: list,
    bytes,
    createdAt: new Date().toISOString(),
    seconds: 1,
  };
  writeFileSync(join(dir, 'bundle.json'), JSON.stringify(manifest));
  return list;
}

function liveProfileDir(): string {
  const dir = tempDir('edgeboot-precache-profiles-');
  writeFileSync(join(dir, 'kernel'), 'k');
  writeFileSync(
    join(dir, 'test-live.yaml'),
    `name: test-live\ndescription: a live environment\nartifacts:\n  kernel: { url: "file://${dir}/kernel" }\nboot:\n  kernel: kernel\n  args: "{{ kargs.ignition }} {{ kargs.staticIp }}"\n`,
  );
  return dir;
}

const DISK = { path: '/dev/vda', name: 'vda', sizeBytes: 4 * GiB, type: 'disk', removable: false, readOnly: false, model: 'QEMU HARDDISK' };
const INVENTORY = {
  disks: [{ path: '/dev/sr0', name: 'sr0', sizeBytes: GiB, type: 'rom', removable: true, readOnly: true }, DISK],
  macs: ['52:54:00:aa:00:01'],
  memoryBytes: 4 * GiB,
  cpus: 2,
  serial: 'SN-1',
};

async function setup(t: Test, config: Record<string, unknown> = {}) {
  let clock = Date.parse('2026-06-01T08:00:00.000Z');
  const ta = await testApp(t, {
    cache: {},
    profileDirs: [liveProfileDir()],
    now: () => new Date(clock),
    config: { precache: { installReserveGiB: 1, maxBoots: 3, heartbeatSeconds: 60 }, ...config },
  });
  const register = async (mac: string, precache: Record<string, unknown>) => {
    const res = await ta.app.inject({
      method: 'PUT',
      url: `/api/v1/machines/${mac}`,
      headers: ta.auth,
      payload: {
        profile: 'precache-assisted',
        assisted: { ipxeScriptUrl: 'https://hub.example.com/s' },
        precache: { liveProfile: 'test-live', ...precache },
        ip: MACHINE_IP,
      },
    });
    if (res.statusCode !== 201) throw new Error(`PUT ${mac}: ${res.statusCode} ${res.body}`);
  };
  // From the machine's own address (its reservation's ip): boot.verifyClient serves it its secrets.
  const boot = (mac: string) => ta.app.inject({ method: 'GET', url: `/ipxe?mac=${mac}`, headers: { host: HOST }, remoteAddress: MACHINE_IP });
  /** The machine's events token of its current boot (tokens rotate with each precache boot). */
  const token = async (mac: string) =>
    new URL(ta.boot.eventsUrl(BASE, (await ta.store.getMachine(mac as Mac)) ?? { mac: mac as Mac })).searchParams.get('token') ?? '';
  /** A request of the machine's job: its own token as a bearer token. */
  const job = async (mac: string, method: 'GET' | 'POST', rest: string, payload?: unknown, as = mac) =>
    ta.app.inject({
      method,
      url: `/api/v1/machines/${mac}/${rest}`,
      headers: { host: HOST, authorization: `Bearer ${await token(as)}` },
      ...(payload !== undefined && { payload: payload as Record<string, unknown> }),
    });
  const machine = async (mac: string) => (await ta.app.inject({ method: 'GET', url: `/api/v1/machines/${mac}`, headers: ta.auth })).json<Machine>();
  const events = async (mac: string) =>
    (await ta.app.inject({ method: 'GET', url: `/api/v1/machines/${mac}/events`, headers: ta.auth })).json<{ events: EventBody[] }>().events;
  const tick = (seconds: number) => {
    clock += seconds * 1000;
  };
  return { ta, register, boot, job, machine, events, tick, token };
}

t.test('a precache run: boot, Ignition, inventory, plan, progress, result', async (t) => {
  const { ta, register, boot, job, machine, events, tick, token } = await setup(t);
  const files = writeBundle(ta, '00112233445566aa', { 'mapping.txt': 'a=b\n', 'ai-images.txt': '', 'x@sha256_ab.tgz': Buffer.alloc(300_000, 7) });
  const mac = '52:54:00:aa:00:01';
  await register(mac, { bundle: '00112233445566aa' });

  let res = await boot(mac);
  t.equal(res.statusCode, 200);
  let m = await machine(mac);
  t.equal(m.state, 'precaching', 'the precache boot moves it to precaching');
  t.same(m.precacheProgress && [m.precacheProgress.boots, m.precacheProgress.step], [1, 'booting'], 'a run begins: boot 1');
  const ignitionUrl = /ignition\.config\.url=(\S+)/.exec(res.body)?.[1] ?? '';
  const ign = await ta.app.inject({
    method: 'GET',
    url: new URL(ignitionUrl).pathname + new URL(ignitionUrl).search,
    headers: { host: HOST },
    remoteAddress: MACHINE_IP,
  });
  t.equal(ign.statusCode, 200);
  const body = ign.json<{ systemd: { units: { name: string }[] }; storage: { files: { path: string; contents: { source: string } }[] } }>();
  t.same(
    body.systemd.units.map((u) => u.name),
    ['edgeboot-precache.service'],
    'the Ignition runs the precache job',
  );
  const env = Buffer.from(body.storage.files.find((f) => f.path === '/etc/edgeboot/precache.env')?.contents.source.split(',')[1] ?? '', 'base64').toString();
  t.match(env, `EDGEBOOT_TOKEN='${await token(mac)}'`, "the job carries this machine's token");

  t.equal((await job(mac, 'GET', 'plan')).json<ErrorBody>().error, 'no_inventory', 'no plan before the inventory');
  t.equal((await machine(mac)).state, 'precaching', 'and that fails nothing');

  // Another machine's token is refused; a malformed inventory is a 400 that records nothing.
  t.equal((await job(mac, 'POST', 'inventory', INVENTORY, '52:54:00:aa:00:99')).statusCode, 401, "another machine's token: 401");
  res = await job(mac, 'POST', 'inventory', {
    disks: [{ path: 'vda; reboot', name: 'vda', sizeBytes: 1, type: 'disk', removable: false, readOnly: false }],
    macs: [],
  });
  t.equal(res.statusCode, 400, 'a disk path that is not /dev/…: 400');
  t.equal((await machine(mac)).inventory, undefined);

  tick(5);
  res = await job(mac, 'POST', 'inventory', INVENTORY);
  t.equal(res.statusCode, 200, res.body);
  m = await machine(mac);
  t.same(
    m.inventory?.disks.map((d) => d.path),
    ['/dev/sr0', '/dev/vda'],
    'the inventory is on the machine',
  );
  t.equal(m.inventory?.serial, 'SN-1');
  t.equal(m.precacheProgress?.lastHeartbeatAt, '2026-06-01T08:00:05.000Z', 'and was a heartbeat');

  res = await job(mac, 'GET', 'plan');
  t.equal(res.statusCode, 200, res.body);
  const plan = res.json<PrecachePlan>();
  t.equal(plan.disk, '/dev/vda', 'the fixed disk, not the removable CD');
  t.same(plan.partition, { number: 1, label: 'data', sizeGiB: 1, filesystem: 'xfs' }, 'a 1 GiB data partition: 1.5× the bundle, at least 1 GiB');
  t.equal(plan.requiredBytes, 2 * GiB, 'partition plus precache.installReserveGiB');
  t.same(
    plan.files.map((f) => [f.name, f.size, f.sha256]),
    files.map((f) => [f.name, f.size, f.sha256]),
    'every bundle file with its size and sha256',
  );
  t.same(plan.after, 'reboot');
  for (const f of plan.files) {
    t.equal(f.url, `${BASE}/bundles/00112233445566aa/${encodeURIComponent(f.name)}`);
    const got = await ta.app.inject({ method: 'GET', url: new URL(f.url).pathname });
    t.equal(sha256(got.rawPayload), f.sha256, `${f.name} downloads and verifies`);
  }
  const resumed = await ta.app.inject({ method: 'GET', url: new URL(plan.files[2]?.url ?? '').pathname, headers: { range: 'bytes=100000-' } });
  t.equal(resumed.statusCode, 206, 'a download resumes with Range');
  t.equal(resumed.rawPayload.length, 200_000);

  tick(5);
  res = await job(mac, 'POST', 'events', {
    type: 'precache-progress',
    message: 'downloading x',
    data: { step: 'download', file: 'x@sha256_ab.tgz', filesDone: 2, filesTotal: 3, bytesDone: 150_004, bytesTotal: 300_004, resumedFrom: 0 },
  });
  t.equal(res.statusCode, 201);
  m = await machine(mac);
  t.match(
    m.precacheProgress,
    {
      step: 'download',
      filesDone: 2,
      filesTotal: 3,
      bytesDone: 150_004,
      bytesTotal: 300_004,
      disk: '/dev/vda',
      bundle: '00112233445566aa',
      message: 'downloading x',
      lastHeartbeatAt: '2026-06-01T08:00:10.000Z',
    },
    'the admin sees the progress',
  );
  res = await job(mac, 'POST', 'events', { type: 'precache-progress', data: { filesDone: -1, bytesDone: 'lots', step: 'Not A Step' } });
  t.equal(res.statusCode, 201, 'a garbled progress report is still an event');
  t.match((await machine(mac)).precacheProgress, { step: 'download', filesDone: 2, bytesDone: 150_004 }, 'but moves no counter');

  tick(5);
  res = await job(mac, 'POST', 'result', { ok: true, message: 'every file verified', data: { files: 3, bytes: 300_004, seconds: 9 } });
  t.equal(res.statusCode, 200, res.body);
  m = res.json<Machine>();
  t.equal(m.state, 'precached');
  t.match(m.precacheProgress, { outcome: 'precached', finishedAt: '2026-06-01T08:00:15.000Z' });
  t.equal((await job(mac, 'POST', 'result', { ok: true })).statusCode, 409, 'a second result: 409, the run is over');
  t.equal((await job(mac, 'GET', 'plan')).statusCode, 409, 'and there is no plan outside precaching');
  t.same(ta.precache?.stats, { ended: { precached: 1 }, plans: 1 }, 'the metrics count one run precached and one plan');

  const timeline = await events(mac);
  const types = timeline.map((e) => e.type);
  for (const want of ['inventory', 'precache-plan', 'precache-progress', 'precache-result']) t.ok(types.includes(want), `${want} is on the timeline`);
  t.same(
    [...new Set(timeline.filter((e) => e.type.startsWith('precache-') || e.type === 'inventory').map((e) => e.source))],
    ['machine'],
    'all of it from the machine',
  );
  const moved = timeline.filter((e) => e.type === 'state-changed').map((e) => [e.from, e.to, e.data?.cause]);
  t.same(moved.slice(-2), [
    ['registered', 'precaching', 'precache-served'],
    ['precaching', 'precached', 'precache-succeeded'],
  ]);

  // The next boot chains into the installer; a reset to registered begins a new run.
  res = await ta.app.inject({
    method: 'POST',
    url: `/api/v1/machines/${mac}/events`,
    headers: ta.auth,
    payload: { type: 'failed', message: 'the operator gave up' },
  });
  t.equal(res.statusCode, 201, 'an admin fails the precached machine');
  res = await ta.app.inject({ method: 'POST', url: `/api/v1/machines/${mac}/reset`, headers: ta.auth, payload: { to: 'registered' } });
  t.equal(res.statusCode, 200, res.body);
  t.equal(res.json<Machine>().precacheProgress, undefined, 'a reset clears the run');
  t.equal(res.json<Machine>().inventory?.serial, 'SN-1', 'and keeps the inventory');
});

t.test('a failure reported by the job, and plans that cannot be made', async (t) => {
  const { ta, register, boot, job, machine, events } = await setup(t);
  writeBundle(ta, '00112233445566bb', { 'big.tgz': Buffer.alloc(1000, 1) });

  const failing = '52:54:00:aa:00:02';
  await register(failing, { bundle: '00112233445566bb' });
  await boot(failing);
  // An admin may speak for the machine: the timeline says so.
  let res = await ta.app.inject({ method: 'POST', url: `/api/v1/machines/${failing}/inventory`, headers: ta.auth, payload: INVENTORY });
  t.equal(res.statusCode, 200, res.body);
  t.equal((await events(failing)).find((e) => e.type === 'inventory')?.source, 'api', "an admin's inventory is recorded as the API's");
  res = await job(failing, 'POST', 'result', { ok: false, step: 'verify', message: 'big.tgz: sha256 00ff, expected 1234 (downloaded twice)' });
  t.equal(res.statusCode, 200, res.body);
  let m = res.json<Machine>();
  t.equal(m.state, 'failed');
  t.match(
    m.precacheProgress,
    { outcome: 'failed', step: 'verify', message: 'precache failed at verify: big.tgz: sha256 00ff, expected 1234 (downloaded twice)' },
    "the step and the tool's message are the reason",
  );
  t.equal((await job(failing, 'POST', 'result', { ok: false, step: 'Bad Step' })).statusCode, 400, 'a step outside the pattern: 400');

  const small = '52:54:00:aa:00:03';
  await register(small, { bundle: '00112233445566bb', sizeGiB: 4 });
  await boot(small);
  await job(small, 'POST', 'inventory', INVENTORY);
  res = await job(small, 'GET', 'plan');
  t.equal(res.statusCode, 409);
  t.equal(res.json<ErrorBody>().error, 'disk_too_small');
  t.equal(
    res.json<ErrorBody>().message,
    'disk /dev/vda is too small: it holds 4.0 GiB; the plan needs 5.0 GiB: 4 GiB for the data partition and 1 GiB for the install (precache.installReserveGiB)',
  );
  m = await machine(small);
  t.equal(m.state, 'failed', 'a disk too small fails the machine');
  t.match(m.precacheProgress, { outcome: 'failed', message: /holds 4\.0 GiB/ });

  const wrongDisk = '52:54:00:aa:00:04';
  await register(wrongDisk, { bundle: '00112233445566bb', disk: '/dev/nvme0n1' });
  await boot(wrongDisk);
  await job(wrongDisk, 'POST', 'inventory', INVENTORY);
  res = await job(wrongDisk, 'GET', 'plan');
  t.equal(res.json<ErrorBody>().error, 'no_disk');
  t.match(res.json<ErrorBody>().message, 'precache.disk /dev/nvme0n1 is not among the disks the machine reported (/dev/sr0, /dev/vda)');

  const noBundle = '52:54:00:aa:00:05';
  await register(noBundle, { bundle: '0000000000000000' });
  await boot(noBundle);
  await job(noBundle, 'POST', 'inventory', INVENTORY);
  res = await job(noBundle, 'GET', 'plan');
  t.equal(res.json<ErrorBody>().error, 'no_bundle');
  t.equal((await machine(noBundle)).state, 'failed', 'a bundle this server does not have fails the machine, with the reason');
  t.same(ta.precache?.stats.ended, { 'job-failed': 1, 'plan-refused': 3 }, 'the metrics count how each run ended');
});

t.test('silence past the heartbeat timeout fails a precaching machine; talking keeps it alive', async (t) => {
  const { ta, register, boot, job, machine, tick } = await setup(t);
  writeBundle(ta, '00112233445566cc', { 'a.tgz': 'a' });
  const quiet = '52:54:00:aa:00:06';
  const chatty = '52:54:00:aa:00:07';
  for (const mac of [quiet, chatty]) {
    await register(mac, { bundle: '00112233445566cc' });
    await boot(mac);
  }
  const precache = ta.precache;
  if (!precache) throw new Error('the test app has no precache service');
  for (let i = 0; i < 3; i++) {
    tick(30);
    await job(chatty, 'POST', 'events', { type: 'precache-progress', data: { step: 'download', bytesDone: i } });
    t.equal(await precache.sweep(), i < 2 ? 0 : 1, `sweep ${i + 1}`);
  }
  const m = await machine(quiet);
  t.equal(m.state, 'failed', 'the silent machine failed');
  t.match(m.precacheProgress?.message, /^no word from the live environment for 90 s \(precache\.heartbeatSeconds 60\); the last step reported was booting/);
  t.equal((await machine(chatty)).state, 'precaching', 'the one that kept reporting did not');
  t.equal(await precache.sweep(), 0, 'a failed machine is not failed again');
  t.same(precache.stats.ended, { 'heartbeat-lost': 1 });
});

t.test(
  'after an outage every run has lapsed: one sweep fails them all, yielding to the event loop between them, and a second sweep waits its turn',
  async (t) => {
    const { ta, register, boot, machine, tick } = await setup(t);
    writeBundle(ta, '00112233445566ee', { 'a.tgz': 'a' });
    const macs = ['52:54:00:aa:00:10', '52:54:00:aa:00:11', '52:54:00:aa:00:12'];
    for (const mac of macs) {
      await register(mac, { bundle: '00112233445566ee' });
      await boot(mac);
    }
    const precache = ta.precache;
    if (!precache) throw new Error('the test app has no precache service');
    tick(3600);
    const turns: string[] = [];
    const other = setInterval(() => turns.push('event loop'), 0);
    const first = precache.sweep().then((n) => {
      turns.push('sweep done');
      return n;
    });
    t.equal(await precache.sweep(), 0, 'a sweep while one runs does nothing');
    t.equal(await first, 3);
    clearInterval(other);
    t.ok(turns.includes('event loop') && turns.indexOf('event loop') < turns.indexOf('sweep done'), 'timers ran while the sweep went on');
    for (const mac of macs) t.equal((await machine(mac)).state, 'failed', mac);
  },
);

t.test('a boot loop: more precache boots than precache.maxBoots without a result', async (t) => {
  const { ta, register, boot, machine, events } = await setup(t);
  writeBundle(ta, '00112233445566dd', { 'a.tgz': 'a' });
  const mac = '52:54:00:aa:00:08';
  await register(mac, { bundle: '00112233445566dd' });
  for (let i = 1; i <= 3; i++) {
    const res = await boot(mac);
    t.match(res.body, /precache stage: test-live/, `boot ${i} is the live environment`);
    t.equal((await machine(mac)).precacheProgress?.boots, i);
  }
  const res = await boot(mac);
  t.match(res.body, /provisioning failed: boot loop: 4 precache boots without a result \(precache\.maxBoots 3\)/, 'boot 4 is told why it waits');
  t.notMatch(res.body, /\nkernel /, 'and boots nothing');
  const m = await machine(mac);
  t.equal(m.state, 'failed');
  t.equal(
    (await events(mac)).filter((e) => e.type === 'state-changed').at(-1)?.message,
    'boot loop: 4 precache boots without a result (precache.maxBoots 3); the last step reported was booting',
  );
  t.same(ta.precache?.stats.ended, { 'boot-loop': 1 }, 'counted once');
  await boot(mac);
  t.same(ta.precache?.stats.ended, { 'boot-loop': 1 }, 'a failed machine booting again is no new loop');
});

t.test('a bundle still building: 503 with Retry-After, and the wait is on the run', async (t) => {
  // An upstream registry that takes connections and never answers: the image job stays running.
  const sockets = new Set<Socket>();
  const stalled = createServer((s) => {
    sockets.add(s);
    s.on('error', () => undefined);
  });
  await new Promise<void>((r) => stalled.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    stalled.close();
  });
  const port = (stalled.address() as { port: number }).port;
  const { ta, register, boot, job, machine } = await setup(t, { registry: { insecureRegistries: [`127.0.0.1:${port}`] } });
  const mac = '52:54:00:aa:00:09';
  const release = `127.0.0.1:${port}/ocp/release:4.99.0-x86_64`;
  await register(mac, { release });
  const id = bundleId({ release, aiImages: [], images: [], architecture: 'amd64' });
  const building = await ta.app.inject({ method: 'GET', url: `/api/v1/bundles/${id}`, headers: ta.auth });
  t.equal(building.json<{ state: string }>().state, 'building', 'the reservation started its bundle before the machine booted');
  await boot(mac);
  await job(mac, 'POST', 'inventory', INVENTORY);
  const res = await job(mac, 'GET', 'plan');
  t.equal(res.statusCode, 503, res.body);
  t.equal(res.headers['retry-after'], '10');
  t.equal(res.json<ErrorBody>().error, 'bundle_building');
  t.match(res.json<ErrorBody>().message, /^bundle [0-9a-f]{16} is building/);
  const m = await machine(mac);
  t.equal(m.state, 'precaching', 'waiting fails nothing');
  t.equal(m.precacheProgress?.step, 'waiting-for-bundle');
});
