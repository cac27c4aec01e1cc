/** `edgeboot machines provision` and `edgeboot machines power`: zero touch through the machines' BMCs. */
import { Argument, Command, InvalidArgumentError, Option } from 'commander';
import { POWER_ACTIONS, type BmcRun, type PowerAction } from '../machines/bmc.js';
import { macHyphenated, parseUnicastMac, type Mac } from '../machines/mac.js';
import { api, ClientError, type ClientOptions } from './client.js';
import { clientOptions, table, visible } from './format.js';

interface Override {
  target: string;
  mode?: string;
  attempts: number;
}
interface Power {
  action: string;
  resetTypes: string[];
  powerBefore?: string;
}
interface Provisioned {
  machine: { mac: string; state: string };
  override: Override;
  power: Power;
}
interface ProvisionMany {
  accepted: string[];
  skipped: { mac: string; reason: string }[];
}
interface PowerDone {
  machine: { mac: string; state: string };
  action: string;
  override?: Override;
  power?: Power;
  powerState?: string;
}
/** `GET /api/v1/machines/{mac}/provision`. */
interface RunView {
  mac: string;
  state: string;
  run?: BmcRun;
}

/** How often --wait asks each machine's run. */
const WAIT_POLL_MS = 2000;

function macArg(s: string): Mac {
  const m = parseUnicastMac(s);
  if (!m.ok) throw new ClientError(m.reason);
  return m.mac;
}

function seconds(v: string): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError('a whole number of seconds, 1 or more');
  return n;
}

const path = (mac: string, rest: string) => `/api/v1/machines/${macHyphenated(macArg(mac))}${rest}`;

const describeOverride = (o: Override): string => `one-time ${o.target} boot set${o.mode ? ` (${o.mode})` : ''}`;
const describePower = (p: Power): string => `${p.action} (${p.resetTypes.join(' then ')}; power was ${p.powerBefore ?? 'unknown'})`;

/** Adds `provision` and `power` to the machines command. */
export function addBmcCommands(cmd: Command, print: (s: string) => void): void {
  cmd
    .command('provision')
    .description('zero touch: set a one-time network boot through each BMC and power the machine on (or restart it); edgeboot follows it until it asks /ipxe')
    .argument('[mac...]', 'MACs of machines with a BMC (registered or precached)')
    .option('--all-registered', 'every machine in state registered')
    .option('--wait', 'wait until each run is booted (the machine asked /ipxe) or failed, and show them')
    .addOption(new Option('--timeout <seconds>', 'with --wait: give up after this long').argParser(seconds).default(900))
    .action(async (macs: string[], o: { allRegistered?: boolean; wait?: boolean; timeout: number }, self: Command) => {
      const c = clientOptions(self);
      if (macs.length === 0 && !o.allRegistered) throw new ClientError('name at least one MAC, or pass --all-registered');
      let accepted: string[];
      let answer: Provisioned | ProvisionMany;
      const single = macs.length === 1 && !o.allRegistered ? macs[0] : undefined;
      if (single !== undefined) {
        const p = await api<Provisioned>(c, 'POST', path(single, '/provision'));
        answer = p;
        accepted = [p.machine.mac];
        if (!c.json) print(`${p.machine.mac}: ${describeOverride(p.override)}, ${describePower(p.power)}; following it until it asks /ipxe`);
      } else {
        const many = await api<ProvisionMany>(c, 'POST', '/api/v1/machines/provision', { macs: macs.map(macArg), allRegistered: o.allRegistered === true });
        answer = many;
        accepted = many.accepted;
        if (!c.json) {
          print(`${many.accepted.length} machine(s) being provisioned, at most bmc.parallel BMC sessions at a time`);
          for (const s of many.skipped) print(`skipped ${visible(s.mac)}: ${visible(s.reason)}`);
        }
      }
      if (!o.wait) {
        if (c.json) print(JSON.stringify(answer, null, 2));
        return;
      }
      const runs = await waitForRuns(c, accepted, o.timeout * 1000);
      const unfinished = runs.filter((r) => r.run?.phase !== 'booted');
      if (unfinished.length > 0) process.exitCode = 1;
      if (c.json) return print(JSON.stringify({ ...answer, runs }, null, 2));
      print(
        table([
          ['MAC', 'RUN', 'POWER CYCLES', 'STATE'],
          ...runs.map((r) => [r.mac, r.run?.phase === 'powered' ? 'timed out waiting' : (r.run?.phase ?? 'none'), String(r.run?.attempts ?? 0), r.state]),
        ]),
      );
    });

  cmd
    .command('power')
    .description("power through the machine's BMC: on, off, restart, or pxe-once (a one-time network boot, the power left as it is)")
    .argument('<mac>', 'any MAC of the machine')
    .addArgument(new Argument('<action>', POWER_ACTIONS.join(' | ')).choices(POWER_ACTIONS))
    .action(async (macText: string, action: PowerAction, _o: unknown, self: Command) => {
      const c = clientOptions(self);
      const done = await api<PowerDone>(c, 'POST', path(macText, '/power'), { action });
      if (c.json) return print(JSON.stringify(done, null, 2));
      const what = [done.override && describeOverride(done.override), done.power && describePower(done.power)].filter(Boolean).join(', ');
      print(`${done.machine.mac}: ${what}; power now ${done.powerState ?? 'unknown'}`);
    });
}

/** Each machine's run, asked every WAIT_POLL_MS until it is booted or failed, or the time is up. */
async function waitForRuns(c: ClientOptions, macs: readonly string[], timeoutMs: number): Promise<RunView[]> {
  const until = Date.now() + timeoutMs;
  const done = new Map<string, RunView>();
  const last = new Map<string, RunView>();
  while (done.size < macs.length) {
    for (const mac of macs.filter((m) => !done.has(m))) {
      const v = await api<RunView>(c, 'GET', path(mac, '/provision'));
      last.set(mac, v);
      if (v.run?.phase === 'booted' || v.run?.phase === 'failed' || v.state === 'failed') done.set(mac, v);
    }
    if (done.size >= macs.length || Date.now() >= until) break;
    await new Promise((resolve) => setTimeout(resolve, Math.min(WAIT_POLL_MS, Math.max(0, until - Date.now()))));
  }
  return macs.map((mac) => done.get(mac) ?? last.get(mac) ?? { mac, state: 'unknown' });
}
