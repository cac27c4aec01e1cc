/**
 * The mirror is not an open proxy (registry.allowedUpstreams, src/registry/allow.ts): a real
 * `edgeboot serve`, a TCP listener on ports 443 and 80 of a random loopback address standing in
 * for a host nobody allowed, and curl and skopeo as clients. A name outside the list — a
 * literal host in the path, a sibling of an allowed namespace, dot segments and encodings —
 * gets 403 DENIED in the distribution format (or a 400/404 for a name that is not one) and
 * the listener accepts no connection; image jobs and bundles that name one are refused with
 * 403 upstream_denied before anything starts. An allowed namespace on the same host does
 * reach the listener, so the listener would have seen a connection. A release pulled from an
 * allowed registry (Debian's docker-registry) whose components name the refused host resolves,
 * and its components fail without a connection.
 */
import { execFile } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { lowPortSkip } from '../helpers/privileges.js';
import { closedPort, startServer, tempDir, type Teardown } from '../helpers/process.js';
import { makeImage, makeReleaseImage, pushImage, startRegistry } from '../helpers/registry.js';

const skip = await lowPortSkip(80, 'the upstream docker-registry and the counting listener');

const run = promisify(execFile);

interface Trap {
  host: string;
  /** Connections accepted so far, on any of its ports. */
  accepted(): number;
}

/** Listens on ports 443 and 80 of a random 127.x.y.z and counts (then drops) every connection. */
async function startTrap(t: Teardown): Promise<Trap> {
  let accepted = 0;
  for (let attempt = 0; attempt < 8; attempt++) {
    const host = `127.${randomInt(1, 255)}.${randomInt(0, 256)}.${randomInt(1, 255)}`;
    const servers: Server[] = [];
    try {
      for (const port of [443, 80]) {
        const srv = createServer((socket) => {
          accepted++;
          socket.destroy();
        });
        servers.push(srv);
        await new Promise<void>((resolve, reject) => {
          srv.once('error', reject);
          srv.listen({ host, port, exclusive: true }, () => resolve());
        });
      }
    } catch {
      // The address is in use by a parallel test: close what was bound and take another.
      await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
      continue;
    }
    t.teardown(() => Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r())))));
    return { host, accepted: () => accepted };
  }
  throw new Error('no free loopback address for the trap listener after 8 tries');
}

interface Answer {
  status: number;
  body: string;
}

/** GET with curl (`--path-as-is`: dot segments reach the server as written). */
async function curl(url: string, extra: string[] = []): Promise<Answer> {
  const { stdout } = await run('curl', ['-s', '--max-time', '20', '--path-as-is', '-w', '\n%{http_code}', ...extra, url], { timeout: 25_000 });
  const cut = stdout.lastIndexOf('\n');
  return { status: Number(stdout.slice(cut + 1)), body: stdout.slice(0, cut) };
}

const errorsOf = (body: string) => (JSON.parse(body) as { errors: { code: string; message: string; detail?: { name?: string } }[] }).errors;

