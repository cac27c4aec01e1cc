import { Command, InvalidArgumentError, Option } from 'commander';
import type { Machine, MachineEvent, PrecacheProgress } from '../machines/model.js';
import { MACHINE_STATES } from '../machines/state.js';
import { macHyphenated, parseUnicastMac, type Mac } from '../machines/mac.js';
import { api, ClientError } from './client.js';
import { addBmcCommands } from './bmc.js';
import { namingFlags } from './fields.js';
import { bmcBody, bmcFields, type BmcFlags, type MachineAnswer } from './machine-bmc.js';
import { BMC_BOOT_MODES } from '../machines/bmc.js';
import { EVENT_TYPE_PATTERN } from '../machines/events.js';
import { bytes, clientOptions, table, visible } from './format.js';
import { redactSecrets } from '../secrets/redact.js';

const collect = (v: string, prev: string[]) => [...prev, v];

function positiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError('a whole number of 1 or more');
  return n;
}

function macArg(s: string): Mac {
  const m = parseUnicastMac(s);
  if (!m.ok) throw new ClientError(m.reason);
  return m.mac;
}

function eventType(v: string): string {
  if (!new RegExp(EVENT_TYPE_PATTERN).test(v)) throw new InvalidArgumentError('a lower-case word of letters, digits, dots and hyphens, such as install-done');
  return v;
}

/** `GET /api/v1/machines/{mac}/script?format=json`. */
interface ScriptPreview {
  mac: string;
  state: string;
  wouldMoveTo?: string;
  decision: { kind: string; reason: string; stage?: string; profile?: string };
  script: string;
}

/** The server's largest page: fewest round trips when following the cursor to the end. */
const PAGE_MAX = 1000;

function labelsOf(list: string[]): Record<string, string> {
  return Object.fromEntries(
    list.map((l) => {
      const i = l.indexOf('=');
      if (i <= 0) throw new ClientError(`--label ${l}: expected key=value`);
      return [l.slice(0, i), l.slice(i + 1)];
    }),
  );
}

const path = (mac: Mac, rest = '') => `/api/v1/machines/${macHyphenated(mac)}${rest}`;

