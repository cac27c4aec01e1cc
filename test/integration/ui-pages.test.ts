/**
 * The dashboard's pages over a real app (inject) and its live stream over a real socket: the
 * registration form with the API's own errors by field, editing that keeps what the form does not
 * show, the machines table's server-side search, sort, paging and grouping, bulk actions behind a
 * confirmation naming the count, the timeline, and /ui/events telling a change as it commits.
 */
import { request } from 'node:http';
import t, { type Test } from 'tap';
import type { Mac } from '../../src/machines/mac.js';
import { ADMIN_TOKEN, testApp, type TestApp } from '../helpers/app.js';
import { loggedIn, type UiClient } from '../helpers/ui.js';

const mac = (i: number): Mac => `52:54:00:00:01:${i.toString(16).padStart(2, '0')}` as Mac;
const path = (m: string): string => m.replaceAll(':', '-');

async function put(ta: TestApp, m: string, body: Record<string, unknown>): Promise<void> {
  const r = await ta.app.inject({ method: 'PUT', url: `/api/v1/machines/${m}`, headers: ta.auth, payload: body });
  if (r.statusCode >= 300) throw new Error(`PUT ${m}: ${r.statusCode} ${r.body}`);
}

async function admin(t: Test): Promise<{ ta: TestApp; c: UiClient }> {
  const ta = await testApp(t);
  return { ta, c: await loggedIn(ta.app, ADMIN_TOKEN) };
}

t.test('registering through the form: a bad MAC and the API refusals land on their fields; a good one lands on its page', async (t) => {
  const { ta, c } = await admin(t);
  await c.get('/ui/machines/new');
  const bad = await c.post('/ui/machines/new', { mac: 'not-a-mac', hostname: 'node-7' });
  t.equal(bad.status, 400);
  t.match(bad.html, /<p class="field-error" id="f-mac-err">&quot;not-a-mac&quot; is not a MAC address/);
  t.match(bad.html, /id="f-mac" name="mac" value="not-a-mac" required autocomplete="off" aria-invalid="true" aria-describedby="f-mac-err"/);
  t.match(bad.html, /name="hostname" value="node-7"/, 'what was typed stays');

  const host = await c.post('/ui/machines/new', { mac: mac(1), hostname: '-bad-host-' });
  t.equal(host.status, 400);
  t.match(host.html, /id="f-hostname-err">must match pattern/, "the API's schema error, on the hostname field");
  const bmc = await c.post('/ui/machines/new', { mac: mac(1), 'bmc.address': 'ftp://bmc.example', 'bmc.username': 'root' });
  t.equal(bmc.status, 400);
  t.match(bmc.html, /id="f-bmc-address-err"/, 'a BMC address refusal, on the BMC address field');
  const labels = await c.post('/ui/machines/new', { mac: mac(1), labels: 'rack=r1\nno equals sign' });
  t.match(labels.html, /id="f-labels-err">&quot;no equals sign&quot; is not key=value/);
  t.notOk(await ta.store.getMachine(mac(1)), 'nothing saved by a refused form');

  const ok = await c.post('/ui/machines/new', {
    mac: mac(1).toUpperCase().replaceAll(':', '-'),
    hostname: 'node-1',
    ip: '10.77.0.21',
    profile: 'rhcos-live',
    labels: 'rack=r1\nrow=3',
    'bmc.address': 'redfish+http://127.0.0.1:9',
    'bmc.username': 'root',
    'bmc.password': 'SECRET-bmc-password',
  });
  t.equal(ok.status, 303);
  t.equal(ok.headers.location, `/ui/machines/${path(mac(1))}`);
  const m = await ta.store.getMachine(mac(1));
  t.same(
    { hostname: m?.hostname, ip: m?.ip, profile: m?.profile, labels: m?.labels, bmc: m?.bmc?.address },
    {
      hostname: 'node-1',
      ip: '10.77.0.21',
      profile: 'rhcos-live',
      labels: { rack: 'r1', row: '3' },
      bmc: 'redfish+http://127.0.0.1:9',
    },
  );
  t.ok(m?.bmc?.passwordSealed, 'the password is sealed on the record');
  const again = await c.post('/ui/machines/new', { mac: mac(1) });
  t.equal(again.status, 409);
  t.match(again.html, /already registered/);
});

