/**
 * The emulator's resources and actions: which path answers which method, with what document.
 * Routes marked `open` are served without credentials; everything else needs a session or Basic.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { failure, notFound, unauthorized } from './errors.js';
import { isRecord, sendEmpty, sendFailure, sendJson, sendXml } from './http.js';
import type { Profile } from './profiles.js';
import * as doc from './resources.js';
import { sessionPath, type SessionStore } from './sessions.js';
import type { EmulatedSystem } from './system.js';
import type { TaskStore } from './tasks.js';

export type RequestAuth = 'session' | 'basic' | 'none';

export interface Ctx {
  req: IncomingMessage;
  res: ServerResponse;
  path: string;
  auth: RequestAuth;
  body: unknown;
}

export type Handler = (ctx: Ctx, params: string[]) => void;
export const METHODS = ['GET', 'POST', 'PATCH', 'DELETE'] as const;
export type Method = (typeof METHODS)[number];
export const isMethod = (m: string): m is Method => METHODS.some((known) => known === m);
export interface Route {
  pattern: RegExp;
  methods: Partial<Record<Method, Handler>>;
  /** Served without credentials (DSP0266: the service root, its version document, OData documents and the login POST). */
  open?: 'GET' | 'POST';
}

export interface RouteDeps {
  view: () => doc.View;
  sys: EmulatedSystem;
  sessions: SessionStore;
  tasks: TaskStore;
  profile: Profile;
  transitionMs: number;
  username: string;
  password: string;
  sessionService: boolean;
}

export function buildRoutes(d: RouteDeps): Route[] {
  const { view, sys, sessions, tasks, profile, transitionMs } = d;
  const get =
    (build: (v: doc.View) => unknown): Handler =>
    ({ res }) =>
      sendJson(res, 200, build(view()));
  const sys$ = `${doc.ROOT}/Systems/${escape(view().systemId)}`;
  const routes: Route[] = [
    { pattern: /^\/redfish$/, methods: { GET: ({ res }) => sendJson(res, 200, doc.versions()) }, open: 'GET' },
    { pattern: /^\/redfish\/v1$/, methods: { GET: get(doc.serviceRoot) }, open: 'GET' },
    { pattern: /^\/redfish\/v1\/odata$/, methods: { GET: get(doc.odataServiceDocument) }, open: 'GET' },
    { pattern: /^\/redfish\/v1\/\$metadata$/, methods: { GET: ({ res }) => sendXml(res, doc.metadataXml()) }, open: 'GET' },
    { pattern: /^\/redfish\/v1\/Systems$/, methods: { GET: get(doc.systems) } },
    {
      pattern: new RegExp(`^${sys$}$`),
      methods: {
        GET: ({ res }) => sendJson(res, 200, doc.system(view()), { ETag: sys.etag }),
        PATCH: ({ req, res, body }) => {
          const refused = sys.patch(header(req, 'if-match'), body);
          if (refused !== undefined) return sendFailure(res, refused);
          sendJson(res, 200, doc.system(view()), { ETag: sys.etag });
        },
      },
    },
    { pattern: new RegExp(`^${sys$}/EthernetInterfaces$`), methods: { GET: get(doc.ethernetInterfaces) } },
    {
      pattern: new RegExp(`^${sys$}/EthernetInterfaces/([^/]+)$`),
      methods: {
        GET: ({ res, path }, [id]) => {
          const nic = doc.ethernetInterface(view(), id ?? '');
          return nic === undefined ? sendFailure(res, notFound(path)) : sendJson(res, 200, nic);
        },
      },
    },
    { pattern: new RegExp(`^${sys$}/Actions/ComputerSystem\\.Reset$`), methods: { POST: (ctx) => reset(ctx) } },
    { pattern: /^\/redfish\/v1\/Managers$/, methods: { GET: get(doc.managers) } },
    { pattern: new RegExp(`^${doc.ROOT}/Managers/${escape(view().managerId)}$`), methods: { GET: get(doc.manager) } },
    { pattern: /^\/redfish\/v1\/Chassis$/, methods: { GET: get(doc.chassisCollection) } },
    { pattern: /^\/redfish\/v1\/Chassis\/1$/, methods: { GET: get(doc.chassis) } },
    { pattern: /^\/redfish\/v1\/TaskService$/, methods: { GET: get(doc.taskServiceDoc) } },
    { pattern: /^\/redfish\/v1\/TaskService\/Tasks$/, methods: { GET: ({ res }) => sendJson(res, 200, doc.tasksDoc(tasks.ids())) } },
    { pattern: /^\/redfish\/v1\/TaskService\/Tasks\/([^/]+)$/, methods: { GET: (ctx, [id]) => task(ctx, id ?? '', false) } },
    { pattern: /^\/redfish\/v1\/TaskService\/TaskMonitors\/([^/]+)$/, methods: { GET: (ctx, [id]) => task(ctx, id ?? '', true) } },
    ...(d.sessionService ? sessionRoutes() : []),
  ];
  return routes;

  function sessionRoutes(): Route[] {
    return [
      { pattern: /^\/redfish\/v1\/SessionService$/, methods: { GET: ({ res }) => sendJson(res, 200, doc.sessionServiceDoc()) } },
      {
        pattern: /^\/redfish\/v1\/SessionService\/Sessions$/,
        methods: { GET: ({ res }) => sendJson(res, 200, doc.sessionsDoc(sessions.list())), POST: (ctx) => login(ctx) },
        open: 'POST',
      },
      {
        pattern: /^\/redfish\/v1\/SessionService\/Sessions\/([^/]+)$/,
        methods: {
          GET: ({ res, path }, [id]) => {
            const s = sessions.get(id ?? '');
            return s === undefined ? sendFailure(res, notFound(path)) : sendJson(res, 200, doc.sessionDoc(s));
          },
          DELETE: ({ res, path }, [id]) => (sessions.delete(id ?? '') ? sendEmpty(res, 204) : sendFailure(res, notFound(path))),
        },
      },
    ];
  }

  function login({ res, body }: Ctx): void {
    const user = isRecord(body) ? body.UserName : undefined;
    const pass = isRecord(body) ? body.Password : undefined;
    if (typeof user !== 'string' || typeof pass !== 'string')
      return sendFailure(res, failure(400, 'Base.1.8.PropertyMissing', 'The properties UserName and Password are required to create a session.'));
    if (user !== d.username || pass !== d.password) return sendFailure(res, unauthorized());
    const s = sessions.create(user);
    sendJson(res, 201, doc.sessionDoc(s), { 'X-Auth-Token': s.token, Location: sessionPath(s.id) });
  }

  function reset({ res, body }: Ctx): void {
    const outcome = sys.reset(body);
    if (!outcome.ok) return sendFailure(res, outcome.failure);
    if (!profile.resetAnswersTask) return sendEmpty(res, 204);
    const started = Date.now();
    const t = tasks.create('Power Control Task', () => !sys.power.busy && Date.now() - started >= transitionMs);
    sendJson(res, 202, doc.taskDoc(t), { Location: doc.taskMonitorPath(t.id) });
  }

  function task({ res, path }: Ctx, id: string, monitor: boolean): void {
    const t = tasks.get(id);
    if (t === undefined) return sendFailure(res, notFound(path));
    if (monitor && t.state === 'Running') return sendJson(res, 202, doc.taskDoc(t), { Location: doc.taskMonitorPath(t.id) });
    sendJson(res, 200, doc.taskDoc(t));
  }
}

export function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
