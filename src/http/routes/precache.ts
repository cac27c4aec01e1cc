import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import type { BootService } from '../../boot/service.js';
import type { PrecacheService } from '../../precache/service.js';
import { machineCaller } from '../auth.js';
import { errors, machineResponse, macParams } from '../schemas.js';
import { machineView } from '../machine-view.js';
import { macOf } from '../checks.js';

export interface PrecacheRoutesOptions {
  precache: PrecacheService;
  boot: BootService;
  adminTokens: readonly string[];
  baseUrl: (req: FastifyRequest) => string;
}

const tags = ['precache'];
const opt = Type.Optional;
const token = Type.Object({ token: opt(Type.String({ maxLength: 64 })) });
const text = (maxLength: number) => Type.String({ maxLength });
const STEP = '^[a-z][a-z0-9-]{0,31}$';

const inventoryBody = Type.Object(
  {
    disks: Type.Array(
      Type.Object(
        {
          path: Type.String({ pattern: '^/dev/[A-Za-z0-9._/:-]{1,200}$' }),
          name: Type.String({ pattern: '^[A-Za-z0-9._:!-]{1,64}$' }),
          sizeBytes: Type.Integer({ minimum: 0 }),
          type: Type.String({ pattern: '^[a-z0-9]{1,16}$' }),
          removable: Type.Boolean(),
          readOnly: Type.Boolean(),
          model: opt(text(128)),
          serial: opt(text(128)),
          transport: opt(text(32)),
        },
        { additionalProperties: false },
      ),
      { maxItems: 256 },
    ),
    macs: Type.Array(Type.String({ pattern: '^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5,19}$' }), { maxItems: 64 }),
    memoryBytes: opt(Type.Integer({ minimum: 0 })),
    cpus: opt(Type.Integer({ minimum: 0, maximum: 65536 })),
    serial: opt(text(64)),
  },
  { additionalProperties: false },
);

const planFile = {
  type: 'object',
  properties: { name: { type: 'string' }, size: { type: 'integer' }, sha256: { type: 'string' }, url: { type: 'string' } },
} as const;
const planResponse = {
  type: 'object',
  properties: {
    disk: { type: 'string' },
    requiredBytes: { type: 'integer' },
    partition: {
      type: 'object',
      properties: { number: { type: 'integer' }, label: { type: 'string' }, sizeGiB: { type: 'integer' }, filesystem: { type: 'string' } },
    },
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
export const precacheRoutes: FastifyPluginAsyncTypebox<PrecacheRoutesOptions> = async (app, { precache, boot, adminTokens, baseUrl }) => {
  // The machine's token of its current boot only (boot/tokens.ts): one from an earlier boot is refused.
  const caller = async (req: FastifyRequest, params: { mac: string }) => {
    const mac = macOf(params.mac);
    return { mac, source: machineCaller(req, adminTokens, await boot.eventsTokenCheck(mac)) };
  };

  app.post(
    '/api/v1/machines/:mac/inventory',
    {
      bodyLimit: 256 * 1024,
      schema: {
        summary: "The machine's inventory, as its live environment found it",
        tags,
        params: macParams,
        querystring: token,
        body: inventoryBody,
        response: errors(400, 401, 404),
      },
    },
    async (req) => {
      const { mac, source } = await caller(req, req.params);
      const inventory = await precache.inventory(mac, req.body, source);
      req.log.info({ mac, disks: inventory.disks.length }, 'inventory reported');
      return { inventory };
    },
  );

  app.get(
    '/api/v1/machines/:mac/plan',
    {
      schema: {
        summary: "The machine's precache plan: disk, partition, bundle files with sizes and sha256",
        tags,
        params: macParams,
        querystring: token,
        response: { 200: planResponse, ...errors(401, 404, 409, 503) },
      },
    },
    async (req) => {
      const { mac, source } = await caller(req, req.params);
      const base = baseUrl(req);
      const plan = await precache.plan(mac, (bundle, file) => `${base}/bundles/${bundle}/${encodeURIComponent(file)}`, source);
      req.log.info({ mac, disk: plan.disk, bundle: plan.bundle.id, files: plan.files.length }, 'precache plan served');
      return plan;
    },
  );

  app.post(
    '/api/v1/machines/:mac/result',
    {
      bodyLimit: 64 * 1024,
      schema: {
        summary: "The precache job's result: ok moves the machine to precached, else to failed with the step and message",
        tags,
        params: macParams,
        querystring: token,
        body: Type.Object(
          {
            ok: Type.Boolean(),
            step: opt(Type.String({ pattern: STEP })),
            message: opt(text(4096)),
            data: opt(Type.Unsafe<Record<string, unknown>>({ type: 'object', additionalProperties: true, maxProperties: 64 })),
          },
          { additionalProperties: false },
        ),
        response: { 200: machineResponse, ...errors(400, 401, 404, 409) },
      },
    },
    async (req) => {
      const { mac, source } = await caller(req, req.params);
      const m = await precache.result(mac, req.body, source);
      req.log.info({ mac, ok: req.body.ok, step: req.body.step, state: m.state }, 'precache result');
      return machineView(m);
    },
  );
};
