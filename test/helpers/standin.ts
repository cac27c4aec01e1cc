/**
 * The precache lab: QEMU guests PXE-boot from edgeboot into the CoreOS-live stand-in
 * (test/vm/live-standin: Debian's kernel and an initramfs that applies edgeboot's real
 * Ignition and runs its enabled unit, the precache job, with the real sgdisk, mkfs.xfs and
 * curl) and write a precache bundle onto a raw disk image, which the test reads back on the
 * host, read-only.
 *
 *   switch namespace: br0 ─┬─ server  eth0 10.77.0.1/24  edgeboot (full DHCP, TFTP :69, HTTP :8080)
 *                          └─ tapN                       one QEMU guest each, with its disk image
 *
 * The network is boot-lab.ts's (`provisioningNetwork`); edgeboot runs from a prebuilt data dir and cache dir (prebuilt-bundle.ts),
 * since no registry is reachable from the namespaces. Everything is removed at teardown, also
 * when a test fails: namespaces, VMs, mounts and loop devices.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Machine } from '../../src/machines/model.js';
import { HTTP_PORT, provisioningNetwork, SUBNET } from './boot-lab.js';
import { api, machineEvents, sleep, startDhcpServer, type ApiResult, type DhcpServer, type MachineEvent } from './dhcp-system.js';
import { createLab, requireTools, type Lab, type Teardown } from './netns.js';
import { tempDir } from './process.js';
import { consoleTail, requireVmFiles, startVm, VM_DIR, VM_TOOLS, type Vm } from './vm.js';

const run = promisify(execFile);

export const STANDIN_PROFILE = 'standin-live';

/** The stand-in's build (build.sh and the files it packs), beside the other VM files. */
export const STANDIN_DIR = join(VM_DIR, 'live-standin');

/** What building the stand-in and reading a disk back need, beside the VM tools. */
export const STANDIN_TOOLS = {
  ...VM_TOOLS,
  sgdisk: [['--version'], 'gdisk'],
  'mkfs.xfs': [['-V'], 'xfsprogs'],
  jq: [['--version'], 'jq'],
  losetup: [['--version'], 'util-linux'],
  skopeo: [['--version'], 'skopeo'],
  tar: [['--version'], 'tar'],
} as const satisfies Record<string, readonly [string[], string]>;

export interface StandinImages {
  kernel: string;
  initramfs: string;
  /** A 1 MiB random file standing in for the live rootfs (the stand-in only checksums it). */
  rootfs: string;
}

/** Builds the stand-in into `dir` with its build.sh (a few seconds), plus a rootfs. */
export async function buildStandin(dir: string): Promise<StandinImages> {
  mkdirSync(dir, { recursive: true });
  await run(join(STANDIN_DIR, 'build.sh'), [dir], { timeout: 120_000 });
  const rootfs = join(dir, 'rootfs.img');
  writeFileSync(rootfs, randomBytes(1 << 20));
  return { kernel: join(dir, 'vmlinuz'), initramfs: join(dir, 'initramfs.img'), rootfs };
}

/** The live profile over the stand-in, as a user would write it for RHCOS live. */
export function writeStandinProfile(dir: string, images: StandinImages): void {
  writeFileSync(
    join(dir, `${STANDIN_PROFILE}.yaml`),
    [
      `name: ${STANDIN_PROFILE}`,
      'description: the CoreOS-live stand-in',
      'artifacts:',
      `  kernel: { url: "file://${images.kernel}" }`,
      `  initramfs: { url: "file://${images.initramfs}" }`,
      `  rootfs: { url: "file://${images.rootfs}" }`,
      'boot:',
      '  kernel: kernel',
      '  initrds: [initramfs]',
      '  args: >-',
      '    coreos.live.rootfs_url={{ artifacts.rootfs }} ignition.firstboot ignition.platform.id=metal',
      // no_timer_check: a guest emulated without KVM on a busy host can miss the kernel's IO-APIC timer check and panic.
      '    {{ kargs.ignition }} {{ kargs.staticIp }} console=ttyS0 no_timer_check',
      '',
    ].join('\n'),
  );
}

/** A machine as GET /api/v1/machines/{mac} returns it, as far as these tests read it. */
export type MachineView = Pick<Machine, 'mac' | 'state' | 'inventory' | 'precacheProgress'>;

