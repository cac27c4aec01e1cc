/** The machines table, a machine's page, the registration form and the actions on machines. */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { parseMac, type Mac } from '../machines/mac.js';
import type { Store } from '../store/store.js';
import type { ProfileSet } from '../profiles/profile.js';
import { isOk, refusalOf, type ApiCall } from './api.js';
import { csrfCheck, isAdminSession, mustBeAdmin } from './access.js';
import { macPath } from './format.js';
import { searchOf, sortHref, STATES, tableHref, tableQuery, PAGE_SIZES } from './machine-list.js';
import { fragmentOf, page } from './render.js';
import { bodyOf, formOf, postedForm, type ReservationForm } from './reservation-form.js';
import { failureReasons, timelineSteps } from './timeline.js';

export interface MachineRoutesDeps {
  store: Store;
  api: ApiCall;
  profiles: () => ProfileSet;
}

/** Steps a machine's page lists at most (the newest). */
const TIMELINE_SHOWN = 500;

/** What the bulk form and a machine's page may do, and the API call each is. */
const ACTIONS: Record<string, { label: string; call: (mac: string) => [ApiMethodAndUrl, unknown?] }> = {
  reset: { label: 'Reset (full redo)', call: (m) => [['POST', `/api/v1/machines/${m}/reset`], { to: 'registered', force: true }] },
  'reset-keep': { label: 'Reset, keep precache', call: (m) => [['POST', `/api/v1/machines/${m}/reset`], { to: 'precached', force: true }] },
  provision: { label: 'Provision', call: (m) => [['POST', `/api/v1/machines/${m}/provision`], {}] },
  'power-on': { label: 'Power on', call: (m) => [['POST', `/api/v1/machines/${m}/power`], { action: 'on' }] },
  'power-off': { label: 'Power off', call: (m) => [['POST', `/api/v1/machines/${m}/power`], { action: 'off' }] },
  'power-restart': { label: 'Restart', call: (m) => [['POST', `/api/v1/machines/${m}/power`], { action: 'restart' }] },
  'pxe-once': { label: 'Network boot once', call: (m) => [['POST', `/api/v1/machines/${m}/power`], { action: 'pxe-once' }] },
  delete: { label: 'Delete', call: (m) => [['DELETE', `/api/v1/machines/${m}`]] },
};
type ApiMethodAndUrl = ['POST' | 'DELETE', string];
const BULK_ACTIONS = ['reset', 'provision', 'delete'];

function macParam(req: FastifyRequest): Mac | undefined {
  return parseMac((req.params as { mac: string }).mac);
}

async function notFound(req: FastifyRequest, reply: FastifyReply, what: string): Promise<FastifyReply> {
  return page(req, reply.code(404), 'error', { title: 'Not found', status: 404, message: what });
}

