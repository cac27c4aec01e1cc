import type { Config } from '../config/config.js';
import type { Machine, NewEvent } from '../machines/model.js';
import type { MachinePlaceholder } from '../profiles/template.js';
import { rewriteAssistedBoot, type AssistedBoot } from './assisted.js';
import { staticIpKarg } from './kargs.js';
import type { MachineLinks } from './links.js';
import type { HubArtifacts } from './hub-artifacts.js';
import type { BootDecision } from './planner.js';
import { RenderError, renderScript, type ScriptContext } from './render.js';
import { UnsafeValueError } from './safe.js';

/** Gives a hub artifact the id of its edgeboot URL, `/assets/hub/<id>/<name>`. */
export type HubArtifactIds = Pick<HubArtifacts, 'register'>;

export interface BootScriptsDeps {
  links: MachineLinks;
  config: { boot: Pick<Config['boot'], 'recheckSeconds'>; dhcp: Pick<Config['dhcp'], 'subnets'> };
  /** Absent: no hub script is ever served rewritten (the planner gets no hub answer). */
  hubArtifacts?: HubArtifactIds;
}

/** What the renderer made of a decision for one machine. */
export type Rendered = { ok: true; script: string } | { ok: false; problem: string };

/** A decision the server could not render: the machine waits and re-checks, its events say why. */
export const RENDER_FAILED: BootDecision = { kind: 'error', reason: "the server cannot render this machine's boot script: see its events" };

/**
 * The script of a decision for one machine: the machine's values (its secrets among them,
 * derived by MachineLinks), the hub's lines with this server's artifact URLs, then the pure
 * renderer (boot/render.ts).
 */
export class BootScripts {
  constructor(private readonly deps: BootScriptsDeps) {}

  /** The script, or why this machine's values cannot fill it (a missing or unsafe value). */
  render(m: Machine, d: BootDecision, baseUrl: string): Rendered {
    try {
      const hubLines = d.kind === 'boot' && d.hub ? this.hubLines(d.hub, baseUrl) : undefined;
      return { ok: true, script: renderScript(d, { ...this.context(m, baseUrl, true), ...(hubLines && { hubLines }) }) };
    } catch (err) {
      if (!(err instanceof RenderError || err instanceof UnsafeValueError)) throw err;
      return { ok: false, problem: err.message };
    }
  }

  /** The script of RENDER_FAILED, and the event that says what failed. */
  renderFailed(m: Machine, problem: string, baseUrl: string): { script: string; event: NewEvent } {
    return { script: renderScript(RENDER_FAILED, this.context(m, baseUrl, true)), event: { type: 'boot-error', source: 'http', message: problem } };
  }

  /** A decision rendered with no secret in it, and the reason said at the top (boot/trust.ts). */
  renderWithheld(m: Machine, d: BootDecision, reason: string, baseUrl: string): string {
    return renderScript(d, { ...this.context(m, baseUrl, false), untrusted: reason });
  }

  /**
   * The hub's initrd and kernel lines with edgeboot's URLs: kernel and rootfs (unsigned,
   * shared by every InfraEnv of a version and architecture) and the per-InfraEnv initrd,
   * revalidated at each boot, all through the cache.
   */
  private hubLines(script: AssistedBoot, baseUrl: string): string[] {
    const ids = this.deps.hubArtifacts;
    if (!ids) throw new Error('a hub script to rewrite, and no hub artifact registry to give its URLs');
    return rewriteAssistedBoot(script, (url, role) => `${baseUrl}/assets/hub/${ids.register({ url, ...(role === 'initrd' && { revalidate: true }) })}/${role}`);
  }

  /** The values a script is rendered with; `secrets: false` leaves out the events and Ignition URLs. */
  private context(m: Machine, baseUrl: string, secrets: boolean): ScriptContext {
    const { links, config } = this.deps;
    const ignitionUrl = secrets ? links.ignitionUrl(baseUrl, m) : undefined;
    const values: Partial<Record<MachinePlaceholder, string>> = {
      'server.url': baseUrl,
      'machine.mac': m.mac,
      ...(ignitionUrl !== undefined && {
        'machine.eventsUrl': links.eventsUrl(baseUrl, m),
        'machine.ignitionUrl': ignitionUrl,
        'kargs.ignition': `ignition.config.url=${ignitionUrl}`,
      }),
      'kargs.staticIp': m.ip ? staticIpKarg(m.ip, m.hostname, config.dhcp.subnets) : '',
      ...(m.hostname && { 'machine.hostname': m.hostname }),
      ...(m.ip && { 'machine.ip': m.ip }),
      ...(m.assisted && { 'machine.assistedScriptUrl': m.assisted.ipxeScriptUrl }),
    };
    return { baseUrl, mac: m.mac, state: m.state, values, recheckSeconds: config.boot.recheckSeconds };
  }
}
