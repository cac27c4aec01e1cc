import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { Type, type Static } from 'typebox';
import type { BootQuery, BootService } from '../../boot/service.js';
import { renderEntryScript } from '../../boot/render.js';
import { clientAddress } from '../artifact-responder.js';
import { macOf } from '../checks.js';
import { parseUnicastMac, parseUuid, type Mac } from '../../machines/mac.js';
import { errors, macParams } from '../schemas.js';

export interface BootRoutesOptions {
  boot: BootService;
  baseUrl: (req: FastifyRequest) => string;
  /** Called with the client's address each time the entry script is served. */
  onEntryScript?: (address: string) => void;
}

const text = Type.Optional(Type.String());
/** What iPXE's `${…}` settings put in the /ipxe URL; each is checked by parseBootQuery, not by the schema. */
const ipxeQuery = Type.Object({ mac: text, macs: text, uuid: text, serial: text, arch: text, platform: text });
type IpxeQuery = Static<typeof ipxeQuery>;

/** Firmware cannot authenticate: these routes are open, and everything they echo is checked. */
export const bootRoutes: FastifyPluginAsyncTypebox<BootRoutesOptions> = async (app, { boot, baseUrl, onEntryScript }) => {
  app.get('/boot.ipxe', { schema: { summary: 'The iPXE entry script', tags: ['boot'], produces: ['text/plain'] } }, async (req, reply) => {
    reply.type('text/plain; charset=utf-8');
    onEntryScript?.(clientAddress(req));
    return renderEntryScript(baseUrl(req));
  });

  app.get(
    '/ipxe',
    {
      schema: {
        summary: 'The iPXE script for one machine now',
        tags: ['boot'],
        querystring: ipxeQuery,
      },
    },
    async (req, reply) => {
      const q = parseBootQuery(req.query);
      reply.type('text/plain; charset=utf-8');
      if (!q) {
        // iPXE's chain fails on a 400 and the entry script retries; the body says why.
        reply.code(400);
        return `#!ipxe\necho edgeboot: /ipxe needs mac= with a MAC address (aa-bb-cc-dd-ee-ff) of one machine: not all-zero, broadcast or multicast\nexit 1\n`;
      }
      const r = await boot.script(q, baseUrl(req), clientAddress(req));
      req.log.info(
        { mac: r.machine.mac, state: r.machine.state, decision: r.decision.kind, reason: r.decision.reason, trusted: r.trust.trusted },
        'boot script served',
      );
      return r.script;
    },
  );

  app.get(
    '/api/v1/machines/:mac/ignition',
    {
      schema: {
        summary: "The Ignition config of a machine (signed, expiring URL from its boot script; to the machine's own address only)",
        tags: ['boot'],
        params: macParams,
        querystring: Type.Object({ exp: Type.Integer(), sig: Type.String({ maxLength: 64 }) }),
        response: errors(403, 404),
      },
    },
    async (req) => boot.ignition(macOf(req.params.mac), req.query.exp, req.query.sig, baseUrl(req), clientAddress(req)),
  );
};

const ARCH = /^[a-z0-9_]{1,16}$/;

/** Parses what iPXE expanded into the query; a value in the wrong shape is dropped, not echoed. */
export function parseBootQuery(q: IpxeQuery): BootQuery | undefined {
  // The all-zero, broadcast and multicast MACs are no machine's: dropped like malformed ones.
  const unicast = (s: string): Mac | undefined => {
    const m = parseUnicastMac(s);
    return m.ok ? m.mac : undefined;
  };
  const mac = q.mac === undefined ? undefined : unicast(q.mac);
  const macs = (q.macs ?? '')
    .split(',')
    .map(unicast)
    .filter((m): m is Mac => m !== undefined);
  const first = mac ?? macs[0];
  if (!first) return undefined;
  const parsed = q.uuid ? parseUuid(q.uuid) : undefined;
  // Blank SMBIOS UUIDs are shared by every board that has one: they identify nothing.
  const uuid = parsed && !/^[0-]+$|^[f-]+$/.test(parsed) ? parsed : undefined;
  const observed: BootQuery['observed'] = {};
  if (q.arch && ARCH.test(q.arch)) observed.arch = q.arch;
  if (q.platform && ARCH.test(q.platform)) observed.platform = q.platform;
  // Serial numbers are free text from SMBIOS; keep a printable, bounded copy for the inventory.
  const serial = q.serial
    ?.replace(/[^\x20-\x7e]/g, '')
    .trim()
    .slice(0, 64);
  if (serial) observed.serial = serial;
  return { mac: first, macs: [...new Set(macs)], ...(uuid && { uuid }), observed };
}
