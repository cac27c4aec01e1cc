/**
 * A Redfish BMC emulator (DSP0266 protocol, DSP0268 schemas) for the tests: one ComputerSystem
 * behind a service root, Systems, Managers, Chassis, SessionService (X-Auth-Token sessions; Basic
 * accepted too), TaskService task monitors, ETags, Redfish error bodies, and the vendor quirks of
 * profiles.ts. Proven against real clients (redfishtool, python3-sushy) by
 * test/integration/redfish-emulator.test.ts.
 *
 * `close()` stops answering (connections refused: the unreachable BMC); the PowerDriver passed in
 * stays the caller's to close.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, unlinkSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { failure, notFound, unauthorized, type RedfishFailure } from './errors.js';
import { isRecord, readJson, sendFailure, type Body } from './http.js';
import { TimerPower, type PowerDriver } from './power.js';
import { profile as profileOf, type VendorProfile } from './profiles.js';
import type * as doc from './resources.js';
import { buildRoutes, header, isMethod, type RequestAuth } from './routes.js';
import { SessionCounter, SessionStore } from './sessions.js';
import { EmulatedSystem, type BootRecord } from './system.js';
import { TaskStore } from './tasks.js';

export { selfSignedCert } from './cert.js';
export { TimerPower, type PowerDriver } from './power.js';
export { SessionCounter } from './sessions.js';
export type { VendorProfile } from './profiles.js';

export interface EmulatorOptions {
  /** Default generic. */
  profile?: VendorProfile;
  /** Default root / calvin. */
  username?: string;
  password?: string;
  /** Default the profile's: '1' (idrac: 'System.Embedded.1', ami: 'Self'). */
  systemId?: string;
  /** The system's NICs (EthernetInterfaces); default one random 52:54:00 MAC. */
  macs?: string[];
  uuid?: string;
  serial?: string;
  model?: string;
  manufacturer?: string;
  /** Initial, default Off. */
  powerState?: 'On' | 'Off';
  /** How long PoweringOn/PoweringOff lasts (409 to resets meanwhile); default 200. */
  transitionMs?: number;
  /** Added to every answer; default 0. */
  latencyMs?: number;
  /** Serve HTTPS with this key and certificate (PEM); see selfSignedCert. */
  tls?: { key: string; cert: string };
  /** How power changes are carried out; default TimerPower (no VM). */
  power?: PowerDriver;
  /** Default 127.0.0.1 port 0; path: a unix socket. */
  listen?: { port?: number; host?: string } | { path: string };
  /** Shared across emulators (the benchmark: sessions open at once across many BMCs). */
  counter?: SessionCounter;
  /** Offer SessionService; default true (false: Basic only). */
  sessionService?: boolean;
  /** Each boot start. */
  onBoot?: (b: BootRecord) => void;
  /** ResetType@Redfish.AllowableValues instead of the profile's (e.g. without ForceRestart, to exercise a client's fallback). */
  resetTypes?: string[];
  /** BootSourceOverrideTarget@Redfish.AllowableValues instead of the profile's (e.g. without UefiHttp). */
  bootTargets?: string[];
  /** false: the Boot object has no BootSourceOverrideMode (older BMCs). Default true. */
  modeSupported?: boolean;
}

export type { RequestAuth } from './routes.js';

export interface RequestRecord {
  method: string;
  path: string;
  status: number;
  auth: RequestAuth;
  at: number;
  /** The JSON body sent, a session login's Password replaced by "***". */
  body?: unknown;
}

export interface RedfishEmulator {
  /** http(s)://127.0.0.1:PORT, or http://unix on a socket. */
  url: string;
  /** What a reservation's bmc.address is: redfish+http://127.0.0.1:PORT, or redfish://… with TLS. */
  address: string;
  port: number;
  system(): { powerState: string; boot: { target: string; enabled: string; mode?: string; httpBootUri?: string }; etag: string };
  /** Every boot start, in order. */
  boots: BootRecord[];
  /** Every request, in order, with the status answered. */
  requests: RequestRecord[];
  counter: SessionCounter;
  /** The machine reboots by itself (as a live environment's `reboot` would): a new boot consumes a Once override. */
  guestReboot(): void;
  /** The machine powers itself off: Off at once. */
  guestPowerOff(): void;
  /** Stop answering (connections refused from now on): the unreachable BMC. */
  close(): Promise<void>;
}

function randomMac(): string {
  return ['52', '54', '00', ...[...randomBytes(3)].map((b) => b.toString(16).padStart(2, '0'))].join(':');
}

