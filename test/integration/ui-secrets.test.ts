/**
 * No dashboard page leaks a secret, to an admin or to a viewer: a crawl of every page and
 * fragment reachable from the overview, as each role, greps for every secret the test planted —
 * a profile's presigned artifact URL, an assisted script's api_key, a BMC password, a cached
 * artifact's token, event messages and data, a pull job's pull secret — and for the login tokens.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { ADMIN_TOKEN, tempDir, testApp } from '../helpers/app.js';
import { loggedIn, uiLinks, VIEWER_TOKEN, type UiClient } from '../helpers/ui.js';
import { startUpstream } from '../helpers/upstream.js';

const planted: string[] = [ADMIN_TOKEN, VIEWER_TOKEN];
const plant = (what: string): string => {
  const s = `SECRET-${what}-0123`;
  planted.push(s);
  return s;
};

const upstream = await startUpstream(t);
upstream.files.set('/kernel', Buffer.from('a kernel'));
const profiles = tempDir();
mkdirSync(profiles, { recursive: true });
writeFileSync(
  join(profiles, 'signed.yaml'),
  [
    'name: signed',
    'description: artifacts behind presigned URLs',
    'artifacts:',
    `  kernel: { url: "https://s3.example/kernel?X-Amz-Credential=${plant('amz-credential')}&X-Amz-Signature=${plant('amz-signature')}" }`,
    'boot:',
    '  kernel: kernel',
    '  initrds: []',
    `  args: console=ttyS0`,
  ].join('\n'),
);
writeFileSync(join(profiles, 'broken.yaml'), `name: broken\nartifacts: { kernel: { url: "https://u:${plant('userinfo')}@x.example/k" } }\nboot: nonsense\n`);

const ta = await testApp(t, {
  profileDirs: [profiles],
  cache: {},
  config: { auth: { viewerTokens: [VIEWER_TOKEN] }, registry: { allowedUpstreams: ['127.0.0.1:9'] } },
});
/** The setup's API calls: each must answer `want`, or the test stops there. */
async function api(method: 'PUT' | 'POST', url: string, payload: unknown, want: number): Promise<void> {
  const r = await ta.app.inject({ method, url, headers: ta.auth, payload: payload as Record<string, unknown> });
  if (r.statusCode !== want) throw new Error(`${method} ${url}: ${r.statusCode}, expected ${want}: ${r.body}`);
}

const MAC = '52:54:00:5e:c0:01';
await api(
  'PUT',
  `/api/v1/machines/${MAC}`,
  {
    hostname: 'secretive',
    profile: 'signed',
    assisted: { ipxeScriptUrl: `https://hub.example/api/assisted-install/v2/infra-envs/1/downloads/files?file_name=ipxe-script&api_key=${plant('api-key')}` },
    bmc: { address: 'redfish+http://127.0.0.1:9', username: 'root', password: plant('bmc-password') },
  },
  201,
);
await api(
  'POST',
  `/api/v1/machines/${MAC}/events`,
  {
    type: 'note',
    message: `fetched https://x.example/f?token=${plant('event-token')} as https://user:${plant('event-userinfo')}@y.example/`,
    data: { password: plant('event-password'), authorization: `Bearer ${plant('event-bearer')}`, url: `https://z.example/?sig=${plant('event-sig')}` },
  },
  201,
);
await api('POST', '/api/v1/machines/52:54:00:5e:c0:02/events', { type: 'failed', message: `x?image_token=${plant('failed-token')}` }, 404);
await api('POST', '/api/v1/cache/prefetch?wait=true', { url: `${upstream.url('/kernel')}?token=${plant('cache-token')}` }, 200);
await api(
  'POST',
  '/api/v1/images/jobs',
  { images: ['127.0.0.1:9/x/y:1'], pullSecret: JSON.stringify({ auths: { '127.0.0.1:9': { auth: plant('pull-secret') } } }) },
  202,
);

/** Every page reachable from the overview (and each page's live fragment), at most `max`. */
async function crawl(c: UiClient, max = 150): Promise<Map<string, string>> {
  const seen = new Map<string, string>();
  const queue = [
    '/ui/',
    `/ui/machines/${MAC.replaceAll(':', '-')}?fragment=live`,
    '/ui/machines?fragment=rows',
    '/ui/cache?fragment=live',
    '/ui/?fragment=live',
  ];
  while (queue.length > 0 && seen.size < max) {
    const url = queue.shift() ?? '';
    if (seen.has(url)) continue;
    const page = await c.get(url);
    seen.set(url, page.html);
    for (const link of uiLinks(page.html)) if (!seen.has(link)) queue.push(link);
  }
  return seen;
}

for (const [role, token] of [
  ['admin', ADMIN_TOKEN],
  ['viewer', VIEWER_TOKEN],
] as const) {
  t.test(`crawling every page as ${role}: no planted secret anywhere`, async (t) => {
    const pages = await crawl(await loggedIn(ta.app, token));
    t.ok(pages.size >= 12, `${pages.size} pages crawled`);
    for (const must of ['/ui/', '/ui/machines', '/ui/discovered', '/ui/leases', '/ui/cache', '/ui/profiles', `/ui/machines/${MAC.replaceAll(':', '-')}`]) {
      t.ok(pages.has(must), `reached ${must}`);
    }
    t.match(pages.get('/ui/profiles'), /signed/, 'the profile with the presigned URL is shown');
    t.match(pages.get('/ui/profiles'), /broken\.yaml/, 'the profile that failed to load, with its error');
    t.match(pages.get('/ui/cache'), /127\.0\.0\.1:\d+\/kernel/, 'the cached artifact is listed');
    t.match(pages.get(`/ui/machines/${MAC.replaceAll(':', '-')}`), /fetched https:\/\/x\.example\/f\?token=\*redacted\*/, 'the event, its secret cut');
    let leaks = 0;
    for (const [url, html] of pages) {
      for (const secret of planted) {
        if (html.includes(secret)) {
          leaks++;
          t.fail(`${url} shows ${secret}`);
        }
      }
    }
    t.equal(leaks, 0, `none of ${planted.length} secrets on any of ${pages.size} pages`);
  });
}
