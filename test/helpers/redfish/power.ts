/**
 * The emulated machine's power: Off → PoweringOn → On → PoweringOff → Off, each transition
 * lasting at least transitionMs (and until the PowerDriver has carried it out), with resets
 * (new boots) while On. The PowerDriver does the real work; TimerPower does none (no VM).
 */

export interface PowerDriver {
  /** Start the machine; networkFirst: a pending one-time Pxe/UefiHttp override is being consumed. */
  on(o: { networkFirst: boolean }): Promise<void>;
  off(): Promise<void>;
  /** Warm reset into a new boot (networkFirst as in on). */
  reset(o: { networkFirst: boolean }): Promise<void>;
  /** The emulator subscribes: the guest rebooted (a new boot starts; the emulator decides networkFirst by
   *  consuming the override and calls reset/on as needed) or powered itself off. */
  onGuest?(listener: (what: 'reboot' | 'poweroff') => void): void;
  close?(): Promise<void>;
}

/** No machine behind the BMC: the emulator's own transition timers are the whole story. */
export class TimerPower implements PowerDriver {
  on(): Promise<void> {
    return Promise.resolve();
  }
  off(): Promise<void> {
    return Promise.resolve();
  }
  reset(): Promise<void> {
    return Promise.resolve();
  }
}

export type PowerState = 'On' | 'Off' | 'PoweringOn' | 'PoweringOff';

export interface PowerHooks {
  /** A boot starts: consume the override; answer whether the network goes first. */
  bootStarts(): boolean;
  /** A driver call failed (the state is put back); the emulator reports it. */
  driverFailed(what: string, err: unknown): void;
}

export class PowerMachine {
  state: PowerState;
  /** When the machine last reached Off (iDRAC's busy-after-off window starts here). */
  lastOffAt: number | undefined;
  private generation = 0;
  private readonly timers = new Set<NodeJS.Timeout>();
  private closed = false;

  constructor(
    private readonly driver: PowerDriver,
    private readonly transitionMs: number,
    initial: 'On' | 'Off',
    private readonly hooks: PowerHooks,
  ) {
    this.state = initial;
    driver.onGuest?.((what) => (what === 'reboot' ? this.guestReboot() : this.guestPoweredOff()));
  }

  get busy(): boolean {
    return this.state === 'PoweringOn' || this.state === 'PoweringOff';
  }

  powerOn(): void {
    const networkFirst = this.hooks.bootStarts();
    this.transition('PoweringOn', 'On', 'Off', this.driver.on({ networkFirst }), 'on');
  }

  powerOff(): void {
    this.transition('PoweringOff', 'Off', 'On', this.driver.off(), 'off');
  }

  /** A warm reset while On: a new boot, no power transition (PowerState stays On, as real BMCs show it). */
  reset(): void {
    const networkFirst = this.hooks.bootStarts();
    this.driver.reset({ networkFirst }).catch((err: unknown) => this.hooks.driverFailed('reset', err));
  }

  /** The guest rebooted itself (a live environment's `reboot`); also while PoweringOn, when a driver's boot outran transitionMs. */
  guestReboot(): void {
    if (this.state === 'On' || this.state === 'PoweringOn') this.reset();
  }

  /** The guest powered itself off: Off at once, no transition. */
  guestPoweredOff(): void {
    this.generation++;
    this.state = 'Off';
    this.lastOffAt = Date.now();
  }

  close(): void {
    this.closed = true;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
  }

  private transition(during: PowerState, after: 'On' | 'Off', onFailure: 'On' | 'Off', work: Promise<void>, what: string): void {
    const generation = ++this.generation;
    this.state = during;
    const elapsed = new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        resolve();
      }, this.transitionMs);
      this.timers.add(timer);
    });
    const current = (): boolean => !this.closed && generation === this.generation;
    Promise.all([work, elapsed]).then(
      () => {
        if (!current()) return;
        this.state = after;
        if (after === 'Off') this.lastOffAt = Date.now();
      },
      (err: unknown) => {
        if (current()) this.state = onFailure;
        this.hooks.driverFailed(what, err);
      },
    );
  }
}
