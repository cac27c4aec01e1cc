import t from 'tap';
import type { Machine } from '../../../src/machines/model.js';
import { refusalOf } from '../../../src/ui/api.js';
import { bodyOf, formOf, postedForm } from '../../../src/ui/reservation-form.js';

const machine = {
  mac: '52:54:00:00:00:01',
  macs: ['52:54:00:00:00:02'],
  hostname: 'n1',
  labels: { rack: 'r1' },
  assisted: { ipxeScriptUrl: 'https://hub.example/x?api_key=SECRET' },
  precache: { release: 'quay.io/r:1', images: ['quay.io/a:1'] },
  bmc: { address: 'redfish://bmc', username: 'root', passwordSealed: 'sealed', verifyTls: false, bootMode: 'uefi' },
  state: 'registered',
  observed: {},
  createdAt: '',
  updatedAt: '',
} as unknown as Machine;

t.test('the form of a record shows no secret; its body keeps what the form does not show', async (t) => {
  const f = formOf(machine);
  t.equal(f['assisted.ipxeScriptUrl'], 'https://hub.example/x?api_key=*redacted*');
  t.equal(f.labels, 'rack=r1');
  t.equal(f['bmc.insecure'], 'on');
  t.notOk('bmc.password' in f);
  const built = bodyOf({ ...f, hostname: 'n1b', labels: 'rack=r2\n\n row = 3 ' }, machine);
  t.same(built, {
    body: {
      labels: { rack: 'r2', row: '3' },
      macs: ['52:54:00:00:00:02'],
      hostname: 'n1b',
      assisted: { ipxeScriptUrl: 'https://hub.example/x?api_key=*redacted*' },
      precache: { images: ['quay.io/a:1'], release: 'quay.io/r:1' },
      bmc: { address: 'redfish://bmc', username: 'root', verifyTls: false, bootMode: 'uefi' },
    },
  });
  t.same(bodyOf({ labels: 'ok=1\nbroken' }, undefined), { fields: { labels: '"broken" is not key=value' } });
  t.same(postedForm({ _csrf: 'x', hostname: ' a ', 'bmc.password': ' p ', many: ['1', '2'], n: 3 }), { hostname: 'a', 'bmc.password': ' p ', many: '1' });
});

t.test("the API's refusals by field", async (t) => {
  const validation = refusalOf({
    status: 400,
    body: {
      error: 'invalid_request',
      message: 'invalid body: …',
      details: [
        { path: 'body/hostname', problem: 'must match pattern' },
        { path: 'body/bmc/address', problem: 'must match format' },
        { path: 'body/bmc', problem: "must have required property 'username'", params: { missingProperty: 'username' } },
      ],
    },
  });
  t.same(validation.fields, { hostname: 'must match pattern', 'bmc.address': 'must match format', 'bmc.username': "must have required property 'username'" });
  t.same(refusalOf({ status: 400, body: { error: 'invalid_mac', message: 'not a MAC' } }).fields, { mac: 'not a MAC' });
  t.same(refusalOf({ status: 400, body: { error: 'bmc_password_required', message: 'give it again', details: { field: 'bmc.password' } } }).fields, {
    'bmc.password': 'give it again',
  });
  t.same(refusalOf({ status: 502, body: 'gateway' }), { message: 'the API answered 502', fields: {} });
});
