/**
 * `GET /api/v1/machines/{mac}/script`: the script `/ipxe` would serve a machine now, its
 * secrets cut, with nothing moved. For each state of the flow (a discovered record, registered,
 * precaching, precached, installing, installed, failed) the preview is taken, the machine's
 * record and timeline are compared byte for byte with what they were before it, and then the
 * machine's own `/ipxe` request must serve the same script once its secrets are cut the same
 * way. In rewrite mode the preview asks a real hub on loopback and moves nothing even when the
 * hub's 404 would mark the machine installed.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import t, { type Test } from 'tap';
import type { LightMyRequestResponse } from 'fastify';
import type { Mac } from '../../src/machines/mac.js';
import { REDACTED, redactSecrets } from '../../src/secrets/redact.js';
import { testApp, type ErrorBody, type TestApp } from '../helpers/app.js';

const MAC = '52:54:00:5c:00:01' as Mac;
const MAC_HYP = '52-54-00-5c-00-01';
const STRANGER_MAC = '52:54:00:5c:00:99' as Mac;
const MACHINE_IP = '10.77.0.61';
const HOST = '10.77.0.1:8080';
const API_KEY = 'hub-api-key-9f8e7d';
const HUB = `https://hub.example.com/api/assisted-install/v2/infra-envs/77/downloads/files?file_name=ipxe-script&api_key=${API_KEY}`;
/** A fixed clock: the signed Ignition URL's expiry is the same in the preview and the boot. */
const NOW = new Date('2026-03-01T12:00:00.000Z');

interface Preview {
  mac: string;
  state: string;
  wouldMoveTo?: string;
  decision: { kind: string; reason: string; stage?: string; profile?: string; hub?: string };
  script: string;
}

const preview = (ta: TestApp, mac: string, format?: 'json'): Promise<LightMyRequestResponse> =>
  ta.app.inject({ method: 'GET', url: `/api/v1/machines/${mac}/script${format ? `?format=${format}` : ''}`, headers: { ...ta.auth, host: HOST } });

const boot = (ta: TestApp, mac: string): Promise<LightMyRequestResponse> =>
  ta.app.inject({ method: 'GET', url: `/ipxe?mac=${mac}&arch=x86_64`, headers: { host: HOST }, remoteAddress: MACHINE_IP });

/** Everything the store keeps about the machine: its record (state, boot counters, token generation) and its timeline. */
async function snapshot(ta: TestApp, mac: Mac): Promise<string> {
  return JSON.stringify({ machine: (await ta.store.getMachine(mac)) ?? null, events: await ta.store.listEvents(mac) });
}

async function adminEvent(ta: TestApp, type: string): Promise<void> {
  const r = await ta.app.inject({ method: 'POST', url: `/api/v1/machines/${MAC_HYP}/events`, headers: ta.auth, payload: { type } });
  if (r.statusCode !== 201) throw new Error(`POST ${type}: ${r.statusCode} ${r.body}`);
}

/**
 * The preview, then the boot: the preview left the store as it was, and equals the boot's
 * script with its secrets cut. Returns the preview's JSON form.
 */
async function previewThenBoot(t: Test, ta: TestApp, mac: Mac, state: string): Promise<Preview> {
  const before = await snapshot(ta, mac);
  const text = await preview(ta, mac);
  t.equal(text.statusCode, 200, `${state}: 200${text.statusCode === 200 ? '' : ` (${text.body})`}`);
  t.match(text.headers['content-type'], /^text\/plain/, `${state}: text/plain`);
  const json = await preview(ta, mac, 'json');
  t.equal(json.statusCode, 200, `${state}: format=json 200`);
  t.match(json.headers['content-type'], /^application\/json/, `${state}: format=json is JSON`);
  const p = json.json<Preview>();
  t.equal(p.script, text.body, `${state}: the JSON carries the same script`);
  t.equal(p.state, state, `${state}: the JSON names the current state`);
  t.equal(await snapshot(ta, mac), before, `${state}: record, counters and timeline byte-identical after two previews`);

  const served = await boot(ta, mac);
  t.equal(served.statusCode, 200, `${state}: /ipxe 200`);
  t.equal(text.body, redactSecrets(served.body), `${state}: the preview is what /ipxe served, its secrets cut`);
  t.notMatch(text.body, new RegExp(`${API_KEY}|(token|sig)=(?!\\*redacted\\*)`), `${state}: no token, signature or api_key in the preview`);
  return p;
}

