import t from 'tap';
import { parseAssistedScript, redirectUrl, rewriteAssistedBoot, type AssistedBoot } from '../../../src/boot/assisted.js';
import { withHubAnswer, type BootDecision } from '../../../src/boot/planner.js';
import type { Profile } from '../../../src/profiles/profile.js';

const IMAGES = 'https://assisted-image-service.example/images/6f1e/pxe-initrd?api_key=eyJ.hub.key&arch=x86_64&version=4.14';
const KERNEL = 'https://assisted-image-service.example/boot-artifacts/kernel?arch=x86_64&version=4.14';
const ROOTFS = 'https://assisted-image-service.example/boot-artifacts/rootfs?arch=x86_64&version=4.14';
// The shape assisted-service renders (ipxeBootScriptFormat), with InfraEnv kernel arguments.
const BOOT = `#!ipxe
initrd --name initrd ${IMAGES}
kernel ${KERNEL} initrd=initrd coreos.live.rootfs_url=${ROOTFS} random.trust_cpu=on rd.luks.options=discard ignition.firstboot ignition.platform.id=metal console=tty1 console=ttyS1,115200n8 coreos.inst.persistent-kargs="console=tty1 console=ttyS1,115200n8" ip=dhcp6 rd.net.timeout.carrier=30
boot
`;

t.test('the boot script: initrd with its name, kernel with every argument, the rootfs URL found', async (t) => {
  const s = parseAssistedScript(BOOT);
  if (s.kind !== 'boot') throw new Error(`parsed as ${s.kind}`);
  t.same(s.initrds, [{ name: 'initrd', url: IMAGES }]);
  t.equal(s.kernel.url, KERNEL);
  t.equal(s.rootfsUrl, ROOTFS);
  t.equal(s.kernel.args.join(' '), BOOT.split('\n')[2]?.slice(`kernel ${KERNEL} `.length), 'arguments in order, quotes and all');
});

t.test('the rewrite replaces the three URLs and nothing else', async (t) => {
  const s = parseAssistedScript(BOOT) as AssistedBoot;
  const map: Record<string, string> = {
    [IMAGES]: 'http://eb:8080/assets/hub/aaaa/initrd',
    [KERNEL]: 'http://eb:8080/assets/hub/bbbb/kernel',
    [ROOTFS]: 'http://eb:8080/assets/hub/cccc/rootfs',
  };
  const roles: string[] = [];
  const lines = rewriteAssistedBoot(s, (url, role, name) => {
    roles.push(`${role}:${name ?? ''}`);
    return map[url] as string;
  });
  t.same(roles, ['rootfs:', 'initrd:initrd', 'kernel:'], 'each URL with its role');
  t.equal(lines[0], 'initrd --name initrd http://eb:8080/assets/hub/aaaa/initrd');
  const original = BOOT.split('\n')[2] as string;
  t.equal(lines[1], original.replace(KERNEL, map[KERNEL] as string).replace(ROOTFS, map[ROOTFS] as string), 'the kernel line is the hub’s but for two URLs');
  t.notMatch(lines.join('\n'), /api_key/, 'no api_key left');
});

t.test('the boot-order-control redirect, followed with the MAC', async (t) => {
  const s = parseAssistedScript(
    '#!ipxe\nchain https://hub.example/api/assisted-install/v2/infra-envs/6f1e/downloads/files?api_key=k&file_name=ipxe-script&ipxe_script_type=boot-order-control&mac=${net0/mac}\n',
  );
  if (s.kind !== 'redirect') throw new Error(`parsed as ${s.kind}`);
  t.equal(
    redirectUrl(s.url, '52:54:00:ab:cd:ef'),
    'https://hub.example/api/assisted-install/v2/infra-envs/6f1e/downloads/files?api_key=k&file_name=ipxe-script&ipxe_script_type=boot-order-control&mac=52:54:00:ab:cd:ef',
  );
  t.equal(redirectUrl('http://h/x?m=${net0/mac:hexhyp}', '52:54:00:ab:cd:ef'), 'http://h/x?m=52-54-00-ab-cd-ef');
});

t.test('what edgeboot does not rewrite is said, not guessed', async (t) => {
  const cases: [string, RegExp][] = [
    ['<html>login</html>', /not an iPXE script/],
    ['#!ipxe\nkernel http://k\n', /no boot line/],
    ['#!ipxe\ninitrd http://i\nboot\n', /no kernel line/],
    ['#!ipxe\nkernel http://k a\nkernel http://k b\nboot\n', /two kernel lines/],
    ['#!ipxe\nshell\n', /command "shell"/],
    ['#!ipxe\nkernel tftp://k\nboot\n', /kernel line/],
    ['#!ipxe\ninitrd --autofree http://i\nkernel http://k\nboot\n', /initrd option --autofree/],
    ['#!ipxe\nchain ftp://x\n', /not an http\(s\) URL/],
    ['#!ipxe\nkernel http://k a\x07b\nboot\n', /control character/],
  ];
  for (const [text, reason] of cases) {
    const s = parseAssistedScript(text);
    t.equal(s.kind, 'unsupported', JSON.stringify(text.slice(0, 40)));
    if (s.kind === 'unsupported') t.match(s.reason, reason);
  }
  t.equal(parseAssistedScript('#!ipxe\r\n# comment\r\ninitrd -n i http://i\r\nkernel http://k\r\nboot\r\n').kind, 'boot', 'CRLF, comments and -n');
});

t.test('the hub’s answer decides the chain stage', async (t) => {
  const profile = { name: 'assisted', description: '', file: '', builtin: true, artifacts: {}, boot: undefined, flow: undefined, requires: [] } as Profile;
  const chain: Extract<BootDecision, { kind: 'boot' }> = {
    kind: 'boot',
    stage: 'install',
    profile,
    spec: { kind: 'chain', url: [{ kind: 'value', name: 'machine.assistedScriptUrl' }] },
    transition: { kind: 'install-served', precacheRequired: true },
    reason: 'install stage: assisted',
  };
  const script = parseAssistedScript(BOOT) as AssistedBoot;
  const served = withHubAnswer(chain, { kind: 'boot', script }, 'precached');
  t.equal(served.kind, 'boot');
  t.same(served.transition, { kind: 'install-served', precacheRequired: true }, 'serving it still moves to installing');
  t.same(withHubAnswer(chain, { kind: 'installed' }, 'installing'), {
    kind: 'local',
    reason: 'the hub answers 404 for this host: it is installed',
    transition: { kind: 'install-done' },
  });
  t.same(
    withHubAnswer(chain, { kind: 'installed' }, 'precached'),
    { kind: 'local', reason: 'the hub answers 404 for this host: it is installed' },
    'no move for a machine that was not installing',
  );
  t.same(withHubAnswer(chain, { kind: 'error', reason: 'the hub answered HTTP 500' }, 'precached'), { kind: 'error', reason: 'the hub answered HTTP 500' });
});