export interface PrecacheLabOptions {
  /** A data dir and cache dir holding prebuilt bundles (prebuilt-bundle.ts). */
  dataDir: string;
  cacheDir: string;
  /** The config's `precache` section. */
  precache: Record<string, unknown>;
  /** More `cache` keys (`cache.dir` is `cacheDir`), e.g. `clientRate`. */
  cache?: Record<string, unknown>;
  /** `debug` adds one `request` line per HTTP request to the log. */
  logLevel?: 'info' | 'debug';
  /** More config sections, e.g. `bmc`. */
  config?: Record<string, unknown>;
  /** More profiles beside the stand-in's: name → YAML. */
  profiles?: Record<string, string>;
}

export interface PrecacheLab {
  lab: Lab;
  /** The namespace with the bridge `br0`, where the guests' taps go. */
  switchNs: string;
  /** edgeboot's namespace (10.77.0.1), where helpers it must reach on loopback run. */
  serverNs: string;
  dir: string;
  server: DhcpServer;
  images: StandinImages;
  /** A guest on the bridge with `disk` as /dev/vda; its console is in `explain()`. */
  vm(name: string, mac: string, disk: string, timeoutMs: number): Vm;
  api(method: 'GET' | 'PUT' | 'POST' | 'DELETE', path: string, body?: unknown): Promise<ApiResult>;
  machine(mac: string): Promise<MachineView>;
  events(mac: string): Promise<MachineEvent[]>;
  /** Polls the machine and its timeline (every 500 ms, bounded) until `done` returns a value. */
  waitFor<T>(mac: string, what: string, timeoutMs: number, done: (m: MachineView, events: MachineEvent[]) => T | undefined): Promise<T>;
  /** The VMs' consoles and edgeboot's log tail, for a failure message. */
  explain(): string;
  /** Prints `explain()` when `t` has failed by the time it ends. */
  explainOnFailure(t: Teardown & { passing(): boolean }): void;
}

