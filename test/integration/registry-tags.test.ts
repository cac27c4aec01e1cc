/**
 * `GET /v2/<name>/tags/list` through the mirror (src/registry/mirror.ts, tags.ts): Debian's
 * docker-registry upstream with the token flow, the real `edgeboot serve`, and skopeo and curl
 * as clients:
 * - `skopeo inspect` (which lists tags) and `skopeo list-tags` through edgeboot;
 * - curl with `n` pages following the `Link: rel="next"` header to the end, and `last`;
 * - with the upstream stopped, the same tags from the stored list, also after a restart;
 * - RegistryClient asking 2 tags a page: docker-registry 2.8 ignores `n` (one page); a
 *   stand-in upstream that pages as distribution 3 and quay.io do is followed page by page;
 *   a hostile one whose next link points at another host is not followed.
 */
import { execFile } from 'node:child_process';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { lowPortSkip } from '../helpers/privileges.js';
import { createLogger } from '../../src/log.js';
import { RegistryClient } from '../../src/registry/client.js';
import { startServer, tempDir, type Teardown } from '../helpers/process.js';
import { makeImage, pushImage, startRegistry } from '../helpers/registry.js';

const skip = await lowPortSkip(80, 'the upstream docker-registry');

const run = promisify(execFile);

interface Answer {
  status: number;
  link: string | undefined;
  body: string;
}

/** GET with curl, keeping the status, the Link header and the body. */
async function curl(url: string): Promise<Answer> {
  const { stdout } = await run('curl', ['-s', '-i', '--max-time', '20', url], { timeout: 25_000 });
  const split = stdout.indexOf('\r\n\r\n');
  const head = stdout.slice(0, split);
  return {
    status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1]),
    link: /^link: (.*)$/im.exec(head)?.[1]?.trim(),
    body: stdout.slice(split + 4),
  };
}

/** The tags of a tags/list body. */
const tagsOf = (a: Answer): string[] => (JSON.parse(a.body) as { tags: string[] }).tags;
/** The code of the first error of an error body. */
const errorCode = (a: Answer): string | undefined => (JSON.parse(a.body) as { errors: { code: string }[] }).errors[0]?.code;

const skopeo = async (args: string[]) => JSON.parse((await run('skopeo', args, { timeout: 60_000 })).stdout) as Record<string, unknown>;

const TAGS = ['v1', 'v2', 'v10', 'latest', '4.14.0-x86_64'];
const SORTED = ['4.14.0-x86_64', 'latest', 'v1', 'v10', 'v2'];

t.test('tags through edgeboot: skopeo inspect and list-tags, n/last pages, offline from the store', { skip }, async (t) => {
  const reg = await startRegistry(t, { auth: 'token' });
  const dir = tempDir(t);
  const image = makeImage(join(dir, 'a'), { layers: [{ 'etc/os-release': 'ID=edgeboot-tags\n' }], tag: 'v1' });
  for (const tag of TAGS) await pushImage(reg, image, `ns/a:${tag}`);

  const cwd = tempDir(t);
  const env = { EDGEBOOT_REGISTRY_INSECURE_REGISTRIES: reg.host, EDGEBOOT_REGISTRY_PULL_SECRET: reg.authFile(cwd) };
  let eb = await startServer(t, { cwd, env });
  const mirror = () => `127.0.0.1:${eb.port}/${reg.host}/ns/a`;

  const inspected = await skopeo(['inspect', '--tls-verify=false', '--no-creds', `docker://${mirror()}:v1`]);
  t.equal(inspected.Digest, image.digest, 'skopeo inspect through edgeboot: the digest');
  t.same(inspected.RepoTags, SORTED, 'skopeo inspect: every tag, in lexical order');
  const listed = await skopeo(['list-tags', '--tls-verify=false', '--no-creds', `docker://${mirror()}`]);
  t.same(listed.Tags, SORTED, 'skopeo list-tags');

  // n pages, following Link to the end (distribution-spec end-8b).
  const base = `${eb.url}/v2/${reg.host}/ns/a/tags/list`;
  const pages: string[][] = [];
  let next: string | undefined = `${base}?n=2`;
  for (let i = 0; next !== undefined && i < 10; i++) {
    const got = await curl(next);
    t.equal(got.status, 200);
    const doc = JSON.parse(got.body) as { name: string; tags: string[] };
    t.equal(doc.name, `${reg.host}/ns/a`, 'the name as the client addressed it');
    pages.push(doc.tags);
    const link = got.link === undefined ? undefined : /^<([^>]+)>;\s*rel="next"$/.exec(got.link)?.[1];
    if (got.link !== undefined) t.ok(link?.startsWith(`/v2/${reg.host}/ns/a/tags/list?n=2&last=`), `Link: ${got.link}`);
    next = link === undefined ? undefined : `${eb.url}${link}`;
  }
  t.same(pages, [SORTED.slice(0, 2), SORTED.slice(2, 4), SORTED.slice(4)], 'three pages of 2, 2 and 1, the last without a Link');
  t.same(tagsOf(await curl(`${base}?last=v1`)), ['v10', 'v2'], 'last: only the tags after it');
  t.same(tagsOf(await curl(`${base}?n=0`)), [], 'n=0: none');
  const badN = await curl(`${base}?n=lots`);
  t.equal(badN.status, 400);
  t.equal(errorCode(badN), 'PAGINATION_NUMBER_INVALID');
  const unknown = await curl(`${eb.url}/v2/${reg.host}/ns/nope/tags/list`);
  t.equal(unknown.status, 404, 'an unknown repository upstream');
  t.equal(errorCode(unknown), 'NAME_UNKNOWN');
  const tagLists = (await reg.requests()).filter((r) => r.path === '/v2/ns/a/tags/list');
  t.ok(tagLists.length >= 6, `each list was asked upstream (${tagLists.length} times)`);

  // The WAN goes: the stored list answers, to curl and to skopeo alike.
  await reg.stop();
  const offline = await curl(`${base}?n=3`);
  t.equal(offline.status, 200, 'offline: 200');
  t.same(tagsOf(offline), SORTED.slice(0, 3), 'offline: the first page of the stored list');
  t.match(offline.link, /last=v1>; rel="next"$/);
  t.same((await skopeo(['list-tags', '--tls-verify=false', '--no-creds', `docker://${mirror()}`])).Tags, SORTED, 'offline: skopeo list-tags');
  const offlineInspect = await skopeo(['inspect', '--tls-verify=false', '--no-creds', `docker://${mirror()}:v1`]);
  t.equal(offlineInspect.Digest, image.digest, 'offline: skopeo inspect');
  t.same(offlineInspect.RepoTags, SORTED);
  const never = await curl(`${eb.url}/v2/${reg.host}/ns/never/tags/list`);
  t.equal(never.status, 502, 'offline, a repository never listed: the upstream failed');
  t.equal(errorCode(never), 'UNAVAILABLE');

  // The list is in the store, not in memory: a restarted edgeboot still answers offline.
  await eb.stop();
  eb = await startServer(t, { cwd, env });
  const restarted = await curl(`${eb.url}/v2/${reg.host}/ns/a/tags/list`);
  t.equal(restarted.status, 200, 'after a restart, offline: 200');
  t.same(tagsOf(restarted), SORTED, 'after a restart, offline: the stored list');
});

