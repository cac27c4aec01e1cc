/**
 * The provisioning network of the end-to-end VM tests, built from network namespaces:
 *
 *   switch namespace: br0 ─┬─ server   eth0 10.77.0.1/24   edgeboot (DHCP, TFTP :69, HTTP :8080)
 *                          │                               and the assisted hub's stand-in (:8090)
 *                          ├─ dnsmasq  eth0 10.77.0.2/24   proxy mode only: the site's DHCP server,
 *                          │                               addresses only (10.77.0.100-150)
 *                          └─ tapN                         one QEMU guest each (run in the switch)
 *
 * edgeboot runs as `node dist/main.js serve` with a config file (DHCP mode, subnet, profile
 * folder, unknown-machine policy, and when given a cache dir and precache settings), on a data
 * dir of its own or the caller's; its admin API is reached with curl inside the server
 * namespace. The profile folder holds the test's own profiles over Debian's kernel and the
 * busybox initramfs of test/vm/. Everything is removed at teardown, also when a test fails.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  api,
  dhcpTools,
  machineEvents,
  sleep,
  startDhcpServer,
  type ApiResult,
  type DhcpServer,
  type DhcpServerOptions,
  type MachineEvent,
} from './dhcp-system.js';
import { createLab, requireTools, type Background, type Lab, type Teardown } from './netns.js';
import { tempDir } from './process.js';
import { buildBootImages, consoleTail, requireVmFiles, sparseDisk, startVm, VM_DIR, VM_TOOLS, type BootImages, type Firmware, type Vm } from './vm.js';
import type { PrecacheConfig } from '../../src/config/config.js';

export const SUBNET = { cidr: '10.77.0.0/24', server: '10.77.0.1', dnsmasq: '10.77.0.2', router: '10.77.0.1' } as const;
export const HTTP_PORT = 8080;
export const HUB_PORT = 8090;
export const SERVER_URL = `http://${SUBNET.server}:${HTTP_PORT}`;

export interface BootLabOptions {
  mode: 'full' | 'proxy';
  /** `boot.unknownMachines`; default exit. */
  unknownMachines?: 'exit' | 'wait';
  /** `boot.recheckSeconds`; default 5 (the schema's minimum). */
  recheckSeconds?: number;
  /**
   * edgeboot's data dir (database, admin token); default a fresh one. Give the dir an earlier
   * edgeboot used, e.g. to build a bundle (test/helpers/prebuilt-bundle.ts), to start on its data.
   */
  dataDir?: string;
  /** `cache.dir` (where a prebuilt bundle lives); default edgeboot's own. */
  cacheDir?: string;
  /** The `precache` section of the config. */
  precache?: Partial<PrecacheConfig>;
  /** More environment for edgeboot, e.g. `EDGEBOOT_AUTH_VIEWER_TOKENS` (it beats the config file). */
  env?: Record<string, string>;
}

export interface GuestOptions {
  /** A raw disk image for /dev/vda (see `BootLab.disk`). */
  disk?: string;
  memoryMiB?: number;
}

export interface Hub {
  bg: Background;
  /** The InfraEnv's ipxeScript URL, as the hub hands it to automation (api_key included). */
  scriptUrl: string;
  apiKey: string;
  /** Every request the hub answered so far. */
  requests(): HubRequest[];
  stop(): Promise<void>;
}

export interface HubOptions {
  /** When the installer reports done, the hub posts install-done to edgeboot. */
  notify: boolean;
  /** More kernel arguments for the installer, e.g. eb.bootsector=1. */
  kargs?: string[];
}

export interface HubRequest {
  method: string;
  path: string;
  query?: Record<string, string>;
  status: number;
  bytes?: number;
}

