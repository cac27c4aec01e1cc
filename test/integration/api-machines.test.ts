/**
 * The machines admin API over the real Fastify app and a real SQLite store: create/replace,
 * read by any MAC, list filters, JSON merge patch, delete, reset, and every error it promises
 * (status, `{ error, message, details? }` shape and code).
 */
import t from 'tap';
import type { LightMyRequestResponse } from 'fastify';
import type { Machine } from '../../src/machines/model.js';
import { testApp, type ErrorBody, type TestApp } from '../helpers/app.js';

/** The `t` of a subtest. */
type Tap = Parameters<Parameters<typeof t.test>[0]>[0];

const MAC = '52:54:00:ab:cd:ef';
/** The three separators in lower and upper case: every form the API must take. */
const FORMS = [':', '-', ''].flatMap((sep) => [false, true].map((upper) => ({ sep, upper })));
function macForm(mac: string, i: number): string {
  const f = FORMS[i % FORMS.length] ?? { sep: ':', upper: false };
  const s = mac.split(':').join(f.sep);
  return f.upper ? s.toUpperCase() : s;
}
const MAC2 = '52:54:00:ab:cd:f0';
const MAC3 = '52:54:00:00:00:03';
const HUB = 'https://hub.example.com/api/assisted-install/v2/infra-envs/1234/downloads/files?file_name=ipxe-script&api_key=abc.def';

const path = (mac: string, rest = '') => `/api/v1/machines/${mac}${rest}`;

function put(ta: TestApp, mac: string, payload: Record<string, unknown>): Promise<LightMyRequestResponse> {
  return ta.app.inject({ method: 'PUT', url: path(mac), headers: ta.auth, payload });
}

function patch(ta: TestApp, mac: string, payload: unknown, contentType = 'application/json'): Promise<LightMyRequestResponse> {
  return ta.app.inject({ method: 'PATCH', url: path(mac), headers: { ...ta.auth, 'content-type': contentType }, payload: JSON.stringify(payload) });
}

function get(ta: TestApp, url: string): Promise<LightMyRequestResponse> {
  return ta.app.inject({ method: 'GET', url, headers: ta.auth });
}

function machine(res: LightMyRequestResponse): Machine {
  return res.json<Machine>();
}

function apiError(res: LightMyRequestResponse): ErrorBody {
  const b = res.json<ErrorBody>();
  return b;
}

/** Asserts the error shape, status and code, and that the message says something. */
function isError(tt: Tap, res: LightMyRequestResponse, status: number, code: string, message?: RegExp): ErrorBody {
  tt.equal(res.statusCode, status, `status ${status} (${res.body})`);
  tt.match(res.headers['content-type'], /application\/json/);
  const b = apiError(res);
  tt.equal(b.error, code, `error code ${code}`);
  tt.type(b.message, 'string');
  tt.ok(b.message.length > 10, 'the message is a sentence');
  tt.same(
    Object.keys(b).filter((k) => !['error', 'message', 'details'].includes(k)),
    [],
    'only error, message and details',
  );
  if (message) tt.match(b.message, message);
  return b;
}

const assistedMachine = (extra: Record<string, unknown> = {}) => ({ profile: 'assisted', assisted: { ipxeScriptUrl: HUB }, ...extra });

