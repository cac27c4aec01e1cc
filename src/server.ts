import type { Logger } from 'pino';
import { compose, type Overrides } from './compose.js';
import type { Config } from './config/config.js';
import { BindError } from './net/bind-error.js';
import type { ProfileHolder } from './profiles/holder.js';
import type { ProtocolServer } from './protocol.js';
import { hostPort } from './start-lines.js';
import type { Store } from './store/store.js';

export interface Running {
  servers: ProtocolServer[];
  /** Servers left off because their port was not allowed (see StartOptions.offWhenDenied). */
  denied: { server: string; error: BindError }[];
  store: Store;
  profiles: ProfileHolder;
  adminTokenFile: string | undefined;
  stop(): Promise<void>;
}

export interface StartOptions {
  /**
   * Servers that stay off, with a warning, when binding their port is not allowed (EACCES):
   * `serve` names those that run on the embedded defaults, so that a first `npm start` as a
   * normal user serves HTTP. A port the configuration names still fails the start.
   */
  offWhenDenied?: ReadonlySet<string>;
  /** Fakes for tests (sockets, interfaces, clock...); `edgeboot serve` passes none. */
  overrides?: Omit<Overrides, 'log'>;
}

/** Builds edgeboot (compose) and starts HTTP, TFTP and DHCP in that order; all of them or none. */
export async function startServer(config: Config, log: Logger, opts: StartOptions = {}): Promise<Running> {
  const built = await compose(config, { ...opts.overrides, log });
  const servers: ProtocolServer[] = [];
  const denied: Running['denied'] = [];
  try {
    // Nothing half-starts: a server that fails to bind stops the ones already running, unless
    // it may stay off (its port on the embedded defaults, and not allowed to this user).
    for (const s of built.servers) {
      try {
        await s.start();
      } catch (err) {
        if (!(err instanceof BindError && err.code === 'EACCES' && opts.offWhenDenied?.has(s.name))) throw err;
        denied.push({ server: s.name, error: err });
        continue;
      }
      servers.push(s);
    }
  } catch (err) {
    for (const s of servers.reverse()) {
      const listen = s.addresses.map(hostPort);
      await s.stop();
      log.info({ server: s.name, listen }, 'stopped: another server could not start');
    }
    await built.store.close();
    throw err;
  }
  built.precache?.start();
  await built.bmc.start();
  let stopped: Promise<void> | undefined;
  return {
    servers,
    denied,
    store: built.store,
    profiles: built.profiles,
    adminTokenFile: built.adminTokenFile,
    stop() {
      stopped ??= (async () => {
        built.precache?.stop();
        await built.bmc.stop();
        for (const s of [...servers].reverse()) await s.stop();
        await built.cache?.artifacts.close();
        await built.store.close();
      })();
      return stopped;
    },
  };
}
