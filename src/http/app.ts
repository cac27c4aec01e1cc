import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { Ajv } from 'ajv';
import addFormatsModule from 'ajv-formats';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { BootService } from '../boot/service.js';
import type { ArtifactCache } from '../cache/artifacts.js';
import type { CachePins } from '../cache/pins.js';
import type { HubArtifacts } from '../boot/hub-artifacts.js';
import type { Machine, NewEvent } from '../machines/model.js';
import type { MachineService } from '../machines/service.js';
import type { ProfileSet } from '../profiles/profile.js';
import type { Store } from '../store/store.js';
import { baseUrlOf } from './base-url.js';
import { redactSecrets } from '../secrets/redact.js';
import { installErrorHandling } from './errors.js';
import { installJsonBodyParsers } from './json-body.js';
import { installReplyRedaction } from './redact-replies.js';
import type { AssetLimits } from './artifact-responder.js';
import { assetRoutes } from './routes/assets.js';
import type { AssetServed } from './served.js';
import { registryRoutes } from './routes/registry.js';
import type { Mirrors } from '../registry/build.js';
import type { ImagePuller } from '../registry/puller.js';
import { imageRoutes } from './routes/images.js';
import { bundleRoutes } from './routes/bundles.js';
import { precacheRoutes } from './routes/precache.js';
import type { PrecacheService } from '../precache/service.js';
import type { BundleBuilder } from '../precache/bundles.js';
import { bootRoutes } from './routes/boot.js';
import { cacheRoutes } from './routes/cache.js';
import { healthRoutes } from './routes/health.js';
import { machineRoutes } from './routes/machines.js';
import { profileRoutes } from './routes/profiles.js';
import { metricsRoutes } from './routes/metrics.js';
import { ipxeBinRoutes } from './routes/ipxe-bin.js';
import { bmcRoutes } from './routes/bmc.js';
import type { BmcService } from '../bmc/service.js';
import type { Registry } from 'prom-client';
import { reservationBody, type ReservationBody } from './schemas.js';

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;

export interface AppDeps {
  store: Store;
  machines: MachineService;
  boot: BootService;
  profiles: () => ProfileSet;
  adminTokens: readonly string[];
  advertiseAddress: string;
  httpPort: number;
  log: Logger;
  metrics?: Registry;
  /** TFTP roots, served read-only under /ipxe-bin/ for UEFI HTTP Boot. */
  ipxeRoots?: readonly string[];
  /**
   * Puts an event on the timeline of the machine at a client address, when one is known there
   * (entry scripts and artifacts are fetched by address, not by MAC).
   */
  recordAt?: (address: string, event: NewEvent) => void;
  /** The artifact cache remote artifacts are served through. */
  artifacts?: ArtifactCache;
  /** The ids of the artifacts rewritten hub scripts name (`/assets/hub/<id>/<name>`). */
  hubArtifacts?: Pick<HubArtifacts, 'registered'>;
  /** The entries an admin pinned (with `artifacts`). */
  cachePins?: CachePins;
  /** cache.maxBytes, as GET /api/v1/cache reports it. */
  cacheMaxBytes?: number;
  /** Boot-storm admission for large artifacts and the per-client rate cap (cache.maxTransfers, largeBytes, retryAfterSeconds, clientRate). */
  admission?: AssetLimits;
  /** The read-only registry mirror at /v2/ (needs `artifacts`). */
  registry?: { mirrors: Mirrors; puller: ImagePuller; readTokens: readonly string[]; bundles?: BundleBuilder };
  /** The precache job's endpoints: inventory, plan, result. */
  precache?: PrecacheService;
  /** Seals a BMC password a reservation body gives, for the record (the server's SealedBox). */
  sealBmcPassword: (plain: string) => string;
  /** Provisioning and power through machines' BMCs; told of each saved reservation (its inventory read). */
  bmc?: BmcService;
}

