/**
 * The BMC service's tests: the whole app (startTestApp) with its BMC timers running, Redfish
 * emulators (test/helpers/redfish) as the machines' BMCs, every answer and log line kept so a
 * test can grep them for the password, and the requests a machine and an admin make.
 */
import type { LightMyRequestResponse } from 'fastify';
import { Writable } from 'node:stream';
import { createLogger } from '../../src/log.js';
import type { Teardown } from './process.js';
import { startRedfishEmulator, type EmulatorOptions, type RedfishEmulator } from './redfish/emulator.js';
import { testApp, type EventBody, type TestApp } from './app.js';

/** Distinctive, so that a grep finds it wherever it leaked. */
export const BMC_PASSWORD = 'zt-Pa55w0rd-c4f1e9b7';
export const BMC_USER = 'root';
/** Where machines reach edgeboot in these tests (the Host of their boot requests). */
export const HOST = '10.77.0.2:8080';
const HUB = 'https://hub.example.com/api/assisted-install/v2/infra-envs/1234/downloads/files?file_name=ipxe-script&api_key=abc.def';

export interface BmcLab {
  ta: TestApp;
  /** Every answer body the lab's requests got, in order. */
  answers: string[];
  /** Everything the server logged. */
  logText(): string;
  inject(method: 'GET' | 'PUT' | 'POST' | 'PATCH', url: string, payload?: unknown): Promise<LightMyRequestResponse>;
  /** A machine at `ip` registered with the precache-assisted flow and the emulator as its BMC; the answer. */
  register(mac: string, ip: string, emu: RedfishEmulator, bmc?: Record<string, unknown>): Promise<LightMyRequestResponse>;
  /** `/ipxe` for the MAC from the machine's own address. */
  ipxe(mac: string, ip: string): Promise<LightMyRequestResponse>;
  events(mac: string): Promise<EventBody[]>;
  /** An emulator closed at the end of the test (closing twice is harmless). */
  emulator(o?: EmulatorOptions): Promise<RedfishEmulator>;
}

export async function bmcLab(t: Teardown, bmc: Record<string, unknown> = {}, extra: { now?: () => Date } = {}): Promise<BmcLab> {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  const ta = await testApp(t, {
    config: { bmc: { bootTimeoutSeconds: 5, pollSeconds: 5, maxRetries: 1, requestTimeoutSeconds: 2, ...bmc } },
    log: createLogger('debug', sink),
    bmc: true,
    ...(extra.now && { now: extra.now }),
  });
  const answers: string[] = [];
  const inject = async (method: 'GET' | 'PUT' | 'POST' | 'PATCH', url: string, payload?: unknown): Promise<LightMyRequestResponse> => {
    const res = await ta.app.inject({ method, url, headers: { ...ta.auth, host: HOST }, ...(payload !== undefined && { payload: payload as object }) });
    answers.push(res.body);
    return res;
  };
  return {
    ta,
    answers,
    logText: () => lines.join(''),
    inject,
    register: (mac, ip, emu, more = {}) =>
      inject('PUT', `/api/v1/machines/${mac}`, {
        profile: 'precache-assisted',
        assisted: { ipxeScriptUrl: HUB },
        ip,
        bmc: { address: emu.address, username: BMC_USER, password: BMC_PASSWORD, ...more },
      }),
    ipxe: async (mac, ip) => {
      const res = await ta.app.inject({ method: 'GET', url: `/ipxe?mac=${mac.replaceAll(':', '-')}`, headers: { host: HOST }, remoteAddress: ip });
      answers.push(res.body);
      return res;
    },
    events: async (mac) => {
      const res = await inject('GET', `/api/v1/machines/${mac}/events?limit=5000`);
      if (res.statusCode !== 200) throw new Error(`events of ${mac}: ${res.statusCode} ${res.body}`);
      return res.json<{ events: EventBody[] }>().events;
    },
    emulator: async (o = {}) => {
      const emu = await startRedfishEmulator({ username: BMC_USER, password: BMC_PASSWORD, transitionMs: 50, ...o });
      t.teardown(() => emu.close());
      return emu;
    },
  };
}

/** Asks `probe` every 50 ms until it answers something, for at most `ms`. */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, ms = 5000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The types of the bmc- events, in order. */
export const bmcTypes = (events: EventBody[]): string[] => events.filter((e) => e.type.startsWith('bmc-')).map((e) => e.type);
