/**
 * Real machines for the end-to-end tests: QEMU guests (software emulation, no KVM assumed)
 * that PXE-boot over a tap device on a bridge inside a network namespace, and what they boot —
 * Debian's kernel and a tiny busybox initramfs built here, whose `/init` brings the NIC up with
 * udhcpc, reports to edgeboot over HTTP and reboots or powers off.
 *
 * Firmware:
 * - `bios`: SeaBIOS with QEMU's own iPXE NIC ROM (Debian's ipxe-qemu). That ROM is already
 *   iPXE: it asks DHCP and is handed the HTTP entry script (research/real-clients.md).
 * - `uefi`: OVMF with no option ROM (`romfile=`), so the firmware's own PXE runs: DHCP, then
 *   TFTP for ipxe.efi, which does DHCP again and fetches the HTTP entry script.
 * SeaBIOS and iPXE print to the serial port only when `etc/sercon-port` says so; the kernel
 * prints there with `console=ttyS0`. Everything lands in the VM's console log.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Background, Lab } from './netns.js';

/** The tools the VM tests drive, with the Debian package of each (see .ci/run). */
export const VM_TOOLS = {
  'qemu-system-x86_64': [['--version'], 'qemu-system-x86'],
  cpio: [['--version'], 'cpio'],
  busybox: [['true'], 'busybox-static'],
  modprobe: [['--version'], 'kmod'],
  curl: [['--version'], 'curl'],
} as const satisfies Record<string, readonly [string[], string]>;

export const OVMF_CODE = '/usr/share/OVMF/OVMF_CODE_4M.fd';
export const OVMF_VARS = '/usr/share/OVMF/OVMF_VARS_4M.fd';
/** QEMU's iPXE ROM for virtio-net (BIOS and UEFI drivers in one image; QEMU's default). */
export const VIRTIO_ROM = '/usr/lib/ipxe/qemu/efi-virtio.rom';

/** Throws, naming the package, when a file the VMs need is missing. */
export function requireVmFiles(): void {
  const missing = [
    [OVMF_CODE, 'ovmf'],
    [OVMF_VARS, 'ovmf'],
    [VIRTIO_ROM, 'ipxe-qemu'],
    ['/usr/lib/ipxe/ipxe.efi', 'ipxe'],
    // The router advertisements of the test network (radvd's --version exits 1: no probe).
    ['/usr/sbin/radvd', 'radvd'],
  ].filter(([f]) => !existsSync(f as string));
  if (!kernelVersion()) missing.push(['/boot/vmlinuz-*', 'linux-image-amd64']);
  if (missing.length > 0) throw new Error(`missing files: ${missing.map(([f, p]) => `${f} (${p})`).join(', ')}; apt-get install them (see .ci/run)`);
}

/** The newest kernel that has both /boot/vmlinuz-<v> and /lib/modules/<v>. */
export function kernelVersion(): string | undefined {
  if (!existsSync('/lib/modules')) return undefined;
  return readdirSync('/lib/modules')
    .filter((v) => existsSync(`/boot/vmlinuz-${v}`) && existsSync(`/lib/modules/${v}/modules.dep`))
    .sort((a, b) => a.localeCompare(b, 'en', { numeric: true }))
    .pop();
}

/** The folder with the test initramfs: its /init, udhcpc hook and builder. */
export const VM_DIR = fileURLToPath(new URL('../vm/', import.meta.url));

export interface BootImages {
  kernel: string;
  initramfs: string;
  kernelVersion: string;
}

/**
 * Builds `initramfs.img` (busybox-static, the virtio NIC modules of the installed kernel and
 * test/vm/init) in `dir` with test/vm/build-initramfs.sh, beside a copy of the kernel.
 */
export function buildBootImages(dir: string): BootImages {
  const kver = execFileSync(join(VM_DIR, 'build-initramfs.sh'), [dir], { encoding: 'utf8', timeout: 60_000 }).trim();
  return { kernel: join(dir, 'vmlinuz'), initramfs: join(dir, 'initramfs.img'), kernelVersion: kver };
}

export type Firmware = 'bios' | 'uefi';

/** What a console shows when a boot went wrong for good. */
export const CONSOLE_FAILURE = /Kernel panic[^\n]*|eb-init: [^\n]*FAILED[^\n]*/;

export interface VmOptions {
  firmware: Firmware;
  mac: string;
  /** The tap device's name, made in `ns` and enslaved to `bridge`. */
  tap: string;
  bridge: string;
  /** Where the console log, the OVMF variables and the sercon file go. */
  dir: string;
  /** Hard limit; the VM is killed then. */
  timeoutMs: number;
  memoryMiB?: number;
  /** A raw disk image (sparse is fine) attached as the guest's virtio disk, /dev/vda. */
  disk?: string;
  /** `disk`: the disk has bootindex 1 and the NIC 2 (SeaBIOS tries the NIC when the disk has no boot sector); `network`: the other way round. */
  bootOrder?: 'network' | 'disk';
  /** The tap exists already (made once for many QEMU runs): neither made nor removed here. */
  tapReady?: boolean;
  /** Append to the console log of an earlier run on this tap instead of starting it empty. */
  appendConsole?: boolean;
  /** More QEMU arguments, e.g. a QMP socket. */
  extraArgs?: string[];
}

