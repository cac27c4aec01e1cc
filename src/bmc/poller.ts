/**
 * What edgeboot sees of each BMC between operations: the poller reads every machine's system
 * every bmc.pollSeconds (through the limiter, so a fleet never holds more than bmc.parallel
 * sessions), and the inventory read at registration matches the system's NICs against the
 * reservation. A BMC going away is one bmc-unreachable event, not one per poll.
 */
import type { Logger } from 'pino';
import type { BmcStatus } from '../machines/bmc.js';
import { allMacs, type Machine, type NewEvent } from '../machines/model.js';
import { eachMachine, type Store } from '../store/store.js';
import { BmcFailedError } from '../errors.js';
import { hasBmcPassword, type BmcConfig, type BmcDriver, type DrivenMachine } from './driver.js';
import type { SystemView } from './types.js';

export interface BmcPollerDeps {
  store: Store;
  driver: BmcDriver;
  config: BmcConfig;
  log: Logger;
  now: () => Date;
}

/** How many machines one page of the poll reads from the store and polls together. */
const POLL_PAGE = 200;

export class BmcPoller {
  constructor(private readonly deps: BmcPollerDeps) {}

  /** One round over every machine with a BMC and a password, skipping those checked within half the interval. */
  async pollAll(): Promise<number> {
    const { store, config } = this.deps;
    const freshSince = this.deps.now().getTime() - (config.pollSeconds * 1000) / 2;
    let page: DrivenMachine[] = [];
    let polled = 0;
    const flush = async (): Promise<void> => {
      polled += page.length;
      await Promise.all(page.map((m) => this.pollOne(m)));
      page = [];
    };
    for await (const m of eachMachine(store, {}, POLL_PAGE)) {
      if (!hasBmcPassword(m)) continue;
      const checked = m.bmcStatus ? Date.parse(m.bmcStatus.checkedAt) : 0;
      if (checked > freshSince) continue;
      page.push(m);
      if (page.length >= POLL_PAGE) await flush();
    }
    await flush();
    return polled;
  }

  /** Reads the system and records what changed; a failure is recorded here, once per change. */
  async pollOne(m: DrivenMachine): Promise<void> {
    const { driver, log } = this.deps;
    try {
      const view = await driver.run(m, 'poll', (s) => s.system(), false);
      await driver.write(m.mac, (cur) => {
        const back: NewEvent[] = cur.bmcStatus?.reachable === false ? [{ type: 'bmc-reachable', source: 'bmc', message: 'the BMC answers again' }] : [];
        return { machine: { ...cur, bmcStatus: driver.statusOf(view, cur.bmcStatus) }, events: back };
      });
      if (m.bmcStatus?.reachable === false) log.info({ mac: m.mac }, 'BMC reachable again');
    } catch (err) {
      if (!(err instanceof BmcFailedError)) {
        log.error({ mac: m.mac, err }, 'the BMC poll failed');
        return;
      }
      await driver.write(m.mac, (cur) => ({
        machine: { ...cur, bmcStatus: driver.failedStatus(cur.bmcStatus, err) },
        events: changedFailure(cur.bmcStatus, err),
      }));
      // Once per change, as the event: the poller must not repeat a dead BMC every interval.
      if (changedFailure(m.bmcStatus, err).length > 0) log.warn({ mac: m.mac, code: err.code, reason: err.message }, 'BMC poll failed');
    }
  }

  /**
   * The inventory read of a reservation whose BMC was never read (new, a new address, or only
   * failures so far): the system's identity and NICs on the status, bmc-inventory, and
   * bmc-mac-mismatch when none of the machine's MACs is a NIC of that system.
   */
  async inventory(m: Machine): Promise<void> {
    if (!hasBmcPassword(m) || m.bmcStatus?.macs !== undefined) return;
    const { driver, log } = this.deps;
    let view: SystemView;
    try {
      view = await driver.run(m, 'inventory', (s) => s.system());
    } catch (err) {
      // driver.run put a BMC failure on the timeline and the status; anything else is a bug to log.
      if (!(err instanceof BmcFailedError)) log.error({ mac: m.mac, err }, 'the BMC inventory read failed');
      return;
    }
    const mismatch = macMismatch(m, view);
    if (mismatch) log.warn({ mac: m.mac, systemMacs: view.macs }, mismatch.message ?? 'wrong machine?');
    await driver.write(m.mac, (cur) => ({
      machine: { ...cur, bmcStatus: driver.statusOf(view, cur.bmcStatus) },
      events: [inventoryEvent(view), ...(mismatch ? [mismatch] : [])],
    }));
  }
}

/** A failure worth an event: the BMC went unreachable, or its error is not the one recorded last. */
function changedFailure(before: BmcStatus | undefined, err: BmcFailedError): NewEvent[] {
  const unreachable = err.code === 'bmc_unreachable';
  if (unreachable && before?.reachable === false) return [];
  if (!unreachable && before?.lastError === err.message) return [];
  return [{ type: unreachable ? 'bmc-unreachable' : 'bmc-error', source: 'bmc', message: err.message, data: { ...err.details, during: 'poll' } }];
}

function inventoryEvent(v: SystemView): NewEvent {
  const what = [v.manufacturer, v.model].filter((x) => x !== undefined).join(' ') || 'a Redfish system';
  return {
    type: 'bmc-inventory',
    source: 'bmc',
    message: `${what}${v.serial === undefined ? '' : `, serial ${v.serial}`}, NICs ${v.macs.join(', ') || 'not listed'}`,
    data: {
      vendor: v.vendor,
      manufacturer: v.manufacturer ?? null,
      model: v.model ?? null,
      serial: v.serial ?? null,
      uuid: v.uuid ?? null,
      macs: v.macs,
      powerState: v.powerState ?? null,
    },
  };
}

/** The wrong-machine warning: the system lists NICs, and none of them is one of the reservation's MACs. */
export function macMismatch(m: Machine, v: SystemView): NewEvent | undefined {
  if (v.macs.length === 0) return undefined;
  const mine = allMacs(m);
  if (mine.some((mac) => v.macs.includes(mac.toLowerCase()))) return undefined;
  return {
    type: 'bmc-mac-mismatch',
    source: 'bmc',
    message: `the BMC's system has NICs ${v.macs.join(', ')}; this reservation's MAC ${mine.join(', ')} is not one of them: wrong machine?`,
    data: { systemMacs: v.macs, macs: mine },
  };
}
