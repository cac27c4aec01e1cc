import t from 'tap';
import { redfishMessageIds, redfishMessages } from '../../../src/bmc/http.js';
import { bootOverride } from '../../../src/bmc/system.js';

t.test('a Redfish error body: each ExtendedInfo Message with its MessageId, else error.message', async (t) => {
  const body = {
    error: {
      code: 'Base.1.8.GeneralError',
      message: 'A general error has occurred. See ExtendedInfo for more information.',
      '@Message.ExtendedInfo': [
        { MessageId: 'iLO.2.14.UnableToModifyDuringSystemPOST', Message: 'The value for the property cannot be changed while the computer system is in POST.' },
        { MessageId: 'Base.1.8.Success' },
        'not an object',
      ],
    },
  };
  t.same(redfishMessages(body), [
    'The value for the property cannot be changed while the computer system is in POST. iLO.2.14.UnableToModifyDuringSystemPOST',
    'Base.1.8.Success',
  ]);
  t.same(redfishMessageIds(body), ['iLO.2.14.UnableToModifyDuringSystemPOST', 'Base.1.8.Success', 'Base.1.8.GeneralError']);
  t.same(redfishMessages({ error: { code: 'X', message: 'only this' } }), ['only this']);
  t.same(redfishMessages({ error: { '@Message.ExtendedInfo': [], message: 'fallback' } }), ['fallback'], 'an empty ExtendedInfo falls back');
});

t.test('no Redfish error: no messages', async (t) => {
  for (const body of [undefined, null, 'text', [], {}, { error: 'flat' }]) {
    t.same(redfishMessages(body), [], JSON.stringify(body));
    t.same(redfishMessageIds(body), [], JSON.stringify(body));
  }
});

t.test('the Boot object as a BootOverride: present string fields only', async (t) => {
  t.same(
    bootOverride({ Boot: { BootSourceOverrideTarget: 'Pxe', BootSourceOverrideEnabled: 'Once', BootSourceOverrideMode: 'UEFI', HttpBootUri: 'http://x/y' } }),
    { target: 'Pxe', enabled: 'Once', mode: 'UEFI', httpBootUri: 'http://x/y' },
  );
  t.same(bootOverride({ Boot: { BootSourceOverrideTarget: 'None', BootSourceOverrideEnabled: 'Disabled', HttpBootUri: '' } }), {
    target: 'None',
    enabled: 'Disabled',
  });
  t.same(bootOverride({ Boot: { BootSourceOverrideTarget: null, BootSourceOverrideMode: 3 } }), {}, 'null and non-strings ignored');
  t.same(bootOverride({}), {}, 'no Boot object');
});