t.test('the preview of each state equals the boot that follows it, and moves nothing', async (t) => {
  const ta = await testApp(t, { now: () => NOW, config: { boot: { assistedChain: 'chain' } } });

  // A discovered record: a machine that booted before anyone registered it.
  t.equal((await boot(ta, MAC_HYP)).statusCode, 200, 'the machine boots once, unregistered');
  let p = await previewThenBoot(t, ta, MAC, 'discovered');
  t.equal(p.decision.kind, 'local', 'discovered, boot.unknownMachines exit: the local disk');
  t.equal(p.wouldMoveTo, undefined, 'and no state move');

  const put = await ta.app.inject({
    method: 'PUT',
    url: `/api/v1/machines/${MAC_HYP}`,
    headers: ta.auth,
    payload: { profile: 'precache-assisted', assisted: { ipxeScriptUrl: HUB }, hostname: 'sno-5', ip: MACHINE_IP },
  });
  t.equal(put.statusCode, 200, `registered (${put.body})`);

  p = await previewThenBoot(t, ta, MAC, 'registered');
  const precacheStage = [p.decision.kind, p.decision.stage, p.decision.profile, p.wouldMoveTo];
  t.same(precacheStage, ['boot', 'precache', 'rhcos-live', 'precaching'], 'registered: the precache stage, which would move it to precaching');
  t.match(p.script, `ignition.config.url=http://${HOST}/api/v1/machines/${MAC_HYP}/ignition?exp=`, 'the Ignition URL is shown…');
  t.match(p.script, `&sig=${REDACTED}`, '…with its signature cut');
  t.equal((await ta.store.getMachine(MAC))?.state, 'precaching', 'the boot (not the preview) moved it');

  p = await previewThenBoot(t, ta, MAC, 'precaching');
  t.equal(p.wouldMoveTo, undefined, 'precaching: a reboot serves the live environment again');
  t.equal((await ta.store.getMachine(MAC))?.precacheProgress?.boots, 2, 'two boots counted: the two /ipxe requests, no preview');

  await adminEvent(ta, 'precache-done');
  p = await previewThenBoot(t, ta, MAC, 'precached');
  t.same([p.decision.stage, p.decision.profile, p.wouldMoveTo], ['install', 'assisted', 'installing'], 'precached: the install stage');
  t.match(p.script, `api_key=${REDACTED}`, "the hub's URL is shown with its api_key cut");

  p = await previewThenBoot(t, ta, MAC, 'installing');
  t.equal(p.wouldMoveTo, undefined, 'installing stays installing');

  await adminEvent(ta, 'install-done');
  p = await previewThenBoot(t, ta, MAC, 'installed');
  t.equal(p.decision.kind, 'local', 'installed: the local disk');

  await adminEvent(ta, 'failed');
  p = await previewThenBoot(t, ta, MAC, 'failed');
  t.equal(p.decision.kind, 'wait', 'failed: wait and re-check');

  const generations = (await ta.store.getMachine(MAC))?.tokenGeneration;
  t.equal(generations, 4, 'tokens rotated by the four precache and install boots, not by the previews');
});

t.test('a MAC no machine has is a 404 that says so, and leaves no record', async (t) => {
  const ta = await testApp(t);
  const res = await preview(ta, STRANGER_MAC);
  t.equal(res.statusCode, 404);
  t.same(res.json<ErrorBody>(), { error: 'machine_not_found', message: `no machine has MAC ${STRANGER_MAC}` });
  t.equal(await ta.store.getMachine(STRANGER_MAC), undefined, 'no discovered record made');
  const bad = await preview(ta, 'not-a-mac');
  t.equal(bad.statusCode, 400, 'a malformed MAC is a 400');
  const anon = await ta.app.inject({ method: 'GET', url: `/api/v1/machines/${MAC_HYP}/script` });
  t.equal(anon.statusCode, 401, 'admin only');
});

t.test('rewrite mode: the preview asks the hub, and its 404 moves nothing until the machine boots', async (t) => {
  let installed = false;
  const hubRequests: string[] = [];
  const hub = createServer((req, res) => {
    hubRequests.push(req.url ?? '');
    if (installed) {
      res.writeHead(404).end();
      return;
    }
    const base = `http://127.0.0.1:${(hub.address() as AddressInfo).port}`;
    res
      .writeHead(200, { 'content-type': 'text/plain' })
      .end(
        [
          '#!ipxe',
          `initrd --name initrd ${base}/images/77/pxe-initrd?api_key=${API_KEY}&arch=x86_64`,
          `kernel ${base}/boot-artifacts/kernel?arch=x86_64 initrd=initrd coreos.live.rootfs_url=${base}/boot-artifacts/rootfs?arch=x86_64 ip=dhcp`,
          'boot',
          '',
        ].join('\n'),
      );
  });
  await new Promise<void>((resolve) => hub.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => hub.close(() => resolve())));
  const hubBase = `http://127.0.0.1:${(hub.address() as AddressInfo).port}`;
  const scriptUrl = `${hubBase}/api/assisted-install/v2/infra-envs/77/downloads/files?file_name=ipxe-script&api_key=${API_KEY}`;

  const ta = await testApp(t, { now: () => NOW, cache: {} });
  const payload = { profile: 'assisted', assisted: { ipxeScriptUrl: scriptUrl }, ip: MACHINE_IP };
  const put = await ta.app.inject({ method: 'PUT', url: `/api/v1/machines/${MAC_HYP}`, headers: ta.auth, payload });
  t.equal(put.statusCode, 201, `created${put.statusCode === 201 ? '' : ` (${put.body})`}`);

  let p = await previewThenBoot(t, ta, MAC, 'registered');
  t.same([p.decision.hub, p.wouldMoveTo], ['rewritten', 'installing'], "registered: the hub's script, rewritten, would move it to installing");
  const asset = (name: string) => `http://10\\.77\\.0\\.1:8080/assets/hub/[0-9a-f]{16}/${name}`;
  const kernelLine = new RegExp(`^kernel ${asset('kernel')} initrd=initrd coreos\\.live\\.rootfs_url=${asset('rootfs')} ip=dhcp `, 'm');
  t.match(p.script, kernelLine, 'the kernel line with edgeboot URLs');
  t.equal(hubRequests.length, 3, 'the hub was asked by each preview (text and JSON) and by the boot');

  installed = true;
  const before = await snapshot(ta, MAC);
  const res = await preview(ta, MAC, 'json');
  p = res.json<Preview>();
  const answer = [p.state, p.decision.kind, p.wouldMoveTo];
  t.same(answer, ['installing', 'local', 'installed'], "the hub's 404: the local disk, and serving it would mark the machine installed");
  t.equal(await snapshot(ta, MAC), before, 'the preview moved nothing');
  t.equal((await boot(ta, MAC_HYP)).statusCode, 200);
  t.equal((await ta.store.getMachine(MAC))?.state, 'installed', 'the boot did');
});
