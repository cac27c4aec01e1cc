import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { BootService } from '../../boot/service.js';
import type { PrecacheService } from '../../precache/service.js';
import type { DiskInfo } from '../../machines/model.js';
import { machineCaller } from '../auth.js';
import { errors, machineResponse, macParams } from '../schemas.js';
import { macOf } from '../checks.js';

export interface PrecacheRoutesOptions {
  precache: PrecacheService;
  boot: BootService;
  adminTokens: readonly string[];
  baseUrl: (req: FastifyRequest) => string;
}

interface MacParams {
  mac: string;
}
interface InventoryBody {
  disks: DiskInfo[];
  macs: string[];
  memoryBytes?: number;
  cpus?: number;
  serial?: string;
}
interface ResultBody {
  ok: boolean;
  step?: string;
  message?: string;
  data?: Record<string, unknown>;
}

const tags = ['precache'];
const token = { type: 'object', properties: { token: { type: 'string', maxLength: 64 } } } as const;
const text = (maxLength: number) => ({ type: 'string', maxLength }) as const;
const STEP = '^[a-z][a-z0-9-]{0,31}$';

const inventoryBody = {
  type: 'object',
  additionalProperties: false,
  required: ['disks', 'macs'],
  properties: {
    disks: {
      type: 'array',
      maxItems: 256,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['path', 'name', 'sizeBytes', 'type', 'removable', 'readOnly'],
        properties: {
          path: { type: 'string', pattern: '^/dev/[A-Za-z0-9._/:-]{1,200}$' },
          name: { type: 'string', pattern: '^[A-Za-z0-9._:!-]{1,64}$' },
          sizeBytes: { type: 'integer', minimum: 0 },
          type: { type: 'string', pattern: '^[a-z0-9]{1,16}$' },
          removable: { type: 'boolean' },
          readOnly: { type: 'boolean' },
          model: text(128),
          serial: text(128),
          transport: text(32),
        },
      },
    },
    macs: { type: 'array', maxItems: 64, items: { type: 'string', pattern: '^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5,19}$' } },
    memoryBytes: { type: 'integer', minimum: 0 },
    cpus: { type: 'integer', minimum: 0, maximum: 65536 },
    serial: text(64),
  },
} as const;

const planFile = { type: 'object', properties: { name: { type: 'string' }, size: { type: 'integer' }, sha256: { type: 'string' }, url: { type: 'string' } } } as const;
const planResponse = {
  type: 'object',
  properties: {
    disk: { type: 'string' },
    requiredBytes: { type: 'integer' },
    partition: { type: 'object', properties: { number: { type: 'integer' }, label: { type: 'string' }, sizeGiB: { type: 'integer' }, filesystem: { type: 'string' } } },
    bundle: { type: 'object', properties: { id: { type: 'string' }, bytes: { type: 'integer' } } },
    files: { type: 'array', items: planFile },
    after: { type: 'string' },
    progressSeconds: { type: 'integer' },
  },
} as const;

/**
 * What the precache live environment's job calls, as the machine (its events token) or an
 * admin: its inventory, its plan (503 with Retry-After while the bundle builds; 409 when no
 * plan can be made, the machine then failed with the reason) and its result. Progress goes to
 * `POST …/events` as `precache-progress`.
 */
export const precacheRoutes: FastifyPluginAsync<PrecacheRoutesOptions> = async (app, { precache, boot, adminTokens, baseUrl }) => {
  // The machine's token of its current boot only (boot/tokens.ts): one from an earlier boot is refused.
  const caller = async (req: FastifyRequest<{ Params: MacParams }>) => {
    const mac = macOf(req.params.mac);
    return { mac, source: machineCaller(req, adminTokens, await boot.eventsTokenCheck(mac)) };
  };

  app.post<{ Params: MacParams; Body: InventoryBody }>(
    '/api/v1/machines/:mac/inventory',
    {
      bodyLimit: 256 * 1024,
      schema: { summary: "The machine's inventory, as its live environment found it", tags, params: macParams, querystring: token, body: inventoryBody, response: errors(400, 401, 404) },
    },
    async (req) => {
      const { mac, source } = await caller(req);
      const inventory = await precache.inventory(mac, req.body, source);
      req.log.info({ mac, disks: inventory.disks.length }, 'inventory reported');
      return { inventory };
    },
  );

  app.get<{ Params: MacParams }>(
    '/api/v1/machines/:mac/plan',
    { schema: { summary: "The machine's precache plan: disk, partition, bundle files with sizes and sha256", tags, params: macParams, querystring: token, response: { 200: planResponse, ...errors(401, 404, 409, 503) } } },
    async (req) => {
      const { mac, source } = await caller(req);
      const base = baseUrl(req);
      const plan = await precache.plan(mac, (bundle, file) => `${base}/bundles/${bundle}/${encodeURIComponent(file)}`, source);
      req.log.info({ mac, disk: plan.disk, bundle: plan.bundle.id, files: plan.files.length }, 'precache plan served');
      return plan;
    },
  );

  app.post<{ Params: MacParams; Body: ResultBody }>(
    '/api/v1/machines/:mac/result',
    {
      bodyLimit: 64 * 1024,
      schema: {
        summary: 'The precache job\'s result: ok moves the machine to precached, else to failed with the step and message',
        tags,
        params: macParams,
        querystring: token,
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['ok'],
          properties: { ok: { type: 'boolean' }, step: { type: 'string', pattern: STEP }, message: text(4096), data: { type: 'object', additionalProperties: true, maxProperties: 64 } },
        },
        response: { 200: machineResponse, ...errors(400, 401, 404, 409) },
      },
    },
    async (req) => {
      const { mac, source } = await caller(req);
      const m = await precache.result(mac, req.body, source);
      req.log.info({ mac, ok: req.body.ok, step: req.body.step, state: m.state }, 'precache result');
      return m;
    },
  );
};