t.test('editing keeps what the form does not show: other MACs, precache images, the BMC password', async (t) => {
  const { ta, c } = await admin(t);
  await put(ta, mac(2), {
    hostname: 'node-2',
    macs: [mac(3)],
    precache: { release: 'quay.io/x/release:4.16', images: ['quay.io/x/a:1'] },
    bmc: { address: 'redfish+http://127.0.0.1:9', username: 'root', password: 'SECRET-kept' },
  });
  const before = await ta.store.getMachine(mac(2));
  const page = await c.get(`/ui/machines/${path(mac(2))}`);
  t.match(page.html, /name="hostname" value="node-2"/);
  t.notMatch(page.html, /SECRET-kept/);
  const saved = await c.post(`/ui/machines/${path(mac(2))}`, {
    hostname: 'node-2b',
    labels: 'site=a',
    'precache.release': 'quay.io/x/release:4.16',
    'bmc.address': 'redfish+http://127.0.0.1:9',
    'bmc.username': 'root',
    'bmc.password': '',
  });
  t.equal(saved.status, 303);
  const after = await ta.store.getMachine(mac(2));
  t.equal(after?.hostname, 'node-2b');
  t.same(after?.macs, [mac(3)]);
  t.same(after?.precache?.images, ['quay.io/x/a:1']);
  t.equal(after?.bmc?.passwordSealed, before?.bmc?.passwordSealed, 'an empty password field keeps the stored one');
  const moved = await c.post(`/ui/machines/${path(mac(2))}`, { hostname: 'node-2b', 'bmc.address': 'redfish+http://127.0.0.2:9', 'bmc.username': 'root' });
  t.equal(moved.status, 400);
  t.match(moved.html, /id="f-bmc-password-err"|class="field-error">bmc.address changed/, 'a new address asks for the password again, on its field');
});

t.test('the machines table: search, filters, sort, paging, grouping, the MAC toggle — on the server', async (t) => {
  const { ta, c } = await admin(t);
  for (let i = 1; i <= 30; i++) {
    await put(ta, mac(i), {
      hostname: `node-${String(i).padStart(2, '0')}`,
      ip: `10.77.0.${i}`,
      profile: i % 2 ? 'rhcos-live' : 'local-disk',
      labels: { rack: `r${i % 3}` },
    });
  }
  await ta.app.inject({
    method: 'POST',
    url: `/api/v1/machines/${mac(5)}/events`,
    headers: ta.auth,
    payload: { type: 'failed', message: 'disk /dev/sda not found' },
  });
  const rows = (html: string): string[] => [...html.matchAll(/<a href="\/ui\/machines\/[0-9a-f-]+">([^<]+)<\/a>/g)].map((m) => m[1] ?? '');
  const all = await c.get('/ui/machines?size=25');
  t.match(all.html, /30 machines, 1–25 shown/);
  t.equal(rows(all.html).length, 25);
  t.equal(rows(all.html)[0], 'node-01');
  t.match(all.html, /Page 1 of 2/);
  const second = await c.get('/ui/machines?size=25&page=2');
  t.same(rows(second.html), ['node-26', 'node-27', 'node-28', 'node-29', 'node-30']);
  const byIp = await c.get('/ui/machines?sort=ip&dir=desc&size=25');
  t.same(rows(byIp.html).slice(0, 3), ['node-30', 'node-29', 'node-28'], 'IPs in numeric order, descending');
  t.same(rows((await c.get('/ui/machines?q=node-1')).html), [
    'node-10',
    'node-11',
    'node-12',
    'node-13',
    'node-14',
    'node-15',
    'node-16',
    'node-17',
    'node-18',
    'node-19',
  ]);
  t.same(rows((await c.get(`/ui/machines?q=${path(mac(7))}`)).html), ['node-07'], 'a MAC in another form');
  t.same(rows((await c.get('/ui/machines?q=10.77.0.3')).html), ['node-03', 'node-30'], 'by IP');
  t.equal(rows((await c.get('/ui/machines?profile=local-disk&label=rack%3Dr0')).html).length, 5, 'profile and label');
  const failed = await c.get('/ui/machines?state=failed');
  t.same(rows(failed.html), ['node-05']);
  t.match(failed.html, /<div class="sub why">disk \/dev\/sda not found<\/div>/, 'the failed row says why, from the event that failed it');
  const grouped = await c.get('/ui/machines?group=1&size=50');
  t.same(
    [...grouped.html.matchAll(/<tr class="group"><th[^>]*>([a-z]+)<\/th>/g)].map((m) => m[1]),
    ['failed', 'registered'],
  );
  t.notMatch(all.html, new RegExp(`<code>${mac(1)}</code></div>`), 'MACs under hostnames are off by default');
  t.match((await c.get('/ui/machines?macs=1')).html, new RegExp(`10.77.0.1 <code>${mac(1)}</code>`));
  const frag = await c.get('/ui/machines?fragment=rows&state=failed');
  t.match(frag.html, /^<div id="machine-table"/, 'the htmx fragment is the table alone');
  t.equal((await c.get('/ui/machines?sort=nonsense&size=7&page=-3&state=bogus')).status, 200, 'a hand-made URL falls back to the defaults');
});