export async function createPrecacheLab(t: Teardown, tag: string, opts: PrecacheLabOptions): Promise<PrecacheLab> {
  requireTools(STANDIN_TOOLS);
  requireVmFiles();
  const dir = tempDir(t, 'edgeboot-precache-');
  const images = await buildStandin(join(dir, 'standin'));
  const profilesDir = join(dir, 'profiles');
  mkdirSync(profilesDir);
  writeStandinProfile(profilesDir, images);
  for (const [name, yaml] of Object.entries(opts.profiles ?? {})) writeFileSync(join(profilesDir, `${name}.yaml`), yaml);

  const lab = createLab(t, tag);
  const { switchNs, serverNs, radvd } = provisioningNetwork(lab, dir);
  await radvd.waitFor(/sending RA|version/i, 5_000);

  const server = await startDhcpServer(t, serverNs, {
    mode: 'full',
    dataDir: opts.dataDir,
    logLevel: opts.logLevel ?? 'info',
    subnets: [{ cidr: SUBNET.cidr, pool: ['10.77.0.160', '10.77.0.199'], router: SUBNET.server, dns: [SUBNET.server], domain: 'e2e.test' }],
    listen: `0.0.0.0:${HTTP_PORT}`,
    env: { EDGEBOOT_TFTP_LISTEN: '0.0.0.0:69' },
    config: {
      profiles: { dirs: [profilesDir] },
      boot: { unknownMachines: 'exit', recheckSeconds: 5 },
      cache: { dir: opts.cacheDir, ...opts.cache },
      precache: opts.precache,
      ...opts.config,
    },
  });

  const vms: { name: string; vm: Vm }[] = [];
  let taps = 0;
  const machine = async (mac: string): Promise<MachineView> => {
    const r = await api(lab, server, 'GET', `/api/v1/machines/${mac}`);
    if (r.status !== 200) throw new Error(`GET machine ${mac}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body as MachineView;
  };
  const pl: PrecacheLab = {
    lab,
    switchNs,
    serverNs,
    dir,
    server,
    images,
    vm(name, mac, disk, timeoutMs) {
      const vm = startVm(lab, switchNs, { firmware: 'bios', mac, tap: `tap${taps++}`, bridge: 'br0', dir: join(dir, 'vms'), timeoutMs, memoryMiB: 1024, disk });
      vms.push({ name, vm });
      t.teardown(() => vm.stop());
      return vm;
    },
    api: (method, path, body) => api(lab, server, method, path, body),
    machine,
    events: (mac) => machineEvents(lab, server, mac),
    async waitFor(mac, what, timeoutMs, done) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const m = await machine(mac);
        const events = await machineEvents(lab, server, mac);
        const v = done(m, events);
        if (v !== undefined) return v;
        if (Date.now() > deadline) {
          throw new Error(
            `${mac}: ${what}: not within ${timeoutMs} ms; the machine is ${m.state}, step ${m.precacheProgress?.step ?? '-'}; timeline: ${events.map((e) => e.type).join(', ')}`,
          );
        }
        await sleep(500);
      }
    },
    explain() {
      const parts = vms.map(({ name, vm }) => `--- console of ${name} (${vm.consoleFile}):\n${consoleTail(vm.console(), 80)}`);
      const log = server.logLines
        .filter((l) => l.msg !== 'request' || l.status !== 200)
        .slice(-40)
        .map((l) => JSON.stringify(l));
      return [
        ...parts,
        `--- edgeboot log (last ${log.length} lines, 200 request lines left out):\n${log.join('\n')}`,
        `--- edgeboot stderr:\n${server.stderr().slice(-2000)}`,
      ].join('\n');
    },
    explainOnFailure(tt) {
      tt.teardown(() => {
        if (!tt.passing()) console.error(pl.explain());
      });
    },
  };
  return pl;
}

/** One partition as `sgdisk -i N` prints it. */
export interface PartitionInfo {
  firstSector: number;
  lastSector: number;
  sizeSectors: number;
  name: string;
}

/** The GPT of a disk image as `sgdisk -p` prints it. */
export interface DiskTable {
  text: string;
  totalSectors: number;
  lastUsable: number;
  /** The partition numbers listed, in table order. */
  numbers: number[];
  /** End sector of each listed partition. */
  ends: number[];
}

export async function readTable(disk: string): Promise<DiskTable> {
  const { stdout } = await run('sgdisk', ['-p', disk], { timeout: 10_000 });
  const num = (re: RegExp): number => Number(re.exec(stdout)?.[1] ?? NaN);
  const rows = [...stdout.matchAll(/^\s+(\d+)\s+(\d+)\s+(\d+)\s/gm)];
  return {
    text: stdout,
    totalSectors: num(/: (\d+) sectors,/),
    lastUsable: num(/last usable sector is (\d+)/),
    numbers: rows.map((r) => Number(r[1])),
    ends: rows.map((r) => Number(r[3])),
  };
}

export async function readPartition(disk: string, n: number): Promise<PartitionInfo> {
  const { stdout } = await run('sgdisk', ['-i', String(n), disk], { timeout: 10_000 });
  const num = (re: RegExp): number => Number(re.exec(stdout)?.[1] ?? NaN);
  return {
    firstSector: num(/^First sector: (\d+)/m),
    lastSector: num(/^Last sector: (\d+)/m),
    sizeSectors: num(/^Partition size: (\d+) sectors/m),
    name: /^Partition name: '(.*)'$/m.exec(stdout)?.[1] ?? '',
  };
}

/**
 * Mounts partition `p` of `disk` read-only on the host (a read-only loop device over its byte
 * range, XFS with norecovery, so not even the log is replayed) and returns the mount point.
 * Unmounted and detached at teardown, or earlier by the returned `release`.
 */
export async function mountReadOnly(t: Teardown, disk: string, p: PartitionInfo): Promise<{ dir: string; device: string; release: () => Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'edgeboot-datapart-'));
  const { stdout } = await run('losetup', ['-f', '--show', '-r', '-o', String(p.firstSector * 512), '--sizelimit', String(p.sizeSectors * 512), disk], {
    timeout: 10_000,
  });
  const device = stdout.trim();
  let mounted = false;
  let released: Promise<void> | undefined;
  const release = (): Promise<void> =>
    (released ??= (async () => {
      if (mounted) await run('umount', [dir], { timeout: 20_000 }).catch(() => run('umount', ['-l', dir], { timeout: 20_000 }));
      await run('losetup', ['-d', device], { timeout: 10_000 }).catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    })());
  t.teardown(release);
  await run('mount', ['-t', 'xfs', '-o', 'ro,norecovery', device, dir], { timeout: 20_000 });
  mounted = true;
  return { dir, device, release };
}
