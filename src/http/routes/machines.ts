import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import type { BootService } from '../../boot/service.js';
import { ApiError } from '../errors.js';
import { macHyphenated, parseMac } from '../../machines/mac.js';
import type { Machine } from '../../machines/model.js';
import type { MachineService } from '../../machines/service.js';
import { MACHINE_STATES } from '../../machines/state.js';
import { machineCaller, requireAdmin } from '../auth.js';
import {
  errors,
  eventBody,
  eventResponse,
  labelSelector,
  machineResponse,
  macParams,
  noContent,
  oneOf,
  reservationBody,
  scriptPreviewResponse,
  type ReservationBody,
} from '../schemas.js';
import { clientAddress } from '../artifact-responder.js';
import { macOf } from '../checks.js';
import { mergePatch, reservationOf, toReservation, type SealPassword } from '../reservation.js';
import { machineView } from '../machine-view.js';

export interface MachineRoutesOptions {
  machines: MachineService;
  boot: BootService;
  adminTokens: readonly string[];
  baseUrl: (req: FastifyRequest) => string;
  /** Validates a merged PATCH document against the PUT schema: the document as a body, or what is wrong with it. */
  checkReservation: (doc: unknown) => { body: ReservationBody } | { problem: string };
  /** Told of every saved reservation: a precache bundle starts building before the machine boots. */
  onSaved?: (m: Machine) => Promise<void>;
  /** Seals a BMC password given in a body, for the record. */
  sealBmcPassword: SealPassword;
}

/** A page of the machine listing when the query names no limit. */
const LIST_LIMIT = 100;
const opt = Type.Optional;
const tags = ['machines'];
const eventList = Type.Object({ events: opt(Type.Array(eventResponse)) });
const security = [{ bearer: [] }];