export interface BootLab {
  lab: Lab;
  dir: string;
  switchNs: string;
  serverNs: string;
  server: DhcpServer;
  images: BootImages;
  /**
   * Starts edgeboot again exactly as the lab started `server` (same config file, data dir,
   * namespace and ports), as a service manager restarting it would (test/helpers/supervisor.ts).
   * The admin API (`api`, `events`) reaches whichever edgeboot serves the port.
   */
  startServerAgain(): Promise<DhcpServer>;
  /** A guest on the bridge; its console is printed by `explain` when a test fails. */
  vm(name: string, firmware: Firmware, mac: string, timeoutMs: number, opts?: GuestOptions): Vm;
  /** A sparse, all-zero raw disk image of `bytes` in the lab's dir, for `vm(…, { disk })`. */
  disk(name: string, bytes: number): string;
  api(method: 'GET' | 'PUT' | 'DELETE', path: string, body?: unknown): Promise<ApiResult>;
  events(mac: string): Promise<MachineEvent[]>;
  /** Polls the timeline (bounded) until `match` accepts an event; returns them all. */
  waitEvent(mac: string, match: (e: MachineEvent) => boolean, timeoutMs: number, what: string): Promise<MachineEvent[]>;
  /**
   * The assisted hub's stand-in (test/vm/assisted-hub.mjs) in the server namespace. `notify`:
   * when the installer reports done, the hub posts install-done to edgeboot, as hub-side
   * automation would; else edgeboot learns nothing and the hub's 404 sends the machine to disk.
   */
  startHub(opts: HubOptions): Promise<Hub>;
  /** The VMs' consoles and edgeboot's log tail, for a failure message. */
  explain(): string;
  /** Prints `explain()` when `t` has failed by the time it ends (an assertion or a throw). */
  explainOnFailure(t: Teardown & { passing(): boolean }): void;
}

/** The test profiles: the busybox initramfs playing the live environment or a plain report. */
function writeProfiles(dir: string, images: BootImages): void {
  const artifacts = `artifacts:\n  kernel: { url: "file://${images.kernel}" }\n  initramfs: { url: "file://${images.initramfs}" }\n`;
  const boot = (role: string, after: string) =>
    `boot:\n  kernel: kernel\n  initrds: [initramfs]\n  args: >-\n    console=ttyS0 quiet eb.role=${role} eb.events={{ machine.eventsUrl }} eb.after=${after}\n`;
  writeFileSync(
    join(dir, 'e2e-live.yaml'),
    `name: e2e-live\ndescription: the busybox stand-in of the precache live environment (test/vm/init)\n${artifacts}${boot('live', 'reboot')}`,
  );
  writeFileSync(
    join(dir, 'e2e-report.yaml'),
    `name: e2e-report\ndescription: boots the busybox initramfs, which reports and powers off\n${artifacts}${boot('report', 'poweroff')}`,
  );
}

/**
 * The bridge the guests and edgeboot share: a switch namespace with `br0`, and the server
 * namespace at 10.77.0.1/24 on it, where the site's router advertises IPv6 (radvd). Without any
 * router advertisement iPXE waits about 13 s for IPv6 on every boot (research/real-clients.md).
 */
export function provisioningNetwork(lab: Lab, dir: string): { switchNs: string; serverNs: string; radvd: Background } {
  const switchNs = lab.netns('switch');
  lab.bridge(switchNs, 'br0');
  const serverNs = lab.netns('server');
  lab.veth({ ns: serverNs, dev: 'eth0' }, { ns: switchNs, dev: 'v-server' });
  lab.attach(switchNs, 'v-server', 'br0');
  lab.ipIn(serverNs, 'addr', 'add', `${SUBNET.server}/24`, 'dev', 'eth0');
  const radvdConf = join(dir, 'radvd.conf');
  writeFileSync(
    radvdConf,
    'interface eth0 {\n  AdvSendAdvert on;\n  MinRtrAdvInterval 3;\n  MaxRtrAdvInterval 10;\n  AdvDefaultLifetime 0;\n  prefix fd77::/64 { AdvOnLink on; AdvAutonomous on; };\n};\n',
  );
  const radvd = lab.start(serverNs, [
    'radvd',
    '--nodaemon',
    '--config',
    radvdConf,
    '--pidfile',
    join(dir, 'radvd.pid'),
    '--logmethod',
    'stderr',
    '--debug',
    '1',
  ]);
  return { switchNs, serverNs, radvd };
}

