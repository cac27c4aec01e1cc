import t from 'tap';
import { staticIpKarg, subnetOf } from '../../../src/boot/kargs.js';
import type { SubnetConfig } from '../../../src/config/config.js';

const lab: SubnetConfig = {
  cidr: '10.77.0.0/24',
  pool: ['10.77.0.100', '10.77.0.199'],
  router: '10.77.0.1',
  dns: ['10.77.0.53', '10.77.0.54'],
  domain: 'lab.example',
  leaseSeconds: 3600,
};
const wide: SubnetConfig = { cidr: '172.16.0.0/16', router: '172.16.0.254', dns: ['172.16.1.1'], leaseSeconds: 3600 };
const tiny: SubnetConfig = { cidr: '192.168.9.4/30', router: '192.168.9.5', leaseSeconds: 3600 };

t.test('staticIpKarg with a matching subnet fills gateway, mask and the first DNS server', async (t) => {
  t.equal(staticIpKarg('10.77.0.50', 'sno-1', [lab]), 'ip=10.77.0.50::10.77.0.1:255.255.255.0:sno-1::none:10.77.0.53');
});

t.test('staticIpKarg without a matching subnet leaves gateway, mask and DNS empty', async (t) => {
  t.equal(staticIpKarg('10.99.0.50', 'sno-1', [lab]), 'ip=10.99.0.50::::sno-1::none');
  t.equal(staticIpKarg('10.99.0.50', 'sno-1', []), 'ip=10.99.0.50::::sno-1::none', 'no subnets at all');
});

t.test('staticIpKarg without a hostname leaves that field empty', async (t) => {
  t.equal(staticIpKarg('10.77.0.50', undefined, [lab]), 'ip=10.77.0.50::10.77.0.1:255.255.255.0:::none:10.77.0.53');
});

t.test('staticIpKarg with a subnet lacking router or DNS', async (t) => {
  const bare: SubnetConfig = { cidr: '10.5.0.0/24', leaseSeconds: 3600 };
  t.equal(staticIpKarg('10.5.0.9', 'h', [bare]), 'ip=10.5.0.9:::255.255.255.0:h::none', 'no router, no DNS');
  const noDns: SubnetConfig = { cidr: '10.5.0.0/24', router: '10.5.0.1', dns: [], leaseSeconds: 3600 };
  t.equal(staticIpKarg('10.5.0.9', 'h', [noDns]), 'ip=10.5.0.9::10.5.0.1:255.255.255.0:h::none', 'empty DNS list: no DNS field');
});

t.test('staticIpKarg with /16 and /30 subnets', async (t) => {
  t.equal(staticIpKarg('172.16.200.7', 'edge-7', [lab, wide]), 'ip=172.16.200.7::172.16.0.254:255.255.0.0:edge-7::none:172.16.1.1');
  t.equal(staticIpKarg('192.168.9.6', 'p2p', [lab, tiny]), 'ip=192.168.9.6::192.168.9.5:255.255.255.252:p2p::none');
  t.equal(staticIpKarg('192.168.9.8', 'p2p', [lab, tiny]), 'ip=192.168.9.8::::p2p::none', 'just outside the /30');
});

t.test('subnetOf finds the subnet holding an address and its mask', async (t) => {
  t.same(subnetOf('10.77.0.50', [lab]), { subnet: lab, mask: '255.255.255.0' });
  t.same(subnetOf('10.77.0.0', [lab]), { subnet: lab, mask: '255.255.255.0' }, 'network address');
  t.same(subnetOf('10.77.0.255', [lab]), { subnet: lab, mask: '255.255.255.0' }, 'broadcast address');
  t.equal(subnetOf('10.77.1.0', [lab]), undefined, 'next /24');
  t.equal(subnetOf('10.76.255.255', [lab]), undefined, 'previous /24');

  t.same(subnetOf('172.16.255.255', [wide]), { subnet: wide, mask: '255.255.0.0' }, '/16 upper end');
  t.equal(subnetOf('172.17.0.0', [wide]), undefined, 'outside the /16');

  for (const ip of ['192.168.9.4', '192.168.9.5', '192.168.9.6', '192.168.9.7']) {
    t.same(subnetOf(ip, [tiny]), { subnet: tiny, mask: '255.255.255.252' }, `${ip} in the /30`);
  }
  for (const ip of ['192.168.9.3', '192.168.9.8']) t.equal(subnetOf(ip, [tiny]), undefined, `${ip} outside the /30`);
});

t.test('subnetOf: the first matching subnet wins; /0 and /32', async (t) => {
  const all: SubnetConfig = { cidr: '0.0.0.0/0', leaseSeconds: 3600 };
  const host: SubnetConfig = { cidr: '10.77.0.50/32', leaseSeconds: 3600 };
  t.equal(subnetOf('10.77.0.50', [lab, all])?.subnet, lab);
  t.equal(subnetOf('10.77.0.50', [all, lab])?.subnet, all);
  t.same(subnetOf('203.0.113.9', [all]), { subnet: all, mask: '0.0.0.0' });
  t.same(subnetOf('10.77.0.50', [host]), { subnet: host, mask: '255.255.255.255' });
  t.equal(subnetOf('10.77.0.51', [host]), undefined);
});

t.test('subnetOf refuses malformed addresses and skips malformed subnets', async (t) => {
  for (const ip of ['', '10.77.0', '10.77.0.256', '10.77.0.5.1', 'a.b.c.d', '10.77.0.-1', '10.77.0.1e1', ' 10.77.0.5']) {
    t.equal(subnetOf(ip, [lab]), undefined, `address ${JSON.stringify(ip)}`);
  }
  const badBits: SubnetConfig = { cidr: '10.77.0.0/33', leaseSeconds: 3600 };
  const badNet: SubnetConfig = { cidr: '10.77.0/24', leaseSeconds: 3600 };
  const noBits: SubnetConfig = { cidr: '10.77.0.0', leaseSeconds: 3600 };
  t.equal(subnetOf('10.77.0.5', [badBits, badNet, noBits]), undefined, 'only malformed subnets');
  t.equal(subnetOf('10.77.0.5', [badBits, badNet, noBits, lab])?.subnet, lab, 'skips to a good one');
});
