/**
 * A PowerDriver for the Redfish emulator that is a real QEMU guest (BIOS, QEMU's iPXE NIC ROM) on
 * a tap of the lab's bridge, driven over QMP (test/helpers/qmp.ts).
 *
 * Every boot is one QEMU run. QEMU runs with `-no-reboot`, so any new boot — the guest's own
 * `reboot`, or a `system_reset` the BMC sends — makes it exit with a SHUTDOWN event whose reason
 * tells them apart (guest-reset, guest-shutdown, host-qmp-system-reset, host-qmp-quit). The
 * driver reports the guest's own reboots and power-offs through onGuest; the emulator then
 * consumes its one-time override and calls reset or on with the order of the next boot, and the
 * driver starts QEMU again: with `networkFirst` the NIC has bootindex 1 and the disk 2, else the
 * other way round (SeaBIOS goes on to the NIC when the disk has no boot sector). A fresh QEMU
 * per boot is what lets the boot order follow the override, as a BMC's does on real hardware.
 *
 * The tap is made once and kept across runs; the console of every run is appended to one file.
 * Each run is killed after `bootTimeoutMs` (reported as a power-off); close() quits QEMU and
 * removes the tap.
 */
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Lab } from '../netns.js';
import { Qmp } from '../qmp.js';
import { CONSOLE_FAILURE, startVm, type Vm } from '../vm.js';
import type { PowerDriver } from './emulator.js';

export interface QemuPowerOptions {
  lab: Lab;
  /** The namespace with the bridge; QEMU and its tap live there. */
  ns: string;
  bridge: string;
  tap: string;
  mac: string;
  /** A raw disk image, the guest's /dev/vda. */
  disk: string;
  /** Where the console log, QMP socket and sercon file go. */
  dir: string;
  /** Hard limit of one QEMU run (one boot); it is killed then. */
  bootTimeoutMs: number;
  memoryMiB?: number;
}

/** One QEMU run: how it booted and how it ended (the SHUTDOWN reason; `killed` without one). */
export interface QemuBoot {
  networkFirst: boolean;
  at: number;
  ended?: string;
}

type Guest = 'reboot' | 'poweroff';

export class QemuPower implements PowerDriver {
  readonly boots: QemuBoot[] = [];
  readonly consoleFile: string;
  private vm: Vm | undefined;
  private qmp: Qmp | undefined;
  /** The driver itself is ending the current run (reset, off, close): its exit is no guest event. */
  private ending = false;
  private queue: Promise<unknown> = Promise.resolve();
  private readonly listeners: ((what: Guest) => void)[] = [];
  private readonly socketPath: string;
  private tapMade = false;
  private closed = false;

  constructor(private readonly o: QemuPowerOptions) {
    this.consoleFile = join(o.dir, `${o.tap}-console.log`);
    this.socketPath = join(o.dir, `${o.tap}-qmp.sock`);
  }

  get running(): boolean {
    return this.vm !== undefined;
  }

  onGuest(listener: (what: Guest) => void): void {
    this.listeners.push(listener);
  }

  on(o: { networkFirst: boolean }): Promise<void> {
    return this.serial(async () => {
      if (!this.vm) await this.start(o.networkFirst);
    });
  }

  off(): Promise<void> {
    return this.serial(() => this.end('quit'));
  }

