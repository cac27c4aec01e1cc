/**
 * The assisted chain, rewritten: edgeboot fetches a machine's ipxeScript from the hub's
 * stand-in (test/vm/assisted-hub.mjs, a real process on loopback with the boot-order-control
 * redirect, api_key checks and HEAD), serves the machine the same script with every kernel
 * argument kept and only the kernel, initrd and rootfs URLs replaced by its own, and serves
 * those through the artifact cache: the kernel once from the hub for any number of boots, the
 * per-InfraEnv initrd revalidated (HEAD) at each. The api_key reaches no script and no answer.
 * A 404 from the hub sends the machine to its disk and marks it installed; an unreachable hub
 * is a wait-and-retry script naming it; `boot.assistedChain: chain` hands the machine the
 * hub's URL as before.
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Agent, setGlobalDispatcher } from 'undici';
import t, { type Test } from 'tap';
import type { Mac } from '../../src/machines/mac.js';
import { tempDir, testApp, type TestApp } from '../helpers/app.js';
import { REPO_ROOT } from '../helpers/process.js';

// The test's fetch closes its connections at once: a kept-alive one would hold app.close()
// for Fastify's 72 s keep-alive when a socket is still counted busy (seen with Node 20).
setGlobalDispatcher(new Agent({ keepAliveTimeout: 10, keepAliveMaxTimeout: 10 }));

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const MAC = '52:54:00:ab:cd:01' as Mac;
const API_KEY = 'eyJhbGciOiJFUzI1NiJ9.infra-env-claims.signature-part';

interface HubRequest {
  method: string;
  path: string;
  query?: Record<string, string>;
  status: number;
  bytes?: number;
}

interface Hub {
  scriptUrl: string;
  requests: HubRequest[];
  kernel: Buffer;
  initrd: Buffer;
  stop(): void;
}

async function startHub(t: Test): Promise<Hub> {
  const dir = tempDir();
  const kernel = randomBytes(1_500_000);
  const initrd = randomBytes(700_000);
  writeFileSync(join(dir, 'kernel'), kernel);
  writeFileSync(join(dir, 'initrd'), initrd);
  const cfg = {
    host: '127.0.0.1',
    port: 0,
    infraEnv: '6f1e0ab6-0000-4a0e-9d52-8d5d3c7a9e10',
    apiKey: API_KEY,
    kernel: join(dir, 'kernel'),
    initrd: join(dir, 'initrd'),
    kargs: ['ip=dhcp', 'eb.role=installer'],
  };
  const child = spawn(process.execPath, [join(REPO_ROOT, 'test/vm/assisted-hub.mjs'), JSON.stringify(cfg)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const requests: HubRequest[] = [];
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the hub stand-in did not start')), 5_000);
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      const msg = JSON.parse(line) as HubRequest & { port?: number };
      if (msg.port !== undefined) {
        clearTimeout(timer);
        resolve(msg.port);
      } else requests.push(msg);
    });
  });
  const stop = () => child.kill('SIGKILL');
  t.teardown(stop);
  const scriptUrl = `http://127.0.0.1:${port}/api/assisted-install/v2/infra-envs/${cfg.infraEnv}/downloads/files?api_key=${API_KEY}&file_name=ipxe-script&ipxe_script_type=boot-order-control`;
  return { scriptUrl, requests, kernel, initrd, stop };
}

async function listen(ta: TestApp): Promise<string> {
  await ta.app.listen({ host: '127.0.0.1', port: 0 });
  const a = ta.app.server.address();
  if (a === null || typeof a === 'string') throw new Error('no port');
  return `http://127.0.0.1:${a.port}`;
}

async function register(base: string, ta: TestApp, profile: string, scriptUrl: string): Promise<void> {
  const r = await fetch(`${base}/api/v1/machines/${MAC}`, {
    method: 'PUT',
    headers: { ...ta.auth, 'content-type': 'application/json' },
    body: JSON.stringify({ profile, assisted: { ipxeScriptUrl: scriptUrl }, ip: '127.0.0.1' }),
  });
  if (r.status !== 201) throw new Error(`PUT: ${r.status} ${await r.text()}`);
}

const bootScript = async (base: string): Promise<string> => (await fetch(`${base}/ipxe?mac=${MAC.replace(/:/g, '-')}`)).text();
const state = async (ta: TestApp): Promise<string | undefined> => (await ta.store.getMachine(MAC))?.state;

t.test('the hub script is served rewritten; its artifacts come through the cache', async (t) => {
  const hub = await startHub(t);
  const ta = await testApp(t, { cache: { retries: 2 } });
  const base = await listen(ta);
  await register(base, ta, 'assisted', hub.scriptUrl);

  const script = await bootScript(base);
  t.notMatch(script, /api_key|eyJhbGci/, 'no api_key in the script');
  t.notMatch(script, /^chain .*assisted-install/m, 'no chain to the hub (only the re-check chains, to edgeboot)');
  const initrdLine = /^initrd --name initrd (http:\/\/127\.0\.0\.1:\d+\/assets\/hub\/[0-9a-f]{16}\/initrd) \|\| goto edgeboot-failed$/m.exec(script);
  const kernelLine = /^kernel (http:\/\/127\.0\.0\.1:\d+\/assets\/hub\/[0-9a-f]{16}\/kernel) (.*) \|\| goto edgeboot-failed$/m.exec(script);
  t.ok(initrdLine, 'initrd --name initrd, from edgeboot');
  t.ok(kernelLine, 'kernel, from edgeboot');
  const args = kernelLine?.[2] ?? '';
  t.match(
    args,
    /^initrd=initrd coreos\.live\.rootfs_url=http:\/\/127\.0\.0\.1:\d+\/assets\/hub\/[0-9a-f]{16}\/rootfs random\.trust_cpu=on rd\.luks\.options=discard ignition\.firstboot ignition\.platform\.id=metal console=tty1 console=ttyS1,115200n8 coreos\.inst\.persistent-kargs="console=tty1 console=ttyS1,115200n8" ip=dhcp eb\.role=installer eb\.hub=http:\/\/127\.0\.0\.1:\d+\/api\/assisted-install\/v2\/infra-envs\/[0-9a-f-]+\/hosts\/progress$/,
    'every hub argument, in order, verbatim',
  );
  t.match(script, /^boot \|\| goto edgeboot-failed$/m);
  t.equal(await state(ta), 'installing', 'serving the installer moved the machine to installing');
  t.same(
    hub.requests.filter((r) => r.path.endsWith('/downloads/files')).map((r) => [r.status, r.query?.mac ?? null]),
    [
      [200, null],
      [200, MAC],
    ],
    'edgeboot followed the redirect with the MAC, server-side',
  );

  const kernelUrl = kernelLine?.[1] as string;
  const initrdUrl = initrdLine?.[1] as string;
  for (let boot = 0; boot < 3; boot++) {
    const k = Buffer.from(await (await fetch(kernelUrl)).arrayBuffer());
    t.equal(sha256(k), sha256(hub.kernel), `boot ${boot + 1}: the hub's kernel`);
    const i = Buffer.from(await (await fetch(initrdUrl)).arrayBuffer());
    t.equal(sha256(i), sha256(hub.initrd), `boot ${boot + 1}: the hub's initrd`);
  }
  const kernelGets = hub.requests.filter((r) => r.path === '/boot-artifacts/kernel' && r.method === 'GET');
  t.equal(kernelGets.length, 1, 'the kernel came from the hub once for three boots');
  const initrdGets = hub.requests.filter((r) => r.path.endsWith('/pxe-initrd') && r.method === 'GET');
  t.equal(initrdGets.length, 1, 'the initrd too…');
  t.equal(initrdGets[0]?.query?.api_key, API_KEY, '…fetched with the api_key');
  t.ok(hub.requests.filter((r) => r.path.endsWith('/pxe-initrd') && r.method === 'HEAD').length >= 2, '…and revalidated with HEAD at the later boots');
  const entries = await ta.store.listCacheEntries();
  t.equal(entries.length, 2, 'two cache entries: kernel and initrd');
  t.notMatch(JSON.stringify(entries), /api_key|eyJhbGci/, 'no api_key in the index');

  // The same script again gives the same URLs: ids are stable.
  const again = await bootScript(base);
  t.ok(again.includes(kernelUrl) && again.includes(initrdUrl), 'the next boot names the same artifacts');
});

t.test('a 404 from the hub: the local disk, and the machine is installed', async (t) => {
  const hub = await startHub(t);
  const ta = await testApp(t, { cache: {} });
  const base = await listen(ta);
  await register(base, ta, 'assisted', hub.scriptUrl);
  const first = await bootScript(base);
  t.match(first, /assets\/hub\//);
  // The installer reports done to the hub (as test/vm/init does).
  const progress = hub.scriptUrl.replace(/downloads\/files\?.*$/, 'hosts/progress');
  t.equal((await fetch(progress, { method: 'POST', body: JSON.stringify({ mac: MAC, stage: 'done' }) })).status, 204);
  const second = await bootScript(base);
  t.match(second, /the hub answers 404 for this host: it is installed/);
  t.match(second, /sanboot --no-describe --drive 0x80 \|\| exit/, 'the local-disk script');
  t.equal(await state(ta), 'installed');
  const moves = (await ta.store.listEvents(MAC)).filter((e) => e.type === 'state-changed').map((e) => `${e.from}->${e.to}`);
  t.same(moves, ['registered->installing', 'installing->installed']);
});

t.test('an unreachable hub: wait and ask again, the hub named without its key', async (t) => {
  const hub = await startHub(t);
  hub.stop();
  await new Promise((r) => setTimeout(r, 200));
  const ta = await testApp(t, { cache: {} });
  const base = await listen(ta);
  await register(base, ta, 'assisted', hub.scriptUrl);
  const script = await bootScript(base);
  t.match(script, /cannot be reached/);
  t.match(script, /checking again in \d+ s/);
  t.notMatch(script, /eyJhbGci/);
  t.equal(await state(ta), 'registered', 'nothing moved');
});

t.test('boot.assistedChain: chain hands the machine the hub URL', async (t) => {
  const hub = await startHub(t);
  const ta = await testApp(t, { cache: {}, config: { boot: { assistedChain: 'chain' } } });
  const base = await listen(ta);
  await register(base, ta, 'assisted', hub.scriptUrl);
  const script = await bootScript(base);
  t.match(script, /^chain --replace --autofree http:\/\/127\.0\.0\.1:\d+\/api\/assisted-install\/.*ipxe-script.* \|\| exit$/m);
  t.equal(hub.requests.length, 0, 'edgeboot did not ask the hub');
});
