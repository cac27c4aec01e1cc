/**
 * The per-machine Ignition config (spec 3.4) that the live environment fetches from
 * `{{ machine.ignitionUrl }}`. Until the precache job arrives it holds one oneshot unit that
 * tells edgeboot the live environment is up, so the timeline shows the boot reached userspace.
 */
export interface IgnitionInput {
  eventsUrl: string;
  hostname?: string;
}

export interface IgnitionConfig {
  ignition: { version: '3.4.0' };
  storage?: { files: { path: string; mode: number; overwrite: boolean; contents: { source: string } }[] };
  systemd: { units: { name: string; enabled: boolean; contents: string }[] };
}

export function renderIgnition(input: IgnitionInput): IgnitionConfig {
  const body = JSON.stringify({ type: 'booted', message: 'live environment reached multi-user' });
  // systemd expands % specifiers in ExecStart: the body carries none, and a % of the URL (an
  // IPv6 zone, a percent escape) is written %% so that systemd hands curl a plain %.
  const url = input.eventsUrl.replaceAll('%', '%%');
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
  const config: IgnitionConfig = {
    ignition: { version: '3.4.0' },
    systemd: { units: [{ name: 'edgeboot-report.service', enabled: true, contents: unit }] },
  };
  if (input.hostname) {
    config.storage = {
      files: [
        {
          path: '/etc/hostname',
          mode: 0o644,
          overwrite: true,
          contents: { source: `data:,${encodeURIComponent(input.hostname)}` },
        },
      ],
    };
  }
  return config;
}