t.test('PUT creates (201) and replaces (200), MACs in every form stored normalised', async (t) => {
  const ta = await testApp(t);
  for (let i = 0; i < FORMS.length; i++) {
    // A fresh primary per round: path in one form, body mac in another, the secondary in a third.
    const primary = `52:54:00:10:00:0${i}`;
    const secondary = `52:54:00:20:00:0${i}`;
    const inPath = macForm(primary, i);
    const res = await put(ta, inPath, { mac: macForm(primary, i + 1), macs: [macForm(secondary, i + 2)], hostname: 'Node-1' });
    t.equal(res.statusCode, 201, `created via ${inPath} (${res.body})`);
    const m = machine(res);
    t.equal(m.mac, primary, 'primary stored as aa:bb:cc:dd:ee:ff');
    t.same(m.macs, [secondary], 'secondary stored normalised');
    t.equal(m.hostname, 'node-1', 'host name stored in lower case');
    t.equal(m.state, 'discovered', 'no profile: discovered');
    t.match(m.createdAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    t.equal(machine(await get(ta, path(macForm(primary, i + 3)))).mac, primary, 'GET in yet another form');

    const again = await put(ta, macForm(primary, i + 4), { macs: [macForm(secondary, i + 5)], labels: { site: 'f1' } });
    t.equal(again.statusCode, 200, 'the same machine, other form: replaced');
    const r = machine(again);
    t.equal(r.mac, primary);
    t.same(r.macs, [secondary]);
    t.equal(r.hostname, undefined, 'PUT replaces: a field left out is gone');
    t.same(r.labels, { site: 'f1' });
    t.equal(r.createdAt, m.createdAt, 'createdAt kept on replace');
  }
  const list = await get(ta, '/api/v1/machines');
  t.same(
    list.json<{ machines: Machine[] }>().machines.map((m) => m.mac),
    FORMS.map((_, i) => `52:54:00:10:00:0${i}`),
    'one machine per primary, none made from another form',
  );
});

t.test('PUT: the primary listed in macs is dropped, duplicates in other forms collapse', async (t) => {
  const ta = await testApp(t);
  const res = await put(ta, MAC, { macs: [MAC.toUpperCase(), MAC2, MAC2.replaceAll(':', '-'), MAC2.replaceAll(':', '').toUpperCase()] });
  t.equal(res.statusCode, 201);
  t.same(machine(res).macs, [MAC2]);
});

t.test('GET by primary and by a secondary MAC, in any form', async (t) => {
  const ta = await testApp(t);
  t.equal((await put(ta, MAC, assistedMachine({ macs: [MAC2], hostname: 'sno-1' }))).statusCode, 201);
  for (const m of [MAC, MAC.replaceAll(':', '-').toUpperCase(), MAC2, MAC2.replaceAll(':', ''), MAC2.toUpperCase()]) {
    const res = await get(ta, path(m));
    t.equal(res.statusCode, 200, `GET ${m}`);
    const b = machine(res);
    t.equal(b.mac, MAC, 'always the primary');
    t.same(b.macs, [MAC2]);
    t.equal(b.hostname, 'sno-1');
    t.equal(b.state, 'registered');
    t.equal(b.profile, 'assisted');
    t.same(b.assisted, { ipxeScriptUrl: HUB.replace('api_key=abc.def', 'api_key=*redacted*') }, 'the key is a secret: shown redacted (src/secrets/redact.ts)');
  }
});

t.test('list with filters: state, profile, labels (repeatable, all must match)', async (t) => {
  const ta = await testApp(t);
  const mk = (mac: string, body: Record<string, unknown>) => put(ta, mac, body).then((r) => t.equal(r.statusCode, 201, `create ${mac}`));
  await mk('02:00:00:00:00:01', assistedMachine({ labels: { site: 'f1', rack: 'r1' } }));
  await mk('02:00:00:00:00:02', assistedMachine({ labels: { site: 'f1', rack: 'r2' } }));
  await mk('02:00:00:00:00:03', { profile: 'local-disk', labels: { site: 'f2', rack: 'r1' } });
  await mk('02:00:00:00:00:04', { labels: { site: 'f1' } });

  const macs = async (query: string) => {
    const res = await get(ta, `/api/v1/machines${query}`);
    t.equal(res.statusCode, 200, `list ${query} (${res.body})`);
    return res
      .json<{ machines: Machine[] }>()
      .machines.map((m) => m.mac)
      .sort();
  };
  t.same(await macs(''), ['02:00:00:00:00:01', '02:00:00:00:00:02', '02:00:00:00:00:03', '02:00:00:00:00:04']);
  t.same(await macs('?state=registered'), ['02:00:00:00:00:01', '02:00:00:00:00:02', '02:00:00:00:00:03']);
  t.same(await macs('?state=discovered'), ['02:00:00:00:00:04']);
  t.same(await macs('?state=installed'), []);
  t.same(await macs('?profile=assisted'), ['02:00:00:00:00:01', '02:00:00:00:00:02']);
  t.same(await macs('?profile=local-disk'), ['02:00:00:00:00:03']);
  t.same(await macs('?label=site=f1'), ['02:00:00:00:00:01', '02:00:00:00:00:02', '02:00:00:00:00:04']);
  t.same(await macs('?label=site=f1&label=rack=r2'), ['02:00:00:00:00:02'], 'two labels: both must match');
  t.same(await macs('?label=rack=r1&label=site=f1'), ['02:00:00:00:00:01']);
  t.same(await macs('?label=site=f1&label=rack=r9'), [], 'no machine has both');
  t.same(await macs('?label=site=f1&state=registered&profile=assisted'), ['02:00:00:00:00:01', '02:00:00:00:00:02'], 'filters combine');
  t.same(await macs('?label=site=f1&state=discovered'), ['02:00:00:00:00:04']);
  t.same(await macs('?label=site%3Df2'), ['02:00:00:00:00:03'], 'an encoded = works too');

  isError(t, await get(ta, '/api/v1/machines?state=sleeping'), 400, 'invalid_request', /state/);
  isError(t, await get(ta, '/api/v1/machines?label=site'), 400, 'invalid_request', /label/);
  isError(t, await get(ta, '/api/v1/machines?colour=red'), 400, 'invalid_request');
});

t.test('PATCH is a JSON merge patch', async (t) => {
  const ta = await testApp(t);
  const created = machine(
    await put(
      ta,
      MAC,
      assistedMachine({ hostname: 'sno-1', ip: '10.77.0.50', labels: { site: 'f1', rack: 'r1' }, precache: { disk: '/dev/sda', sizeGiB: 100 } }),
    ),
  );
  t.equal(created.state, 'registered');

  for (const contentType of ['application/json', 'application/merge-patch+json']) {
    const res = await patch(
      ta,
      MAC.replaceAll(':', '-'),
      { hostname: `sno-${contentType.length}`, labels: { rack: 'r2', extra: 'x' }, precache: { sizeGiB: 200 } },
      contentType,
    );
    t.equal(res.statusCode, 200, `PATCH as ${contentType} (${res.body})`);
    const m = machine(res);
    t.equal(m.hostname, `sno-${contentType.length}`, 'changed field');
    t.equal(m.ip, '10.77.0.50', 'untouched field kept');
    t.same(m.labels, { site: 'f1', rack: 'r2', extra: 'x' }, 'objects merge key by key');
    t.same(m.precache, { disk: '/dev/sda', sizeGiB: 200 }, 'nested objects merge');
    t.equal(m.state, 'registered');
    t.equal(m.createdAt, created.createdAt);
    const stored = machine(await get(ta, path(MAC)));
    t.equal(stored.hostname, m.hostname, 'the patch is stored');
  }

  // null removes a field, also inside objects
  let res = await patch(ta, MAC, { ip: null, labels: { extra: null }, precache: { disk: null } }, 'application/merge-patch+json');
  t.equal(res.statusCode, 200, res.body);
  let m = machine(res);
  t.equal(m.ip, undefined, 'ip removed');
  t.notOk('ip' in m, 'ip key gone');
  t.same(m.labels, { site: 'f1', rack: 'r2' }, 'one label removed');
  t.same(m.precache, { sizeGiB: 200 }, 'nested field removed');
  res = await patch(ta, MAC, { precache: null });
  m = machine(res);
  t.equal(m.precache, undefined, 'a whole object removed');
  t.equal(machine(await get(ta, path(MAC))).precache, undefined, 'and stored so');

  // arrays are replaced, not merged
  m = machine(await patch(ta, MAC, { macs: [MAC2, MAC3] }));
  t.same(m.macs, [MAC2, MAC3]);
  m = machine(await patch(ta, MAC, { macs: [MAC3.replaceAll(':', '-')] }));
  t.same(m.macs, [MAC3], 'arrays replaced whole, stored normalised');
  t.equal((await get(ta, path(MAC2))).statusCode, 404, 'the dropped secondary no longer finds the machine');

  // PATCH through a secondary MAC changes the machine it belongs to
  res = await patch(ta, MAC3, { hostname: 'via-secondary' });
  t.equal(res.statusCode, 200);
  t.equal(machine(res).mac, MAC);
  t.equal(machine(await get(ta, path(MAC))).hostname, 'via-secondary');

  // the primary MAC cannot change; the same MAC in another form is fine
  res = await patch(ta, MAC, { mac: MAC2 });
  isError(t, res, 400, 'invalid_request', /primary MAC .* cannot change/);
  t.equal((await get(ta, path(MAC2))).statusCode, 404, 'no machine under the new MAC');
  t.equal(machine(await get(ta, path(MAC))).mac, MAC);
  res = await patch(ta, MAC, { mac: MAC.toUpperCase().replaceAll(':', '') });
  t.equal(res.statusCode, 200, 'the same MAC written differently is no change');
  res = await patch(ta, MAC, { mac: null });
  t.equal(res.statusCode, 200, 'null on mac: the path MAC stays the key');
  t.equal(machine(res).mac, MAC);

  // read-only fields in a patch are ignored
  res = await patch(ta, MAC, { state: 'installed', createdAt: '2000-01-01T00:00:00.000Z' });
  t.equal(res.statusCode, 200);
  t.equal(machine(res).state, 'registered', 'state is not patchable');
  t.equal(machine(res).createdAt, created.createdAt);

  // a patch is checked like a PUT body
  isError(t, await patch(ta, MAC, { hostname: 'bad host' }), 400, 'invalid_request', /hostname/);
  isError(t, await patch(ta, MAC, { colour: 'red' }), 400, 'invalid_request', /additional propert/);
  isError(t, await patch(ta, MAC, { profile: 'no-such-profile' }), 400, 'unknown_profile', /no-such-profile/);
  isError(t, await patch(ta, MAC, { assisted: null }), 400, 'missing_field', /assisted\.ipxeScriptUrl/);
  isError(t, await patch(ta, MAC, { profile: null }), 409, 'profile_required', /registered/);
  isError(t, await patch(ta, MAC, ['hostname']), 400, 'invalid_request');
  const bad = await ta.app.inject({
    method: 'PATCH',
    url: path(MAC),
    headers: { ...ta.auth, 'content-type': 'application/merge-patch+json' },
    payload: '{"hostname": ',
  });
  t.equal(bad.statusCode, 400, 'broken JSON in a merge patch: 400');
  t.type(apiError(bad).error, 'string');
  t.type(apiError(bad).message, 'string');
  isError(t, await patch(ta, MAC2, { hostname: 'x' }), 404, 'machine_not_found', /52:54:00:ab:cd:f0/);
  t.equal(machine(await get(ta, path(MAC))).hostname, 'via-secondary', 'refused patches changed nothing');
});

t.test('PATCH with a __proto__ or constructor member is refused, whatever the JSON content type', async (t) => {
  const ta = await testApp(t);
  t.equal((await put(ta, MAC, assistedMachine({ hostname: 'sno-1' }))).statusCode, 201);
  const payloads = [
    '{"__proto__": {"precache": {"disk": "/dev/sdb"}}, "labels": {"a": "b"}}',
    '{"labels": {"__proto__": {"x": "y"}}}',
    '{"constructor": {"prototype": {"precache": {"disk": "/dev/sdb"}}}, "labels": {"a": "b"}}',
  ];
  for (const contentType of ['application/json', 'application/merge-patch+json']) {
    for (const payload of payloads) {
      const res = await ta.app.inject({ method: 'PATCH', url: path(MAC), headers: { ...ta.auth, 'content-type': contentType }, payload });
      t.equal(res.statusCode, 400, `${contentType} ${payload}: refused (${res.body})`);
      t.type(apiError(res).error, 'string');
      t.type(apiError(res).message, 'string');
      const m = machine(await get(ta, path(MAC)));
      t.equal(m.precache, undefined, 'nothing arrived through the prototype');
      t.same(m.labels, {}, 'and the rest of the patch was not applied either');
    }
  }
  t.equal(({} as Record<string, unknown>).precache, undefined, 'Object.prototype untouched');
});

t.test('DELETE: 204, then 404; the secondary MAC is free again', async (t) => {
  const ta = await testApp(t);
  t.equal((await put(ta, MAC, { macs: [MAC2] })).statusCode, 201);
  const del = await ta.app.inject({ method: 'DELETE', url: path(MAC.replaceAll(':', '-')), headers: ta.auth });
  t.equal(del.statusCode, 204);
  t.equal(del.body, '');
  isError(t, await get(ta, path(MAC)), 404, 'machine_not_found', /no machine has MAC 52:54:00:ab:cd:ef/);
  isError(t, await get(ta, path(MAC2)), 404, 'machine_not_found');
  isError(t, await ta.app.inject({ method: 'DELETE', url: path(MAC), headers: ta.auth }), 404, 'machine_not_found');
  isError(t, await get(ta, path(MAC, '/events')), 404, 'machine_not_found', /no machine/);
  // The secondary can now be a primary of another machine.
  t.equal((await put(ta, MAC2, {})).statusCode, 201);
  // DELETE through a secondary MAC deletes the machine it belongs to.
  t.equal((await put(ta, MAC3, { macs: [MAC] })).statusCode, 201);
  t.equal((await ta.app.inject({ method: 'DELETE', url: path(MAC), headers: ta.auth })).statusCode, 204);
  t.equal((await get(ta, path(MAC3))).statusCode, 404);
  t.equal((await get(ta, path(MAC2))).statusCode, 200, 'the other machine is untouched');
});

t.test('read-only fields of a GET body round-trip through PUT unchanged', async (t) => {
  const ta = await testApp(t);
  // Its ip is where app.inject's requests come from: /ipxe serves it its own boot (boot.verifyClient).
  t.equal(
    (await put(ta, MAC, { profile: 'precache-assisted', assisted: { ipxeScriptUrl: HUB }, hostname: 'sno-1', labels: { site: 'f1' }, ip: '127.0.0.1' }))
      .statusCode,
    201,
  );
  // Give it observed data, a state beyond registered and a precachedAt.
  const boot = await ta.app.inject({
    method: 'GET',
    url: `/ipxe?mac=${MAC.replaceAll(':', '-')}&uuid=4c4c4544-0042-3510-8052-b4c04f333532&arch=x86_64&platform=efi&serial=SN123`,
  });
  t.equal(boot.statusCode, 200);
  const done = await ta.app.inject({ method: 'POST', url: path(MAC, '/events'), headers: ta.auth, payload: { type: 'precache-done' } });
  t.equal(done.statusCode, 201, done.body);
  const before = machine(await get(ta, path(MAC)));
  t.equal(before.state, 'precached');
  t.type(before.precachedAt, 'string');
  t.same(before.observed, {
    uuid: '4c4c4544-0042-3510-8052-b4c04f333532',
    arch: 'x86_64',
    platform: 'efi',
    serial: 'SN123',
    lastSeenAt: before.observed.lastSeenAt,
  });

  const res = await put(ta, MAC, before as unknown as Record<string, unknown>);
  t.equal(res.statusCode, 200, `the GET body is a valid PUT body (${res.body})`);
  const after = machine(await get(ta, path(MAC)));
  const { updatedAt: _a, ...restAfter } = after;
  const { updatedAt: _b, ...restBefore } = before;
  t.same(restAfter, restBefore, 'everything but updatedAt unchanged');

  // Read-only fields in a PUT body are ignored, not applied.
  const forged = await put(ta, MAC, {
    ...before,
    state: 'installed',
    observed: { arch: 'arm64' },
    createdAt: '2000-01-01T00:00:00.000Z',
    precachedAt: '2000-01-01T00:00:00.000Z',
  });
  t.equal(forged.statusCode, 200);
  const f = machine(forged);
  t.equal(f.state, 'precached', 'state from the body ignored');
  t.same(f.observed, before.observed, 'observed from the body ignored');
  t.equal(f.createdAt, before.createdAt, 'createdAt from the body ignored');
  t.equal(f.precachedAt, before.precachedAt, 'precachedAt from the body ignored');
});

t.test('401 without a token, with a wrong token, with a malformed header', async (t) => {
  const ta = await testApp(t);
  t.equal((await put(ta, MAC, {})).statusCode, 201);
  const routes: { method: 'GET' | 'PUT' | 'PATCH' | 'DELETE' | 'POST'; url: string; payload?: Record<string, unknown> }[] = [
    { method: 'GET', url: '/api/v1/machines' },
    { method: 'GET', url: path(MAC) },
    { method: 'PUT', url: path(MAC2), payload: {} },
    { method: 'PATCH', url: path(MAC), payload: { hostname: 'x' } },
    { method: 'DELETE', url: path(MAC) },
    { method: 'POST', url: path(MAC, '/reset'), payload: {} },
    { method: 'GET', url: path(MAC, '/events') },
    { method: 'GET', url: path(MAC, '/boot') },
    { method: 'GET', url: '/api/v1/profiles' },
  ];
  for (const r of routes) {
    const none = await ta.app.inject({ method: r.method, url: r.url, ...(r.payload && { payload: r.payload }) });
    isError(t, none, 401, 'unauthorized', /needs an admin token/);
    t.equal(none.headers['www-authenticate'], 'Bearer', `${r.method} ${r.url}: www-authenticate`);
    for (const authorization of ['Bearer wrong-token', 'Bearer test-admin-token-012345678', `bearer test-admin-token-0123456789x`]) {
      const wrong = await ta.app.inject({ method: r.method, url: r.url, headers: { authorization }, ...(r.payload && { payload: r.payload }) });
      isError(t, wrong, 401, 'unauthorized', /not an admin token/);
      t.equal(wrong.headers['www-authenticate'], 'Bearer');
    }
    const basic = await ta.app.inject({
      method: r.method,
      url: r.url,
      headers: { authorization: 'Basic dGVzdDp0ZXN0' },
      ...(r.payload && { payload: r.payload }),
    });
    isError(t, basic, 401, 'unauthorized');
  }
  // Nothing was changed by the refused requests.
  t.equal((await get(ta, path(MAC2))).statusCode, 404);
  const m = machine(await get(ta, path(MAC)));
  t.equal(m.hostname, undefined);
  // The scheme is case-insensitive.
  t.equal(
    (await ta.app.inject({ method: 'GET', url: path(MAC), headers: { authorization: ta.auth.authorization.replace('Bearer', 'bearer') } })).statusCode,
    200,
  );
});

t.test('400s: invalid input, each with a message that says what is wrong', async (t) => {
  const ta = await testApp(t);
  t.equal((await put(ta, MAC, assistedMachine({ hostname: 'sno-1' }))).statusCode, 201);

  for (const bad of ['52:54:00:ab:cd', '52:54:00:ab:cd:eg', '52:54-00:ab:cd:ef', '5254.00ab.cdef', 'not-a-mac', '52:54:00:ab:cd:ef:01']) {
    for (const method of ['GET', 'PUT', 'PATCH', 'DELETE'] as const) {
      const res = await ta.app.inject({
        method,
        url: path(encodeURIComponent(bad)),
        headers: ta.auth,
        ...(method === 'PUT' || method === 'PATCH' ? { payload: {} } : {}),
      });
      const b = isError(t, res, 400, 'invalid_request', /mac/i);
      t.match(JSON.stringify(b.details), /mac/, 'details name the parameter');
    }
  }

  let b = isError(t, await put(ta, MAC2, { colour: 'red' }), 400, 'invalid_request', /unknown field "colour"/);
  t.match(JSON.stringify(b.details), /colour/, 'details name the unknown field');
  b = isError(t, await put(ta, MAC2, { assisted: { ipxeScriptUrl: HUB, extra: 1 } }), 400, 'invalid_request');
  t.match(JSON.stringify(b.details), /extra/);

  for (const ip of ['10.77.0.256', '10.77.0', 'fe80::1', 'ten.0.0.1', '10.77.0.50/24', ' 10.77.0.50']) {
    isError(t, await put(ta, MAC2, { ip }), 400, 'invalid_request', /\/ip must match format "ipv4"/);
  }
  for (const hostname of ['-sno', 'sno_1', 'sno..lab', 'sno 1', `${'a'.repeat(64)}.lab`, '', 'sno-.lab']) {
    isError(t, await put(ta, MAC2, { hostname }), 400, 'invalid_request', /hostname/);
  }
  isError(t, await put(ta, MAC2, { uuid: 'not-a-uuid' }), 400, 'invalid_request', /uuid/);
  isError(t, await put(ta, MAC2, { macs: ['nope'] }), 400, 'invalid_request', /macs/);
  isError(t, await put(ta, MAC2, { labels: { site: 'f 1' } }), 400, 'invalid_request', /labels/);
  isError(t, await put(ta, MAC2, { labels: { 'bad key': 'f1' } }), 400, 'invalid_request', /labels/);
  isError(t, await put(ta, MAC2, { labels: { site: { nested: 'x' } } }), 400, 'invalid_request', /labels/);
  isError(t, await put(ta, MAC2, { precache: { sizeGiB: 0 } }), 400, 'invalid_request', /sizeGiB/);
  isError(t, await put(ta, MAC2, { assisted: {} }), 400, 'invalid_request', /ipxeScriptUrl/);

  b = isError(t, await put(ta, MAC2, { profile: 'no-such-profile' }), 400, 'unknown_profile', /no profile named no-such-profile/);
  t.same(b.details, { profiles: ['assisted', 'local-disk', 'precache-assisted', 'rhcos-live'] }, 'details list the loaded profiles');
  isError(
    t,
    await put(ta, MAC2, { profile: 'precache-assisted', assisted: { ipxeScriptUrl: HUB }, precache: { liveProfile: 'assisted' } }),
    400,
    'unknown_profile',
    /liveProfile assisted/,
  );

  for (const profile of ['assisted', 'precache-assisted']) {
    b = isError(t, await put(ta, MAC2, { profile }), 400, 'missing_field', /assisted\.ipxeScriptUrl/);
    t.same(b.details, { missing: ['assisted.ipxeScriptUrl'] });
  }
  t.equal((await put(ta, MAC2, { profile: 'local-disk' })).statusCode, 201, 'a profile without requirements needs nothing more');

  b = isError(t, await put(ta, MAC3, { mac: MAC2 }), 400, 'invalid_request', /body mac .* differs from the MAC in the path/);
  t.match(b.message, /52:54:00:00:00:03/);
  t.equal((await put(ta, MAC3, { mac: MAC3.toUpperCase().replaceAll(':', '-') })).statusCode, 201, 'same MAC, other form: fine');

  const notJson = await ta.app.inject({ method: 'PUT', url: path(MAC2), headers: { ...ta.auth, 'content-type': 'application/json' }, payload: '{"profile":' });
  t.equal(notJson.statusCode, 400, 'broken JSON: 400');
  t.type(apiError(notJson).message, 'string');

  for (const url of ['/api/v1/machines/52:54:00:ab:cd:ef/events?after=-1', '/api/v1/machines/52:54:00:ab:cd:ef/events?limit=0']) {
    isError(t, await get(ta, url), 400, 'invalid_request');
  }
  const m = machine(await get(ta, path(MAC)));
  t.equal(m.hostname, 'sno-1', 'nothing changed the existing machine');
});

t.test('404 for an unknown machine on every route', async (t) => {
  const ta = await testApp(t);
  const unknown = '02:99:99:99:99:99';
  isError(t, await get(ta, path(unknown)), 404, 'machine_not_found', /no machine has MAC 02:99:99:99:99:99/);
  isError(t, await patch(ta, unknown, { hostname: 'x' }), 404, 'machine_not_found');
  isError(t, await ta.app.inject({ method: 'DELETE', url: path(unknown), headers: ta.auth }), 404, 'machine_not_found');
  isError(t, await ta.app.inject({ method: 'POST', url: path(unknown, '/reset'), headers: ta.auth, payload: {} }), 404, 'machine_not_found');
  isError(t, await get(ta, path(unknown, '/events')), 404, 'machine_not_found');
  isError(t, await ta.app.inject({ method: 'POST', url: path(unknown, '/events'), headers: ta.auth, payload: { type: 'booted' } }), 404, 'machine_not_found');
  isError(t, await get(ta, path(unknown, '/boot')), 404, 'machine_not_found');
  isError(t, await get(ta, '/api/v1/nothing-here'), 404, 'not_found', /no route for GET \/api\/v1\/nothing-here/);
  t.equal((await get(ta, '/api/v1/machines')).json<{ machines: Machine[] }>().machines.length, 0, 'the PATCH of an unknown machine created none');
});

t.test('409s: MACs in use, profile removal, refused reset', async (t) => {
  const ta = await testApp(t);
  t.equal((await put(ta, MAC, assistedMachine({ macs: [MAC2] }))).statusCode, 201);

  // A secondary MAC that already belongs to another machine, on create and on replace.
  let b = isError(
    t,
    await put(ta, MAC3, { macs: [MAC2.replaceAll(':', '-')] }),
    409,
    'mac_in_use',
    /52:54:00:ab:cd:f0 already belongs to machine 52:54:00:ab:cd:ef/,
  );
  t.same(b.details, { owner: MAC, mac: MAC2 });
  t.equal((await get(ta, path(MAC3))).statusCode, 404, 'the refused create stored nothing');
  t.equal((await put(ta, MAC3, {})).statusCode, 201);
  isError(t, await put(ta, MAC3, { macs: [MAC2] }), 409, 'mac_in_use');
  isError(t, await put(ta, MAC3, { macs: [MAC] }), 409, 'mac_in_use', /52:54:00:ab:cd:ef/);
  isError(t, await patch(ta, MAC3, { macs: [MAC2] }), 409, 'mac_in_use');
  t.same(machine(await get(ta, path(MAC3))).macs, [], 'the refused replace stored nothing');
  t.same(machine(await get(ta, path(MAC2))).mac, MAC, 'the secondary still belongs to its machine');

  // PUT to a MAC that is another machine's secondary.
  b = isError(t, await put(ta, MAC2.toUpperCase(), { hostname: 'hijack' }), 409, 'mac_in_use', /further MAC of machine 52:54:00:ab:cd:ef/);
  t.same(b.details, { owner: MAC });
  const owner = machine(await get(ta, path(MAC)));
  t.equal(owner.hostname, undefined, 'the owner is unchanged');
  t.equal(owner.profile, 'assisted');

  // Removing the profile of a registered machine.
  isError(t, await put(ta, MAC, { macs: [MAC2] }), 409, 'profile_required', /registered/);
  t.equal(machine(await get(ta, path(MAC))).profile, 'assisted', 'profile kept');
  isError(t, await patch(ta, MAC, { profile: null }), 409, 'profile_required');
  // ... while a discovered machine may go without one
  t.equal((await put(ta, MAC3, { hostname: 'plain' })).statusCode, 200);

  // A refused reset: registered is neither failed nor installed.
  for (const to of ['registered', 'precached'] as const) {
    b = isError(
      t,
      await ta.app.inject({ method: 'POST', url: path(MAC, '/reset'), headers: ta.auth, payload: { to } }),
      409,
      'invalid_transition',
      /only failed or installed machines can be reset/,
    );
    t.same(b.details, { state: 'registered', transition: 'reset' });
  }
  isError(t, await ta.app.inject({ method: 'POST', url: path(MAC3, '/reset'), headers: ta.auth }), 409, 'invalid_transition', /state discovered/);
  isError(t, await ta.app.inject({ method: 'POST', url: path(MAC, '/reset'), headers: ta.auth, payload: { to: 'installed' } }), 400, 'invalid_request', /to/);
  t.equal(machine(await get(ta, path(MAC))).state, 'registered');
});

t.test('a discovered record is taken over by a reservation that names its MAC; a refused PUT takes over nothing', async (t) => {
  const ta = await testApp(t);
  const D = '02:00:00:00:00:0d';
  t.equal((await put(ta, MAC, assistedMachine({ macs: [MAC2] }))).statusCode, 201);
  const booted = await ta.app.inject({ method: 'GET', url: '/ipxe?mac=02-00-00-00-00-0d&arch=x86_64' });
  t.equal(booted.statusCode, 200);
  t.equal(machine(await get(ta, path(D))).state, 'discovered', 'the booted NIC left a discovered record');
  const eventsOfD = (await get(ta, path(D, '/events'))).json<{ events: unknown[] }>().events.length;

  // Refused: another MAC of the body belongs to a registered machine.
  isError(t, await put(ta, MAC3, { macs: [D, MAC2] }), 409, 'mac_in_use');
  isError(t, await put(ta, MAC3, { macs: [MAC2, D] }), 409, 'mac_in_use');
  // Refused: the path MAC is a further MAC of another machine.
  isError(t, await put(ta, MAC2, { macs: [D] }), 409, 'mac_in_use');
  // Refused: the replace would drop the profile of a registered machine.
  isError(t, await put(ta, MAC, { macs: [MAC2, D] }), 409, 'profile_required');
  const d = await get(ta, path(D));
  t.equal(d.statusCode, 200, 'the refused PUTs left the discovered record alone');
  t.equal(machine(d).mac, D);
  t.equal((await get(ta, path(D, '/events'))).json<{ events: unknown[] }>().events.length, eventsOfD, 'with its timeline');
  t.equal((await get(ta, path(MAC3))).statusCode, 404);

  // Accepted: the reservation takes the record over, with what it observed.
  const res = await put(ta, MAC3, { macs: [D.replaceAll(':', '-')], profile: 'local-disk' });
  t.equal(res.statusCode, 201, res.body);
  const m = machine(res);
  t.same(m.macs, [D]);
  t.equal(m.observed.arch, 'x86_64', 'what the discovered record observed comes along');
  t.equal(machine(await get(ta, path(D))).mac, MAC3, 'the MAC now finds the reservation');
});

t.test('reset: failed → registered; to precached only after a completed precache', async (t) => {
  const ta = await testApp(t);
  const post = (mac: string, payload: Record<string, unknown>) => ta.app.inject({ method: 'POST', url: path(mac, '/events'), headers: ta.auth, payload });
  const reset = (mac: string, payload?: Record<string, unknown>) =>
    ta.app.inject({ method: 'POST', url: path(mac, '/reset'), headers: ta.auth, ...(payload && { payload }) });

  // Never precached: fails, cannot keep a precache, resets to registered. (Its ip is where
  // app.inject's requests come from: /ipxe serves it its own boot, boot.verifyClient.)
  t.equal((await put(ta, MAC, { profile: 'precache-assisted', assisted: { ipxeScriptUrl: HUB }, ip: '127.0.0.1' })).statusCode, 201);
  let ev = await post(MAC, { type: 'failed', message: 'disk on fire' });
  t.equal(ev.statusCode, 201, ev.body);
  t.equal(machine(await get(ta, path(MAC))).state, 'failed');
  isError(t, await reset(MAC, { to: 'precached' }), 409, 'invalid_transition', /no completed precache to keep/);
  t.equal(machine(await get(ta, path(MAC))).state, 'failed', 'refused reset kept the state');
  let res = await reset(MAC);
  t.equal(res.statusCode, 200, res.body);
  t.equal(machine(res).state, 'registered', 'default target: registered');

  // Precached once, then failed: may go back to precached.
  const boot = await ta.app.inject({ method: 'GET', url: `/ipxe?mac=${MAC}` });
  t.equal(boot.statusCode, 200);
  t.equal(machine(await get(ta, path(MAC))).state, 'precaching');
  ev = await post(MAC, { type: 'precache-done' });
  t.equal(ev.statusCode, 201);
  const precached = machine(await get(ta, path(MAC)));
  t.equal(precached.state, 'precached');
  t.type(precached.precachedAt, 'string');
  t.equal((await post(MAC, { type: 'failed' })).statusCode, 201);
  res = await reset(MAC, { to: 'precached' });
  t.equal(res.statusCode, 200, res.body);
  t.equal(machine(res).state, 'precached');
  t.equal(machine(res).precachedAt, precached.precachedAt, 'the precache is kept');

  // A reset to registered is a full redo: the kept precache is forgotten.
  t.equal((await post(MAC, { type: 'failed' })).statusCode, 201);
  res = await reset(MAC, { to: 'registered' });
  t.equal(machine(res).state, 'registered');
  t.equal(machine(res).precachedAt, undefined);
  t.equal((await post(MAC, { type: 'failed' })).statusCode, 201);
  isError(t, await reset(MAC, { to: 'precached' }), 409, 'invalid_transition', /no completed precache/);

  // The timeline records each reset as an api state change.
  const events = (await get(ta, path(MAC, '/events'))).json<{ events: { type: string; source: string; from?: string; to?: string; message?: string }[] }>()
    .events;
  const resets = events.filter((e) => e.type === 'state-changed' && e.source === 'api' && e.from === 'failed');
  t.same(
    resets.map((e) => [e.to, e.message]),
    [
      ['registered', 'reset to registered'],
      ['precached', 'reset to precached'],
      ['registered', 'reset to registered'],
    ],
  );
});
