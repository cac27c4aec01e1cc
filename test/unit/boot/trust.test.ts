import t from 'tap';
import type { Mac } from '../../../src/machines/mac.js';
import { checkMachineToken, machineToken } from '../../../src/boot/tokens.js';
import { clientTrust } from '../../../src/boot/trust.js';
import { loadConfig } from '../../../src/config/load.js';

/** Whose address a request comes from (boot/trust.ts), and the tokens it may then have (boot/tokens.ts). */

const A = '52:54:00:00:00:0a' as Mac;
const A2 = '52:54:00:00:00:0b' as Mac;
const OTHER = '52:54:00:00:00:99' as Mac;
const machine = { mac: A, macs: [A2], ip: '10.77.0.50' };

t.test('clientTrust', async (t) => {
  t.same(clientTrust(machine, '10.77.0.50', undefined, 'source'), { trusted: true, by: 'reservation-ip' }, "the reservation's ip");
  t.same(
    clientTrust(machine, '10.77.0.160', A, 'source'),
    { trusted: true, by: 'mac-at-address' },
    'an address a lease or neighbour entry gives to its primary MAC',
  );
  t.same(clientTrust(machine, '10.77.0.161', A2, 'source'), { trusted: true, by: 'mac-at-address' }, '… or to a further MAC');
  const other = clientTrust(machine, '10.77.0.99', OTHER, 'source');
  t.match(other, { trusted: false, address: '10.77.0.99' }, "an address of another machine's MAC");
  t.match(other.trusted ? '' : other.reason, /10\.77\.0\.99, which is not an address of 52:54:00:00:00:0a \(it belongs to 52:54:00:00:00:99\)/);
  const unknown = clientTrust(machine, '10.77.0.98', undefined, 'source');
  t.match(unknown.trusted ? '' : unknown.reason, /no DHCP lease or neighbour entry/, 'an address nobody names');
  t.equal(clientTrust({ mac: A, macs: [] }, '10.77.0.50', undefined, 'source').trusted, false, 'no reservation ip: nothing matches by ip');
  t.equal(clientTrust({ mac: A, macs: [] }, '::1', undefined, 'source').trusted, false, 'an IPv6 client is not identified');
  t.same(clientTrust(machine, '203.0.113.9', OTHER, 'off'), { trusted: true, by: 'verify-off' }, 'off: anyone');
});

t.test('machine tokens by generation', async (t) => {
  const secret = 's';
  const g0 = machineToken(secret, A, 'events');
  t.equal(machineToken(secret, A, 'events', { generation: 0 }), g0, 'generation 0 is the token issued before generations existed');
  const g1 = machineToken(secret, A, 'events', { generation: 1 });
  const g2 = machineToken(secret, A, 'events', { generation: 2 });
  t.not(g1, g0);
  t.not(g2, g1);
  t.ok(checkMachineToken(secret, A, 'events', g2, { generation: 2 }), 'the current generation checks');
  t.notOk(checkMachineToken(secret, A, 'events', g1, { generation: 2 }), 'an earlier one does not');
  t.notOk(checkMachineToken(secret, A, 'events', g2, { generation: 3 }), 'nor a later one');
  const sig = machineToken(secret, A, 'ignition', { generation: 1, expiresAt: 100 });
  t.ok(checkMachineToken(secret, A, 'ignition', sig, { generation: 1, expiresAt: 100 }));
  t.notOk(checkMachineToken(secret, A, 'ignition', sig, { generation: 2, expiresAt: 100 }), 'an Ignition signature of an earlier boot');
  t.notOk(checkMachineToken(secret, A, 'ignition', sig, { generation: 1, expiresAt: 101 }), 'another expiry');
  t.notOk(checkMachineToken(secret, OTHER, 'events', g1, { generation: 1 }), "another machine's");
});

t.test('boot.verifyClient in the config: default source, EDGEBOOT_BOOT_VERIFY_CLIENT, nothing else', async (t) => {
  t.equal(loadConfig().config.boot.verifyClient, 'source', 'the default binds secrets to the address');
  t.equal(loadConfig({ env: { EDGEBOOT_BOOT_VERIFY_CLIENT: 'off' } }).config.boot.verifyClient, 'off', 'the environment variable');
  t.throws(
    () => loadConfig({ env: { EDGEBOOT_BOOT_VERIFY_CLIENT: 'maybe' } }),
    /boot\.verifyClient: got "maybe", expected source \(.*\) or off/,
    'a clear error for anything else',
  );
});
