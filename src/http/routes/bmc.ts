import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { BmcService } from '../../bmc/service.js';
import { POWER_ACTIONS } from '../../machines/bmc.js';
import { clientAddress } from '../artifact-responder.js';
import { requireAdmin } from '../auth.js';
import { macOf } from '../checks.js';
import { machineView } from '../machine-view.js';
import { errors, machineResponse, macParams, oneOf } from '../schemas.js';

export interface BmcRoutesOptions {
  bmc: BmcService;
  adminTokens: readonly string[];
}

const opt = Type.Optional;
const tags = ['machines'];
const security = [{ bearer: [] }];
const text = Type.String();

/** The override as the BMC kept it after the read-back. */
const overrideResponse = Type.Object({
  target: text,
  mode: opt(Type.String({ description: 'the BootSourceOverrideMode sent; absent when left out (unsupported, or bootMode auto)' })),
  attempts: Type.Integer({ description: 'PATCHes sent: 2 when the BMC reverted the first (Supermicro)' }),
  kept: Type.Object({ target: opt(text), enabled: opt(text), mode: opt(text), httpBootUri: opt(text) }),
});

const powerResponse = Type.Object({
  action: text,
  resetTypes: Type.Array(text, { description: 'the ResetTypes sent, in order (a fallback sends two)' }),
  powerBefore: opt(text),
  busyRetries: Type.Integer({ description: 'requests the BMC answered 409 (busy) and that were sent again' }),
});

export const bmcRoutes: FastifyPluginAsyncTypebox<BmcRoutesOptions> = async (app, { bmc, adminTokens }) => {
  const admin = requireAdmin(adminTokens);

  app.post(
    '/api/v1/machines/:mac/provision',
    {
      onRequest: admin,
      schema: {
        summary:
          'Zero touch: set a one-time network boot through the BMC and power the machine on (or restart it); ' +
          'edgeboot then follows it until it asks /ipxe, power-cycling again up to bmc.maxRetries',
        tags,
        security,
        params: macParams,
        response: { 200: Type.Object({ machine: machineResponse, override: overrideResponse, power: powerResponse }), ...errors(400, 401, 404, 409, 502) },
      },
    },
    async (req) => {
      const by = { actor: 'admin', client: clientAddress(req) };
      const done = await bmc.provision(macOf(req.params.mac), by);
      return { machine: machineView(done.machine), override: done.override, power: done.power };
    },
  );

  app.get(
    '/api/v1/machines/:mac/provision',
    {
      onRequest: admin,
      schema: {
        summary: "Where the machine's provisioning run stands: powered (waiting for /ipxe until deadlineAt), booted or failed",
        tags,
        security,
        params: macParams,
        response: {
          200: Type.Object({
            mac: text,
            state: text,
            run: opt(Type.Object({ phase: oneOf(['powered', 'booted', 'failed']), attempts: Type.Integer(), startedAt: text, deadlineAt: opt(text) })),
          }),
          ...errors(400, 401, 404),
        },
      },
    },
    async (req) => {
      const m = await bmc.machine(macOf(req.params.mac));
      return { mac: m.mac, state: m.state, ...(m.bmcRun && { run: m.bmcRun }) };
    },
  );

  app.post(
    '/api/v1/machines/:mac/power',
    {
      onRequest: admin,
      schema: {
        summary: "Power through the machine's BMC: on, off, restart, or pxe-once (a one-time network boot, the power left as it is)",
        tags,
        security,
        params: macParams,
        body: Type.Object({ action: oneOf(POWER_ACTIONS) }, { additionalProperties: false }),
        response: {
          200: Type.Object({
            machine: machineResponse,
            action: text,
            override: opt(overrideResponse),
            power: opt(powerResponse),
            powerState: opt(Type.String({ description: "the BMC's PowerState read after the action" })),
          }),
          ...errors(400, 401, 404, 409, 502),
        },
      },
    },
    async (req) => {
      const by = { actor: 'admin', client: clientAddress(req) };
      const done = await bmc.power(macOf(req.params.mac), req.body.action, by);
      req.log.info({ mac: done.machine.mac, action: done.action, powerState: done.powerState, client: by.client }, 'BMC power action');
      return { ...done, machine: machineView(done.machine) };
    },
  );

  app.post(
    '/api/v1/machines/provision',
    {
      onRequest: admin,
      schema: {
        summary:
          'Provision many machines in the background, at most bmc.parallel BMC sessions at a time: those named, and/or every registered one; ' +
          "each one's outcome goes on its timeline",
        tags,
        security,
        body: Type.Object(
          {
            macs: opt(Type.Array(Type.String({ maxLength: 32 }), { maxItems: 10000 })),
            allRegistered: opt(Type.Boolean({ description: 'every machine in state registered' })),
          },
          { additionalProperties: false },
        ),
        response: {
          202: Type.Object({ accepted: Type.Array(text), skipped: Type.Array(Type.Object({ mac: text, reason: text })) }),
          ...errors(400, 401),
        },
      },
    },
    async (req, reply) => {
      const by = { actor: 'admin', client: clientAddress(req) };
      const macs = (req.body.macs ?? []).map(macOf);
      const result = await bmc.provisionMany({ macs, allRegistered: req.body.allRegistered === true }, by);
      return reply.code(202).send(result);
    },
  );
};
