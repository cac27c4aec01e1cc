/** The config section of the machines' BMCs (schema.ts): how edgeboot polls them and drives provisioning runs over Redfish. */
import { Type } from 'typebox';
import { integer, section, word } from './schema-kit.js';

export const BMC_BOOT_TARGETS = ['pxe', 'uefi-http', 'auto'] as const;

export const bmcSection = section("Machines' BMCs over Redfish: the poller and the provisioning runs", {
  pollSeconds: integer(
    { title: 'How often each BMC is asked for its power state and health', description: 'seconds between two polls of one BMC, at least 5' },
    5,
    undefined,
    60,
  ),
  bootTimeoutSeconds: integer(
    {
      title: 'How long a provisioning run waits for the powered machine to ask for its iPXE script before it tries again',
      description: 'seconds from the power action to the machine asking /ipxe, at least 5',
    },
    5,
    undefined,
    600,
  ),
  maxRetries: integer(
    {
      title: 'Power cycles a provisioning run tries again after a boot timeout before the machine is failed',
      description: 'retries after the first power cycle, 0 to 10',
    },
    0,
    10,
    2,
  ),
  parallel: integer({ title: 'BMCs edgeboot talks to at once, all operations together', description: 'concurrent BMC sessions, 1 to 512' }, 1, 512, 16),
  caFile: Type.String({
    title: "The CAs that sign BMCs' certificates, trusted beside the system's (a BMC with verifyTls false is not checked at all)",
    description: 'a path to a PEM file of CA certificates, or empty (the system CAs only)',
    default: '',
  }),
  requestTimeoutSeconds: integer(
    { title: 'How long one request to a BMC may take before it counts as unreachable', description: 'seconds, 1 to 300' },
    1,
    300,
    15,
  ),
  bootTarget: word(
    BMC_BOOT_TARGETS,
    {
      title: 'The one-time boot override a provisioning run sets',
      description:
        'pxe (BootSourceOverrideTarget Pxe), uefi-http (UefiHttp, pointed at the iPXE binary over HTTP) or auto ' +
        "(UefiHttp where the BMC allows it and the machine's boot mode is not legacy, else Pxe)",
    },
    'pxe',
  ),
});
