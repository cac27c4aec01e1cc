import t from 'tap';
import { BindError, bindError, PRIVILEGED_PORT_FIX } from '../../../src/net/bind-error.js';

const hints = { holder: 'another TFTP server', inUseFix: 'stop it', accessFix: 'run as root' };
const errno = (code: string): Error & { code: string } => Object.assign(new Error(`bind ${code}`), { code });

t.test('bindError names the protocol, the address, the reason and the fix', async (t) => {
  t.equal(bindError('TFTP', 'UDP 0.0.0.0:69', errno('EACCES'), hints).message, 'TFTP: cannot bind UDP 0.0.0.0:69: permission denied; run as root');
  t.equal(
    bindError('TFTP', 'UDP 0.0.0.0:69', errno('EADDRINUSE'), hints).message,
    'TFTP: cannot bind UDP 0.0.0.0:69: another TFTP server already holds it; stop it',
  );
  t.equal(
    bindError('HTTP', 'TCP 10.9.9.9:80', errno('EADDRNOTAVAIL'), hints).message,
    'HTTP: cannot bind TCP 10.9.9.9:80: no interface has that address; check the address',
  );
  const other = errno('EINVAL');
  const e = bindError('DHCP', 'UDP port 67', other, hints);
  t.equal(e.message, 'DHCP: cannot bind UDP port 67: bind EINVAL; check the address and port');
  t.equal(e.cause, other, 'the original error is kept as the cause');
});

t.test('a bind error keeps the errno code, so the start can tell "not allowed" from "taken"', async (t) => {
  const denied = bindError('TFTP', 'UDP 0.0.0.0:69', errno('EACCES'), hints);
  t.ok(denied instanceof BindError);
  t.match(denied, { code: 'EACCES', protocol: 'TFTP', where: 'UDP 0.0.0.0:69' });
  t.equal(bindError('TFTP', 'UDP 0.0.0.0:69', errno('EADDRINUSE'), hints).code, 'EADDRINUSE');
});

t.test('the fix for a privileged port is the exact setcap command, on the resolved node binary', async (t) => {
  t.equal(
    PRIVILEGED_PORT_FIX,
    'run edgeboot as root, or give node the capability (as root, once): setcap cap_net_bind_service,cap_net_raw+ep "$(readlink -f "$(which node)")"',
  );
});
