import t from 'tap';
import { broadcastOf, cidrOf, inCidr, intToIp, ipToInt, maskText, parseCidr, parseIpv4, prefixLength, prefixMask } from '../../../src/net/ipv4.js';

t.test('parseIpv4 reads exactly four decimal parts of 0-255, big-endian', async (t) => {
  t.equal(parseIpv4('10.77.0.1'), 0x0a4d0001);
  t.equal(parseIpv4('255.255.255.255'), 0xffffffff);
  t.equal(parseIpv4('0.0.0.0'), 0);
  for (const bad of [
    '',
    '10.77.0',
    '10.77.0.256',
    '10.77.0.5.1',
    'a.b.c.d',
    '10.77.0.-1',
    '10.77.0.1e1',
    ' 10.77.0.5',
    '10.77..5',
    '10.77.0.1234',
    '1.2.3.+4',
  ]) {
    t.equal(parseIpv4(bad), undefined, JSON.stringify(bad));
  }
});

t.test('ipToInt and intToIp are inverse; ipToInt throws on text that is no address', async (t) => {
  for (const ip of ['10.77.0.100', '192.168.255.1', '255.255.255.255', '0.0.0.0']) t.equal(intToIp(ipToInt(ip)), ip);
  t.equal(intToIp(0x0a4d00c7), '10.77.0.199');
  t.throws(() => ipToInt('10.77.0'), RangeError);
});

t.test('prefixMask and prefixLength for /0, /24, /30 and /32', async (t) => {
  t.equal(prefixMask(0), 0);
  t.equal(prefixMask(24), 0xffffff00);
  t.equal(prefixMask(30), 0xfffffffc);
  t.equal(prefixMask(32), 0xffffffff);
  for (const bits of [0, 1, 8, 16, 24, 30, 31, 32]) t.equal(prefixLength({ mask: prefixMask(bits) }), bits, `/${bits}`);
});

t.test('parseCidr masks host bits off and refuses malformed prefixes', async (t) => {
  t.same(parseCidr('10.77.0.0/24'), { cidr: '10.77.0.0/24', network: 0x0a4d0000, mask: 0xffffff00 });
  t.equal(parseCidr('10.88.3.7/16')?.network, ipToInt('10.88.0.0'));
  for (const bad of ['10.77.0.0', '10.77.0.0/33', '10.77.0/24', '10.77.0.0/', '10.77.0.0/2x', '/24']) t.equal(parseCidr(bad), undefined, bad);
  t.throws(() => cidrOf('10.77.0.0/33'), RangeError);
});

t.test('inCidr holds for the whole prefix and nothing else', async (t) => {
  const lab = cidrOf('10.77.0.0/24');
  for (const ip of ['10.77.0.0', '10.77.0.1', '10.77.0.255']) t.ok(inCidr(lab, ip), ip);
  for (const ip of ['10.77.1.0', '10.76.255.255', '0.0.0.0', 'not-an-ip', '']) t.notOk(inCidr(lab, ip), ip);
  t.ok(inCidr(cidrOf('0.0.0.0/0'), '203.0.113.9'), '/0 holds everything');
  t.notOk(inCidr(cidrOf('10.1.2.3/32'), '10.1.2.4'), '/32 holds one address');
});

t.test('broadcastOf and maskText', async (t) => {
  t.equal(intToIp(broadcastOf(cidrOf('10.77.0.0/24'))), '10.77.0.255');
  t.equal(intToIp(broadcastOf(cidrOf('192.168.9.4/30'))), '192.168.9.7');
  t.equal(maskText(cidrOf('172.16.0.0/16')), '255.255.0.0');
  t.equal(maskText(cidrOf('0.0.0.0/0')), '0.0.0.0');
});
