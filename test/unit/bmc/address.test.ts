import t from 'tap';
import { parseBmcAddress } from '../../../src/bmc/address.js';

const reasonOf = (text: string): string => {
  const parsed = parseBmcAddress(text);
  if (parsed.ok) throw new Error(`${text} was accepted`);
  return parsed.reason;
};

t.test('redfish:// and redfish+https:// are HTTPS, redfish+http:// is HTTP, with or without a port', async (t) => {
  t.same(parseBmcAddress('redfish://10.0.9.21'), { ok: true, url: 'https://10.0.9.21' });
  t.same(parseBmcAddress('redfish://10.0.9.21:8443'), { ok: true, url: 'https://10.0.9.21:8443' });
  t.same(parseBmcAddress('redfish+https://bmc-7.lab.example'), { ok: true, url: 'https://bmc-7.lab.example' });
  t.same(parseBmcAddress('redfish+http://127.0.0.1:8000'), { ok: true, url: 'http://127.0.0.1:8000' });
  t.same(parseBmcAddress('redfish+http://bmc'), { ok: true, url: 'http://bmc' });
  t.same(parseBmcAddress('redfish://10.0.9.21:443'), { ok: true, url: 'https://10.0.9.21' }, 'the default port is dropped');
  t.same(parseBmcAddress('REDFISH://BMC.Example'), { ok: true, url: 'https://bmc.example' }, 'scheme and host are case-insensitive');
});

t.test('each vendor alias picks its profile, in its HTTPS and +http forms', async (t) => {
  const aliases: [string, string][] = [
    ['idrac-redfish', 'dell'],
    ['ilo5-redfish', 'hpe'],
    ['ilo6-redfish', 'hpe'],
    ['supermicro-redfish', 'supermicro'],
    ['ami-redfish', 'ami'],
    ['xclarity-redfish', 'lenovo'],
  ];
  for (const [scheme, vendor] of aliases) {
    t.same(parseBmcAddress(`${scheme}://10.1.2.3`), { ok: true, url: 'https://10.1.2.3', vendor }, scheme);
    t.same(parseBmcAddress(`${scheme}+https://10.1.2.3:444`), { ok: true, url: 'https://10.1.2.3:444', vendor }, `${scheme}+https`);
    t.same(parseBmcAddress(`${scheme}+http://10.1.2.3:8000`), { ok: true, url: 'http://10.1.2.3:8000', vendor }, `${scheme}+http`);
  }
});

t.test('IPv6 literals in brackets, with and without a port', async (t) => {
  t.same(parseBmcAddress('redfish://[fd00::1]:443'), { ok: true, url: 'https://[fd00::1]' });
  t.same(parseBmcAddress('redfish://[fd00::1]:8443'), { ok: true, url: 'https://[fd00::1]:8443' });
  t.same(parseBmcAddress('redfish+http://[FD00:0::1]'), { ok: true, url: 'http://[fd00::1]' }, 'normalised');
  t.match(reasonOf('redfish://fd00::1'), /not a valid host\[:port\].*\[fd00::1\]:443/, 'an IPv6 literal without brackets');
});

t.test('a system path gives systemPath; the service root or no path gives none', async (t) => {
  t.same(parseBmcAddress('idrac-redfish://10.0.0.5/redfish/v1/Systems/System.Embedded.1'), {
    ok: true,
    url: 'https://10.0.0.5',
    vendor: 'dell',
    systemPath: '/redfish/v1/Systems/System.Embedded.1',
  });
  t.same(parseBmcAddress('redfish+http://h:81/redfish/v1/Systems/1/'), { ok: true, url: 'http://h:81', systemPath: '/redfish/v1/Systems/1' }, 'trailing /');
  for (const path of ['/', '/redfish', '/redfish/v1', '/redfish/v1/']) {
    t.same(parseBmcAddress(`redfish://h${path}`), { ok: true, url: 'https://h' }, path);
  }
  t.match(reasonOf('redfish://h/redfish/v1/Managers/1'), /path "\/redfish\/v1\/Managers\/1" is not a system/);
  t.match(reasonOf('redfish://h/redfish/v1/Systems'), /is not a system/, 'the collection, not a member');
  t.match(reasonOf('redfish://h/redfish/v1/Systems/1/Bios'), /is not a system/);
});

t.test('no host, a bad port or an empty address is refused with the reason', async (t) => {
  t.match(reasonOf(''), /empty/);
  t.match(reasonOf('redfish://'), /has no host/);
  t.match(reasonOf('redfish://:443'), /has no host/);
  t.match(reasonOf('redfish:///redfish/v1/Systems/1'), /has no host/);
  t.match(reasonOf('redfish://h:99999'), /not a valid host\[:port\]/);
  t.match(reasonOf('redfish://h:port'), /not a valid host\[:port\]/);
  t.match(reasonOf('redfish://h:0'), /port 0/);
  t.match(reasonOf('10.0.9.21'), /has no scheme/);
  t.match(reasonOf('redfish:10.0.9.21'), /has no scheme/);
});

t.test('user info in the address is refused: credentials go in username and password', async (t) => {
  const reason = reasonOf('redfish://root:calvin@10.0.9.21');
  t.match(reason, /user name or password in it: give them as username and password/);
  t.notMatch(reason, /calvin/, 'the refused password is not repeated');
  t.match(reasonOf('redfish+http://root@h:8000'), /user name or password/);
});

t.test('a query or a fragment is refused', async (t) => {
  t.match(reasonOf('redfish://h?verify=false'), /query or a fragment/);
  t.match(reasonOf('redfish://h/redfish/v1/Systems/1#x'), /query or a fragment/);
});

t.test('white space anywhere is refused', async (t) => {
  t.match(reasonOf(' redfish://h'), /white space/);
  t.match(reasonOf('redfish://h '), /white space/);
  t.match(reasonOf('redfish://bmc one'), /white space/);
});

t.test('an unknown scheme names what was probably meant and lists the accepted ones', async (t) => {
  t.match(reasonOf('https://10.0.9.21'), /unknown BMC address scheme "https:\/\/": did you mean redfish:\/\/\?/);
  t.match(reasonOf('http://10.0.9.21'), /did you mean redfish\+http:\/\/\?/);
  t.match(reasonOf('redfsh://h'), /did you mean redfish:\/\/\?/);
  t.match(reasonOf('redfish+htp://h'), /did you mean redfish\+http:\/\/\?/);
  t.match(reasonOf('idrac://h'), /did you mean idrac-redfish:\/\/\?/);
  t.match(reasonOf('ilo5+http://h'), /did you mean ilo5-redfish\+http:\/\/\?/);
  const far = reasonOf('ipmi://h');
  t.notMatch(far, /did you mean/, 'no guess when nothing is close');
  t.match(far, /redfish:\/\/ \(HTTPS\), redfish\+http:\/\/ \(HTTP\), or a vendor alias \(idrac-redfish, .*xclarity-redfish/);
});
