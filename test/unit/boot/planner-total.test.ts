/**
 * The whole decision from one call of planBoot: the stage, what the hub's answer makes of an
 * assisted chain, a precache boot loop (precache.maxBoots), and proxy DHCP's answer and the
 * hub question derived from the same planner.
 */
import t from 'tap';
import { parseAssistedScript } from '../../../src/boot/assisted.js';
import type { HubAnswer } from '../../../src/boot/hub.js';
import { hubScriptUrl, isBootLoop, planBoot, pxeAnswer, type BootDecision, type PlanInput } from '../../../src/boot/planner.js';
import type { Machine, PrecacheProgress } from '../../../src/machines/model.js';
import type { MachineState } from '../../../src/machines/state.js';
import { BUILTIN_PROFILES_DIR, loadProfiles } from '../../../src/profiles/load.js';
import { assistedMachine, machineFixture } from '../../helpers/fixtures.js';

const profiles = loadProfiles([{ dir: BUILTIN_PROFILES_DIR, builtin: true }]);
const HUB_URL = 'https://hub.example/api/assisted-install/v2/infra-envs/6f1e/downloads/files?api_key=k&file_name=ipxe-script';
const parsed = parseAssistedScript(
  '#!ipxe\ninitrd --name initrd https://hub.example/initrd\nkernel https://hub.example/kernel initrd=initrd coreos.live.rootfs_url=https://hub.example/rootfs\nboot\n',
);
if (parsed.kind !== 'boot') throw new Error('the fixture hub script does not parse');
const HUB_BOOT: HubAnswer = { kind: 'boot', script: parsed };

/** A machine of profile precache-assisted with its hub URL. */
const assisted = (state: MachineState, progress?: Partial<PrecacheProgress>): Machine => assistedMachine(state, HUB_URL, progress);

function plan(machine: Machine | undefined, more: Partial<PlanInput> = {}): BootDecision {
  return planBoot({ machine, profiles, unknownMachines: 'exit', precache: { maxBoots: 3 }, ...more });
}

t.test('precache.maxBoots: the boot after the last allowed one fails the machine instead', async (t) => {
  const third = plan(assisted('precaching', { boots: 2 }));
  t.match(third, { kind: 'boot', stage: 'precache', transition: { kind: 'precache-served' } }, 'boot 3 of 3 boots the live environment');
  t.notOk(isBootLoop(third));

  const fourth = plan(assisted('precaching', { boots: 3, step: 'pull' }));
  const why = 'boot loop: 4 precache boots without a result (precache.maxBoots 3); the last step reported was pull';
  t.same(
    fourth,
    { kind: 'wait', reason: `provisioning failed: ${why}; reset it on the server to retry`, transition: { kind: 'error', reason: why } },
    'boot 4 waits and fails',
  );
  t.ok(isBootLoop(fourth), 'marked as the boot loop');

  t.match(plan(assisted('precaching', { boots: 3 }), { precache: { maxBoots: 4 } }), { kind: 'boot', stage: 'precache' }, 'the limit is an input');
  t.match(plan(assisted('registered', { boots: 9 })), { kind: 'boot', stage: 'precache' }, 'a new run from registered counts from 0');
  t.match(plan(assisted('precached', { boots: 9 })), { kind: 'boot', stage: 'install' }, 'the install stage has no boot limit');
  t.notOk(isBootLoop(plan(assisted('failed'))), 'the wait of a failed machine moves nothing');
});

t.test("the hub's answer completes an assisted chain stage", async (t) => {
  const m = assisted('precached');
  const asked = plan(m);
  t.match(asked, { kind: 'boot', stage: 'install', profile: { name: 'assisted' } }, 'not asked: the chain stage itself');
  t.equal((asked as { hub?: unknown }).hub, undefined);

  const served = plan(m, { hub: HUB_BOOT });
  t.match(served, { kind: 'boot', stage: 'install', transition: { kind: 'install-served', precacheRequired: true }, hub: parsed });
  t.match(served.reason, /the hub's script served from this server's cache$/);

  t.same(
    plan(assisted('installing'), { hub: { kind: 'installed' } }),
    { kind: 'local', reason: 'the hub answers 404 for this host: it is installed', transition: { kind: 'install-done' } },
    'a 404 ends an install',
  );
  t.same(
    plan(m, { hub: { kind: 'installed' } }),
    { kind: 'local', reason: 'the hub answers 404 for this host: it is installed' },
    'and moves nothing before it',
  );
  t.same(plan(m, { hub: { kind: 'error', reason: 'the hub answered HTTP 500' } }), { kind: 'error', reason: 'the hub answered HTTP 500' });

  t.match(
    plan(assisted('registered'), { hub: HUB_BOOT }),
    { kind: 'boot', stage: 'precache', profile: { name: 'rhcos-live' } },
    'an answer for a stage that is no chain is ignored',
  );
  t.match(plan(assisted('installed'), { hub: { kind: 'installed' } }), { kind: 'local', reason: 'installed: booting from the local disk' });
});

t.test('hubScriptUrl: the hub is asked exactly for the stages that chain to it', async (t) => {
  const input = (machine: Machine | undefined) => ({ machine, profiles, unknownMachines: 'exit' as const });
  for (const state of ['discovered', 'registered', 'precaching', 'precached', 'installing', 'installed', 'failed'] as const) {
    const m = assisted(state);
    const chains = plan(m).kind === 'boot' && plan(m).reason.startsWith('install stage: assisted');
    t.equal(hubScriptUrl(input(m)), chains ? HUB_URL : undefined, `${state}: ${chains ? 'asked' : 'not asked'}`);
  }
  t.equal(hubScriptUrl(input(machineFixture('precached', { profile: 'assisted' }))), undefined, 'no assisted URL, nothing to ask');
  t.equal(hubScriptUrl(input(undefined)), undefined);
});

t.test('pxeAnswer is the plan of a machine nobody assigned, and yes for every assigned one', async (t) => {
  const stranger = { machine: undefined, profiles, precache: { maxBoots: 3 } };
  for (const unknownMachines of ['exit', 'wait', { profile: 'rhcos-live' }, { profile: 'local-disk' }] as const) {
    const d = planBoot({ ...stranger, unknownMachines });
    t.same(
      pxeAnswer({ ...stranger, unknownMachines }),
      d.kind === 'local' ? { answer: false, reason: `not booted by edgeboot: ${d.reason}` } : { answer: true },
    );
  }
  t.same(
    pxeAnswer({ machine: assisted('precaching', { boots: 3 }), profiles, unknownMachines: 'exit' }),
    { answer: true },
    'a boot loop still gets its script',
  );
  t.same(pxeAnswer({ machine: assisted('installed'), profiles, unknownMachines: 'exit' }), { answer: true });
});
