import t from 'tap';
import { reservationAddressProblem, type DhcpAddressing } from '../../../src/machines/addresses.js';

const lab = { cidr: '10.77.0.0/24', leaseSeconds: 3600 };
const storage = { cidr: '10.78.4.0/22', leaseSeconds: 3600 };
const full = (...subnets: DhcpAddressing['subnets']): DhcpAddressing => ({ mode: 'full', subnets });

t.test('full mode: an ip inside one of the subnets is a lease DHCP can give', async (t) => {
  t.equal(reservationAddressProblem('10.77.0.50', full(lab)), undefined);
  t.equal(reservationAddressProblem('10.78.7.254', full(lab, storage)), undefined, 'the last address of a /22');
  t.equal(reservationAddressProblem(undefined, full(lab)), undefined, 'no ip: nothing to check');
});

t.test('full mode: an ip outside every subnet names the key, the address and the cidrs', async (t) => {
  t.equal(reservationAddressProblem('10.9.9.9', full(lab)), 'ip: 10.9.9.9 is outside every dhcp.subnets cidr (10.77.0.0/24)');
  t.equal(reservationAddressProblem('10.77.1.100', full(lab)), 'ip: 10.77.1.100 is outside every dhcp.subnets cidr (10.77.0.0/24)', 'one bit past the mask');
  const both = 'ip: 10.78.8.0 is outside every dhcp.subnets cidr (10.77.0.0/24, 10.78.4.0/22)';
  t.equal(reservationAddressProblem('10.78.8.0', full(lab, storage)), both, 'every cidr listed');
  t.equal(reservationAddressProblem('10.77.0.5', full()), 'ip: 10.77.0.5 is outside every dhcp.subnets cidr (none configured)');
});

t.test('proxy and off mode: ip is the static address of the machine, not a lease, and any address goes', async (t) => {
  for (const mode of ['proxy', 'off'] as const) {
    t.equal(reservationAddressProblem('10.9.9.9', { mode, subnets: [lab] }), undefined, mode);
  }
});
