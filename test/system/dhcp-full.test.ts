/**
 * edgeboot's DHCP server in full mode against real DHCP clients, inside network namespaces.
 *
 *   client namespaces (one per client, eth0 with a fixed MAC) ──veth── pN ┐
 *                                                                     br0 10.77.0.1/24  (server namespace:
 *                                                                           `node dist/main.js serve`, dhcp.mode full)
 *
 * Proves: a BIOS and a UEFI PXE ROM (busybox udhcpc sending what the ROMs send: option 60
 * PXEClient:Arch:…, 93, 97) get a lease of pxeLeaseSeconds and the iPXE binary of their
 * firmware with next-server 10.77.0.1, and are recorded as discovered machines with
 * dhcp-offer/dhcp-ack events; iPXE (user class iPXE, with and without option 175) gets the HTTP
 * entry script on the server's own address and HTTP port; ISC dhclient and dhcpcd (plain
 * clients) get the subnet's router, DNS servers and domain, and no machine is made for them; a
 * reservation made through the admin API gives its MAC the fixed address and host name
 * (option 12); a registered machine's dhclient that comes with a lease of another network
 * (INIT-REBOOT) is NAKed, and the NAK's reason is in the log line and on its timeline; every
 * client gets an address of its own; the leases are in the SQLite store and
 * survive a restart (SIGTERM, same data dir): the same clients get their addresses back and a
 * newcomer gets none of them.
 *
 * Needs root, iproute2, udhcpc, isc-dhcp-client, dhcpcd-base and curl (CI installs them) and a
 * built dist/ (`npm test` builds first). All traffic stays inside namespaces this test creates
 * (eb-df-<pid>-<n>); they and every process in them are removed at teardown, even on failure.
 */
import Database from 'better-sqlite3';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import {
  api,
  dhclient,
  dhcpcd,
  dhcpTools,
  inRange,
  machineEvents,
  scratchDir,
  sleep,
  startDhcpServer,
  udhcpc,
  type ClientRun,
  type Dhclient,
  type DhcpServer,
} from '../helpers/dhcp-system.js';
import { createLab, netnsList, netnsSkip, requireTools, type Lab } from '../helpers/netns.js';
import { tempDir } from '../helpers/process.js';

const skip = netnsSkip();
const SERVER_IP = '10.77.0.1';
const POOL: [string, string] = ['10.77.0.100', '10.77.0.199'];
const SUBNETS = [{ cidr: '10.77.0.0/24', pool: POOL, router: SERVER_IP, dns: [SERVER_IP, '10.77.0.3'], domain: 'lab.example', leaseSeconds: 3600 }];
const DHCP = { pxeLeaseSeconds: 600 };
/** A BIOS PXE ROM's identity as udhcpc options: arch 0 (93), UNDI 2.1 (94), a UUID (97). */
const UUID_OPT = '0x61:00112233445566778899aabbccddeeff00';
const BIOS_ROM = { vendor: 'PXEClient:Arch:00000:UNDI:002001', options: ['0x5d:0000', '0x5e:010201', UUID_OPT] };
const UEFI_ROM = { vendor: 'PXEClient:Arch:00007:UNDI:003016', options: ['0x5d:0007', '0x5e:010301', UUID_OPT] };
/** iPXE: user class 77 "iPXE" (raw, as iPXE sends it) and 175 with 19 (HTTP) = 1. */
const IPXE = { vendor: 'PXEClient:Arch:00000:UNDI:002001', options: ['0x4d:69505845', '0xaf:130101', '0x5d:0000'] };

const MAC = {
  bios: '02:eb:0f:00:00:01',
  uefi: '02:eb:0f:00:00:02',
  ipxe: '02:eb:0f:00:00:03',
  ipxeUserClassOnly: '02:eb:0f:00:00:04',
  dhclient: '02:eb:0f:00:00:05',
  dhcpcd: '02:eb:0f:00:00:06',
  reserved: '02:eb:0f:00:00:07',
  newcomer: '02:eb:0f:00:00:08',
  moved: '02:eb:0f:00:00:09',
} as const;
type Who = keyof typeof MAC;

