import type { Mac } from '../machines/mac.js';
import type { MachineState } from '../machines/state.js';
import { fillTemplate, type MachinePlaceholder } from '../profiles/template.js';
import type { BootDecision } from './planner.js';
import { ipxeToken, safeUrl, UnsafeValueError } from './safe.js';

/** What the renderer needs besides the decision: all of it already validated. */
export interface ScriptContext {
  /** `http://host:port` that this machine reaches edgeboot at. */
  baseUrl: string;
  mac?: Mac;
  state?: MachineState;
  /** Values of the machine placeholders; absent: the machine has none. */
  values: Partial<Record<MachinePlaceholder, string>>;
  recheckSeconds: number;
  /** A chain stage's hub script, rewritten to this server's URLs (boot/assisted.ts). */
  hubLines?: string[];
  /** Why this request gets no secrets (boot/trust.ts): said in a comment at the top. */
  untrusted?: string;
}

export class RenderError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RenderError';
  }
}

/** Text for `echo`: only characters iPXE prints as they are. */
export function echoText(s: string): string {
  return s.replace(/[^A-Za-z0-9 .,:()/_=+@-]/g, '?');
}

export function artifactUrl(baseUrl: string, profile: string, artifact: string): string {
  return `${baseUrl}/assets/${profile}/${artifact}`;
}

/**
 * The entry script (`GET /boot.ipxe`). It lists the MAC of every NIC iPXE knows (`netX` is the
 * one that booted; `${net0/mac}` alone is wrong on multi-NIC hosts) and asks `/ipxe` what this
 * machine boots now. A server that cannot be reached is retried, never given up on.
 */
export function renderEntryScript(baseUrl: string): string {
  const base = safeUrl('server URL', baseUrl);
  return `#!ipxe
# edgeboot entry script: identify this machine by every NIC, then ask what it boots now.
set edgeboot-macs
set edgeboot-idx:int32 0
:edgeboot-nic
isset \${net\${edgeboot-idx}/mac} || goto edgeboot-ask
set edgeboot-macs \${edgeboot-macs}\${net\${edgeboot-idx}/mac:hexhyp},
inc edgeboot-idx
goto edgeboot-nic
:edgeboot-ask
chain --replace --autofree ${base}/ipxe?mac=\${netX/mac:hexhyp}&macs=\${edgeboot-macs}&uuid=\${uuid}&serial=\${serial:uristring}&arch=\${buildarch}&platform=\${platform} || goto edgeboot-retry
:edgeboot-retry
echo edgeboot: cannot reach ${base}/ipxe, retrying in 10 s
sleep 10
goto edgeboot-ask
`;
}