export function machinesCommand(print: (s: string) => void): Command {
  const cmd = new Command('machines').description('manage machine reservations on a running server');

  cmd
    .command('add')
    .description('create or replace the reservation of a machine (PUT)')
    .argument('<mac>', 'primary MAC address')
    .option('--profile <name>', 'boot profile (a machine without one stays discovered)')
    .option('--hostname <name>', 'host name')
    .option('--ip <address>', 'fixed IPv4 address')
    .option('--uuid <uuid>', 'SMBIOS UUID')
    .option('--mac <mac>', 'a further MAC of the same machine (repeatable)', collect, [])
    .option('--label <key=value>', 'a label (repeatable)', collect, [])
    .option('--assisted-url <url>', "the InfraEnv's ipxeScript URL")
    .option('--release <image>', 'precache: OpenShift release image')
    .option('--image <ref>', 'precache: an extra image (repeatable)', collect, [])
    .option('--size-gib <n>', 'precache: partition size in GiB', (v) => Number(v))
    .option('--disk <device>', 'precache: install disk, e.g. /dev/sda')
    .option('--live-profile <name>', 'precache: live-environment profile')
    .option('--bundle <id>', 'precache: a bundle built with POST /api/v1/bundles, instead of --release/--image')
    .option('--bmc <address>', "the machine's BMC: redfish://host[:port] (HTTPS), redfish+http://host:port, or a vendor alias such as idrac-redfish://host")
    .option('--bmc-user <name>', "the BMC's user name")
    .option(
      '--bmc-password-file <file>',
      "a file holding the BMC's password (one trailing newline dropped; - reads standard input); absent: keep the stored one",
    )
    .option('--bmc-system-id <id>', "the Redfish system's id, when the BMC has more than one")
    .option('--bmc-insecure', "do not verify the BMC's TLS certificate")
    .addOption(new Option('--bmc-boot-mode <mode>', 'the boot mode the one-time network boot asks for (auto: as the BMC has it)').choices(BMC_BOOT_MODES))
    .action(async (macText: string, o: Record<string, unknown> & BmcFlags, self: Command) => {
      const mac = macArg(macText);
      const body: Record<string, unknown> = { macs: (o.mac as string[]).map(macArg), labels: labelsOf(o.label as string[]) };
      for (const k of ['profile', 'hostname', 'ip', 'uuid'] as const) if (o[k] !== undefined) body[k] = o[k];
      if (o.assistedUrl) body.assisted = { ipxeScriptUrl: o.assistedUrl };
      const precache: Record<string, unknown> = {};
      if (o.release) precache.release = o.release;
      if ((o.image as string[]).length) precache.images = o.image;
      if (o.sizeGib !== undefined) precache.sizeGiB = o.sizeGib;
      if (o.disk) precache.disk = o.disk;
      if (o.liveProfile) precache.liveProfile = o.liveProfile;
      if (o.bundle) precache.bundle = o.bundle;
      if (Object.keys(precache).length) body.precache = precache;
      const bmc = bmcBody(o);
      if (bmc) body.bmc = bmc;
      const m = await api<Machine>(clientOptions(self), 'PUT', path(mac), body).catch(namingFlags);
      print(clientOptions(self).json ? JSON.stringify(m, null, 2) : `${m.mac} saved: state ${m.state}${m.profile ? `, profile ${m.profile}` : ''}`);
    });

  cmd
    .command('list')
    .description('list machines')
    .addOption(new Option('--state <state>', 'only machines in this state').choices(MACHINE_STATES))
    .option('--profile <name>', 'only machines with this profile')
    .option('--label <key=value>', 'only machines with this label (repeatable)', collect, [])
    .option('--limit <n>', 'at most this many machines (default: all, read a page at a time)', positiveInt)
    .action(async (o: { state?: string; profile?: string; label: string[]; limit?: number }, self: Command) => {
      const q = new URLSearchParams();
      if (o.state) q.set('state', o.state);
      if (o.profile) q.set('profile', o.profile);
      for (const l of o.label) q.append('label', l);
      const machines: Machine[] = [];
      let cursor: string | undefined;
      do {
        const want = o.limit === undefined ? PAGE_MAX : Math.min(PAGE_MAX, o.limit - machines.length);
        q.set('limit', String(want));
        if (cursor !== undefined) q.set('cursor', cursor);
        const page = await api<{ machines: Machine[]; nextCursor?: string }>(clientOptions(self), 'GET', `/api/v1/machines?${q.toString()}`);
        machines.push(...page.machines);
        cursor = page.nextCursor;
      } while (cursor !== undefined && (o.limit === undefined || machines.length < o.limit));
      if (clientOptions(self).json) return print(JSON.stringify(machines, null, 2));
      if (machines.length === 0) return print('no machines');
      print(
        table([
          ['MAC', 'STATE', 'PROFILE', 'HOSTNAME', 'IP', 'PRECACHE', 'LAST SEEN'],
          ...machines.map((m) => [
            m.mac,
            m.state,
            m.profile ?? '-',
            m.hostname ?? '-',
            m.ip ?? '-',
            m.precacheProgress ? shortProgress(m.precacheProgress) : '-',
            m.observed.lastSeenAt ?? '-',
          ]),
        ]),
      );
    });

  cmd
    .command('show')
    .description('show one machine and its latest events')
    .argument('<mac>', 'any MAC of the machine')
    .option('--events <n>', 'how many recent events to show', (v) => Number(v), 20)
    .action(async (macText: string, o: { events: number }, self: Command) => {
      const mac = macArg(macText);
      const c = clientOptions(self);
      const m = await api<MachineAnswer>(c, 'GET', path(mac));
      const { events } = await api<{ events: MachineEvent[] }>(c, 'GET', path(mac, '/events?limit=5000'));
      const recent = events.slice(-o.events);
      if (c.json) return print(JSON.stringify({ machine: m, events: recent }, null, 2));
      const fields: [string, string | undefined][] = [
        ['mac', [m.mac, ...m.macs].join(', ')],
        ['state', m.state],
        ['profile', m.profile],
        ['hostname', m.hostname],
        ['ip', m.ip],
        ['uuid', m.uuid],
        [
          'labels',
          Object.entries(m.labels)
            .map(([k, v]) => `${k}=${v}`)
            .join(', ') || undefined,
        ],
        ['assisted', m.assisted && redactSecrets(m.assisted.ipxeScriptUrl)],
        ['precache', m.precache ? JSON.stringify(m.precache) : undefined],
        ['progress', m.precacheProgress ? describeProgress(m.precacheProgress) : undefined],
        ['disks', m.inventory?.disks.map((d) => `${d.path} ${bytes(d.sizeBytes)}${d.removable ? ' removable' : ''}`).join(', ')],
        ...bmcFields(m.bmc),
        ['arch', m.observed.arch],
        ['serial', m.observed.serial],
        ['last seen', m.observed.lastSeenAt],
      ];
      // Every value came from the server, some from the machine itself (serial, disks, messages).
      print(
        fields
          .filter(([, v]) => v !== undefined)
          .map(([k, v]) => `${`${k}:`.padEnd(11)}${visible(v ?? '')}`)
          .join('\n'),
      );
      if (recent.length) {
        print('\nevents:');
        print(table(recent.map((e) => [e.time, e.source, e.type, e.from ? `${e.from} -> ${e.to}` : '', e.message ?? ''])));
      }
    });

  cmd
    .command('rm')
    .description('forget a machine and its events')
    .argument('<mac>', 'any MAC of the machine')
    .action(async (macText: string, _o: unknown, self: Command) => {
      const mac = macArg(macText);
      await api(clientOptions(self), 'DELETE', path(mac));
      print(`${mac} removed`);
    });

  cmd
    .command('reset')
    .description('reset a failed or installed machine; with --force, a machine stuck in any state of its flow')
    .argument('<mac>', 'any MAC of the machine')
    .addOption(
      new Option('--to <state>', 'registered: redo everything; precached: reinstall, keep the precache partition')
        .choices(['registered', 'precached'])
        .default('registered'),
    )
    .option(
      '--force',
      "from any state but discovered (an install that never reported back); the timeline records it, and the machine's current boot loses its credentials",
    )
    .action(async (macText: string, o: { to: string; force?: boolean }, self: Command) => {
      const m = await api<Machine>(clientOptions(self), 'POST', path(macArg(macText), '/reset'), { to: o.to, ...(o.force && { force: true }) });
      print(clientOptions(self).json ? JSON.stringify(m, null, 2) : `${m.mac} is now ${m.state}`);
    });

  cmd
    .command('script')
    .description('the iPXE script the machine would get if it booted now, its secrets cut; nothing moves (no state move, boot count or event)')
    .argument('<mac>', 'any MAC of the machine')
    .action(async (macText: string, _o: unknown, self: Command) => {
      const c = clientOptions(self);
      const p = await api<ScriptPreview>(c, 'GET', path(macArg(macText), '/script?format=json'));
      if (c.json) return print(JSON.stringify(p, null, 2));
      // The script is the machine's, and shown as it is; where it would take the machine goes to stderr.
      process.stderr.write(`${visible(`${p.mac}: ${p.state}${p.wouldMoveTo ? ` -> ${p.wouldMoveTo} when served` : ''}: ${p.decision.reason}`)}\n`);
      print(p.script.trimEnd());
    });

  cmd
    .command('event')
    .description(
      'post an event to the machine as an admin, as the machine would: a type that moves the state moves it (install-done, precache-done, failed, …)',
    )
    .argument('<mac>', 'any MAC of the machine')
    .argument('<type>', 'event type, lower case: install-done, precache-done, precache-failed, failed, or a type of your own', eventType)
    .option('--message <text>', 'a message for the timeline')
    .action(async (macText: string, type: string, o: { message?: string }, self: Command) => {
      const c = clientOptions(self);
      const mac = macArg(macText);
      const body = { type, ...(o.message !== undefined && { message: o.message }) };
      const { events } = await api<{ events: MachineEvent[] }>(c, 'POST', path(mac, '/events'), body);
      if (c.json) return print(JSON.stringify(events, null, 2));
      const moved = events.find((e) => e.type === 'state-changed');
      print(`${mac}: ${type} recorded${moved ? `, state ${moved.from} -> ${moved.to}` : ', state unchanged'}`);
    });

  addBmcCommands(cmd, print);
  return cmd;
}

/** A precache run in a table cell: `download 3/6 42%`, or how it ended. */
function shortProgress(p: PrecacheProgress): string {
  if (p.outcome) return p.outcome;
  const share = p.bytesTotal > 0 ? ` ${Math.floor((100 * p.bytesDone) / p.bytesTotal)}%` : '';
  return p.filesTotal > 0 ? `${p.step} ${p.filesDone}/${p.filesTotal}${share}` : p.step;
}

/** One line of a precache run: where it is and how far. */
function describeProgress(p: PrecacheProgress): string {
  const files = p.filesTotal > 0 ? `, ${p.filesDone}/${p.filesTotal} files, ${bytes(p.bytesDone)} of ${bytes(p.bytesTotal)}` : '';
  const end = p.outcome ? ` (${p.outcome} ${p.finishedAt ?? ''})` : ` (last heard ${p.lastHeartbeatAt})`;
  return `${p.step}${files}, boot ${p.boots}${p.disk ? ` on ${p.disk}` : ''}${end}${p.message ? `: ${p.message}` : ''}`;
}
