import t from 'tap';
import type { NetworkInterfaceInfo } from 'node:os';
import { pxeAnswer } from '../../../src/boot/planner.js';
import type { UnknownMachinePolicy } from '../../../src/config/config.js';
import { BUILTIN_PROFILES_DIR, loadProfiles } from '../../../src/profiles/load.js';
import { dhcpAnswers as answersWith, hostPort, reachOf } from '../../../src/start-lines.js';
import { LAB_SUBNET } from '../../helpers/fixtures.js';

const profiles = loadProfiles([{ dir: BUILTIN_PROFILES_DIR, builtin: true }]);
/** The line as describeStart words it, with the planner's answer for a machine nobody registered. */
const dhcpAnswers = (dhcp: Parameters<typeof answersWith>[0], policy: UnknownMachinePolicy) =>
  answersWith(dhcp, policy, pxeAnswer({ machine: undefined, profiles, unknownMachines: policy }));

t.test('what DHCP answers, in words, from the mode, the interfaces and boot.unknownMachines', async (t) => {
  t.equal(
    dhcpAnswers({ mode: 'proxy', interfaces: [], subnets: [LAB_SUBNET] }, 'exit'),
    'proxy DHCP on all interfaces answers registered machines only (boot.unknownMachines: exit); unknown machines boot their own disk. ' +
      'Register a machine (npx edgeboot machines add MAC --profile NAME) or set boot.unknownMachines: wait',
  );
  t.equal(
    dhcpAnswers({ mode: 'proxy', interfaces: ['eth1', 'eth2'], subnets: [] }, { profile: 'rhcos-live' }),
    'proxy DHCP on interfaces eth1, eth2 answers every PXE client (boot.unknownMachines: rhcos-live); an unknown machine boots profile rhcos-live. ' +
      'To boot registered machines only, set boot.unknownMachines: exit',
  );
  t.equal(
    dhcpAnswers({ mode: 'proxy', interfaces: [], subnets: [LAB_SUBNET] }, { profile: 'local-disk' }),
    'proxy DHCP on all interfaces answers registered machines only (boot.unknownMachines: local-disk); unknown machines boot their own disk. ' +
      'Register a machine (npx edgeboot machines add MAC --profile NAME) or set boot.unknownMachines: wait',
    'a profile that boots the local disk is silence too, as the planner says',
  );
  t.equal(
    dhcpAnswers({ mode: 'full', interfaces: ['eth1'], subnets: [LAB_SUBNET, { ...LAB_SUBNET, cidr: '10.78.0.0/24' }] }, 'exit'),
    'full DHCP on interface eth1 leases addresses in 10.77.0.0/24, 10.78.0.0/24 to every client that asks and chains PXE clients to iPXE ' +
      '(boot.unknownMachines: exit); unknown machines boot their own disk. ' +
      'Register a machine (npx edgeboot machines add MAC --profile NAME) or set boot.unknownMachines: wait',
  );
});

t.test('who can reach a bound address', async (t) => {
  const eth: NetworkInterfaceInfo = {
    address: '10.77.0.1',
    netmask: '255.255.255.0',
    family: 'IPv4',
    mac: '52:54:00:00:00:01',
    internal: false,
    cidr: '10.77.0.1/24',
  };
  const interfaces = { eth1: [eth] };
  t.equal(reachOf('0.0.0.0', interfaces), 'all interfaces');
  t.equal(reachOf('::', interfaces), 'all interfaces');
  t.equal(reachOf('127.0.0.1', interfaces), 'loopback only');
  t.equal(reachOf('::1', interfaces), 'loopback only');
  t.equal(reachOf('10.77.0.1', interfaces), 'eth1 only', 'the interface that has the address');
  t.equal(reachOf('10.99.0.1', interfaces), 'this address only');
  t.equal(hostPort({ address: '0.0.0.0', port: 8080 }), '0.0.0.0:8080');
  t.equal(hostPort({ address: '::', port: 8080 }), '[::]:8080', 'IPv6 in brackets');
});