export const machineRoutes: FastifyPluginAsyncTypebox<MachineRoutesOptions> = async (app, opts) => {
  const { machines, boot, adminTokens } = opts;
  const admin = requireAdmin(adminTokens);

  app.get(
    '/api/v1/machines',
    {
      onRequest: admin,
      schema: {
        summary: 'List machines in MAC order, a page at a time (follow nextCursor), filtered by state, profile and labels (label=key=value, repeatable)',
        tags,
        security,
        querystring: Type.Object(
          {
            state: opt(oneOf(MACHINE_STATES)),
            profile: opt(Type.String({ maxLength: 253 })),
            label: opt(Type.Array(labelSelector, { maxItems: 16 })),
            limit: opt(Type.Integer({ minimum: 1, maximum: 1000, default: LIST_LIMIT })),
            cursor: opt(Type.String({ maxLength: 64, description: 'nextCursor of the previous page, unchanged' })),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({ machines: opt(Type.Array(machineResponse)), nextCursor: opt(Type.String({ description: 'absent on the last page' })) }),
          ...errors(400, 401),
        },
      },
    },
    async (req) => {
      const labels = Object.fromEntries((req.query.label ?? []).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
      const filter = { ...(req.query.state && { state: req.query.state }), ...(req.query.profile !== undefined && { profile: req.query.profile }), labels };
      const page = await machines.list(filter, { limit: req.query.limit ?? LIST_LIMIT, ...(req.query.cursor !== undefined && { cursor: req.query.cursor }) });
      return { ...page, machines: page.machines.map(machineView) };
    },
  );

  app.get(
    '/api/v1/machines/:mac',
    {
      onRequest: admin,
      schema: { summary: 'One machine, by any of its MACs', tags, security, params: macParams, response: { 200: machineResponse, ...errors(400, 401, 404) } },
    },
    async (req) => machineView(await machines.mustGet(macOf(req.params.mac))),
  );

  app.put(
    '/api/v1/machines/:mac',
    {
      onRequest: admin,
      schema: {
        summary: 'Create or replace the reservation of the machine with this primary MAC',
        tags,
        security,
        params: macParams,
        body: reservationBody,
        response: { 200: machineResponse, 201: machineResponse, ...errors(400, 401, 409) },
      },
    },
    async (req, reply) => {
      const mac = macOf(req.params.mac);
      const { machine, created } = await machines.put(toReservation(mac, req.body, await machines.get(mac), opts.sealBmcPassword));
      await opts.onSaved?.(machine);
      req.log.info({ mac: machine.mac, created, profile: machine.profile, state: machine.state }, created ? 'machine created' : 'machine replaced');
      return reply.code(created ? 201 : 200).send(machineView(machine));
    },
  );

  app.patch(
    '/api/v1/machines/:mac',
    {
      onRequest: admin,
      schema: {
        summary: 'Change some fields (JSON merge patch, RFC 7396: null removes a field)',
        tags,
        security,
        params: macParams,
        body: Type.Unsafe<Record<string, unknown>>({ type: 'object' }),
        response: { 200: machineResponse, ...errors(400, 401, 404, 409) },
      },
    },
    async (req) => {
      const cur = await machines.mustGet(macOf(req.params.mac));
      const checked = opts.checkReservation(mergePatch(reservationOf(cur), req.body));
      if ('problem' in checked) throw new ApiError('invalid_request', `invalid patch: ${checked.problem}`, 400);
      const merged = checked.body;
      if (merged.mac !== undefined && parseMac(merged.mac) !== cur.mac) {
        throw new ApiError('invalid_request', `the primary MAC of ${cur.mac} cannot change; DELETE and PUT the machine instead`, 400);
      }
      const { machine } = await machines.put(toReservation(cur.mac, merged, cur, opts.sealBmcPassword));
      await opts.onSaved?.(machine);
      req.log.info({ mac: machine.mac, fields: Object.keys(req.body) }, 'machine patched');
      return machineView(machine);
    },
  );

  app.delete(
    '/api/v1/machines/:mac',
    {
      onRequest: admin,
      schema: { summary: 'Forget a machine and its events', tags, security, params: macParams, response: { 204: noContent, ...errors(400, 401, 404) } },
    },
    async (req, reply) => {
      const mac = macOf(req.params.mac);
      await machines.remove(mac);
      req.log.info({ mac }, 'machine deleted');
      return reply.code(204).send();
    },
  );

  app.post(
    '/api/v1/machines/:mac/reset',
    {
      onRequest: admin,
      schema: {
        summary:
          'Reset a failed or installed machine — or, with force, a machine in any state of its flow — ' +
          'to registered (full redo) or precached (reinstall, keep the partition)',
        tags,
        security,
        params: macParams,
        body: Type.Unsafe<{ to?: 'registered' | 'precached'; force?: boolean } | null>({
          type: ['object', 'null'],
          additionalProperties: false,
          properties: {
            to: oneOf(['registered', 'precached']),
            force: Type.Boolean({ description: "from any state but discovered (a stuck install, say); ends the credentials of the machine's current boot" }),
          },
        }),
        response: { 200: machineResponse, ...errors(400, 401, 404, 409) },
      },
    },
    async (req) => {
      const force = req.body?.force === true;
      const by = { actor: 'admin', client: clientAddress(req) };
      const m = await machines.reset(macOf(req.params.mac), req.body?.to ?? 'registered', by, force);
      req.log.info({ mac: m.mac, state: m.state, force, client: by.client }, force ? 'machine reset (forced)' : 'machine reset');
      return machineView(m);
    },
  );

  app.get(
    '/api/v1/machines/:mac/script',
    {
      onRequest: admin,
      schema: {
        summary:
          'The iPXE script /ipxe would serve the machine now, its secrets cut; nothing moves (no state move, boot count, token or event). ' +
          'format=json adds the decision and the state it would move to',
        tags,
        security,
        params: macParams,
        querystring: Type.Object({ format: opt(oneOf(['text', 'json'], { default: 'text' })) }, { additionalProperties: false }),
        response: {
          200: {
            content: {
              'text/plain': { schema: { type: 'string' } },
              'application/json': { schema: scriptPreviewResponse },
            },
          },
          ...errors(400, 401, 404, 409),
        },
      },
    },
    async (req, reply) => {
      const p = await boot.previewScript(macOf(req.params.mac), opts.baseUrl(req));
      if (req.query.format === 'text') return reply.type('text/plain; charset=utf-8').send(p.script);
      const d = p.decision;
      return reply.type('application/json; charset=utf-8').send({
        mac: p.machine.mac,
        state: p.machine.state,
        ...(p.wouldMoveTo && { wouldMoveTo: p.wouldMoveTo }),
        decision: { kind: d.kind, reason: d.reason, ...(d.kind === 'boot' && { stage: d.stage, profile: d.profile.name, ...(d.hub && { hub: 'rewritten' }) }) },
        script: p.script,
      });
    },
  );

  app.get(
    '/api/v1/machines/:mac/events',
    {
      onRequest: admin,
      schema: {
        summary: 'The timeline of a machine, oldest first (page with after=<last id>)',
        tags,
        security,
        params: macParams,
        querystring: Type.Object(
          { after: opt(Type.Integer({ minimum: 0 })), limit: opt(Type.Integer({ minimum: 1, maximum: 5000 })) },
          { additionalProperties: false },
        ),
        response: { 200: eventList, ...errors(400, 401, 404) },
      },
    },
    async (req) => {
      const m = await machines.mustGet(macOf(req.params.mac));
      return { events: await machines.events(m.mac, { afterId: req.query.after, limit: req.query.limit }) };
    },
  );

  app.post(
    '/api/v1/machines/:mac/events',
    {
      bodyLimit: 64 * 1024,
      schema: {
        summary: 'Post an event: from the machine (its token from {{ machine.eventsUrl }}) or an admin',
        tags,
        params: macParams,
        querystring: Type.Object({ token: opt(Type.String({ maxLength: 64 })) }),
        body: eventBody,
        response: { 201: eventList, ...errors(400, 401, 404, 409) },
      },
    },
    async (req, reply) => {
      const mac = macOf(req.params.mac);
      // The machine's token of its current boot only (boot/tokens.ts): one from an earlier boot is refused.
      const source = machineCaller(req, adminTokens, await boot.eventsTokenCheck(mac));
      const events = await machines.postEvent(mac, req.body, source);
      req.log.info({ mac, type: req.body.type, source }, 'machine event');
      return reply.code(201).send({ events });
    },
  );

  app.get(
    '/api/v1/machines/:mac/boot',
    {
      onRequest: admin,
      schema: {
        summary: 'What hub automation needs: state, what the next boot serves, and the boot URLs',
        tags,
        security,
        params: macParams,
        response: {
          200: Type.Object({
            mac: opt(Type.String()),
            state: opt(Type.String()),
            profile: opt(Type.String()),
            next: opt(Type.Object({ kind: opt(Type.String()), stage: opt(Type.String()), profile: opt(Type.String()), reason: opt(Type.String()) })),
            scriptUrl: opt(Type.String()),
            entryUrl: opt(Type.String()),
            eventsUrl: opt(
              Type.String({
                description:
                  "where the hub, on the machine's behalf, posts events such as install-done; its token works now and through the machine's next boot",
              }),
            ),
          }),
          ...errors(400, 401, 404),
        },
      },
    },
    async (req) => {
      const m = await machines.mustGet(macOf(req.params.mac));
      const d = boot.preview(m);
      const base = opts.baseUrl(req);
      return {
        mac: m.mac,
        state: m.state,
        profile: m.profile,
        next: { kind: d.kind, reason: d.reason, ...(d.kind === 'boot' && { stage: d.stage, profile: d.profile.name }) },
        scriptUrl: `${base}/ipxe?mac=${macHyphenated(m.mac)}`,
        entryUrl: `${base}/boot.ipxe`,
        eventsUrl: boot.hubEventsUrl(base, m),
      };
    },
  );
};