interface Ctx {
  lab: Lab;
  dir: string;
  dataDir: string;
  srv: string;
  server: DhcpServer;
  clients: Record<Who, string>;
  /** The address each client was given, for the distinctness and restart checks. */
  got: Partial<Record<Who, string>>;
  /** dhclient of the first run, whose lease file the restart check reuses. */
  dhclient?: Dhclient;
}

/** Polls the machine's events until one of `type` is there (events are written after the reply). */
async function eventsWith(ctx: Ctx, mac: string, type: string, timeoutMs = 3_000) {
  const deadline = Date.now() + timeoutMs;
  let events = await machineEvents(ctx.lab, ctx.server, mac);
  while (!events.some((e) => e.type === type) && Date.now() < deadline) {
    await sleep(100);
    events = await machineEvents(ctx.lab, ctx.server, mac);
  }
  return events;
}

const describe = (c: ClientRun): string =>
  `exit ${c.run.code ?? c.run.signal} in ${c.run.ms} ms\n${c.run.stdout}${c.run.stderr}\nrecords: ${JSON.stringify(c.records)}`;

t.test('full mode with real clients', { skip }, async (t) => {
  const started = Date.now();
  requireTools(dhcpTools('udhcpc', 'dhclient', 'dhcpcd', 'curl'));
  const lab = createLab(t, 'df');
  const dir = scratchDir(t);
  const dataDir = tempDir(t, 'edgeboot-dhcp-data-');
  const srv = lab.netns('server');
  lab.bridge(srv, 'br0');
  lab.ipIn(srv, 'addr', 'add', `${SERVER_IP}/24`, 'dev', 'br0');
  const clients = {} as Record<Who, string>;
  let k = 0;
  for (const who of Object.keys(MAC) as Who[]) {
    const ns = lab.netns(who);
    const dev = who === 'dhcpcd' ? `ebd${process.pid}` : 'eth0';
    lab.veth({ ns: srv, dev: `p${k}` }, { ns, dev, mac: MAC[who] });
    lab.attach(srv, `p${k++}`, 'br0');
    clients[who] = ns;
  }
  t.comment(`namespaces up in ${Date.now() - started} ms`);
  const server = await startDhcpServer(t, srv, { mode: 'full', subnets: SUBNETS, dataDir, dhcp: DHCP });
  const ctx: Ctx = { lab, dir, dataDir, srv, server, clients, got: {} };
  t.comment(`server serving after ${Date.now() - started} ms (HTTP port ${server.port} inside ${srv})`);

  await t.test('a BIOS PXE ROM gets a PXE lease and undionly.kpxe, and is recorded', async (t) => {
    const c = await udhcpc(lab, dir, clients.bios, 'eth0', BIOS_ROM);
    t.equal(c.run.code, 0, `udhcpc got a lease: ${describe(c)}`);
    const l = c.lease ?? {};
    t.ok(inRange(l.ip, ...POOL), `address ${l.ip} from the pool`);
    t.equal(l.boot_file, 'undionly.kpxe', 'boot file (file field / option 67)');
    t.equal(l.siaddr, SERVER_IP, 'next-server (siaddr)');
    t.equal(l.serverid, SERVER_IP, 'server identifier');
    t.equal(l.lease, '600', 'PXE clients get pxeLeaseSeconds, not the subnet lease time');
    t.equal(l.router, SERVER_IP, 'router');
    ctx.got.bios = l.ip;

    const m = await api(lab, server, 'GET', `/api/v1/machines/${MAC.bios}`);
    t.equal(m.status, 200, 'the PXE client is a machine now');
    t.match(m.body, { mac: MAC.bios, state: 'discovered', observed: { arch: 'x86-bios', vendorClass: BIOS_ROM.vendor } }, 'discovered, with its firmware');
    const events = await eventsWith(ctx, MAC.bios, 'dhcp-ack');
    const types = events.map((e) => e.type);
    t.ok(types.includes('dhcp-offer') && types.includes('dhcp-ack'), `dhcp-offer and dhcp-ack events (${types.join(', ')})`);
    t.match(
      events.find((e) => e.type === 'dhcp-ack'),
      { source: 'dhcp', data: { listener: 'dhcp', interface: 'br0', yiaddr: l.ip, bootFile: { kind: 'tftp', file: 'undionly.kpxe' }, ipxe: false } },
      'the ack event names the address and the boot file',
    );
    t.ok(
      server.logLines.some(
        (x) =>
          x.msg === 'dhcp reply' &&
          x.mac === MAC.bios &&
          x.type === 'ack' &&
          JSON.stringify(x.bootFile) === JSON.stringify({ kind: 'tftp', file: 'undionly.kpxe' }),
      ),
      'the server logged the ack with the boot file',
    );
  });

  await t.test('a UEFI x86-64 PXE ROM (arch 7) gets ipxe.efi', async (t) => {
    const c = await udhcpc(lab, dir, clients.uefi, 'eth0', UEFI_ROM);
    t.equal(c.run.code, 0, `udhcpc got a lease: ${describe(c)}`);
    const l = c.lease ?? {};
    t.ok(inRange(l.ip, ...POOL), `address ${l.ip} from the pool`);
    t.equal(l.boot_file, 'ipxe.efi', 'boot file');
    t.equal(l.siaddr, SERVER_IP, 'next-server');
    t.equal(l.lease, '600', 'PXE lease time');
    ctx.got.uefi = l.ip;
    const m = await api(lab, server, 'GET', `/api/v1/machines/${MAC.uefi}`);
    t.match(m.body, { state: 'discovered', observed: { arch: 'efi-x86-64' } }, 'recorded as efi-x86-64');
  });

  await t.test('iPXE gets the HTTP entry script on the server address and HTTP port', async (t) => {
    const entry = `http://${SERVER_IP}:${server.port}/boot.ipxe`;
    const c = await udhcpc(lab, dir, clients.ipxe, 'eth0', IPXE);
    t.equal(c.run.code, 0, `udhcpc got a lease: ${describe(c)}`);
    const l = c.lease ?? {};
    t.equal(l.boot_file, entry, 'user class iPXE + option 175: the entry script');
    t.equal(l.opt175, 'b00101', 'option 175 carries 176 (no-pxedhcp) = 1, so iPXE does not wait for proxy offers');
    t.equal(l.lease, '600', 'PXE lease time');
    ctx.got.ipxe = l.ip;
    const events = await eventsWith(ctx, MAC.ipxe, 'dhcp-ack');
    t.match(
      events.find((e) => e.type === 'dhcp-ack'),
      { data: { ipxe: true, bootFile: { kind: 'http', url: entry } } },
      'recorded as iPXE',
    );

    // The user class alone (no option 175, no vendor class) marks iPXE too.
    const u = await udhcpc(lab, dir, clients.ipxeUserClassOnly, 'eth0', { options: ['0x4d:69505845'] });
    t.equal(u.run.code, 0, `udhcpc got a lease: ${describe(u)}`);
    t.equal(u.lease?.boot_file, entry, 'user class iPXE alone: the entry script');
    ctx.got.ipxeUserClassOnly = u.lease?.ip;
  });

  await t.test('dhclient (a plain client) gets router, DNS servers and domain', async (t) => {
    const dc = dhclient(lab, dir, clients.dhclient, 'eth0');
    const c = await dc.once();
    const l = c.lease ?? {};
    t.equal(l.reason, 'BOUND', `dhclient bound: ${describe(c)}`);
    t.ok(inRange(l.new_ip_address, ...POOL), `address ${l.new_ip_address} from the pool`);
    t.equal(l.new_routers, SERVER_IP, 'routers');
    t.equal(l.new_domain_name_servers, `${SERVER_IP} 10.77.0.3`, 'DNS servers, in order');
    t.equal(l.new_domain_name, 'lab.example', 'domain');
    t.equal(l.new_subnet_mask, '255.255.255.0', 'mask');
    t.equal(l.new_dhcp_lease_time, '3600', 'a plain client gets the subnet lease time');
    t.equal(l.new_dhcp_server_identifier, SERVER_IP, 'server identifier');
    ctx.got.dhclient = l.new_ip_address;
    const m = await api(lab, server, 'GET', `/api/v1/machines/${MAC.dhclient}`);
    t.equal(m.status, 404, 'no machine is made for a client that does not network-boot');
    ctx.dhclient = dc;
  });

  await t.test('dhcpcd, run for real, configures the address it got', async (t) => {
    const dev = `ebd${process.pid}`;
    const c = await dhcpcd(t, lab, dir, clients.dhcpcd, dev);
    t.equal(c.run.code, 0, `dhcpcd exited 0: ${describe(c)}`);
    const l = c.lease ?? {};
    t.equal(l.reason, 'BOUND', 'its script saw BOUND');
    t.ok(inRange(l.new_ip_address, ...POOL), `address ${l.new_ip_address} from the pool`);
    t.equal(l.new_routers, SERVER_IP, 'routers');
    t.equal(l.new_domain_name_servers, `${SERVER_IP} 10.77.0.3`, 'DNS servers');
    t.equal(l.new_domain_name, 'lab.example', 'domain');
    const addr = lab.ipIn(clients.dhcpcd, '-4', '-o', 'addr', 'show', 'dev', dev);
    t.match(addr, new RegExp(`inet ${(l.new_ip_address ?? 'none').replace(/\./g, '\\.')}/24 `), `the address is on ${dev}: ${addr.trim()}`);
    const routes = lab.ipIn(clients.dhcpcd, '-4', 'route', 'show');
    t.match(routes, /^default via 10\.77\.0\.1 /m, `default route via the router: ${routes.trim()}`);
    ctx.got.dhcpcd = l.new_ip_address;
  });

  await t.test('a reservation made through the API fixes address and host name', async (t) => {
    const put = await api(lab, server, 'PUT', `/api/v1/machines/${MAC.reserved}`, { ip: '10.77.0.50', hostname: 'node-a', profile: 'local-disk' });
    t.equal(put.status, 201, `reservation created: ${JSON.stringify(put.body)}`);
    const c = await udhcpc(lab, dir, clients.reserved, 'eth0');
    t.equal(c.run.code, 0, `udhcpc got a lease: ${describe(c)}`);
    t.equal(c.lease?.ip, '10.77.0.50', 'the reserved address (outside the pool)');
    t.equal(c.lease?.hostname, 'node-a', 'the reserved host name as option 12');
    t.equal(c.lease?.lease, '3600', 'plain client: subnet lease time');
    ctx.got.reserved = c.lease?.ip;
  });

  await t.test('a NAK has its reason, in the log line and on the machine’s timeline', async (t) => {
    // A registered machine whose OS moved from another network: dhclient INIT-REBOOTs into its
    // old lease (RFC 2131 §3.2), is NAKed, and starts over with a DISCOVER.
    const put = await api(lab, server, 'PUT', `/api/v1/machines/${MAC.moved}`, { profile: 'local-disk' });
    t.equal(put.status, 201, 'registered');
    const dc = dhclient(lab, dir, clients.moved, 'eth0');
    writeFileSync(
      dc.leaseFile,
      [
        'lease {',
        '  interface "eth0";',
        '  fixed-address 10.77.1.50;',
        '  option subnet-mask 255.255.255.0;',
        '  option dhcp-server-identifier 10.77.1.1;',
        '  renew 4 2099/01/01 00:00:00;',
        '  rebind 4 2099/01/01 00:00:00;',
        '  expire 4 2099/01/01 00:00:00;',
        '}',
        '',
      ].join('\n'),
    );
    const c = await dc.once();
    t.match(c.run.stdout, /DHCPNAK from 10\.77\.0\.1/, 'dhclient was NAKed by edgeboot');
    t.equal(c.lease?.reason, 'BOUND', `then bound a new lease: ${describe(c)}`);
    t.ok(inRange(c.lease?.new_ip_address, ...POOL), `from the pool (${c.lease?.new_ip_address})`);
    ctx.got.moved = c.lease?.new_ip_address;
    const reason = '10.77.1.50 is not on 10.77.0.0/24';
    t.match(
      ctx.server.logLines.find((l) => l.msg === 'dhcp reply' && l.mac === MAC.moved && l.type === 'nak'),
      { reason },
      'the log line of the NAK gives its reason',
    );
    const events = await eventsWith(ctx, MAC.moved, 'dhcp-nak');
    t.match(
      events.find((e) => e.type === 'dhcp-nak'),
      { source: 'dhcp', message: reason },
      `the timeline's dhcp-nak gives it too (${events.map((e) => e.type).join(', ')})`,
    );
  });

  await t.test('every client got an address of its own', async (t) => {
    const ips = Object.entries(ctx.got);
    t.equal(ips.length, 8, `eight clients have addresses: ${JSON.stringify(ctx.got)}`);
    t.equal(new Set(ips.map(([, ip]) => ip)).size, ips.length, 'no address was given twice');
  });

  await t.test('leases are stored and survive a restart', async (t) => {
    const exit = await ctx.server.stop('SIGTERM');
    t.equal(exit.code, 0, `SIGTERM: clean exit in ${exit.ms} ms`);
    const db = new Database(join(dataDir, 'edgeboot.db'), { readonly: true, fileMustExist: true });
    const rows = db.prepare('SELECT ip, mac, state, expires_at AS expiresAt, hostname FROM leases ORDER BY ip').all() as {
      ip: string;
      mac: string;
      state: string;
      expiresAt: number;
      hostname: string | null;
    }[];
    db.close();
    const now = Date.now();
    const row = (mac: string) => rows.find((r) => r.mac === mac);
    t.match(row(MAC.dhclient), { ip: ctx.got.dhclient, state: 'bound' }, `dhclient's lease is stored bound (rows: ${JSON.stringify(rows)})`);
    t.ok(Math.abs((row(MAC.dhclient)?.expiresAt ?? 0) - (now + 3600_000)) < 120_000, 'for the subnet lease time');
    t.match(row(MAC.bios), { ip: ctx.got.bios, state: 'bound' }, 'the BIOS ROM lease is stored bound');
    t.ok(Math.abs((row(MAC.bios)?.expiresAt ?? 0) - (now + 600_000)) < 120_000, 'for the PXE lease time');
    t.match(row(MAC.reserved), { ip: '10.77.0.50', state: 'bound', hostname: 'node-a' }, 'the reserved lease, with its host name');

    const t0 = Date.now();
    ctx.server = await startDhcpServer(t, srv, { mode: 'full', subnets: SUBNETS, dataDir, dhcp: DHCP });
    t.comment(`restarted in ${Date.now() - t0} ms`);

    const again = await (ctx.dhclient ?? dhclient(lab, dir, clients.dhclient, 'eth0')).once();
    t.equal(again.lease?.reason, 'REBOOT', `dhclient rebooted into its stored lease: ${describe(again)}`);
    t.equal(again.lease?.new_ip_address, ctx.got.dhclient, 'and kept its address');

    const bios = await udhcpc(lab, dir, clients.bios, 'eth0', BIOS_ROM);
    t.equal(bios.lease?.ip, ctx.got.bios, `the BIOS ROM gets its address back: ${describe(bios)}`);

    // Without the stored leases the newcomer would get the first address of the pool.
    const fresh = await udhcpc(lab, dir, clients.newcomer, 'eth0');
    t.equal(fresh.run.code, 0, `the newcomer got a lease: ${describe(fresh)}`);
    t.ok(inRange(fresh.lease?.ip, ...POOL), `from the pool (${fresh.lease?.ip})`);
    t.notOk(fresh.lease?.ip !== undefined && Object.values(ctx.got).includes(fresh.lease.ip), `and none of the stored ones (${JSON.stringify(ctx.got)})`);
  });

  t.comment(`full-mode tests done in ${Date.now() - started} ms`);
});

t.test('no namespace of this test is left', { skip }, async (t) => {
  const left = netnsList().filter((name) => name.startsWith(`eb-df-${process.pid}-`));
  t.same(left, [], '`ip netns list` shows none of ours');
});
