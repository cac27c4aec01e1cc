import t from 'tap';
import { fieldsOf, RESERVATION_FLAGS, withFlags } from '../../../src/cli/fields.js';

t.test('the fields a server error names', async (t) => {
  t.same(fieldsOf({ missing: ['assisted.ipxeScriptUrl', 'hostname'] }), ['assisted.ipxeScriptUrl', 'hostname'], 'missing_field');
  t.same(fieldsOf({ field: 'ip' }), ['ip'], 'details.field');
  t.same(fieldsOf([{ path: 'body/precache/sizeGiB', problem: 'must be >= 1', params: {} }]), ['precache.sizeGiB'], 'a schema error path');
  t.same(fieldsOf([{ path: 'body/precache', params: { missingProperty: 'disk' } }]), ['precache.disk'], 'a required property');
  t.same(fieldsOf([{ path: 'querystring/limit' }]), [], 'not a body field');
  t.same(fieldsOf({ profiles: ['a'] }), [], 'no field');
  t.same(fieldsOf(undefined), []);
});

t.test('each field the message names is followed by its flag', async (t) => {
  const flags = RESERVATION_FLAGS;
  t.equal(
    withFlags('profile sno needs assisted.ipxeScriptUrl, hostname [missing_field]', ['assisted.ipxeScriptUrl', 'hostname'], flags),
    'profile sno needs assisted.ipxeScriptUrl (--assisted-url), hostname (--hostname) [missing_field]',
  );
  t.equal(
    withFlags('ip: 10.9.9.9 is outside every dhcp.subnets cidr (10.77.0.0/24) [address_outside_subnets]', ['ip'], flags),
    'ip (--ip): 10.9.9.9 is outside every dhcp.subnets cidr (10.77.0.0/24) [address_outside_subnets]',
  );
  t.equal(withFlags('invalid body: /precache/sizeGiB must be >= 1', ['precache.sizeGiB'], flags), 'invalid body: /precache/sizeGiB (--size-gib) must be >= 1');
  t.equal(withFlags('profile x needs ip', ['ip', 'ip'], flags), 'profile x needs ip (--ip)', 'a field named twice gets its flag once');
  t.equal(withFlags('needs machine.ipxe', ['ip'], flags), 'needs machine.ipxe (ip: --ip)', 'not inside another word: the flag goes at the end');
  t.equal(withFlags('needs serial', ['serial'], flags), 'needs serial', 'a field no flag sets is left as it is');
  t.equal(withFlags('needs constructor', ['constructor'], flags), 'needs constructor', 'only the table, not what objects inherit');
});