export async function startRedfishEmulator(o: EmulatorOptions = {}): Promise<RedfishEmulator> {
  const profile = profileOf(o.profile ?? 'generic');
  const username = o.username ?? 'root';
  const password = o.password ?? 'calvin';
  const transitionMs = o.transitionMs ?? 200;
  const counter = o.counter ?? new SessionCounter();
  const sessions = new SessionStore(counter);
  const sessionService = o.sessionService ?? true;
  const tasks = new TaskStore(profile.taskIdPrefix);
  const bootTargets = o.bootTargets ?? profile.bootTargets;
  const resetTypes = o.resetTypes ?? profile.resetTypes;
  const modeSupported = o.modeSupported ?? true;
  const driver = o.power ?? new TimerPower();
  const sys = new EmulatedSystem({
    profile,
    transitionMs,
    powerState: o.powerState ?? 'Off',
    driver,
    bootTargets,
    resetTypes,
    modeSupported,
    ...(o.onBoot === undefined ? {} : { onBoot: o.onBoot }),
  });
  const fixed = {
    profile,
    serviceUuid: randomUUID(),
    systemId: o.systemId ?? profile.systemId,
    managerId: profile.managerId,
    uuid: o.uuid ?? randomUUID(),
    serial: o.serial ?? randomBytes(4).toString('hex').toUpperCase(),
    model: o.model ?? profile.model,
    manufacturer: o.manufacturer ?? profile.manufacturer,
    macs: o.macs ?? [randomMac()],
    bootTargets,
    resetTypes,
    modeSupported,
    sessionService,
  };
  const view = (): doc.View => ({ ...fixed, powerState: sys.power.state, boot: sys.boot, etag: sys.etag, inPost: sys.inPost });
  const requests: RequestRecord[] = [];

  const routes = buildRoutes({ view, sys, sessions, tasks, profile, transitionMs, username, password, sessionService });

  function authenticate(req: IncomingMessage): RequestAuth | undefined {
    const token = header(req, 'x-auth-token');
    if (token !== undefined) return sessionService && sessions.byToken(token) !== undefined ? 'session' : undefined;
    const basic = /^Basic\s+(\S+)$/i.exec(header(req, 'authorization') ?? '');
    if (basic?.[1] === undefined) return 'none';
    const decoded = Buffer.from(basic[1], 'base64').toString('utf8');
    return decoded === `${username}:${password}` ? 'basic' : undefined;
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const at = Date.now();
    const path = normalize(req.url ?? '/');
    const method = req.method === 'HEAD' ? 'GET' : (req.method ?? 'GET');
    const verdict = authenticate(req);
    const auth = verdict ?? 'none';
    const parsed = await readJson(req);
    const record: RequestRecord = {
      method: req.method ?? 'GET',
      path,
      status: 0,
      auth,
      at,
      ...(parsed.ok && parsed.value !== undefined ? { body: redact(parsed.value) } : {}),
    };
    requests.push(record);
    res.on('finish', () => (record.status = res.statusCode));
    if (o.latencyMs) await new Promise((resolve) => setTimeout(resolve, o.latencyMs));
    const refused = dispatch(req, res, path, method, verdict, parsed);
    if (refused !== undefined) sendFailure(res, refused);
  }

  /** Runs the route's handler, or answers why not (401, 404, 405, a malformed body). */
  function dispatch(
    req: IncomingMessage,
    res: ServerResponse,
    path: string,
    method: string,
    verdict: RequestAuth | undefined,
    parsed: Body,
  ): RedfishFailure | undefined {
    const route = routes.find((r) => r.pattern.test(path));
    // Credentials first, as BMCs do: an unknown path without them is a 401, not a 404.
    if (route?.open !== method && (verdict === undefined || verdict === 'none')) return unauthorized();
    if (route === undefined) return notFound(path);
    const handler = isMethod(method) ? route.methods[method] : undefined;
    if (handler === undefined)
      return failure(405, 'Base.1.8.OperationNotAllowed', `The HTTP method ${method} is not allowed on ${path}.`, {
        Allow: Object.keys(route.methods).join(', '),
      });
    if (!parsed.ok) return parsed.failure;
    const params = route.pattern.exec(path)?.slice(1) ?? [];
    handler(
      { req, res, path, auth: verdict ?? 'none', body: parsed.value },
      params.map((p) => decodeURIComponent(p)),
    );
    return undefined;
  }

  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    handle(req, res).catch((err: unknown) => {
      console.error('redfish emulator: request failed:', err);
      if (!res.headersSent) sendFailure(res, failure(500, 'Base.1.8.InternalError', 'The request failed due to an internal service error.'));
    });
  };
  const server: Server = o.tls === undefined ? createHttpServer(onRequest) : createHttpsServer({ key: o.tls.key, cert: o.tls.cert }, onRequest);
  const listen = o.listen ?? {};
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    if ('path' in listen) {
      if (existsSync(listen.path)) unlinkSync(listen.path);
      server.listen(listen.path, resolve);
    } else server.listen(listen.port ?? 0, listen.host ?? '127.0.0.1', resolve);
  });
  const addr = server.address();
  const port = addr !== null && typeof addr === 'object' ? addr.port : 0;
  const host = 'path' in listen ? 'unix' : `${listen.host ?? '127.0.0.1'}:${port}`;
  const tls = o.tls !== undefined;

  return {
    url: `${tls ? 'https' : 'http'}://${host}`,
    address: `${tls ? 'redfish' : 'redfish+http'}://${host}`,
    port,
    system: () => ({ powerState: sys.power.state, boot: { ...sys.boot }, etag: sys.etag }),
    boots: sys.boots,
    requests,
    counter,
    guestReboot: () => sys.power.guestReboot(),
    guestPowerOff: () => {
      if (sys.power.state === 'Off') return;
      sys.power.guestPoweredOff();
      driver.off().catch((err: unknown) => console.error('redfish emulator: power driver off failed:', err));
    },
    close: async () => {
      sys.power.close();
      sessions.clear();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

/** The path without query and without a trailing slash (/redfish/v1/ is /redfish/v1). */
function normalize(url: string): string {
  const path = url.split('?')[0] ?? '/';
  return path.length > 1 ? path.replace(/\/+$/, '') : path;
}

function redact(body: unknown): unknown {
  return isRecord(body) && 'Password' in body ? { ...body, Password: '***' } : body;
}