t.test('bulk actions: a confirmation naming the count, then the actions through the API', async (t) => {
  const { ta, c } = await admin(t);
  for (const i of [1, 2, 3]) await put(ta, mac(i), { hostname: `n${i}` });
  await c.get('/ui/machines');
  const ask = await c.post('/ui/machines/bulk', { action: 'delete', mac: [mac(1), mac(2)], back: '/ui/machines?q=n' });
  t.equal(ask.status, 200);
  t.match(ask.html, /<h1>Delete: 2 machines\?<\/h1>/);
  t.match(ask.html, /Delete 2 machines<\/button>/);
  t.ok(await ta.store.getMachine(mac(1)), 'nothing happens before the confirmation');
  const done = await c.post('/ui/machines/bulk', { action: 'delete', mac: [mac(1), mac(2)], confirm: 'yes', back: '/ui/machines?q=n' });
  t.match(done.html, /Delete: 2 of 2 done/);
  t.notOk(await ta.store.getMachine(mac(1)));
  t.notOk(await ta.store.getMachine(mac(2)));
  t.ok(await ta.store.getMachine(mac(3)));
  const reset = await c.post('/ui/machines/bulk', { action: 'provision', mac: [mac(3)], confirm: 'yes' });
  t.match(reset.html, /Provision: 0 of 1 done/, 'a refusal of the API is counted and shown');
  t.match(reset.html, /<td><code>52:54:00:00:01:03<\/code><\/td><td>[^<]+BMC/, 'with its reason');
  t.equal((await c.post('/ui/machines/bulk', { action: 'format-disks', mac: [mac(3)], confirm: 'yes' })).status, 400, 'only the bulk actions named');
});

t.test('the machine page: the timeline with times, deltas and summaries, secrets cut; actions move the machine', async (t) => {
  const { ta, c } = await admin(t);
  await put(ta, mac(4), { hostname: 'node-4', profile: 'rhcos-live', assisted: { ipxeScriptUrl: 'https://hub.example/ipxe?api_key=SECRET-api-key' } });
  await ta.store.appendEvents(mac(4), [
    { type: 'tftp-transfer', source: 'tftp', data: { file: 'undionly.kpxe', bytes: 2_000_000, durationMs: 400, blksize: 1468, windowsize: 8 } },
    { type: 'note', source: 'machine', message: 'fetched https://x.example/a?token=SECRET-token-1', data: { password: 'SECRET-password-1' } },
  ]);
  const page = await c.get(`/ui/machines/${path(mac(4))}`);
  t.match(page.html, /undionly\.kpxe: 1\.91 MiB in 400 ms, 4\.77 MiB\/s \(blksize 1468, windowsize 8\)/);
  t.match(page.html, /<span class="delta">\+/, 'each step after the first has its delta');
  t.match(page.html, /reservation-created/);
  t.notMatch(page.html, /SECRET-/, 'no planted secret on the page');
  t.match(page.html, /edgeboot machines show 52:54:00:00:01:04/, 'the CLI line to copy');
  t.match(page.html, /#!ipxe/, 'the script /ipxe serves it now');
  const r = await c.post(`/ui/machines/${path(mac(4))}/action`, { action: 'reset' });
  t.equal(r.status, 303);
  const events = await ta.store.listEvents(mac(4));
  t.equal(events.at(-1)?.type, 'reset', 'the reset reached the timeline, through the API');
  const refused = await c.post(`/ui/machines/${path(mac(4))}/action`, { action: 'power-on' });
  t.equal(refused.status, 409);
  t.match(refused.html, /BMC/, "the API's refusal, said on the page");
  t.equal((await c.get('/ui/machines/52-54-00-ff-ff-ff')).status, 404);
  const frag = await c.get(`/ui/machines/${path(mac(4))}?fragment=live`);
  t.match(frag.html, /^\s*<dl class="kv" id="machine-live"/);
  t.match(frag.html, /<div id="timeline"/);
});

t.test('/ui/events: a committed change reaches an open dashboard, coalesced, naming machines and types only', async (t) => {
  const ta = await testApp(t);
  const c = await loggedIn(ta.app, ADMIN_TOKEN);
  await put(ta, mac(9), { hostname: 'node-9' });
  await ta.app.listen({ host: '127.0.0.1', port: 0 });
  const address = ta.app.server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const cookie = [...c.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  const received: string[] = [];
  const opened = new Promise<void>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/ui/events', headers: { cookie } }, (res) => {
      t.equal(res.statusCode, 200);
      t.match(String(res.headers['content-type']), /^text\/event-stream/);
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => received.push(chunk));
      resolve();
    });
    req.on('error', reject);
    req.end();
    t.teardown(() => req.destroy());
  });
  await opened;
  for (let i = 0; i < 5; i++) {
    await ta.app.inject({ method: 'POST', url: `/api/v1/machines/${mac(9)}/events`, headers: ta.auth, payload: { type: 'booted', message: 'token=SECRET-x' } });
  }
  const deadline = Date.now() + 5000;
  while (!received.join('').includes('event: change') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  const text = received.join('');
  const messages = text.split('\n\n').filter((m) => m.startsWith('event: change'));
  t.equal(messages.length, 1, 'five events within the flush interval: one message');
  const data = JSON.parse(messages[0]?.split('data: ')[1] ?? '{}') as { machines: Record<string, { types: string[]; lastEventId: number }> };
  t.same(data.machines[mac(9)]?.types, ['booted']);
  t.notMatch(text, /SECRET/, 'no event text on the stream');
});
