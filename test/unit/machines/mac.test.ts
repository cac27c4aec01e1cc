import t from 'tap';
import { macHyphenated, macRefusal, parseMac, parseUnicastMac, parseUuid, type Mac } from '../../../src/machines/mac.js';

const CANONICAL = 'aa:bb:cc:dd:ee:ff';

t.test('parseMac accepts the three iPXE forms in any case and returns aa:bb:cc:dd:ee:ff', async (t) => {
  const accepted = [
    'aa:bb:cc:dd:ee:ff',
    'aa-bb-cc-dd-ee-ff',
    'aabbccddeeff',
    'AA:BB:CC:DD:EE:FF',
    'AA-BB-CC-DD-EE-FF',
    'AABBCCDDEEFF',
    'Aa:bB:Cc:dD:eE:Ff',
    'aA-Bb-cC-Dd-eE-fF',
    'AaBbCcDdEeFf',
    '  aa:bb:cc:dd:ee:ff  ',
    '\taa-bb-cc-dd-ee-ff\n',
    ' AABBCCDDEEFF ',
  ];
  for (const input of accepted) t.equal(parseMac(input), CANONICAL, JSON.stringify(input));
});

t.test('parseMac keeps each octet in place', async (t) => {
  t.equal(parseMac('01:23:45:67:89:AB'), '01:23:45:67:89:ab');
  t.equal(parseMac('0123456789ab'), '01:23:45:67:89:ab');
  t.equal(parseMac('52-54-00-AB-CD-EF'), '52:54:00:ab:cd:ef');
  t.equal(parseMac('00:00:00:00:00:00'), '00:00:00:00:00:00');
});

t.test('parseMac refuses malformed input', async (t) => {
  const refused: Record<string, string> = {
    'mixed separators': 'aa:bb-cc:dd:ee:ff',
    'mixed separators, hyphen first': 'aa-bb:cc-dd-ee-ff',
    'dot separators': 'aa.bb.cc.dd.ee.ff',
    'Cisco dotted form': 'aabb.ccdd.eeff',
    'colons at the wrong places': 'aab:bcc:dde:eff:',
    'space separators': 'aa bb cc dd ee ff',
    'five octets': 'aa:bb:cc:dd:ee',
    'seven octets': 'aa:bb:cc:dd:ee:ff:00',
    'seven octets raw': 'aabbccddeeff00',
    '11 hex digits': 'aabbccddeef',
    '13 hex digits': 'aabbccddeeff0',
    'one-digit octet': 'a:bb:cc:dd:ee:ff',
    'non-hex letters': 'gg:hh:ii:jj:kk:ll',
    'non-hex raw': 'aabbccddeefg',
    'non-hex, hyphenated': 'aa-bb-cc-dd-ee-fz',
    empty: '',
    'only whitespace': '   ',
    'inner whitespace': 'aabbcc ddeeff',
    'trailing separator': 'aa:bb:cc:dd:ee:ff:',
  };
  for (const [why, input] of Object.entries(refused)) t.equal(parseMac(input), undefined, `${why}: ${JSON.stringify(input)}`);
});

t.test('parseUnicastMac refuses the all-zero, broadcast and every multicast MAC, and says why', async (t) => {
  const refused: [string, RegExp][] = [
    ['00:00:00:00:00:00', /all-zero/],
    ['000000000000', /all-zero/],
    ['FF-FF-FF-FF-FF-FF', /broadcast/],
    ['ffffffffffff', /broadcast/],
    ['01:00:5e:00:00:fb', /multicast.*low bit of its first octet/], // IPv4 mDNS group
    ['33:33:00:00:00:01', /multicast/], // IPv6 all-nodes
    ['01:80:c2:00:00:0e', /multicast/], // LLDP
    ['01:23:45:67:89:AB', /multicast/],
    ['ff:ff:ff:ff:ff:fe', /multicast/],
  ];
  for (const [input, why] of refused) {
    const r = parseUnicastMac(input);
    t.equal(r.ok, false, `${input} refused`);
    if (!r.ok) t.match(r.reason, why, `${input}: ${r.reason}`);
    const parsed = parseMac(input);
    t.ok(parsed !== undefined && macRefusal(parsed) !== undefined, `macRefusal(${input}) says why too`);
  }
  // Every first octet with the I/G bit set is a group address; clear, unicast.
  for (let octet = 0; octet < 256; octet++) {
    const mac = `${octet.toString(16).padStart(2, '0')}:00:00:00:00:01`;
    t.equal(parseUnicastMac(mac).ok, (octet & 1) === 0, mac);
  }
});

t.test('parseUnicastMac accepts machine MACs in the three forms, and says why for malformed ones', async (t) => {
  for (const input of ['52:54:00:ab:cd:ef', '52-54-00-AB-CD-EF', '525400abcdef', '02:00:00:00:00:00', 'fe:ff:ff:ff:ff:ff', '00:00:00:00:00:01']) {
    const r = parseUnicastMac(input);
    t.ok(r.ok, input);
    if (r.ok) t.equal(r.mac, parseMac(input));
  }
  const bad = parseUnicastMac('aa:bb-cc:dd:ee:ff');
  t.equal(bad.ok, false);
  if (!bad.ok) t.match(bad.reason, /is not a MAC address/);
});

t.test('macHyphenated turns the stored form into the iPXE :hexhyp form', async (t) => {
  const mac = parseMac('AA:BB:CC:DD:EE:FF');
  if (mac === undefined) throw new Error('parseMac refused a valid MAC');
  t.equal(macHyphenated(mac), 'aa-bb-cc-dd-ee-ff');
  t.equal(macHyphenated('52:54:00:ab:cd:ef' as Mac), '52-54-00-ab-cd-ef');
  t.equal(parseMac(macHyphenated(mac)), mac, 'round trip');
});

t.test('parseUuid folds case and trims', async (t) => {
  t.equal(parseUuid('4C4C4544-0042-3510-8052-B4C04F395A31'), '4c4c4544-0042-3510-8052-b4c04f395a31');
  t.equal(parseUuid('4c4c4544-0042-3510-8052-b4c04f395a31'), '4c4c4544-0042-3510-8052-b4c04f395a31');
  t.equal(parseUuid('  00000000-0000-0000-0000-000000000000\n'), '00000000-0000-0000-0000-000000000000');
  t.equal(parseUuid('aBcDeF01-2345-6789-AbCd-Ef0123456789'), 'abcdef01-2345-6789-abcd-ef0123456789');
});

t.test('parseUuid refuses malformed UUIDs', async (t) => {
  const refused: Record<string, string> = {
    empty: '',
    'no hyphens': '4c4c4544004235108052b4c04f395a31',
    braces: '{4c4c4544-0042-3510-8052-b4c04f395a31}',
    'non-hex': '4c4c4544-0042-3510-8052-b4c04f395z31',
    'one digit short': '4c4c4544-0042-3510-8052-b4c04f395a3',
    'one digit long': '4c4c4544-0042-3510-8052-b4c04f395a311',
    'hyphen misplaced': '4c4c454-40042-3510-8052-b4c04f395a31',
    'extra group': '4c4c4544-0042-3510-8052-b4c0-4f395a31',
    'urn prefix': 'urn:uuid:4c4c4544-0042-3510-8052-b4c04f395a31',
    'inner space': '4c4c4544-0042-3510-8052 b4c04f395a31',
  };
  for (const [why, input] of Object.entries(refused)) t.equal(parseUuid(input), undefined, `${why}: ${JSON.stringify(input)}`);
});
