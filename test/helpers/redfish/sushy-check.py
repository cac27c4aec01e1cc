"""Drives the Redfish BMC emulator with python3-sushy (the library OpenStack Ironic uses).

Usage: EMU_PASSWORD=... /usr/bin/python3 sushy-check.py URL USERNAME STEP...
Steps, run in order: read, pxe-once (set_system_boot_options Pxe/Once/UEFI), on (reset_system On),
force-restart, read-after. Prints one JSON object: what sushy saw at each step. The password comes
from the environment so it is never on a command line; EMU_CA, when set, is the CA file sushy
verifies an HTTPS emulator's certificate with.
"""
import json
import os
import sys

import sushy


def boot_of(system):
    boot = system.boot
    return {
        'target': boot.target.value if boot.target else None,
        'enabled': boot.enabled.value if boot.enabled else None,
        'mode': boot.mode.value if boot.mode else None,
    }


def main():
    url, username, steps = sys.argv[1], sys.argv[2], sys.argv[3:]
    verify = os.environ.get('EMU_CA') or True
    if verify is not True:
        # requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override a session's verify
        # (psf/requests#3829, #4650): drop them so the emulator's CA is the one used.
        os.environ.pop('REQUESTS_CA_BUNDLE', None)
        os.environ.pop('CURL_CA_BUNDLE', None)
    root = sushy.Sushy(url, username=username, password=os.environ['EMU_PASSWORD'], verify=verify)
    out = {'auth': type(root._conn._auth).__name__}
    members = root.get_system_collection().members_identities
    out['members'] = list(members)
    system = root.get_system(members[0])
    for step in steps:
        if step in ('read', 'read-after'):
            system.refresh()
            out[step] = {
                'power': system.power_state.value if system.power_state else None,
                'boot': boot_of(system),
                'allowedTargets': sorted(v.value for v in system.get_allowed_system_boot_source_values()),
                'allowedResets': sorted(v.value for v in system.get_allowed_reset_system_values()),
                'uuid': system.uuid,
                'serial': system.serial_number,
                'manufacturer': system.manufacturer,
                'macs': sorted(system.ethernet_interfaces.summary.keys()),
                'managers': [
                    {'id': m.identity, 'firmware': m.firmware_version, 'model': m.model}
                    for m in root.get_manager_collection().get_members()
                ],
            }
        elif step == 'pxe-once':
            system.set_system_boot_options(
                sushy.BOOT_SOURCE_TARGET_PXE,
                enabled=sushy.BOOT_SOURCE_ENABLED_ONCE,
                mode=sushy.BOOT_SOURCE_MODE_UEFI)
            system.refresh()
            out[step] = boot_of(system)
        elif step == 'on':
            system.reset_system(sushy.RESET_ON)
            out[step] = 'sent'
        elif step == 'force-restart':
            system.reset_system(sushy.RESET_FORCE_RESTART)
            out[step] = 'sent'
        else:
            raise SystemExit('unknown step ' + step)
    print(json.dumps(out))


main()
