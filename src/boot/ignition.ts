/**
 * The per-machine Ignition config (spec 3.4) that the live environment fetches from
 * `{{ machine.ignitionUrl }}`. For a precaching machine it holds the precache job
 * (src/precache/job.sh), its settings and the oneshot unit that runs it; otherwise one oneshot
 * unit that tells edgeboot the live environment is up, so the timeline shows the boot reached
 * userspace.
 */
export interface IgnitionInput {
  eventsUrl: string;
  hostname?: string;
  precache?: PrecacheJob;
}

/** The job, and what it needs to talk to edgeboot as this machine. */
export interface PrecacheJob {
  /** `<server>/api/v1/machines/<mac>`: the job's inventory, plan, events and result live below it. */
  machineUrl: string;
  /** The machine's events token. */
  token: string;
  mac: string;
  /** What the job does when it is over and no plan said otherwise: `precache.after`. */
  after: 'reboot' | 'poweroff';
  script: string;
}

interface IgnitionFile {
  path: string;
  mode: number;
  overwrite: boolean;
  contents: { source: string };
}

export interface IgnitionConfig {
  ignition: { version: '3.4.0' };
  storage?: { files: IgnitionFile[] };
  systemd: { units: { name: string; enabled: boolean; contents: string }[] };
}

export const PRECACHE_UNIT = 'edgeboot-precache.service';
export const PRECACHE_JOB_FILE = '/usr/local/bin/edgeboot-precache';
export const PRECACHE_ENV_FILE = '/etc/edgeboot/precache.env';

export function renderIgnition(input: IgnitionInput): IgnitionConfig {
  const files: IgnitionFile[] = [];
  if (input.hostname) files.push(file('/etc/hostname', 0o644, `data:,${encodeURIComponent(input.hostname)}`));
  const config: IgnitionConfig = { ignition: { version: '3.4.0' }, systemd: { units: [input.precache ? precacheUnit() : reportUnit(input.eventsUrl)] } };
  if (input.precache) {
    const p = input.precache;
    // Values in the env file are sourced by bash: single-quoted, so nothing in them expands.
    const env = [
      `EDGEBOOT_MACHINE_URL=${shellQuote(p.machineUrl)}`,
      `EDGEBOOT_TOKEN=${shellQuote(p.token)}`,
      `EDGEBOOT_MAC=${shellQuote(p.mac)}`,
      `EDGEBOOT_AFTER=${p.after}`,
      '',
    ].join('\n');
    files.push(file(PRECACHE_ENV_FILE, 0o600, base64(env)), file(PRECACHE_JOB_FILE, 0o755, base64(p.script)));
  }
  if (files.length > 0) config.storage = { files };
  return config;
}

function file(path: string, mode: number, source: string): IgnitionFile {
  return { path, mode, overwrite: true, contents: { source } };
}

const base64 = (text: string): string => `data:;base64,${Buffer.from(text).toString('base64')}`;
const shellQuote = (s: string): string => `'${s.replaceAll("'", "'\\''")}'`;

function precacheUnit(): { name: string; enabled: boolean; contents: string } {
  const contents = [
    '[Unit]',
    "Description=edgeboot precache: write the images onto this machine's disk",
    'Wants=network-online.target',
    'After=network-online.target',
    '',
    '[Service]',
    'Type=oneshot',
    // Through bash, as the stock precaching hooks run theirs: an exec bit or file label
    // the image does not give a file Ignition wrote cannot stop it.
    `ExecStart=/bin/bash ${PRECACHE_JOB_FILE}`,
    'StandardOutput=journal+console',
    'StandardError=journal+console',
    '',
    '[Install]',
    'WantedBy=multi-user.target',
    '',
  ].join('\n');
  return { name: PRECACHE_UNIT, enabled: true, contents };
}

function reportUnit(eventsUrl: string): { name: string; enabled: boolean; contents: string } {
  const body = JSON.stringify({ type: 'booted', message: 'live environment reached multi-user' });
  // systemd expands % specifiers in ExecStart: the body carries none, and a % of the URL (an
  // IPv6 zone, a percent escape) is written %% so that systemd hands curl a plain %.
  const url = eventsUrl.replaceAll('%', '%%');
  const unit = [
    '[Unit]',
    'Description=Report the live environment to edgeboot',
    'Wants=network-online.target',
    'After=network-online.target',
    '',
    '[Service]',
    'Type=oneshot',
    `ExecStart=/usr/bin/curl -fsS --retry 10 --retry-connrefused --retry-delay 3 -H "Content-Type: application/json" -d '${body}' "${url}"`,
    '',
    '[Install]',
    'WantedBy=multi-user.target',
    '',
  ].join('\n');
  return { name: 'edgeboot-report.service', enabled: true, contents: unit };
}