export interface Vm {
  /** The console (serial port) so far. */
  console(): string;
  consoleFile: string;
  /**
   * Resolves when `re` matches the console; rejects at once when it shows a kernel panic or an
   * `eb-init: … FAILED` line, when QEMU exits, or after `timeoutMs`.
   */
  waitConsole(re: RegExp, timeoutMs: number): Promise<RegExpMatchArray>;
  /** Kills QEMU (SIGKILL: a guest has no disk state to lose) and removes the tap. */
  stop(): Promise<void>;
  /** Resolves when QEMU exits (a power-off), with how long it ran. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }>;
  startedAt: number;
}

/**
 * A QEMU guest in `ns` whose only NIC is a tap on `bridge`, booting from the network. Killed
 * after `timeoutMs` whatever happens; the lab kills it at teardown too.
 */
export function startVm(lab: Lab, ns: string, o: VmOptions): Vm {
  mkdirSync(o.dir, { recursive: true });
  if (!o.tapReady) {
    lab.ipIn(ns, 'tuntap', 'add', 'dev', o.tap, 'mode', 'tap');
    lab.attach(ns, o.tap, o.bridge);
    lab.ipIn(ns, 'link', 'set', o.tap, 'up');
  }
  const consoleFile = join(o.dir, `${o.tap}-console.log`);
  if (!o.appendConsole || !existsSync(consoleFile)) writeFileSync(consoleFile, '');
  const argv = ['qemu-system-x86_64', '-accel', 'tcg', '-machine', 'pc', '-m', String(o.memoryMiB ?? 512), '-smp', '1'];
  argv.push('-nodefaults', '-no-user-config', '-display', 'none', '-monitor', 'none');
  // `-serial file:` truncates the file; a file chardev with append=on keeps the runs before.
  argv.push(
    ...(o.appendConsole ? ['-chardev', `file,id=console,path=${consoleFile},append=on`, '-serial', 'chardev:console'] : ['-serial', `file:${consoleFile}`]),
  );
  argv.push('-netdev', `tap,id=n0,ifname=${o.tap},script=no,downscript=no`);
  if (o.firmware === 'bios') {
    const sercon = join(o.dir, `${o.tap}-sercon`);
    writeFileSync(sercon, Buffer.from([0xf8, 0x03])); // COM1 at 0x3f8
    const nicIndex = o.bootOrder === 'disk' ? 2 : 1;
    argv.push('-device', `virtio-net-pci,netdev=n0,mac=${o.mac},bootindex=${nicIndex}`, '-fw_cfg', `name=etc/sercon-port,file=${sercon}`);
  } else {
    const vars = join(o.dir, `${o.tap}-OVMF_VARS.fd`);
    copyFileSync(OVMF_VARS, vars);
    argv.push('-drive', `if=pflash,format=raw,unit=0,readonly=on,file=${OVMF_CODE}`, '-drive', `if=pflash,format=raw,unit=1,file=${vars}`);
    argv.push('-device', `virtio-net-pci,netdev=n0,mac=${o.mac},bootindex=1,romfile=`);
  }
  if (o.disk && o.bootOrder) {
    argv.push(
      '-drive',
      `file=${o.disk},format=raw,if=none,id=disk0,cache=unsafe`,
      '-device',
      `virtio-blk-pci,drive=disk0,bootindex=${o.bootOrder === 'disk' ? 1 : 2}`,
    );
  } else if (o.disk) argv.push('-drive', `file=${o.disk},format=raw,if=virtio,cache=unsafe`);
  argv.push(...(o.extraArgs ?? []));
  const startedAt = Date.now();
  const bg: Background = lab.start(ns, argv);
  const killer = setTimeout(() => bg.child.kill('SIGKILL'), o.timeoutMs);
  const exited = bg.exited.then((e) => {
    clearTimeout(killer);
    return { ...e, ms: Date.now() - startedAt };
  });
  const read = (): string => readFileSync(consoleFile, 'latin1');
  let stopped: Promise<void> | undefined;
  return {
    consoleFile,
    startedAt,
    exited,
    console: read,
    async waitConsole(re, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      let done = false;
      void exited.then(() => (done = true));
      for (;;) {
        const text = read();
        const m = re.exec(text);
        if (m) return m;
        const broken = CONSOLE_FAILURE.exec(text);
        if (broken) throw new Error(`the VM's console shows "${broken[0]}" before ${re}`);
        // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- set when QEMU exits, between two reads
        if (done) throw new Error(`the VM exited (${bg.output().trim() || 'no QEMU output'}) before its console showed ${re}`);
        if (Date.now() > deadline) throw new Error(`the VM's console did not show ${re} within ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 200));
      }
    },
    stop() {
      stopped ??= (async () => {
        clearTimeout(killer);
        if (bg.child.exitCode === null && bg.child.signalCode === null) bg.child.kill('SIGKILL');
        await exited;
        if (o.tapReady) return;
        try {
          lab.ipIn(ns, 'link', 'del', o.tap);
        } catch {
          // the namespace is already gone
        }
      })();
      return stopped;
    },
  };
}

/** A sparse, all-zero raw disk image of `bytes` at `path`, for a guest's `disk`. */
export function sparseDisk(path: string, bytes: number): string {
  writeFileSync(path, '');
  truncateSync(path, bytes);
  return path;
}

/** The last `lines` lines of a console log, for a failure message. */
export function consoleTail(text: string, lines = 60): string {
  return text
    .replace(/\r/g, '')
    .replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '')
    .split('\n')
    .slice(-lines)
    .join('\n');
}