export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  // Typed as Fastify's logger, so the app is the FastifyInstance its plugins and callers take (pino's Logger would make it another).
  const loggerInstance: FastifyBaseLogger = deps.log;
  const app = Fastify({
    loggerInstance,
    // One line per request of our own (onResponse below), with secrets taken out of the URL.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 1024 * 1024,
    // Registry paths name an upstream and a repository before the digest: well over 100 characters.
    routerOptions: { maxParamLength: 1024 },
    ajv: { customOptions: { removeAdditional: false, allErrors: true }, plugins: [addFormats as never] },
  });
  installErrorHandling(app);
  installReplyRedaction(app);
  installJsonBodyParsers(app);
  app.addHook('onResponse', async (req, reply) => {
    req.log.debug({ method: req.method, url: redactSecrets(req.url), status: reply.statusCode, ms: Math.round(reply.elapsedTime) }, 'request');
  });

  await app.register(swagger, {
    openapi: {
      info: { title: 'edgeboot', description: 'PXE/iPXE provisioning server: machines, profiles, boot scripts', version: '1' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });

  const baseUrl = (req: FastifyRequest) => baseUrlOf(req, deps.advertiseAddress, deps.httpPort);
  const checker = new Ajv({ allErrors: true, strict: false });
  addFormats(checker);
  const checkReservation = checker.compile<ReservationBody>(reservationBody);

  await app.register(healthRoutes, { store: deps.store, profiles: deps.profiles });
  const recordAt = deps.recordAt;
  await app.register(bootRoutes, {
    boot: deps.boot,
    baseUrl,
    ...(recordAt && { onEntryScript: (address: string) => recordAt(address, { type: 'entry-script-served', source: 'http', data: { client: address } }) }),
  });
  await app.register(assetRoutes, {
    profiles: deps.profiles,
    ...(deps.artifacts && { cache: deps.artifacts }),
    ...(deps.hubArtifacts && { hubArtifacts: deps.hubArtifacts }),
    ...(deps.admission && { admission: deps.admission }),
    ...(recordAt && { onServed: (a: AssetServed) => recordAt(a.client, assetEvent(a)) }),
  });
  await app.register(machineRoutes, {
    machines: deps.machines,
    boot: deps.boot,
    adminTokens: deps.adminTokens,
    baseUrl,
    checkReservation: (doc) => (checkReservation(doc) ? { body: doc } : { problem: checker.errorsText(checkReservation.errors, { dataVar: 'machine' }) }),
    sealBmcPassword: deps.sealBmcPassword,
    ...((deps.precache ?? deps.bmc) && {
      onSaved: async (m: Machine) => {
        await deps.precache?.prepare(m);
        deps.bmc?.onSaved(m);
      },
    }),
  });
  if (deps.bmc) await app.register(bmcRoutes, { bmc: deps.bmc, adminTokens: deps.adminTokens });
  if (deps.precache) await app.register(precacheRoutes, { precache: deps.precache, boot: deps.boot, adminTokens: deps.adminTokens, baseUrl });
  await app.register(profileRoutes, { profiles: deps.profiles, adminTokens: deps.adminTokens });
  if (deps.artifacts && deps.cachePins) {
    await app.register(cacheRoutes, { cache: deps.artifacts, pins: deps.cachePins, adminTokens: deps.adminTokens, maxBytes: deps.cacheMaxBytes ?? 0 });
  }
  if (deps.metrics) await app.register(metricsRoutes, { registry: deps.metrics });
  if (deps.ipxeRoots) await app.register(ipxeBinRoutes, { roots: deps.ipxeRoots });
  if (deps.registry && deps.artifacts) {
    const { mirrors } = deps.registry;
    await app.register(registryRoutes, {
      mirror: mirrors.mirror,
      readTokens: deps.registry.readTokens,
      cache: deps.artifacts,
      ...(deps.admission && { admission: deps.admission }),
    });
    await app.register(imageRoutes, { puller: deps.registry.puller, mirrors, adminTokens: deps.adminTokens });
    if (deps.registry.bundles) {
      await app.register(bundleRoutes, {
        bundles: deps.registry.bundles,
        cache: deps.artifacts,
        adminTokens: deps.adminTokens,
        denied: (refs: readonly string[]) => mirrors.denied(refs),
        ...(deps.admission && { admission: deps.admission }),
        ...(recordAt && { onServed: (a: AssetServed) => recordAt(a.client, assetEvent(a)) }),
      });
    }
  }
  return app;
}

/** An artifact response on the timeline: `asset-served`, or `asset-failed` for an error status. */
function assetEvent(a: AssetServed): NewEvent {
  const { client, ...data } = a;
  const what = `${a.profile}/${a.artifact}: ${a.method} ${a.status}${a.range ? ` (${a.range})` : ''}, ${a.bytes} bytes in ${a.durationMs} ms`;
  return { type: a.status < 400 ? 'asset-served' : 'asset-failed', source: 'http', message: what, data: { ...data, client } };
}