export async function createBootLab(t: Teardown & { comment(...a: unknown[]): void }, tag: string, opts: BootLabOptions): Promise<BootLab> {
  requireTools({ ...VM_TOOLS, ...(opts.mode === 'proxy' ? dhcpTools('dnsmasq') : {}) });
  requireVmFiles();
  const dir = tempDir(t, 'edgeboot-vm-');
  const lab = createLab(t, tag);
  const images = buildBootImages(join(dir, 'images'));
  const profilesDir = join(dir, 'profiles');
  mkdirSync(profilesDir);
  writeProfiles(profilesDir, images);

  const { switchNs, serverNs, radvd } = provisioningNetwork(lab, dir);

  if (opts.mode === 'proxy') {
    const dnsNs = lab.netns('dnsmasq');
    lab.veth({ ns: dnsNs, dev: 'eth0' }, { ns: switchNs, dev: 'v-dnsmasq' });
    lab.attach(switchNs, 'v-dnsmasq', 'br0');
    lab.ipIn(dnsNs, 'addr', 'add', `${SUBNET.dnsmasq}/24`, 'dev', 'eth0');
    const dnsmasq = lab.start(dnsNs, [
      'dnsmasq',
      '--no-daemon',
      '--conf-file=/dev/null',
      '--port=0',
      '--no-resolv',
      '--no-hosts',
      '--no-ping',
      '--interface=eth0',
      '--bind-interfaces',
      '--dhcp-range=10.77.0.100,10.77.0.150,255.255.255.0,1h',
      `--dhcp-option=3,${SUBNET.router}`,
      `--dhcp-leasefile=${join(dir, 'dnsmasq.leases')}`,
      `--pid-file=${join(dir, 'dnsmasq.pid')}`,
      '--user=root',
      '--log-facility=-',
      '--log-dhcp',
    ]);
    await dnsmasq.waitFor(/DHCP, IP range 10\.77\.0\.100 -- 10\.77\.0\.150/, 5_000);
  }

  await radvd.waitFor(/sending RA|version/i, 5_000);

  const serverOptions: DhcpServerOptions = {
    mode: opts.mode,
    subnets: [{ cidr: SUBNET.cidr, pool: ['10.77.0.160', '10.77.0.199'], router: SUBNET.router, dns: [SUBNET.router], domain: 'e2e.test' }],
    listen: `0.0.0.0:${HTTP_PORT}`,
    env: { EDGEBOOT_TFTP_LISTEN: '0.0.0.0:69', ...opts.env },
    ...(opts.dataDir !== undefined && { dataDir: opts.dataDir }),
    config: {
      profiles: { dirs: [profilesDir] },
      boot: { unknownMachines: opts.unknownMachines ?? 'exit', recheckSeconds: opts.recheckSeconds ?? 5 },
      ...(opts.cacheDir !== undefined && { cache: { dir: opts.cacheDir } }),
      ...(opts.precache !== undefined && { precache: opts.precache }),
    },
  };
  const server = await startDhcpServer(t, serverNs, serverOptions);

  const vms: { name: string; vm: Vm }[] = [];
  let taps = 0;
  const events = (mac: string) => machineEvents(lab, server, mac);
  const bootLab: BootLab = {
    lab,
    dir,
    switchNs,
    serverNs,
    server,
    images,
    startServerAgain: () => startDhcpServer(t, serverNs, { ...serverOptions, dataDir: server.dataDir }),
    vm(name, firmware, mac, timeoutMs, guest = {}) {
      const vm = startVm(lab, switchNs, { firmware, mac, tap: `tap${taps++}`, bridge: 'br0', dir: join(dir, 'vms'), timeoutMs, ...guest });
      vms.push({ name, vm });
      t.teardown(() => vm.stop());
      return vm;
    },
    disk(name, bytes) {
      mkdirSync(join(dir, 'disks'), { recursive: true });
      return sparseDisk(join(dir, 'disks', `${name}.img`), bytes);
    },
    api: (method, path, body) => api(lab, server, method, path, body),
    events,
    async waitEvent(mac, match, timeoutMs, what) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const r = await api(lab, server, 'GET', `/api/v1/machines/${mac}/events`);
        const list = r.status === 200 ? (r.body as { events: MachineEvent[] }).events : [];
        if (list.some(match)) return list;
        if (Date.now() > deadline) {
          throw new Error(
            `no ${what} on the timeline of ${mac} within ${timeoutMs} ms; it has: ${list.map((e) => e.type).join(', ') || `nothing (${r.status})`}`,
          );
        }
        await sleep(500);
      }
    },
    startHub: (hubOpts) => startHub(lab, serverNs, server, images, hubOpts),
    explain() {
      const parts = vms.map(({ name, vm }) => `--- console of ${name} (${vm.consoleFile}):\n${consoleTail(vm.console())}`);
      const log = server.logLines.slice(-40).map((l) => JSON.stringify(l));
      return [...parts, `--- edgeboot log (last ${log.length} lines):\n${log.join('\n')}`, `--- edgeboot stderr:\n${server.stderr().slice(-2000)}`].join('\n');
    },
    explainOnFailure(tt) {
      tt.teardown(() => {
        if (!tt.passing()) console.error(bootLab.explain());
      });
    },
  };
  return bootLab;
}