t.test("the upstream's own pages are followed; a next link to another host is not", { skip }, async (t) => {
  const log = createLogger('silent');
  // docker-registry 2.8 ignores n and answers every tag at once, with no Link: one page.
  const reg = await startRegistry(t, { auth: 'none' });
  const dir = tempDir(t);
  const image = makeImage(join(dir, 'a'), { layers: [{ a: 'a' }], tag: 'v1' });
  for (const tag of TAGS) await pushImage(reg, image, `ns/a:${tag}`);
  const before = (await reg.requests()).length;
  const small = (host: string) => new RegistryClient({ insecure: new Set([host]), credentials: () => undefined, log, retries: 0, tagPageSize: 2 });
  t.same([...(await small(reg.host).tags(reg.host, 'ns/a'))].sort(), SORTED, 'docker-registry: every tag');
  const asked = (await reg.requests()).slice(before).filter((r) => r.path === '/v2/ns/a/tags/list');
  t.same(
    asked.map((r) => r.query),
    ['n=2'],
    'in one request, n=2 asked and ignored',
  );

  // A registry that pages (as distribution 3 and quay.io do): n tags, then Link with last.
  const pagesAsked: string[] = [];
  const pager = await listen(t, (url) => {
    pagesAsked.push(url.search);
    const n = Number(url.searchParams.get('n') ?? 1000);
    const last = url.searchParams.get('last');
    const rest = SORTED.filter((x) => last === null || x > last);
    const page = rest.slice(0, n);
    const more = rest.length > n ? { link: `</v2/ns/a/tags/list?n=${n}&last=${encodeURIComponent(page[page.length - 1] ?? '')}>; rel="next"` } : undefined;
    return { tags: page, ...(more && { headers: more }) };
  });
  t.same(await small(pager).tags(pager, 'ns/a'), SORTED, 'every tag, over pages of 2');
  t.same(pagesAsked, ['?n=2', '?n=2&last=latest', '?n=2&last=v10'], 'each page from the last of the one before');

  // A hostile upstream: its first page links to another loopback host; that host sees nothing.
  let elsewhere = 0;
  const trap = createNetServer((s) => {
    elsewhere++;
    s.destroy();
  });
  await new Promise<void>((r) => trap.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => new Promise<void>((r) => trap.close(() => r())));
  const trapPort = (trap.address() as { port: number }).port;
  const hostile = await listen(t, () => ({ tags: ['a', 'b'], headers: { link: `<http://127.0.0.1:${trapPort}/v2/ns/a/tags/list?last=b>; rel="next"` } }));
  t.same(await small(hostile).tags(hostile, 'ns/a'), ['a', 'b'], 'the first page only');
  t.equal(elsewhere, 0, 'the other host was never connected to');
});

/** A stand-in upstream on 127.0.0.1 answering `/v2/` and `/v2/ns/a/tags/list` as `answer` says; its host:port. */
async function listen(t: Teardown, answer: (url: URL) => { tags: string[]; headers?: Record<string, string> }): Promise<string> {
  const srv = createHttpServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://upstream');
    if (url.pathname === '/v2/') return void res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    if (url.pathname !== '/v2/ns/a/tags/list')
      return void res.writeHead(404, { 'content-type': 'application/json' }).end('{"errors":[{"code":"NAME_UNKNOWN","message":"no"}]}');
    const a = answer(url);
    res.writeHead(200, { 'content-type': 'application/json', ...a.headers }).end(JSON.stringify({ name: 'ns/a', tags: a.tags }));
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => new Promise<void>((r) => srv.close(() => r())));
  return `127.0.0.1:${(srv.address() as { port: number }).port}`;
}
