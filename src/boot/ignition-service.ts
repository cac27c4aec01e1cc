import type { Logger } from 'pino';
import type { Config } from '../config/config.js';
import { RefusedError } from '../errors.js';
import type { Mac } from '../machines/mac.js';
import { machineNotFound } from '../machines/service.js';
import type { Store } from '../store/store.js';
import { renderIgnition, type IgnitionConfig } from './ignition.js';
import type { MachineLinks } from './links.js';
import type { TrustCheck } from './trust.js';

export interface IgnitionServiceDeps {
  store: Pick<Store, 'getMachine' | 'appendEvents'>;
  links: MachineLinks;
  trust: TrustCheck;
  config: { precache: Pick<Config['precache'], 'after'> };
  /** The precache job script (src/precache/job.sh) the Ignition of a precaching machine carries. */
  precacheJob?: string;
  log: Logger;
}

/** Serves the Ignition config behind a machine's signed, expiring URL. */
export class IgnitionService {
  constructor(private readonly deps: IgnitionServiceDeps) {}

  /**
   * The Ignition config behind a signed URL. The signature is the secret, and it went to the
   * machine's address alone; the source address is checked here too (defence in depth: a URL
   * copied off a console or a log is no good elsewhere), with the same rule as `/ipxe`.
   */
  async config(mac: Mac, exp: number, sig: string, baseUrl: string, client: string): Promise<IgnitionConfig> {
    const { store, links, log } = this.deps;
    if (links.expired(exp)) throw new RefusedError('url_expired', 'this Ignition URL has expired: boot the machine again for a new one');
    const m = await store.getMachine(mac);
    if (!links.ignitionSigned(mac, exp, sig, m?.tokenGeneration)) {
      throw new RefusedError('bad_signature', 'this Ignition URL is not signed for this machine, or is from an earlier boot of it');
    }
    if (!m) throw machineNotFound(mac);
    const trust = this.deps.trust(m, client);
    if (!trust.trusted) {
      await store.appendEvents(m.mac, [{ type: 'boot-untrusted', source: 'http', message: trust.reason, data: { client, withheld: 'ignition' } }]);
      log.warn({ mac: m.mac, client, reason: trust.reason }, 'Ignition refused: the request is not from the machine');
      throw new RefusedError('untrusted_client', `this Ignition config is served to the machine's own address only: ${trust.reason}`);
    }
    const job = this.deps.precacheJob;
    const machineUrl = links.machineUrl(baseUrl, m.mac);
    const after = this.deps.config.precache.after;
    const precache = m.state === 'precaching' && job !== undefined ? { machineUrl, token: links.eventsToken(m), mac: m.mac, after, script: job } : undefined;
    return renderIgnition({ eventsUrl: links.eventsUrl(baseUrl, m), ...(m.hostname && { hostname: m.hostname }), ...(precache && { precache }) });
  }
}