export function machineRoutes(app: FastifyInstance, d: MachineRoutesDeps): void {
  const act = async (action: string, mac: Mac): Promise<string | undefined> => {
    const a = ACTIONS[action];
    if (!a) return `unknown action ${action}`;
    const [[method, url], body] = a.call(macPath(mac));
    const answer = await d.api(method, url, body);
    return isOk(answer) ? undefined : refusalOf(answer).message;
  };

  app.get('/ui/machines', async (req, reply) => {
    const t = tableQuery(req.query as Record<string, unknown>);
    const result = await d.store.searchMachines(searchOf(t));
    const reasons = await failureReasons(d.store, result.machines);
    const pages = Math.max(1, Math.ceil(result.total / t.size));
    const data = {
      title: 'Machines',
      nav: 'machines',
      t,
      result,
      reasons,
      pages,
      states: STATES,
      sizes: PAGE_SIZES,
      profiles: d
        .profiles()
        .list()
        .map((p) => p.name),
      href: (change: Parameters<typeof tableHref>[1]) => tableHref(t, change),
      sortHref: (s: Parameters<typeof sortHref>[1]) => sortHref(t, s),
      liveHref: tableHref(t, {}, '/ui/machines') + (tableHref(t).includes('?') ? '&' : '?') + 'fragment=rows',
    };
    return page(req, reply, fragmentOf(req) === 'rows' ? 'partials/machine-table' : 'machines', data);
  });

  app.post('/ui/machines/bulk', { preHandler: csrfCheck(app) }, async (req, reply) => {
    mustBeAdmin(req);
    const body = (req.body ?? {}) as { mac?: string | string[]; action?: string; confirm?: string; back?: string };
    const macs = [body.mac ?? []].flat().flatMap((m) => parseMac(m) ?? []);
    const action = body.action ?? '';
    const back = typeof body.back === 'string' && body.back.startsWith('/ui/machines') ? body.back : '/ui/machines';
    if (!BULK_ACTIONS.includes(action) || macs.length === 0) {
      return page(req, reply.code(400), 'error', { title: 'Nothing to do', status: 400, message: 'Select machines and one of reset, provision or delete.' });
    }
    const label = ACTIONS[action]?.label ?? action;
    if (body.confirm !== 'yes') return page(req, reply, 'confirm', { title: `${label}: confirm`, nav: 'machines', action, label, macs, back });
    const failures: { mac: string; problem: string }[] = [];
    for (const mac of macs) {
      const problem = await act(action, mac);
      if (problem !== undefined) failures.push({ mac, problem });
    }
    return page(req, reply, 'done', { title: `${label}: done`, nav: 'machines', label, count: macs.length, failures, back });
  });

  const form = async (
    req: FastifyRequest,
    reply: FastifyReply,
    view: { form: ReservationForm; fields: Record<string, string>; message?: string; isNew: boolean },
  ) =>
    page(req, reply, 'register', {
      title: view.isNew ? 'Register a machine' : `Edit ${view.form.mac ?? ''}`,
      nav: 'machines',
      profiles: d
        .profiles()
        .list()
        .map((p) => p.name),
      ...view,
    });

  app.get('/ui/machines/new', async (req, reply) => {
    const q = req.query as Record<string, unknown>;
    const prefill: ReservationForm = {};
    for (const k of ['mac', 'hostname', 'profile', 'uuid']) {
      const value = q[k];
      if (typeof value === 'string') prefill[k] = value.slice(0, 253);
    }
    return form(req, reply, { form: prefill, fields: {}, isNew: true });
  });

  app.post('/ui/machines/new', { preHandler: csrfCheck(app) }, async (req, reply) => {
    mustBeAdmin(req);
    const f = postedForm(req.body);
    const mac = parseMac(f.mac ?? '');
    if (!mac)
      return form(req, reply.code(400), {
        form: f,
        fields: { mac: `${JSON.stringify(f.mac ?? '')} is not a MAC address (aa:bb:cc:dd:ee:ff, aa-bb-… or aabb…)` },
        isNew: true,
      });
    if (await d.store.getMachine(mac)) return form(req, reply.code(409), { form: f, fields: { mac: `${mac} is already registered` }, isNew: true });
    return save(req, reply, f, mac, undefined, true);
  });

  const save = async (
    req: FastifyRequest,
    reply: FastifyReply,
    f: ReservationForm,
    mac: Mac,
    current: Awaited<ReturnType<Store['getMachine']>>,
    isNew: boolean,
  ) => {
    const built = bodyOf(f, current);
    if ('fields' in built) return form(req, reply.code(400), { form: f, fields: built.fields, isNew });
    const answer = await d.api('PUT', `/api/v1/machines/${macPath(mac)}`, built.body);
    if (!isOk(answer)) {
      const r = refusalOf(answer);
      return form(req, reply.code(answer.status >= 500 ? 502 : 400), { form: { ...f, 'bmc.password': '' }, fields: r.fields, message: r.message, isNew });
    }
    return reply.redirect(`/ui/machines/${macPath(mac)}`, 303);
  };

  app.get('/ui/machines/:mac', async (req, reply) => {
    const mac = macParam(req);
    const m = mac && (await d.store.getMachine(mac));
    if (!m) return notFound(req, reply, `no machine has the MAC ${(req.params as { mac: string }).mac}`);
    const events = await d.store.listEvents(m.mac, { newest: true, limit: TIMELINE_SHOWN + 1 });
    const steps = timelineSteps(events.slice(-TIMELINE_SHOWN));
    const reason = (await failureReasons(d.store, [m])).get(m.mac);
    const data = { title: m.hostname ?? m.mac, nav: 'machines', m, steps, reason, earlier: events.length > TIMELINE_SHOWN, actions: ACTIONS };
    if (fragmentOf(req) === 'live') return page(req, reply, 'partials/machine-updates', data);
    // The script /ipxe would serve now, as the API previews it: secrets cut, nothing moved.
    const script = await d.api('GET', `/api/v1/machines/${macPath(m.mac)}/script`);
    const edit = isAdminSession(req) ? formOf(m) : undefined;
    return page(req, reply, 'machine', {
      ...data,
      script: isOk(script) ? String(script.body) : undefined,
      form: edit,
      fields: {},
      profiles: d
        .profiles()
        .list()
        .map((p) => p.name),
    });
  });

  app.post('/ui/machines/:mac', { preHandler: csrfCheck(app) }, async (req, reply) => {
    mustBeAdmin(req);
    const mac = macParam(req);
    const current = mac && (await d.store.getMachine(mac));
    if (!mac || !current) return notFound(req, reply, 'no such machine');
    return save(req, reply, { ...postedForm(req.body), mac: current.mac }, current.mac, current, false);
  });

  app.post('/ui/machines/:mac/action', { preHandler: csrfCheck(app) }, async (req, reply) => {
    mustBeAdmin(req);
    const mac = macParam(req);
    const action = (req.body as { action?: unknown } | undefined)?.action;
    if (!mac || typeof action !== 'string' || !ACTIONS[action]) return notFound(req, reply, 'no such machine or action');
    const problem = await act(action, mac);
    if (problem !== undefined)
      return page(req, reply.code(409), 'error', { title: 'Refused', status: 409, message: problem, back: `/ui/machines/${macPath(mac)}` });
    return reply.redirect(action === 'delete' ? '/ui/machines' : `/ui/machines/${macPath(mac)}`, 303);
  });
}
