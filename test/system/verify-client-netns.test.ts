/**
 * boot.verifyClient on a real network: edgeboot (`node dist/main.js serve`, full DHCP mode) in
 * a server namespace, two client namespaces on its bridge, each a machine with its own MAC.
 *
 *   ns a  eth0 02:eb:1c:00:00:01  address from edgeboot's DHCP (busybox udhcpc) ─┐
 *                                                                                br0 10.77.0.1/24  server ns
 *   ns b  eth0 02:eb:1c:00:00:02  static 10.77.0.60, no lease                   ─┘
 *
 * Proves: a machine whose address is its lease from edgeboot's DHCP gets its secrets (the live
 * environment with its signed Ignition URL, the Ignition with precache.env) over curl; a machine
 * with no lease and no reservation ip gets them by the kernel's neighbour entry that its own
 * traffic made; machine b asking for machine a's script gets none of a's secrets, moves
 * nothing and leaves a `boot-untrusted` event naming 10.77.0.60 on a's timeline; a's signed
 * Ignition URL fetched from b is refused (403 untrusted_client).
 *
 * Needs root, iproute2, udhcpc and curl (CI installs them) and a built dist/. All traffic stays
 * inside namespaces this test creates (eb-vc-<pid>-<n>), removed at teardown even on failure.
 */
import t from 'tap';
import { api, dhcpTools, inRange, machineEvents, scratchDir, startDhcpServer, udhcpc } from '../helpers/dhcp-system.js';
import { createLab, netnsSkip, requireTools } from '../helpers/netns.js';

const skip = netnsSkip();
const SERVER_IP = '10.77.0.1';
const POOL: [string, string] = ['10.77.0.100', '10.77.0.199'];
const B_IP = '10.77.0.60';
const MAC = { a: '02:eb:1c:00:00:01', b: '02:eb:1c:00:00:02' } as const;
const HUB = 'https://hub.example.com/api/assisted-install/v2/infra-envs/1234/downloads/files?file_name=ipxe-script&api_key=abc.def';
const IGNITION = /ignition\.config\.url=(\S+)/;

t.test('secrets by DHCP lease and by neighbour entry; none for another machine', { skip }, async (t) => {
  requireTools(dhcpTools('udhcpc', 'curl'));
  const lab = createLab(t, 'vc');
  const dir = scratchDir(t);
  const srv = lab.netns('server');
  lab.bridge(srv, 'br0');
  lab.ipIn(srv, 'addr', 'add', `${SERVER_IP}/24`, 'dev', 'br0');
  const ns = { a: lab.netns('a'), b: lab.netns('b') };
  lab.veth({ ns: srv, dev: 'pa' }, { ns: ns.a, dev: 'eth0', mac: MAC.a });
  lab.veth({ ns: srv, dev: 'pb' }, { ns: ns.b, dev: 'eth0', mac: MAC.b });
  lab.attach(srv, 'pa', 'br0');
  lab.attach(srv, 'pb', 'br0');
  const server = await startDhcpServer(t, srv, {
    mode: 'full',
    subnets: [{ cidr: '10.77.0.0/24', pool: POOL, router: SERVER_IP, dns: [SERVER_IP] }],
    listen: '0.0.0.0:0',
    // chain: the install stage hands the hub's URL over; nothing leaves the namespaces.
    config: { boot: { assistedChain: 'chain' } },
  });
  const base = `http://${SERVER_IP}:${server.port}`;
  for (const mac of Object.values(MAC)) {
    const put = await api(lab, server, 'PUT', `/api/v1/machines/${mac}`, { profile: 'precache-assisted', assisted: { ipxeScriptUrl: HUB } });
    t.equal(put.status, 201, `${mac} registered, without an ip`);
  }
  const curl = async (from: string, url: string) => {
    const r = await lab.run(from, ['curl', '-sS', '--max-time', '10', '-w', '\n%{http_code}', url], { timeoutMs: 15_000 });
    if (r.code !== 0) throw new Error(`curl ${url} in ${from}: ${r.code ?? r.signal} ${r.stderr}`);
    const nl = r.stdout.lastIndexOf('\n');
    return { status: Number(r.stdout.slice(nl + 1)), body: r.stdout.slice(0, nl) };
  };
  const state = async (mac: string) =>
    (await api(lab, server, 'GET', `/api/v1/machines/${mac}`)).body as { state: string; precacheProgress?: { boots: number } };

  // a: an address from edgeboot's DHCP, configured as a DHCP client would.
  const lease = await udhcpc(lab, dir, ns.a, 'eth0');
  const aIp = lease.lease?.ip;
  t.ok(inRange(aIp, ...POOL), `a leased ${aIp} from the pool`);
  lab.ipIn(ns.a, 'addr', 'add', `${aIp}/24`, 'dev', 'eth0');
  const aScript = await curl(ns.a, `${base}/ipxe?mac=02-eb-1c-00-00-01`);
  t.equal(aScript.status, 200);
  const aIgnition = IGNITION.exec(aScript.body)?.[1];
  t.match(
    aIgnition,
    /^http:\/\/10\.77\.0\.1:\d+\/api\/v1\/machines\/02-eb-1c-00-00-01\/ignition\?exp=\d+&sig=/,
    'a, from its lease: the live environment with its Ignition URL',
  );
  t.equal((await state(MAC.a)).state, 'precaching', 'and the boot moved it');
  const aIgn = await curl(ns.a, aIgnition ?? '');
  t.equal(aIgn.status, 200, 'a fetches its Ignition');
  t.match(aIgn.body, /"path":"\/etc\/edgeboot\/precache\.env"/, 'with the precache job and its settings');

  // b: a fixed address edgeboot never leased; its own traffic puts it in the neighbour table.
  lab.ipIn(ns.b, 'addr', 'add', `${B_IP}/24`, 'dev', 'eth0');
  const bScript = await curl(ns.b, `${base}/ipxe?mac=02-eb-1c-00-00-02`);
  t.match(IGNITION.exec(bScript.body)?.[1], /\/machines\/02-eb-1c-00-00-02\/ignition\?exp=/, 'b, by its neighbour entry: its own secrets');
  t.equal((await state(MAC.b)).state, 'precaching');

  // b asks for a.
  const before = (await machineEvents(lab, server, MAC.a)).length;
  const stolen = await curl(ns.b, `${base}/ipxe?mac=02-eb-1c-00-00-01`);
  t.equal(stolen.status, 200, 'b still gets a script for a');
  t.notMatch(stolen.body, /token=|sig=|ignition/, "but none of a's secrets");
  t.match(
    stolen.body,
    /^# edgeboot: no secrets and no state move for this request: the request came from 10\.77\.0\.60, which is not an address of 02:eb:1c:00:00:01 \(it belongs to 02:eb:1c:00:00:02\)$/m,
    'the comment says why',
  );
  t.equal((await state(MAC.a)).precacheProgress?.boots, 1, "a's precache boots are not counted up");
  const added = (await machineEvents(lab, server, MAC.a)).slice(before);
  t.same(
    added.map((e) => e.type),
    ['boot-untrusted'],
    "one event on a's timeline",
  );
  t.match(added[0]?.data, { client: B_IP }, 'naming b’s address');
  const copied = await curl(ns.b, aIgnition ?? '');
  t.equal(copied.status, 403, "a's signed Ignition URL from b: 403");
  t.match(copied.body, /"error":"untrusted_client"/);
  t.ok(
    server.logLines.some((l) => l.msg === 'boot script without secrets: the request is not from the machine' && l.client === B_IP),
    'the server logged it, with the address',
  );
});
