/** The machines table, a machine's page, the registration form and the actions on machines. */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { parseMac, type Mac } from '../machines/mac.js';
import { MACHINE_STATES } from '../machines/state.js';
import type { Store } from '../store/store.js';
import type { ProfileSet } from '../profiles/profile.js';
import { isOk, refusalOf, type ApiAnswer, type ApiCall } from './api.js';
import { csrfCheck, isAdminSession, mustBeAdmin } from './access.js';
import { macPath } from './format.js';
import { searchOf, sortHref, tableHref, tableQuery, PAGE_SIZES } from './machine-list.js';
import { fragmentOf, page, refusedPage } from './render.js';
import { bodyOf, formOf, postedForm, type ReservationForm } from './reservation-form.js';
import { failureReasons, timelineSteps } from './timeline.js';

export interface MachineRoutesDeps {
  store: Store;
  api: ApiCall;
  profiles: () => ProfileSet;
}

/** Steps a machine's page lists at most (the newest). */
const TIMELINE_SHOWN = 500;

/** What the bulk form and a machine's page may do: each is one call of the API. */
interface Action {
  label: string;
  method: 'POST' | 'DELETE';
  /** Under /api/v1/machines/{mac}. */
  path: string;
  body?: Record<string, unknown>;
}

const ACTIONS: Record<string, Action> = {
  reset: { label: 'Reset (full redo)', method: 'POST', path: '/reset', body: { to: 'registered', force: true } },
  'reset-keep': { label: 'Reset, keep precache', method: 'POST', path: '/reset', body: { to: 'precached', force: true } },
  provision: { label: 'Provision', method: 'POST', path: '/provision', body: {} },
  'power-on': { label: 'Power on', method: 'POST', path: '/power', body: { action: 'on' } },
  'power-off': { label: 'Power off', method: 'POST', path: '/power', body: { action: 'off' } },
  'power-restart': { label: 'Restart', method: 'POST', path: '/power', body: { action: 'restart' } },
  'pxe-once': { label: 'Network boot once', method: 'POST', path: '/power', body: { action: 'pxe-once' } },
  delete: { label: 'Delete', method: 'DELETE', path: '' },
};
const BULK_ACTIONS = ['reset', 'provision', 'delete'];

function macParam(req: FastifyRequest): Mac | undefined {
  return parseMac((req.params as { mac: string }).mac);
}

async function notFound(req: FastifyRequest, reply: FastifyReply, what: string): Promise<FastifyReply> {
  return page(req, reply.code(404), 'error', { title: 'Not found', status: 404, message: what });
}

export function machineRoutes(app: FastifyInstance, d: MachineRoutesDeps): void {
  /** The API's answer to an action on one machine (the action is one of ACTIONS). */
  const act = (a: Action, mac: Mac): Promise<ApiAnswer> => d.api(a.method, `/api/v1/machines/${macPath(mac)}${a.path}`, a.body);
  const profileNames = (): string[] =>
    d
      .profiles()
      .list()
      .map((p) => p.name);

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
      states: MACHINE_STATES,
      sizes: PAGE_SIZES,
      profiles: profileNames(),
      href: (change: Parameters<typeof tableHref>[1]) => tableHref(t, change),
      sortHref: (s: Parameters<typeof sortHref>[1]) => sortHref(t, s),
      liveHref: tableHref(t, { fragment: 'rows' }),
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
    const a = ACTIONS[action];
    if (!a) throw new Error(`no action ${action}, yet a bulk one`);
    const label = a.label;
    if (body.confirm !== 'yes') return page(req, reply, 'confirm', { title: `${label}: confirm`, nav: 'machines', action, label, macs, back });
    const failures: { mac: string; problem: string }[] = [];
    for (const mac of macs) {
      const answer = await act(a, mac);
      if (!isOk(answer)) failures.push({ mac, problem: refusalOf(answer).message });
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
      profiles: profileNames(),
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
    const data = { title: m.hostname ?? m.mac, nav: 'machines', m, steps, reason, earlier: events.length > TIMELINE_SHOWN };
    if (fragmentOf(req) === 'live') return page(req, reply, 'partials/machine-updates', data);
    // The script /ipxe would serve now, as the API previews it: secrets cut, nothing moved.
    const script = await d.api('GET', `/api/v1/machines/${macPath(m.mac)}/script`);
    const edit = isAdminSession(req) ? formOf(m) : undefined;
    return page(req, reply, 'machine', {
      ...data,
      script: isOk(script) ? String(script.body) : undefined,
      form: edit,
      fields: {},
      profiles: profileNames(),
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
    const a = typeof action === 'string' && Object.hasOwn(ACTIONS, action) ? ACTIONS[action] : undefined;
    if (!mac || !a) return notFound(req, reply, 'no such machine or action');
    const answer = await act(a, mac);
    if (!isOk(answer)) return refusedPage(req, reply, answer, `/ui/machines/${macPath(mac)}`);
    return reply.redirect(a.method === 'DELETE' ? '/ui/machines' : `/ui/machines/${macPath(mac)}`, 303);
  });
}
