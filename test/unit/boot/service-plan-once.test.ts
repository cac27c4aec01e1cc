/**
 * BootService asks the planner once per `/ipxe` request and once per preview: the hub is asked
 * before the store transaction through the planner's hub question, not a second plan. Counted
 * through the injected planner, on a real SQLite store.
 */
import { join } from 'node:path';
import t from 'tap';
import { parseAssistedScript } from '../../../src/boot/assisted.js';
import type { HubAnswer } from '../../../src/boot/hub.js';
import { planBoot, type PlanInput } from '../../../src/boot/planner.js';
import { BootService } from '../../../src/boot/service.js';
import { createLogger } from '../../../src/log.js';
import type { Mac } from '../../../src/machines/mac.js';
import type { Machine, PrecacheProgress } from '../../../src/machines/model.js';
import { MachineService } from '../../../src/machines/service.js';
import type { MachineState } from '../../../src/machines/state.js';
import { BUILTIN_PROFILES_DIR, loadProfiles } from '../../../src/profiles/load.js';
import { openSqliteStore } from '../../../src/store/sqlite.js';
import { tempDir, testConfig } from '../../helpers/app.js';
import { assistedMachine, mustMac } from '../../helpers/fixtures.js';
import type { Teardown } from '../../helpers/process.js';

const BASE = 'http://192.0.2.1:8080';
const IP = '192.0.2.50';
const HUB_URL = 'https://hub.example/api/assisted-install/v2/infra-envs/6f1e/downloads/files?api_key=k&file_name=ipxe-script';
const parsed = parseAssistedScript(
  '#!ipxe\ninitrd --name initrd https://hub.example/initrd\nkernel https://hub.example/kernel initrd=initrd coreos.live.rootfs_url=https://hub.example/rootfs\nboot\n',
);
if (parsed.kind !== 'boot') throw new Error('the fixture hub script does not parse');
const HUB_BOOT: HubAnswer = { kind: 'boot', script: parsed };

async function setup(t: Teardown) {
  const store = openSqliteStore({ path: join(tempDir(), 'edgeboot.db') });
  t.teardown(() => store.close());
  const profiles = loadProfiles([{ dir: BUILTIN_PROFILES_DIR, builtin: true }]);
  const counts = { plans: 0, hub: 0, bootLoops: 0 };
  const plan = (input: PlanInput) => {
    counts.plans++;
    return planBoot(input);
  };
  const boot = new BootService({
    store,
    machines: new MachineService(store, () => profiles),
    profiles: () => profiles,
    config: testConfig({ precache: { maxBoots: 3 } }),
    secret: 'test-secret',
    log: createLogger('silent'),
    hub: async () => {
      counts.hub++;
      return HUB_BOOT;
    },
    artifacts: { register: () => '0123456789abcdef' },
    onBootLoop: () => counts.bootLoops++,
    plan,
  });
  const put = async (m: Machine) => store.mutateMachine(m.mac, () => ({ kind: 'save', machine: m }));
  return { store, boot, counts, put };
}

/** A machine of profile precache-assisted with its hub URL and reservation ip, in `state`. */
const assisted = (mac: string, state: MachineState, progress?: Partial<PrecacheProgress>): Machine =>
  assistedMachine(state, HUB_URL, progress, { mac: mustMac(mac), ip: IP });

const query = (mac: Mac) => ({ mac, macs: [], observed: {} });

t.test('an assisted chain: the hub asked once, the plan made once, with its answer', async (t) => {
  const { boot, counts, put } = await setup(t);
  const m = assisted('52:54:00:00:00:01', 'precached');
  await put(m);
  const r = await boot.script(query(m.mac), BASE, IP);
  t.same(counts, { plans: 1, hub: 1, bootLoops: 0 });
  t.match(r.decision, { kind: 'boot', stage: 'install', hub: parsed }, "the plan holds the hub's script");
  t.equal(r.machine.state, 'installing', 'the state move of the plan');
  t.match(r.script, /assets\/hub\/0123456789abcdef\/kernel/, 'rendered with the rewritten lines');

  const p = await boot.previewScript(m.mac, BASE);
  t.same(counts, { plans: 2, hub: 2, bootLoops: 0 }, 'a preview: one plan, one hub question');
  t.match(p.decision, { kind: 'boot', hub: parsed });
});

t.test('a stage that does not chain to the hub: one plan, no hub', async (t) => {
  const { boot, counts, put } = await setup(t);
  const m = assisted('52:54:00:00:00:02', 'registered');
  await put(m);
  const r = await boot.script(query(m.mac), BASE, IP);
  t.same(counts, { plans: 1, hub: 0, bootLoops: 0 });
  t.match(r.decision, { kind: 'boot', stage: 'precache' });
  t.equal(r.machine.tokenGeneration, 1, 'the boot rotates its credentials');
  t.equal(r.machine.precacheProgress?.boots, 1, 'and counts a precache boot');
});

t.test('a boot loop is decided by the plan and fails the machine', async (t) => {
  const { boot, counts, put, store } = await setup(t);
  const m = assisted('52:54:00:00:00:03', 'precaching', { boots: 3 });
  await put(m);
  const r = await boot.script(query(m.mac), BASE, IP);
  t.same(counts, { plans: 1, hub: 0, bootLoops: 1 });
  t.match(r.decision, { kind: 'wait', transition: { kind: 'error' } });
  t.equal((await store.getMachine(m.mac))?.state, 'failed');
  t.equal((await store.getMachine(m.mac))?.tokenGeneration, undefined, 'a wait hands out no new credentials');
});

t.test('an unknown machine and a request from another address: one plan each, no hub', async (t) => {
  const { boot, counts, put, store } = await setup(t);
  await boot.script(query(mustMac('52:54:00:00:00:04')), BASE, IP);
  t.same(counts, { plans: 1, hub: 0, bootLoops: 0 });
  t.equal((await store.getMachine(mustMac('52:54:00:00:00:04')))?.state, 'discovered');

  const m = assisted('52:54:00:00:00:05', 'precached');
  await put(m);
  const r = await boot.script(query(m.mac), BASE, '192.0.2.99');
  t.same(counts, { plans: 2, hub: 0, bootLoops: 0 }, 'a stranger gets no hub script: the hub is not asked');
  t.equal(r.trust.trusted, false);
  t.match(r.decision, { kind: 'wait', reason: /^not served to this address/ });
  t.equal((await store.getMachine(m.mac))?.state, 'precached', 'nothing moved');
});
