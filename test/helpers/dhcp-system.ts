/**
 * What the DHCP system tests share: edgeboot started inside a namespace with a DHCP config, its
 * admin API reached from inside that namespace, the real DHCP clients (busybox udhcpc, ISC
 * dhclient, dhcpcd) with hook scripts that write what they were given to a file, a raw UDP
 * peer for hand-made packets (a PXE ROM, a relay), and a small DHCP reply parser that is
 * independent of the codec under test.
 */
import { chmodSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { startServer, tempDir, type ServerProcess, type Teardown } from './process.js';
import type { Lab, RunResult } from './netns.js';
import type { SubnetConfig as ConfigSubnet } from '../../src/config/config.js';

/** The tools the DHCP system tests drive, with the Debian package of each (see .ci/run). */
export const DHCP_TOOLS = {
  udhcpc: [['--help'], 'udhcpc'],
  dhclient: [['--version'], 'isc-dhcp-client'],
  dhcpcd: [['--version'], 'dhcpcd-base'],
  dnsmasq: [['--version'], 'dnsmasq-base'],
  dhcrelay: [['--version'], 'isc-dhcp-relay'],
  curl: [['--version'], 'curl'],
} as const satisfies Record<string, readonly [string[], string]>;

/** The entries of DHCP_TOOLS a test drives, for `requireTools`. */
export function dhcpTools(...names: (keyof typeof DHCP_TOOLS)[]): Record<string, readonly [string[], string]> {
  return Object.fromEntries(names.map((n) => [n, DHCP_TOOLS[n]]));
}

/** A subnet as the config file takes it (leaseSeconds has a default there). */
export type SubnetConfig = Omit<ConfigSubnet, 'leaseSeconds'> & { leaseSeconds?: number };

export interface DhcpServerOptions {
  mode: 'full' | 'proxy';
  subnets: SubnetConfig[];
  /** Same dir again to restart on the same data. Default: a fresh temp dir. */
  dataDir?: string;
  logLevel?: 'info' | 'debug';
  /** More `dhcp` keys of the config file. */
  dhcp?: Record<string, unknown>;
  /** Other sections of the config file (`boot`, `profiles`, `server`, …). */
  config?: Record<string, unknown>;
  /** More environment (it beats the file). */
  env?: Record<string, string>;
  /** `http.listen`; default 127.0.0.1:0. */
  listen?: string;
}

export interface DhcpServer extends ServerProcess {
  ns: string;
  configFile: string;
}

/**
 * `edgeboot serve` in `ns` with a config file holding the `dhcp` section. The mode goes in the
 * environment as well: the process helper forces EDGEBOOT_DHCP_MODE=off for host tests, and
 * the environment beats the file. Resolves once the server logged `DHCP serving` in `mode`.
 */
export async function startDhcpServer(t: Teardown, ns: string, opts: DhcpServerOptions): Promise<DhcpServer> {
  const dataDir = opts.dataDir ?? tempDir(t, 'edgeboot-dhcp-');
  const configFile = join(dataDir, 'config.json');
  writeFileSync(configFile, JSON.stringify({ ...opts.config, dhcp: { ...opts.dhcp, subnets: opts.subnets } }, null, 2));
  const server = await startServer(t, {
    netns: ns,
    dataDir,
    logLevel: opts.logLevel ?? 'info',
    args: ['--config', configFile],
    env: { ...opts.env, EDGEBOOT_DHCP_MODE: opts.mode },
    ...(opts.listen !== undefined && { listen: opts.listen }),
  });
  // `DHCP serving` follows `edgeboot serving` in the same tick; allow a moment for the pipe.
  const deadline = Date.now() + 2_000;
  let line = server.logLines.find((l) => l.msg === 'DHCP serving');
  while (!line && Date.now() < deadline) {
    await sleep(20);
    line = server.logLines.find((l) => l.msg === 'DHCP serving');
  }
  if (line?.mode !== opts.mode) {
    throw new Error(`edgeboot in ${ns} did not log "DHCP serving" in mode ${opts.mode}: ${JSON.stringify(line ?? server.logLines.slice(-5))}`);
  }
  return Object.assign(server, { ns, configFile });
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface ApiResult {
  status: number;
  body: unknown;
}

/** One admin API call, made with curl inside the server's namespace (its HTTP is on that loopback). */
export async function api(lab: Lab, server: DhcpServer, method: 'GET' | 'PUT' | 'POST' | 'DELETE', path: string, body?: unknown): Promise<ApiResult> {
  const argv = ['curl', '-sS', '--max-time', '5', '-X', method, '-H', `authorization: Bearer ${server.token}`, '-w', '\n%{http_code}'];
  if (body !== undefined) argv.push('-H', 'content-type: application/json', '--data-binary', '@-');
  argv.push(`${server.url}${path}`);
  const r = await lab.run(server.ns, argv, { timeoutMs: 8_000, input: body === undefined ? '' : JSON.stringify(body) });
  if (r.code !== 0) throw new Error(`curl ${method} ${path} failed (${r.code ?? r.signal}): ${r.stderr}`);
  const nl = r.stdout.lastIndexOf('\n');
  const status = Number(r.stdout.slice(nl + 1));
  const text = r.stdout.slice(0, nl);
  let parsed: unknown = text;
  try {
    parsed = text === '' ? undefined : JSON.parse(text);
  } catch {
    // not JSON: keep the text
  }
  return { status, body: parsed };
}

export interface MachineEvent {
  id: number;
  time: string;
  type: string;
  source: string;
  from?: string;
  to?: string;
  data?: Record<string, unknown>;
  message?: string;
}

/** The events of a machine (throws unless the API answers 200). */
export async function machineEvents(lab: Lab, server: DhcpServer, mac: string): Promise<MachineEvent[]> {
  const r = await api(lab, server, 'GET', `/api/v1/machines/${mac}/events`);
  if (r.status !== 200) throw new Error(`GET events of ${mac}: ${r.status} ${JSON.stringify(r.body)}`);
  return (r.body as { events: MachineEvent[] }).events;
}

/** Lines `key=value` with records ended by `--`, as the hook scripts below write them. */
export type HookRecord = Record<string, string>;

function readRecords(file: string): HookRecord[] {
  if (!existsSync(file)) return [];
  const out: HookRecord[] = [];
  let cur: HookRecord = {};
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (line === '--') {
      out.push(cur);
      cur = {};
      continue;
    }
    const eq = line.indexOf('=');
    if (eq > 0) cur[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return out;
}

const shellQuote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/** A /bin/sh hook that appends `name=value` for each variable, then `--`, to `out`. */
function hookScript(dir: string, name: string, out: string, first: string, vars: readonly string[]): string {
  const path = join(dir, `${name}.sh`);
  const lines = ['#!/bin/sh', `out=${shellQuote(out)}`, '{', `  echo "${first}"`];
  for (const v of vars) lines.push(`  echo "${v}=\${${v}-}"`);
  lines.push('  echo "--"', '} >> "$out"', 'exit 0', '');
  writeFileSync(path, lines.join('\n'));
  chmodSync(path, 0o755);
  return path;
}

export interface ClientRun {
  run: RunResult;
  records: HookRecord[];
  /** The last record of a bound lease (udhcpc `bound`/`renew`, dhclient/dhcpcd BOUND/REBOOT/RENEW…). */
  lease: HookRecord | undefined;
}

let runs = 0;

/** Variables busybox udhcpc hands its script (`opt175`: options it has no name for come as optNNN). */
const UDHCPC_VARS = [
  'ip',
  'mask',
  'subnet',
  'router',
  'dns',
  'domain',
  'hostname',
  'serverid',
  'siaddr',
  'sname',
  'boot_file',
  'lease',
  'opt53',
  'opt60',
  'opt175',
] as const;

export interface UdhcpcOptions {
  /** Option 60 (`-V`); default: udhcpc's own `udhcp 1.35.0`. */
  vendor?: string;
  /** `-x OPT:VAL` items, e.g. `0x5d:0007`. */
  options?: string[];
  /** Discover packets to send (default 3), one a second. */
  tries?: number;
}

/**
 * busybox udhcpc, once (`-q -n`), in `ns` on `dev`: its `-s` script writes what it got. It never
 * configures the interface. Bounded: tries × 1 s plus the requests.
 */
export async function udhcpc(lab: Lab, dir: string, ns: string, dev: string, opts: UdhcpcOptions = {}): Promise<ClientRun> {
  const id = `udhcpc-${runs++}`;
  const out = join(dir, `${id}.env`);
  const script = hookScript(dir, id, out, 'event=$1', UDHCPC_VARS);
  const tries = opts.tries ?? 3;
  const argv = ['udhcpc', '-i', dev, '-f', '-q', '-n', '-t', String(tries), '-T', '1', '-A', '1', '-s', script];
  if (opts.vendor !== undefined) argv.push('-V', opts.vendor);
  for (const x of opts.options ?? []) argv.push('-x', x);
  const run = await lab.run(ns, argv, { timeoutMs: tries * 1_000 + 8_000 });
  const records = readRecords(out);
  const lease = records.filter((r) => r.event === 'bound' || r.event === 'renew').pop();
  return { run, records, lease };
}

const DHCLIENT_VARS = [
  'new_ip_address',
  'new_subnet_mask',
  'new_routers',
  'new_domain_name_servers',
  'new_domain_name',
  'new_host_name',
  'new_dhcp_lease_time',
  'new_dhcp_server_identifier',
] as const;

export interface Dhclient {
  leaseFile: string;
  /** Runs dhclient until its hook reports a bound lease (or `timeoutMs`), then stops it. */
  once(timeoutMs?: number): Promise<ClientRun>;
}

/**
 * ISC dhclient on `dev` in `ns`, with an absolute, existing lease file (kept between `once()`
 * calls, so a second run reboots into the same lease), its own config and a `-sf` hook that
 * writes the lease to a file and touches nothing else (no resolv.conf, no address).
 */
export function dhclient(lab: Lab, dir: string, ns: string, dev: string): Dhclient {
  const id = `dhclient-${runs++}`;
  const leaseFile = join(dir, `${id}.leases`);
  writeFileSync(leaseFile, '');
  const conf = join(dir, `${id}.conf`);
  writeFileSync(
    conf,
    'request subnet-mask, broadcast-address, routers, domain-name-servers, domain-name, host-name, dhcp-lease-time, dhcp-server-identifier;\n',
  );
  let n = 0;
  return {
    leaseFile,
    async once(timeoutMs = 15_000) {
      const k = n++;
      const out = join(dir, `${id}-${k}.env`);
      const script = hookScript(dir, `${id}-${k}`, out, 'reason=$reason', DHCLIENT_VARS);
      const pidFile = join(dir, `${id}.pid`);
      const since = Date.now();
      // -d: stay in the foreground (a child of ours, stopped below); -1: try once.
      const bg = lab.start(ns, ['dhclient', '-4', '-1', '-d', '-v', '-sf', script, '-lf', leaseFile, '-pf', pidFile, '-cf', conf, dev]);
      const bound = /^(BOUND|REBOOT|RENEW|REBIND)$/;
      let boundIp: string | undefined;
      while (Date.now() - since < timeoutMs) {
        boundIp = readRecords(out).find((r) => bound.test(r.reason ?? ''))?.new_ip_address;
        if (boundIp !== undefined) break;
        if (bg.child.exitCode !== null || bg.child.signalCode !== null) break;
        await sleep(50);
      }
      // dhclient writes the lease file after its hook ran: stopping it at once may leave the
      // file without the lease a later run is to reboot into. Wait for it, bounded.
      for (let i = 0; boundIp && i < 40 && !readFileSync(leaseFile, 'utf8').includes(`fixed-address ${boundIp};`); i++) await sleep(50);
      const exit = await bg.stop();
      const records = readRecords(out);
      rmSync(pidFile, { force: true });
      return {
        run: { code: exit.code, signal: exit.signal, stdout: bg.output(), stderr: '', ms: Date.now() - since },
        records,
        lease: records.filter((r) => bound.test(r.reason ?? '')).pop(),
      };
    },
  };
}

const DHCPCD_VARS = [
  'interface',
  'new_ip_address',
  'new_subnet_cidr',
  'new_routers',
  'new_domain_name_servers',
  'new_domain_name',
  'new_dhcp_lease_time',
  'new_dhcp_server_identifier',
] as const;

/**
 * dhcpcd 9, for real (its `-T` test mode crashes in 9.4.1): IPv4 only, one shot, in the
 * foreground, no ARP probe and no IPv4LL (both only cost time here), our own config and a `-c`
 * script that writes the lease to a file instead of running the system hooks. It configures
 * the address and routes in `ns` itself. Its lease file lands in /var/lib/dhcpcd/<dev>.lease
 * (compiled in): the caller names `dev` uniquely and this removes the file at teardown.
 */
export async function dhcpcd(t: Teardown, lab: Lab, dir: string, ns: string, dev: string, timeoutSeconds = 10): Promise<ClientRun> {
  const id = `dhcpcd-${runs++}`;
  const out = join(dir, `${id}.env`);
  const script = hookScript(dir, id, out, 'reason=$reason', DHCPCD_VARS);
  const conf = join(dir, `${id}.conf`);
  writeFileSync(conf, ['option subnet_mask, routers, domain_name_servers, domain_name, host_name', 'noarp', 'noipv4ll', ''].join('\n'));
  const dbFile = `/var/lib/dhcpcd/${dev}.lease`;
  t.teardown(() => rmSync(dbFile, { force: true }));
  const run = await lab.run(ns, ['dhcpcd', '-4', '-1', '-B', '-f', conf, '-c', script, '-t', String(timeoutSeconds), dev], {
    timeoutMs: (timeoutSeconds + 5) * 1_000,
  });
  const records = readRecords(out);
  return { run, records, lease: records.filter((r) => /^(BOUND|REBOOT|RENEW|REBIND)$/.test(r.reason ?? '')).pop() };
}

// ---------------------------------------------------------------------------------------------
// A raw UDP peer inside a namespace, driven from the test over stdin/stdout.

/** Runs in the namespace: binds, sends what stdin asks, prints every datagram it receives. */
const UDP_PEER_JS = `
const dgram = require('node:dgram');
const cfg = JSON.parse(process.argv[1]);
const out = (o) => process.stdout.write(JSON.stringify(o) + '\\n');
const s = dgram.createSocket('udp4');
s.on('error', (e) => { out({ error: e.message }); process.exit(2); });
s.on('message', (m, r) => out({ from: r.address, port: r.port, hex: m.toString('hex') }));
s.bind(cfg.port, cfg.address, () => { s.setBroadcast(true); out({ ready: s.address().port }); });
let buf = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (d) => {
  buf += d;
  let i;
  while ((i = buf.indexOf('\\n')) >= 0) {
    const c = JSON.parse(buf.slice(0, i));
    buf = buf.slice(i + 1);
    s.send(Buffer.from(c.hex, 'hex'), c.port, c.address, (e) => out(e ? { error: e.message } : { sent: c.n }));
  }
});
process.stdin.on('end', () => { s.close(); process.exit(0); });
setTimeout(() => process.exit(3), cfg.lifetimeMs).unref();
`;

export interface Datagram {
  from: string;
  port: number;
  data: Buffer;
  /** Milliseconds since the peer started. */
  at: number;
}

export interface UdpPeer {
  /** Every datagram received so far. */
  received: Datagram[];
  send(data: Buffer, address: string, port: number): Promise<void>;
  /** The first datagram (received from `since` on) that `match` accepts; rejects after `timeoutMs`. */
  next(match: (d: Datagram) => boolean, timeoutMs: number, since?: number): Promise<Datagram>;
  /** Collects for `ms` and returns what came in that time. */
  collect(ms: number): Promise<Datagram[]>;
  close(): Promise<void>;
}

/** A UDP socket bound to `address:port` in `ns` (a plain dgram socket in a child node). */
export async function udpPeer(lab: Lab, ns: string, address: string, port: number, lifetimeMs = 60_000): Promise<UdpPeer> {
  const bg = lab.start(ns, [process.execPath, '-e', UDP_PEER_JS, JSON.stringify({ address, port, lifetimeMs })]);
  const started = Date.now();
  const received: Datagram[] = [];
  const waiters = new Set<() => void>();
  const sent = new Map<number, (err?: Error) => void>();
  let ready: (() => void) | undefined;
  let failed: ((e: Error) => void) | undefined;
  const readyP = new Promise<void>((res, rej) => {
    ready = res;
    failed = rej;
  });
  const stdout = bg.child.stdout;
  if (!stdout) throw new Error('udp peer has no stdout');
  stdout.removeAllListeners('data'); // read lines here instead of the background buffer
  const rl = createInterface({ input: stdout });
  rl.on('line', (line) => {
    let msg: { ready?: number; from?: string; port?: number; hex?: string; sent?: number; error?: string };
    try {
      msg = JSON.parse(line) as typeof msg;
    } catch {
      return;
    }
    if (msg.ready !== undefined) ready?.();
    else if (msg.error !== undefined) {
      failed?.(new Error(`udp peer in ${ns} on ${address}:${port}: ${msg.error}`));
      for (const cb of sent.values()) cb(new Error(msg.error));
      sent.clear();
    } else if (msg.sent !== undefined) {
      sent.get(msg.sent)?.();
      sent.delete(msg.sent);
    } else if (msg.hex !== undefined && msg.from !== undefined && msg.port !== undefined) {
      received.push({ from: msg.from, port: msg.port, data: Buffer.from(msg.hex, 'hex'), at: Date.now() - started });
      for (const w of [...waiters]) w();
    }
  });
  void bg.exited.then((e) => failed?.(new Error(`udp peer in ${ns} exited (${e.code ?? e.signal}) before it was ready: ${bg.output()}`)));
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([readyP, new Promise<never>((_, rej) => (timer = setTimeout(() => rej(new Error(`udp peer in ${ns} not ready within 5 s`)), 5_000)))]);
  clearTimeout(timer);
  let n = 0;
  return {
    received,
    send(data, to, toPort) {
      const id = n++;
      return new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`udp peer in ${ns}: send to ${to}:${toPort} not confirmed within 3 s`)), 3_000);
        sent.set(id, (err) => {
          clearTimeout(t);
          if (err) reject(err);
          else resolve();
        });
        bg.child.stdin?.write(`${JSON.stringify({ n: id, hex: data.toString('hex'), address: to, port: toPort })}\n`);
      });
    },
    next(match, timeoutMs, since = 0) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const d = received.slice(since).find(match);
          if (d) {
            clearTimeout(timer);
            waiters.delete(check);
            resolve(d);
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(
            new Error(
              `udp peer in ${ns}: no matching datagram within ${timeoutMs} ms; got ${received.length}: ${received.map((d) => `${d.from}:${d.port} ${d.data.length} B`).join(', ')}`,
            ),
          );
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    async collect(ms) {
      const from = received.length;
      await sleep(ms);
      return received.slice(from);
    },
    async close() {
      bg.child.stdin?.end();
      await bg.stop(2_000);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// A DHCP reply parser of its own (not the codec under test).

export interface ParsedDhcp {
  op: number;
  xid: number;
  flags: number;
  ciaddr: string;
  yiaddr: string;
  siaddr: string;
  giaddr: string;
  mac: string;
  sname: string;
  file: string;
  /** Options of the options field, in wire order, without PAD and END. */
  options: { code: number; data: Buffer }[];
  /** The value of the first instance of `code`. */
  opt(code: number): Buffer | undefined;
  /** Option 53. */
  type: number | undefined;
}

const ipAt = (b: Buffer, o: number): string => [...b.subarray(o, o + 4)].join('.');
const cString = (b: Buffer): string => {
  const nul = b.indexOf(0);
  return b.subarray(0, nul === -1 ? b.length : nul).toString('latin1');
};

/** Parses a BOOTP/DHCP message; throws on anything malformed or on option overload. */
export function parseDhcp(b: Buffer): ParsedDhcp {
  if (b.length < 240) throw new Error(`DHCP message of ${b.length} bytes`);
  if (b.readUInt32BE(236) !== 0x63825363) throw new Error('no DHCP magic cookie');
  const options: { code: number; data: Buffer }[] = [];
  let i = 240;
  let ended = false;
  while (i < b.length) {
    const code = b[i] as number;
    if (code === 0) {
      i++;
      continue;
    }
    if (code === 255) {
      ended = true;
      break;
    }
    const len = b[i + 1];
    if (len === undefined || i + 2 + len > b.length) throw new Error(`option ${code} runs past the end`);
    options.push({ code, data: b.subarray(i + 2, i + 2 + len) });
    i += 2 + len;
  }
  if (!ended) throw new Error('options not ended by END');
  if (options.some((o) => o.code === 52)) throw new Error('option overload: not expected in these tests');
  const hlen = b[2] as number;
  const opt = (code: number) => options.find((o) => o.code === code)?.data;
  const mt = opt(53);
  return {
    op: b[0] as number,
    xid: b.readUInt32BE(4),
    flags: b.readUInt16BE(10),
    ciaddr: ipAt(b, 12),
    yiaddr: ipAt(b, 16),
    siaddr: ipAt(b, 20),
    giaddr: ipAt(b, 24),
    mac: [...b.subarray(28, 28 + Math.min(hlen, 16))].map((x) => x.toString(16).padStart(2, '0')).join(':'),
    sname: cString(b.subarray(44, 108)),
    file: cString(b.subarray(108, 236)),
    options,
    opt,
    type: mt?.length === 1 ? mt[0] : undefined,
  };
}

export const ipText = (b: Buffer | undefined): string | undefined => (b?.length === 4 ? [...b].join('.') : undefined);

/** IPv4 text to a number, for range checks. */
export function ipNum(ip: string): number {
  const p = ip.split('.').map(Number);
  if (p.length !== 4 || p.some((x) => !Number.isInteger(x) || x < 0 || x > 255)) throw new Error(`not an IPv4 address: ${ip}`);
  return (((p[0] as number) << 24) >>> 0) + ((p[1] as number) << 16) + ((p[2] as number) << 8) + (p[3] as number);
}

export const inRange = (ip: string | undefined, first: string, last: string): boolean =>
  ip !== undefined && /^\d+\.\d+\.\d+\.\d+$/.test(ip) && ipNum(ip) >= ipNum(first) && ipNum(ip) <= ipNum(last);

/** A fresh temp dir for scripts and lease files, removed at teardown. */
export const scratchDir = (t: Teardown): string => tempDir(t, 'edgeboot-dhcp-sys-');

/**
 * A node script that sends every length-prefixed datagram of a file to host:67 from port 68,
 * `perMs` datagrams a millisecond at most, for at most `seconds`, then prints `sent N`. Written
 * into `dir`; run it in a client namespace as `node <script> <file> <host> <seconds> <perMs>`.
 */
export function writeDhcpSender(dir: string): string {
  const script = join(dir, 'sender.cjs');
  writeFileSync(script, DHCP_SENDER);
  return script;
}

const DHCP_SENDER = `
const dgram = require('node:dgram');
const fs = require('node:fs');
const [file, host, seconds, perMs] = process.argv.slice(2);
const data = fs.readFileSync(file);
const s = dgram.createSocket('udp4');
const deadline = Date.now() + Number(seconds) * 1000;
let at = 0, sent = 0;
s.bind(68, () => {
  const burst = () => {
    for (let k = 0; k < Number(perMs) && at < data.length; k++) {
      const len = data.readUInt16BE(at);
      s.send(data.subarray(at + 2, at + 2 + len), 67, host);
      at += 2 + len;
      sent++;
    }
    if (at < data.length && Date.now() < deadline) setTimeout(burst, 1);
    else setTimeout(() => { console.log('sent ' + sent); s.close(); }, 200);
  };
  burst();
});
`;
