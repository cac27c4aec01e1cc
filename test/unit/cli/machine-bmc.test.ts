/** `machines add`'s --bmc flags into a body, and `machines show`'s BMC lines. The real CLI is test/integration/cli-machines-bmc.test.ts. */
import t from 'tap';
import { bmcBody, bmcFields, type BmcAnswer } from '../../../src/cli/machine-bmc.js';
import { ClientError } from '../../../src/cli/client.js';

t.test('bmcBody: none without --bmc; --bmc needs --bmc-user; the other flags need --bmc', async (t) => {
  t.equal(bmcBody({}), undefined);
  t.same(bmcBody({ bmc: 'redfish://h', bmcUser: 'root' }), { address: 'redfish://h', username: 'root', verifyTls: true });
  t.same(bmcBody({ bmc: 'redfish://h', bmcUser: 'root', bmcSystemId: '1', bmcInsecure: true, bmcBootMode: 'legacy' }), {
    address: 'redfish://h',
    username: 'root',
    systemId: '1',
    verifyTls: false,
    bootMode: 'legacy',
  });
  t.throws(() => bmcBody({ bmc: 'redfish://h' }), new ClientError('--bmc needs --bmc-user <name>'));
  t.throws(() => bmcBody({ bmcPasswordFile: '/x' }), new ClientError('--bmc-password-file needs --bmc <address>'));
});

t.test("bmcFields: the BMC's lines, each only when there is something to say", async (t) => {
  const bare: BmcAnswer = { address: 'redfish://h', username: 'root', passwordSet: false, verifyTls: true, bootMode: 'auto' };
  t.same(bmcFields(undefined), []);
  t.same(
    bmcFields(bare).filter(([, v]) => v !== undefined),
    [['bmc', 'redfish://h (user root, no password, boot mode auto)']],
  );
  const seen: BmcAnswer = {
    ...bare,
    passwordSet: true,
    reachable: true,
    powerState: 'On',
    checkedAt: 't1',
    vendor: 'dell',
    manufacturer: 'Dell Inc.',
    model: 'R650',
    serial: 'SN1',
    lastError: 'refused: 409',
    run: { phase: 'powered', attempts: 2, startedAt: 't0', deadlineAt: 't9' },
  };
  t.same(Object.fromEntries(bmcFields(seen)), {
    bmc: 'redfish://h (user root, password set, boot mode auto)',
    system: 'Dell Inc. R650 serial SN1 (dell)',
    power: 'On (checked t1)',
    'bmc error': 'refused: 409',
    'bmc run': 'powered, attempt 2, since t0, boot due by t9',
  });
  t.equal(Object.fromEntries(bmcFields({ ...seen, reachable: false })).power, 'unreachable (checked t1)');
});
