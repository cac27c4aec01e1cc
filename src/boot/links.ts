import { macHyphenated, type Mac } from '../machines/mac.js';
import type { Machine } from '../machines/model.js';
import { checkMachineToken, machineToken } from './tokens.js';

/** How long a signed Ignition URL stays good: a slow live boot still makes it. */
export const IGNITION_URL_TTL_SECONDS = 2 * 3600;

/** What the tokens of a machine are derived from. */
export type TokenHolder = Pick<Machine, 'mac' | 'tokenGeneration'>;

/**
 * The URLs a machine is handed and the credentials in them: its events URL with the token of
 * its current boot, and its signed, expiring Ignition URL (boot/tokens.ts). Derived from the
 * server secret, the machine's MAC and token generation, and the clock: nothing is stored.
 */
export class MachineLinks {
  constructor(
    private readonly secret: string,
    private readonly now: () => Date,
  ) {}

  machineUrl(baseUrl: string, mac: Mac): string {
    return `${baseUrl}/api/v1/machines/${macHyphenated(mac)}`;
  }

  /** Where the machine posts its events, with the token of its current boot. */
  eventsUrl(baseUrl: string, m: TokenHolder): string {
    return `${this.machineUrl(baseUrl, m.mac)}/events?token=${this.eventsToken(m)}`;
  }

  ignitionUrl(baseUrl: string, m: TokenHolder): string {
    const expiresAt = Math.floor(this.now().getTime() / 1000) + IGNITION_URL_TTL_SECONDS;
    const sig = machineToken(this.secret, m.mac, 'ignition', { expiresAt, generation: m.tokenGeneration });
    return `${this.machineUrl(baseUrl, m.mac)}/ignition?exp=${expiresAt}&sig=${sig}`;
  }

  /**
   * The events URL for hub automation (`GET …/{mac}/boot`, admin only): with the token of the
   * machine's next generation, so that it works now and after the next boot too. The hub may
   * read it while edgeboot asks it for the install script, just before the boot that rotates
   * the machine's tokens, and post install-done once the machine is installing.
   */
  hubEventsUrl(baseUrl: string, m: TokenHolder): string {
    return this.eventsUrl(baseUrl, { mac: m.mac, tokenGeneration: (m.tokenGeneration ?? 0) + 1 });
  }

  eventsToken(m: TokenHolder): string {
    return machineToken(this.secret, m.mac, 'events', { generation: m.tokenGeneration });
  }

  /**
   * The check of an events token of the machine at `generation`: that generation, or the
   * next one (handed to admins only, by hubEventsUrl). A token of an earlier boot fails.
   */
  eventsTokenCheck(mac: Mac, generation: number): (token: string) => boolean {
    const { secret } = this;
    const at = (g: number, token: string): boolean => checkMachineToken(secret, mac, 'events', token, { generation: g });
    return (token) => at(generation, token) || at(generation + 1, token);
  }

  /** Whether `sig` signs an Ignition URL of this machine's boot at `generation` that expires at `exp`. */
  ignitionSigned(mac: Mac, exp: number, sig: string, generation: number | undefined): boolean {
    return checkMachineToken(this.secret, mac, 'ignition', sig, { expiresAt: exp, generation });
  }

  /** Whether an Ignition URL that expires at `exp` (seconds since the epoch) has expired. */
  expired(exp: number): boolean {
    return exp * 1000 < this.now().getTime();
  }
}
