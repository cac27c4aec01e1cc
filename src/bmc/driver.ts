/**
 * One session on a machine's BMC, the way every BMC operation of edgeboot opens it: through the
 * limiter, the password unsealed for the length of the session only, each failure turned into
 * a secret-free BmcFailedError and (unless the caller records it itself) onto the machine's
 * status and timeline. Status writes are small read-modify-writes that never touch the state.
 */
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import type { Config } from '../config/config.js';
import { BmcFailedError } from '../errors.js';
import type { BmcStatus } from '../machines/bmc.js';
import type { Mac } from '../machines/mac.js';
import type { Machine, NewEvent } from '../machines/model.js';
import type { SealedBox } from '../secrets/sealed-box.js';
import type { Store } from '../store/store.js';
import type { BmcLimiter } from './limiter.js';
import { BmcError, type BmcClientOptions, type BmcSession, type BmcTarget, type SystemView } from './types.js';

export type BmcConfig = Config['bmc'];

/** Opens a session, runs `fn`, closes the session (redfish.ts `withBmc`; tests may pass another). */
export type ConnectBmc = <T>(target: BmcTarget, opts: BmcClientOptions, fn: (s: BmcSession) => Promise<T>) => Promise<T>;

export interface BmcDriverDeps {
  store: Store;
  box: Pick<SealedBox, 'open'>;
  config: BmcConfig;
  log: Logger;
  now: () => Date;
  connect: ConnectBmc;
  limiter: BmcLimiter;
}

/** A machine that has a BMC with a password: what a session needs. */
export type DrivenMachine = Machine & { bmc: NonNullable<Machine['bmc']> & { passwordSealed: string } };

export function hasBmcPassword(m: Machine): m is DrivenMachine {
  return m.bmc?.passwordSealed !== undefined;
}

export class BmcDriver {
  private readonly options: BmcClientOptions;

  constructor(private readonly deps: BmcDriverDeps) {
    const { config } = deps;
    // Read once: a CA bundle that cannot be read is a configuration error for the start to report.
    const ca = config.caFile === undefined ? undefined : readFileSync(config.caFile, 'utf8');
    this.options = { timeoutMs: config.requestTimeoutSeconds * 1000, ...(ca !== undefined && { ca }) };
  }

  /**
   * `fn` in one session on the machine's BMC, under the limiter. A failure is thrown as a
   * BmcFailedError; with `record` (the default) it also goes on the machine's status and
   * timeline (bmc-unreachable or bmc-error, `what` saying what was being done).
   */
  async run<T>(m: DrivenMachine, what: string, fn: (s: BmcSession) => Promise<T>, record = true): Promise<T> {
    return this.deps.limiter.run(m.mac, async () => {
      let password: string;
      try {
        password = this.deps.box.open(m.bmc.passwordSealed);
      } catch (err) {
        // A key that changed since the password was sealed: the operator must give it again.
        this.deps.log.warn({ mac: m.mac, err: errorName(err) }, 'the BMC password cannot be unsealed');
        const failed = new BmcFailedError('bmc_error', `the BMC password of ${m.mac} cannot be unsealed with this server's secret key: set it again`, {
          kind: 'auth',
        });
        if (record) await this.recordFailure(m.mac, failed, what);
        throw failed;
      }
      const { address, username, systemId, verifyTls, bootMode } = m.bmc;
      const target: BmcTarget = { address, username, password, verifyTls, bootMode, ...(systemId !== undefined && { systemId }) };
      try {
        return await this.deps.connect(target, this.options, fn);
      } catch (err) {
        if (!(err instanceof BmcError)) throw err;
        const failed = failedError(m.mac, err, password);
        if (record) await this.recordFailure(m.mac, failed, what);
        throw failed;
      }
    });
  }

  /** What a read of the system says of the BMC now. */
  statusOf(view: SystemView, before?: BmcStatus): BmcStatus {
    const { powerState, manufacturer, model, serial, uuid, vendor, macs } = view;
    const status: BmcStatus = {
      ...before,
      reachable: true,
      checkedAt: this.deps.now().toISOString(),
      vendor,
      macs,
      ...(powerState !== undefined && { powerState }),
      ...(manufacturer !== undefined && { manufacturer }),
      ...(model !== undefined && { model }),
      ...(serial !== undefined && { serial }),
      ...(uuid !== undefined && { uuid }),
    };
    delete status.lastError;
    return status;
  }

  /**
   * One small transaction on the fresh row of a machine that still has a BMC, whatever its
   * state: `change` returns the machine to save and its events (undefined: nothing). The
   * machine as saved, if it was.
   */
  async write(mac: Mac, change: (cur: Machine) => { machine: Machine; events: NewEvent[] } | undefined): Promise<Machine | undefined> {
    const { result } = await this.deps.store.updateMachine(mac, (cur) => {
      const next = cur?.bmc ? change(cur) : undefined;
      if (!next) return { change: { kind: 'keep' }, result: undefined };
      return { change: { kind: 'save', machine: next.machine, events: next.events }, result: next.machine };
    });
    return result;
  }

  /** A failure on the status (unreachable, or the BMC's error) and the timeline. */
  async recordFailure(mac: Mac, failed: BmcFailedError, what: string): Promise<void> {
    const unreachable = failed.code === 'bmc_unreachable';
    const event: NewEvent = {
      type: unreachable ? 'bmc-unreachable' : 'bmc-error',
      source: 'bmc',
      message: `${what}: ${failed.message}`,
      data: { ...failed.details, during: what },
    };
    await this.write(mac, (cur) => ({ machine: { ...cur, bmcStatus: this.failedStatus(cur.bmcStatus, failed) }, events: [event] }));
    this.deps.log.warn({ mac, during: what, code: failed.code, reason: failed.message }, 'BMC operation failed');
  }

  failedStatus(cur: BmcStatus | undefined, failed: BmcFailedError): BmcStatus {
    const reachable = failed.code !== 'bmc_unreachable';
    return { ...cur, reachable, checkedAt: this.deps.now().toISOString(), lastError: failed.message };
  }
}

/** A client failure as the API answers it: bmc_unreachable or bmc_error, the password cut out of the text whatever the client put in. */
export function failedError(mac: Mac, err: BmcError, password: string): BmcFailedError {
  const text = password === '' ? err.message : err.message.split(password).join('<redacted>');
  const code = err.kind === 'unreachable' ? 'bmc_unreachable' : 'bmc_error';
  const message = err.kind === 'unreachable' ? `the BMC of ${mac} is unreachable: ${text}` : `the BMC of ${mac} failed: ${text}`;
  return new BmcFailedError(code, message, { kind: err.kind, ...(err.status !== undefined && { status: err.status }) });
}

function errorName(err: unknown): string {
  return err instanceof Error ? err.name : typeof err;
}
