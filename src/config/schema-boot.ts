/** The config sections of the boot decision and of the precache flow (schema.ts). */
import { Type } from 'typebox';
import { integer, section, word } from './schema-kit.js';

export const bootSection = section('What machines boot, and how much the unknown ones may do', {
  unknownMachines: Type.String({
    pattern: '^[a-z0-9][a-z0-9-]*$',
    title: 'What a machine without a reservation boots: exit (to its next boot device), wait (poll until it is given a profile) or that profile',
    description: 'exit, wait or a profile name',
    default: 'exit',
  }),
  recheckSeconds: integer(
    { title: 'How often a waiting machine asks again', description: 'seconds between re-checks of a waiting machine, 5 to 3600' },
    5,
    3600,
    30,
  ),
  assistedChain: word(
    ['rewrite', 'chain'],
    {
      title: "How a machine is handed to the assisted installer's hub",
      description: "rewrite (fetch the hub's iPXE script and serve it with its artifacts from the cache) or chain (hand the machine the hub's URL)",
    },
    'rewrite',
  ),
  verifyClient: word(
    ['source', 'off'],
    {
      title: "Whose requests may move a machine's state and see its secrets (docs/security.md)",
      description:
        "source (a machine's secrets and state moves only for requests from its own address: its DHCP lease, its reservation's ip " +
        'or a neighbour entry of one of its MACs) or off (any request that names the MAC; for networks behind NAT)',
    },
    'source',
  ),
  maxDiscovered: integer(
    {
      title: 'How many machines without a reservation are remembered',
      description: 'discovered machines (booted, never reserved) kept; beyond, the least recently seen are deleted, down to 15/16 of it; 0: no cap',
    },
    0,
    10000000,
    4096,
  ),
  discoverPerMinute: integer(
    {
      title: 'How fast one client address may make discovered machines',
      description: 'new discovered machines one client address may make a minute over HTTP (beyond, the script is served and no record is made); 0: no limit',
    },
    0,
    1000000,
    60,
  ),
});

/** How the precache live environment's job runs and when edgeboot gives up on it. */
export const precacheSection = section("The precache flow: the live environment's job that writes a bundle to disk", {
  after: word(
    ['reboot', 'poweroff'],
    {
      title: 'What the machine does once its partition is written',
      description: 'reboot (on into the install) or poweroff (ship the box) once the partition is written',
    },
    'reboot',
  ),
  heartbeatSeconds: integer(
    { title: 'A precaching machine silent this long has failed', description: 'seconds of silence from a precaching machine before it is failed, 30 to 86400' },
    30,
    86400,
    900,
  ),
  maxBoots: integer(
    {
      title: 'Precache boots without a result before the machine is failed as a boot loop',
      description: 'precache boots without a result before a boot loop fails the machine, 1 to 100',
    },
    1,
    100,
    3,
  ),
  installReserveGiB: integer(
    {
      title: 'Room the install disk keeps in front of the data partition for the OS itself',
      description: 'GiB of the install disk kept in front of the data partition for the OS',
    },
    0,
    65536,
    120,
  ),
  progressSeconds: integer(
    { title: 'How often the job reports progress while it downloads', description: 'seconds between progress reports of a download, 1 to 3600' },
    1,
    3600,
    10,
  ),
});