/** The types of a timeline in order, with the stage or file where there is one, for messages. */
export function describeTimeline(events: MachineEvent[]): string {
  return events
    .map((e) => {
      const d = e.data ?? {};
      const detail = [d.file, d.artifact, d.stage, d.kind, d.role].find((v) => typeof v === 'string') ?? '';
      const move = e.to ? ` ${e.from ?? '(new)'}→${e.to}` : '';
      return `${e.type}${detail === '' ? '' : `(${detail})`}${move}`;
    })
    .join(', ');
}

/** One expected entry of a timeline: a name for the message and what the event looks like. */
export interface Step {
  what: string;
  match: (e: MachineEvent) => boolean;
}

/** An event of `type` whose data holds every key/value of `data` (and, given, from/to). */
export function ev(type: string, data: Record<string, unknown> = {}, move?: { from: string; to: string }): Step {
  const detail = Object.entries(data)
    .map(([k, v]) => `${k}=${String(v)}`)
    .join(' ');
  return {
    what: `${type}${detail ? ` ${detail}` : ''}${move ? ` ${move.from}→${move.to}` : ''}`,
    match: (e) => e.type === type && Object.entries(data).every(([k, v]) => e.data?.[k] === v) && (!move || (e.from === move.from && e.to === move.to)),
  };
}

/**
 * Asserts that `steps` occur in `events` in this order (other events may come between them)
 * and that the timestamps of the matched events never go backwards. Returns the index after
 * the last match, so a caller can go on from there.
 */
export function assertOrder(t: { ok(v: unknown, msg: string): void }, events: MachineEvent[], steps: Step[], from = 0): number {
  let at = from;
  let lastTime = '';
  for (const step of steps) {
    let i = at;
    while (i < events.length && !step.match(events[i] as MachineEvent)) i++;
    const found = events[i];
    t.ok(
      found,
      `then ${step.what}${found ? ` (#${found.id} at ${found.time})` : `: not found after #${events[at - 1]?.id ?? 0} in ${describeTimeline(events.slice(at))}`}`,
    );
    if (!found) return at;
    if (found.time < lastTime) t.ok(false, `${step.what} at ${found.time} is earlier than the step before it (${lastTime})`);
    lastTime = found.time;
    at = i + 1;
  }
  return at;
}

/**
 * The assisted hub's stand-in (test/vm/assisted-hub.mjs) in `serverNs`, at 10.77.0.1:8090,
 * serving `images` (the busybox initramfs in the installer role) to the machines.
 */
export async function startHub(lab: Lab, serverNs: string, server: DhcpServer, images: BootImages, { notify, kargs = [] }: HubOptions): Promise<Hub> {
  const apiKey = 'eyJhbGciOiJFUzI1NiJ9.e2e-infra-env.not-a-real-signature';
  const infraEnv = '6f1e0ab6-6c2b-4a0e-9d52-8d5d3c7a9e10';
  const cfg = {
    host: SUBNET.server,
    port: HUB_PORT,
    infraEnv,
    apiKey,
    kernel: images.kernel,
    initrd: images.initramfs,
    kargs: ['console=ttyS0', 'quiet', 'eb.role=installer', 'eb.after=reboot', ...kargs],
    // The address machines reach edgeboot at: the events URL it hands out is built from it.
    edgeboot: { url: SERVER_URL, token: server.token },
    notifyInstalled: notify,
  };
  const bg = lab.start(serverNs, [process.execPath, join(VM_DIR, 'assisted-hub.mjs'), JSON.stringify(cfg)]);
  await bg.waitFor(/"listening"/, 5_000);
  return {
    bg,
    apiKey,
    scriptUrl: `http://${SUBNET.server}:${HUB_PORT}/api/assisted-install/v2/infra-envs/${infraEnv}/downloads/files?api_key=${apiKey}&file_name=ipxe-script&ipxe_script_type=boot-order-control`,
    requests: () =>
      bg
        .output()
        .split('\n')
        .filter((l) => l.startsWith('{"method"'))
        .map((l) => JSON.parse(l) as HubRequest),
    stop: async () => {
      await bg.stop();
    },
  };
}