  reset(o: { networkFirst: boolean }): Promise<void> {
    return this.serial(async () => {
      await this.end('system_reset');
      await this.start(o.networkFirst);
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.serial(() => this.end('quit'));
    if (this.tapMade) {
      try {
        this.o.lab.ipIn(this.o.ns, 'link', 'del', this.o.tap);
      } catch {
        // the namespace is gone already (the lab was cleaned up first)
      }
    }
  }

  /** Everything the guest printed on its serial port, over all its boots. */
  console(): string {
    return this.vm?.console() ?? readConsole(this.consoleFile);
  }

  /**
   * Resolves when `re` matches the console, across reboots; rejects at a kernel panic or an
   * `eb-init: … FAILED` line, or after `timeoutMs`.
   */
  async waitConsole(re: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const text = this.console();
      const m = re.exec(text);
      if (m) return m;
      const broken = CONSOLE_FAILURE.exec(text);
      if (broken) throw new Error(`the console of ${this.o.tap} shows "${broken[0]}" before ${re}`);
      if (Date.now() > deadline) throw new Error(`the console of ${this.o.tap} did not show ${re} within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  /** Power operations one at a time, in call order (a guest reboot and a BMC reset may meet). */
  private serial(fn: () => Promise<void>): Promise<void> {
    const next = this.queue.then(fn);
    this.queue = next.catch(() => undefined); // the caller gets the failure; the queue goes on
    return next;
  }

  private makeTap(): void {
    if (this.tapMade) return;
    const { lab, ns, tap, bridge } = this.o;
    lab.ipIn(ns, 'tuntap', 'add', 'dev', tap, 'mode', 'tap');
    lab.attach(ns, tap, bridge);
    lab.ipIn(ns, 'link', 'set', tap, 'up');
    this.tapMade = true;
  }

  private async start(networkFirst: boolean): Promise<void> {
    if (this.closed) throw new Error(`${this.o.tap}: the driver is closed`);
    this.makeTap();
    rmSync(this.socketPath, { force: true });
    const { lab, ns, tap, bridge, mac, disk, dir, bootTimeoutMs, memoryMiB } = this.o;
    const vm = startVm(lab, ns, {
      firmware: 'bios',
      mac,
      tap,
      bridge,
      dir,
      disk,
      timeoutMs: bootTimeoutMs,
      memoryMiB: memoryMiB ?? 1024,
      bootOrder: networkFirst ? 'network' : 'disk',
      tapReady: true,
      appendConsole: true,
      extraArgs: ['-no-reboot', '-qmp', `unix:${this.socketPath},server=on,wait=off`],
    });
    const boot: QemuBoot = { networkFirst, at: vm.startedAt };
    this.boots.push(boot);
    this.vm = vm;
    this.ending = false;
    let reason: string | undefined;
    try {
      const qmp = await Qmp.connect(this.socketPath, 15_000);
      qmp.onEvent((e) => {
        if (e.event === 'SHUTDOWN' && typeof e.data?.reason === 'string') reason = e.data.reason;
      });
      this.qmp = qmp;
    } catch (err) {
      await vm.stop();
      this.vm = undefined;
      throw new Error(`${tap}: QEMU started without QMP: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    void vm.exited.then(() => {
      boot.ended = reason ?? 'killed';
      if (this.vm !== vm) return;
      this.vm = undefined;
      this.qmp?.close();
      this.qmp = undefined;
      if (this.ending) return;
      // The guest ended this boot by itself: a reboot wants a new boot, anything else is off.
      const what: Guest = reason === 'guest-reset' ? 'reboot' : 'poweroff';
      for (const l of this.listeners) l(what);
    });
  }

  /** Ends the current run, if any, with a QMP command (quit or system_reset) and waits for QEMU to exit. */
  private async end(command: 'quit' | 'system_reset'): Promise<void> {
    const vm = this.vm;
    if (!vm) return;
    this.ending = true;
    try {
      await this.qmp?.execute(command);
    } catch (err) {
      // QEMU exited on its own meanwhile (the guest rebooted as the BMC reset it); the exit below says so.
      if (!/QMP (is )?closed/.test(err instanceof Error ? err.message : String(err))) throw err;
    }
    const late = setTimeout(() => void vm.stop(), 10_000);
    await vm.exited;
    clearTimeout(late);
    if (this.vm === vm) this.vm = undefined;
  }
}

function readConsole(file: string): string {
  try {
    return readFileSync(file, 'latin1');
  } catch {
    return ''; // no boot yet
  }
}
