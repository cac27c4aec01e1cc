/**
 * Secrets never leave in clear (issue 15 §3): a real `edgeboot serve` at debug level, a profile
 * whose artifact URLs carry every secret-looking parameter and userinfo (upstreams: a closed
 * loopback port, `python3 -m http.server` answering 404, a stand-in answering 500), a machine
 * whose assisted ipxeScriptUrl carries them, an image job with a pull secret. Every route an
 * operator or a scraper reads is driven, and no secret value may appear in any answer, in any
 * log line (stdout and stderr) or in any event — while the machine's own boot script still
 * carries the key it needs.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import t from 'tap';
import { closedPort, killAtExit, startServer, tempDir } from '../helpers/process.js';
import { startUpstream } from '../helpers/upstream.js';

const NAMES = ['token', 'sig', 'api_key', 'image_token', 'access_token', 'X-Amz-Credential', 'X-Amz-Signature', 'X-Goog-Signature', 'Signature', 'password'];
const secret = (what: string): string => `SECRET-${what}-value`;
/** Every secret value the test plants; none may come back except to the machine itself. */
const planted: string[] = [];
const plant = (what: string): string => {
  const s = secret(what);
  planted.push(s);
  return s;
};

/** `python3 -m http.server` on 127.0.0.1, serving an empty directory: 404 for every artifact. */
async function pythonHttpServer(dir: string): Promise<number> {
  const child = spawn('python3', ['-u', '-m', 'http.server', '0', '--bind', '127.0.0.1', '--directory', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
  killAtExit(child);
  t.teardown(() => {
    child.kill('SIGTERM');
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('python3 -m http.server did not say its port within 10 s')), 10_000);
    createInterface({ input: child.stdout }).on('line', (line) => {
      const m = /port ([0-9]+)/.exec(line);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    child.once('exit', (code) => reject(new Error(`python3 -m http.server exited (${code})`)));
  });
}

const dir = tempDir(t);
const closed = await closedPort();
const py = await pythonHttpServer(tempDir(t));
const upstream = await startUpstream(t);
upstream.misbehave.set('/fails', { status: 500 });
const targets = [`http://127.0.0.1:${closed}/gone`, `http://127.0.0.1:${py}/missing`, upstream.url('/fails')];

const profiles = join(dir, 'profiles');
mkdirSync(profiles);
const artifactNames: string[] = [];
const artifactLines = NAMES.map((name, i) => {
  const a = `a${i}`;
  artifactNames.push(a);
  return `  ${a}: { url: "${targets[i % targets.length]}?arch=x86_64&${name}=${plant(`profile-${name}`)}" }`;
});
artifactNames.push('userinfo');
artifactLines.push(`  userinfo: { url: "http://${plant('profile-user')}:${plant('profile-pass')}@127.0.0.1:${closed}/kernel" }`);
writeFileSync(
  join(profiles, 'leaky.yaml'),
  [
    'name: leaky',
    'description: artifacts whose URLs carry credentials',
    'artifacts:',
    ...artifactLines,
    'boot:',
    '  kernel: a0',
    `  initrds: [${artifactNames.slice(1).join(', ')}]`,
    '  args: console=ttyS0',
    '',
  ].join('\n'),
);

const srv = await startServer(t, {
  dataDir: join(dir, 'data'),
  logLevel: 'debug',
  env: { EDGEBOOT_PROFILES_DIRS: profiles, EDGEBOOT_BOOT_ASSISTED_CHAIN: 'chain', EDGEBOOT_REGISTRY_INSECURE_REGISTRIES: `127.0.0.1:${closed}` },
});
const auth = { authorization: `Bearer ${srv.token}` };

/** Every answer body the test reads (the machine's own boot script is kept apart). */
const bodies: { what: string; body: string }[] = [];
async function call(method: string, path: string, body?: unknown, headers: Record<string, string> = auth): Promise<{ status: number; text: string }> {
  const res = await fetch(`${srv.url}${path}`, {
    method,
    headers: { ...headers, ...(body !== undefined && { 'content-type': 'application/json' }) },
    ...(body !== undefined && { body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await res.text();
  bodies.push({ what: `${method} ${path} (${res.status})`, body: text });
  return { status: res.status, text };
}

const MAC = '52-54-00-5e-c0-01';
/** The machine's events token: /boot hands it to the hub (as the machine's own), nothing else may show it. */
let eventsToken = '';
const hubScript = `http://${plant('hub-user')}:${plant('hub-pass')}@127.0.0.1:${closed}/api/assisted-install/v2/infra-envs/e1/downloads/files?file_name=ipxe-script&${NAMES.map((n) => `${n}=${plant(`hub-${n}`)}`).join('&')}`;

t.test('an artifact upstream that fails answers 502 without its secrets', async (t) => {
  for (const a of artifactNames) {
    const r = await call('GET', `/assets/leaky/${a}`);
    t.equal(r.status, 502, `${a}: 502 (${r.text})`);
    t.match(r.text, /upstream/, `${a}: the body says the upstream failed`);
  }
  const prefetch = await call('POST', '/api/v1/cache/prefetch?wait=true', {
    url: `http://127.0.0.1:${closed}/rootfs?X-Amz-Credential=${plant('prefetch-cred')}&X-Amz-Signature=${plant('prefetch-sig')}`,
  });
  t.equal(prefetch.status, 502, 'a prefetch from a closed port: 502');
});

t.test('the admin API shows profiles, machines, events, the cache and metrics with secrets cut', async (t) => {
  t.equal((await call('GET', '/api/v1/profiles')).status, 200);
  const one = await call('GET', '/api/v1/profiles/leaky');
  t.equal(one.status, 200);
  t.match(one.text, /api_key=\*redacted\*/, 'the profile view shows where a secret was cut');
  t.match(one.text, /127\.0\.0\.1/, 'and the rest of the URL');

  const put = await call('PUT', `/api/v1/machines/${MAC}`, {
    profile: 'assisted',
    ip: '127.0.0.1',
    hostname: 'leaky-1',
    assisted: { ipxeScriptUrl: hubScript },
  });
  t.equal(put.status, 201, `machine saved (${put.text})`);
  const got = await call('GET', `/api/v1/machines/${MAC}`);
  const shown = (JSON.parse(got.text) as { assisted: { ipxeScriptUrl: string } }).assisted.ipxeScriptUrl;
  t.match(shown, /api_key=\*redacted\*/, 'the assisted URL is shown with its key cut');
  t.match(shown, /file_name=ipxe-script/, 'the rest of it kept');

  // Round trips: the redacted URL sent back keeps the stored key; a forged mark is refused.
  const replaced = await call('PUT', `/api/v1/machines/${MAC}`, JSON.parse(got.text));
  t.equal(replaced.status, 200, `PUT of the GET answer (${replaced.text})`);
  const patched = await call('PATCH', `/api/v1/machines/${MAC}`, { hostname: 'leaky-2', assisted: { ipxeScriptUrl: shown } });
  t.equal(patched.status, 200, `PATCH with the redacted URL (${patched.text})`);
  const forged = await call('PATCH', `/api/v1/machines/${MAC}`, { assisted: { ipxeScriptUrl: 'https://elsewhere.example/ipxe?api_key=*redacted*' } });
  t.equal(forged.status, 400, 'a redacted mark around another URL is refused');

  // The machine is served what it needs: passthrough hands it the hub's URL, key included.
  const script = await fetch(`${srv.url}/ipxe?mac=${MAC}`, { signal: AbortSignal.timeout(10_000) }).then((r) => r.text());
  t.ok(script.includes(secret('hub-api_key')), `the machine's own script still carries its api_key after the round trips:\n${script}`);
  t.ok(script.includes(secret('hub-X-Amz-Signature')), 'and every other parameter');

  // Events: an admin posts one naming a secret URL; the machine posts with a percent-encoded token name.
  const boot = JSON.parse((await call('GET', `/api/v1/machines/${MAC}/boot`)).text) as { eventsUrl: string };
  const token = new URL(boot.eventsUrl).searchParams.get('token') ?? '';
  t.ok(token.length >= 16, 'the hub gets the events URL with the token');
  const adminEvent = await call('POST', `/api/v1/machines/${MAC}/events`, {
    type: 'note',
    message: `fetched https://s3.example/x?X-Goog-Signature=${plant('event-goog')}`,
    data: { url: `https://${plant('event-user')}:${plant('event-pass')}@hub.example/y?password=${plant('event-password')}` },
  });
  t.equal(adminEvent.status, 201, 'the admin event is taken');
  const machineEvent = await fetch(`${srv.url}/api/v1/machines/${MAC}/events?%74oken=${encodeURIComponent(token)}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ type: 'booted', message: 'up' }),
    signal: AbortSignal.timeout(10_000),
  });
  t.equal(machineEvent.status, 201, 'the machine posts with ?%74oken= (a query name decodes before it is read)');
  eventsToken = token;

  t.equal((await call('GET', `/api/v1/machines/${MAC}/events`)).status, 200);
  t.equal((await call('GET', '/api/v1/machines')).status, 200);
  t.equal((await call('GET', '/api/v1/cache')).status, 200);
  t.equal((await call('GET', '/metrics', undefined, {})).status, 200);
});

t.test('an image job with a pull secret reports without it', async (t) => {
  const ref = `127.0.0.1:${closed}/leaky/image:1`;
  const auths = { auths: { [`127.0.0.1:${closed}`]: { auth: Buffer.from(`robot:${plant('pull-secret')}`).toString('base64') } } };
  planted.push(auths.auths[`127.0.0.1:${closed}`]?.auth ?? '');
  const started = await call('POST', '/api/v1/images/jobs', { images: [ref], pullSecret: JSON.stringify(auths) });
  t.equal(started.status, 202, `job started (${started.text})`);
  const id = (JSON.parse(started.text) as { id: string }).id;
  const until = Date.now() + 60_000;
  let state = 'running';
  while (state === 'running' && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 300));
    state = (JSON.parse((await call('GET', `/api/v1/images/jobs/${id}`)).text) as { state: string }).state;
  }
  t.not(state, 'running', 'the job ended within a minute');
});

t.test('no planted secret is in any answer, log line or event', async (t) => {
  // The log lines of the last requests are written as their answers leave: give them a moment.
  await new Promise((r) => setTimeout(r, 300));
  const log = [...srv.logLines.map((l) => JSON.stringify(l)), ...srv.otherStdout, srv.stderr()].join('\n');
  t.ok(
    srv.logLines.some((l) => l.msg === 'request' && String(l.url).includes('%74oken=')),
    'the debug request line of the machine event is there',
  );
  t.ok(srv.logLines.length > 20, `the debug log has lines (${srv.logLines.length})`);
  const events = (await call('GET', `/api/v1/machines/${MAC}/events?limit=5000`)).text;
  t.match(events, /X-Goog-Signature=\*redacted\*/, 'the admin event is on the timeline, redacted');
  for (const s of planted) {
    const inBody = bodies.filter((b) => b.body.includes(s)).map((b) => b.what);
    t.same(inBody, [], `${s.slice(0, 40)}: in no answer`);
    t.notOk(log.includes(s), `${s.slice(0, 40)}: in no log line`);
  }
  t.ok(planted.length >= 30, `${planted.length} secrets planted`);
  t.ok(eventsToken.length >= 16, 'the events token was read');
  const tokenIn = bodies.filter((b) => b.body.includes(eventsToken) && !b.what.endsWith('/boot (200)')).map((b) => b.what);
  t.same(tokenIn, [], 'the events token is in no answer but /boot');
  t.notOk(log.includes(eventsToken), 'the events token, sent as ?%74oken=, is in no log line');
});