t.test('a name outside registry.allowedUpstreams: 403 DENIED, and no connection', { skip }, async (t) => {
  const trap = await startTrap(t);
  const lab = `127.0.0.1:${await closedPort()}`;
  const eb = await startServer(t, {
    env: {
      EDGEBOOT_REGISTRY_ALLOWED_UPSTREAMS: `${trap.host}/good`,
      // A prefix standing for another host opens that host, not the trap.
      EDGEBOOT_REGISTRY_UPSTREAMS: JSON.stringify({ lab }),
    },
  });
  const v2 = `${eb.url}/v2`;
  const digest = `sha256:${'a'.repeat(64)}`;

  for (const path of [
    `${trap.host}/ns/x/manifests/latest`,
    `${trap.host}/ns/x/manifests/${digest}`,
    `${trap.host}/ns/x/blobs/${digest}`,
    `${trap.host}/ns/x/tags/list`,
    `${trap.host}/good-evil/x/manifests/v1`,
    `${trap.host}/goodx/manifests/v1`,
    `${trap.host}/x/good/y/manifests/v1`,
  ]) {
    const got = await curl(`${v2}/${path}`);
    t.equal(got.status, 403, `${path}: 403`);
    const [e] = errorsOf(got.body);
    t.equal(e?.code, 'DENIED', `${path}: DENIED`);
    t.match(e?.message, /registry\.allowedUpstreams/, 'the message names the key');
    t.equal(e?.detail?.name, path.slice(0, path.search(/\/(manifests|blobs|tags)\//)), 'detail names what was refused');
  }
  const head = await curl(`${v2}/${trap.host}/ns/x/manifests/latest`, ['-I']);
  t.match(head.body, /^HTTP\/1\.1 403/, 'HEAD: 403 too');

  // Not names at all: refused as invalid before any question of upstreams.
  for (const path of [
    `${trap.host}/good/../ns/x/manifests/v1`,
    `${trap.host}/good/%2e%2e/ns/x/manifests/v1`,
    `${trap.host}/good%2f..%2fns/x/manifests/v1`,
    `${trap.host}/good/%2E%2E%2Fns/x/tags/list`,
    `${trap.host}/Good/x/manifests/v1`,
    `${trap.host}%2fgood/x/manifests/v1`,
  ]) {
    const got = await curl(`${v2}/${path}`);
    t.ok([400, 403, 404].includes(got.status), `${path}: refused (${got.status})`);
    t.match(errorsOf(got.body)[0]?.code, /^(NAME_INVALID|NAME_UNKNOWN|DENIED)$/);
  }

  // skopeo, as an operator would try it, is told why.
  const skopeo = await run(
    'skopeo',
    ['inspect', '--tls-verify=false', '--no-creds', '--retry-times', '0', `docker://127.0.0.1:${eb.port}/${trap.host}/ns/x:latest`],
    { timeout: 30_000 },
  ).then(
    () => 'succeeded',
    (err: unknown) => {
      const e = err as Error & { stderr?: string };
      return e.stderr ?? e.message;
    },
  );
  t.match(skopeo, /denied/i, 'skopeo inspect fails with denied');

  // Admin routes name images too: a typo or a stray host is refused before a job starts.
  const auth = { authorization: `Bearer ${eb.token}`, 'content-type': 'application/json' };
  const job = await fetch(`${eb.url}/api/v1/images/jobs`, {
    method: 'POST',
    headers: auth,
    body: JSON.stringify({ images: [`${trap.host}/good/x:v1`, `${trap.host}/ns/x:latest`] }),
  });
  t.equal(job.status, 403, 'image job: 403');
  const jobBody = (await job.json()) as { error: string; message: string; details: { images: string[] } };
  t.equal(jobBody.error, 'upstream_denied');
  t.same(jobBody.details.images, [`${trap.host}/ns/x:latest`], 'only the refused image is named');
  const release = await fetch(`${eb.url}/api/v1/images/jobs`, {
    method: 'POST',
    headers: auth,
    body: JSON.stringify({ release: `${trap.host}/ocp/release:4.14.0-x86_64` }),
  });
  t.equal(release.status, 403, 'a release from a refused upstream: 403');
  const bundle = await fetch(`${eb.url}/api/v1/bundles`, {
    method: 'POST',
    headers: auth,
    body: JSON.stringify({ aiImages: [`${trap.host}/mce/agent:v1`], images: [] }),
  });
  t.equal(bundle.status, 403, 'bundle: 403');
  t.match(await bundle.json(), { error: 'upstream_denied', details: { images: [`${trap.host}/mce/agent:v1`] } });

  t.equal(trap.accepted(), 0, 'the refused upstream was never connected to');

  // The prefix's own host opens only the upstreams mapping (a closed port here: 502, not 403).
  const mapped = await curl(`${v2}/lab/ns/x/manifests/v1`);
  t.equal(mapped.status, 502, `a registry.upstreams prefix is allowed (${mapped.body})`);
  t.equal(trap.accepted(), 0, 'and it did not reach the trap');

  // The control: an allowed namespace on the trap's host is asked, so the trap would have seen the others.
  const allowed = await curl(`${v2}/${trap.host}/good/x/manifests/v1`);
  t.equal(allowed.status, 502, `an allowed name is asked upstream (the trap is no registry: ${allowed.body})`);
  t.ok(trap.accepted() > 0, `the trap saw edgeboot connect for the allowed name (${trap.accepted()} connections)`);
  t.equal(eb.process.exitCode, null, 'the server is still running');
});

t.test('a release from an allowed registry whose components point elsewhere: those components fail, unasked', { skip }, async (t) => {
  const trap = await startTrap(t);
  const reg = await startRegistry(t, { auth: 'none' });
  const dir = tempDir(t);
  const component = makeImage(join(dir, 'c'), { layers: [{ 'usr/bin/pod': 'pod' }] });
  const release = makeReleaseImage(join(dir, 'release'), {
    version: '4.99.0',
    repository: `${trap.host}/ocp/art-dev`,
    components: [{ name: 'pod', image: component }],
    tag: 'rel',
  });
  await pushImage(reg, release, 'ocp/release:4.99.0-x86_64');
  const eb = await startServer(t, { env: { EDGEBOOT_REGISTRY_INSECURE_REGISTRIES: reg.host } });
  const auth = { authorization: `Bearer ${eb.token}`, 'content-type': 'application/json' };
  const started = await fetch(`${eb.url}/api/v1/images/jobs`, {
    method: 'POST',
    headers: auth,
    body: JSON.stringify({ release: `${reg.host}/ocp/release:4.99.0-x86_64` }),
  });
  t.equal(started.status, 202, 'the release itself is allowed');
  const { id } = (await started.json()) as { id: string };
  let job: { state: string; release?: { version: string }; failures: { ref: string; error: string }[] } | undefined;
  for (let i = 0; i < 120; i++) {
    job = (await (await fetch(`${eb.url}/api/v1/images/jobs/${id}`, { headers: auth })).json()) as typeof job;
    if (job?.state !== 'running') break;
    await new Promise((r) => setTimeout(r, 250));
  }
  t.equal(job?.state, 'done');
  t.equal(job?.release?.version, '4.99.0', 'the release resolved');
  t.same(
    job?.failures.map((f) => f.ref),
    [`${trap.host}/ocp/art-dev@${component.digest}`],
    'its component failed',
  );
  t.match(job?.failures[0]?.error, /not in registry\.allowedUpstreams/);
  t.equal(trap.accepted(), 0, 'and its host was never connected to');
});