/** The script for one machine now. Pure; throws RenderError for a value the machine lacks. */
export function renderScript(d: BootDecision, ctx: ScriptContext): string {
  const base = safeUrl('server URL', ctx.baseUrl);
  const who = ctx.mac ?? 'this machine';
  const state = ctx.state ? ` (state ${ctx.state})` : '';
  const untrusted = ctx.untrusted === undefined ? '' : `# edgeboot: no secrets and no state move for this request: ${echoText(ctx.untrusted)}\n`;
  const head = `#!ipxe\n${untrusted}echo edgeboot: ${echoText(who)}: ${echoText(d.reason)}${echoText(state)}\n`;
  switch (d.kind) {
    case 'local':
      // UEFI: `exit` hands back to the firmware's next boot entry. BIOS: boot the first disk,
      // and if that fails, leave to the BIOS boot order.
      return `${head}iseq \${platform} pcbios || exit\nsanboot --no-describe --drive 0x80 || exit\n`;
    case 'wait':
    case 'error':
      return `${head}${recheck(base, ctx.recheckSeconds)}`;
    case 'boot':
      break;
  }
  // Names come from validated profile files; re-checked like every value that reaches a script.
  const profile = ipxeToken('profile name', d.profile.name);
  const fill = (t: Parameters<typeof fillTemplate>[0], what: string): string => {
    const r = fillTemplate(
      t,
      (name) => {
        // A value is one argument: whitespace in it would be split below into arguments of its own.
        const v = ctx.values[name];
        if (v !== undefined && /\s/.test(v)) throw new UnsafeValueError(`the value of ${name}`, v);
        return v;
      },
      (a) => artifactUrl(base, profile, a),
    );
    if (!r.ok) throw new RenderError(`profile ${profile} needs ${r.missing} in ${what}, and this machine has none`);
    return r.text.replace(/\s+/g, ' ').trim();
  };
  if (d.spec.kind === 'chain' && ctx.hubLines) {
    // The hub's own lines, its kernel arguments verbatim: iPXE would run them as they are if
    // it chained to the hub; only the artifact URLs are this server's.
    return `${head}${fetchAndBoot(ctx.hubLines, base, ctx.recheckSeconds)}`;
  }
  if (d.spec.kind === 'chain') {
    const url = safeUrl(`chain URL of profile ${profile}`, fill(d.spec.url, 'chain'));
    // An assisted hub answers 404 once the host is installed: leave to the local disk then.
    return `${head}chain --replace --autofree ${url} || exit\n`;
  }
  const spec = d.spec;
  const kernel = ipxeToken(`kernel name of profile ${profile}`, spec.kernel);
  const initrds = spec.initrds.map((n) => ipxeToken(`initrd name of profile ${profile}`, n));
  const initrdArgs = initrds.map((n) => `initrd=${n}`);
  const args = fill(spec.args, 'boot.args')
    .split(' ')
    .filter((a) => a !== '')
    .map((a) => ipxeToken(`kernel argument of profile ${profile}`, a));
  const fetches = [
    `kernel ${artifactUrl(base, profile, kernel)} ${[...initrdArgs, ...args].join(' ')}`.trimEnd(),
    ...initrds.map((n) => `initrd --name ${n} ${artifactUrl(base, profile, n)}`),
  ];
  return `${head}${fetchAndBoot(fetches, base, ctx.recheckSeconds)}`;
}

/**
 * Tries of a boot's downloads before the machine asks the server what it boots again: about a
 * minute, time for a restart of the service on a loaded host (RestartSec plus Node's start).
 */
export const DOWNLOAD_TRIES = 12;
/** Seconds between two tries: longer than a restart of the service (systemd RestartSec=2s). */
export const DOWNLOAD_RETRY_SECONDS = 5;

/**
 * Runs the kernel and initrd commands, then boots. A download cut short (the server restarted
 * mid-transfer, a link flapped) frees what was loaded and runs them again from the first, a
 * few seconds later, up to DOWNLOAD_TRIES times, with the same URLs and the same tokens: the
 * boot goes on as if nothing had happened, and the server sees no second boot of the machine.
 * `imgfree` first because a second `kernel` would otherwise sit beside the first, and iPXE
 * hands every image that is not the kernel to it as an initrd. After the last try the machine
 * asks the server again (`recheck`).
 */
function fetchAndBoot(fetches: string[], base: string, recheckSeconds: number): string {
  return [
    'set edgeboot-tries:int32 0',
    ':edgeboot-fetch',
    ...fetches.map((l) => `${l} || goto edgeboot-failed`),
    'boot || goto edgeboot-failed',
    ':edgeboot-failed',
    'imgfree',
    'inc edgeboot-tries',
    `iseq \${edgeboot-tries} ${DOWNLOAD_TRIES} || goto edgeboot-refetch`,
    'echo edgeboot: the boot failed, asking the server again',
    recheck(base, recheckSeconds).trimEnd(),
    ':edgeboot-refetch',
    `echo edgeboot: a download or the boot failed (try \${edgeboot-tries} of ${DOWNLOAD_TRIES}), fetching again in ${DOWNLOAD_RETRY_SECONDS} s`,
    `sleep ${DOWNLOAD_RETRY_SECONDS}`,
    'goto edgeboot-fetch',
    '',
  ].join('\n');
}

function recheck(base: string, seconds: number): string {
  return `:edgeboot-recheck
echo edgeboot: checking again in ${seconds} s
sleep ${seconds}
chain --replace --autofree ${base}/boot.ipxe || goto edgeboot-recheck
`;
}
