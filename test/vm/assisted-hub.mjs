// A stand-in for the OpenShift assisted installer's hub, for the VM tests: it serves an
// InfraEnv's iPXE script the way assisted-service does with `ipxe_script_type=boot-order-control`
// (research/openshift-precache.md §2.1) and the boot artifacts that script names.
//
//   node assisted-hub.mjs '<config JSON>'
//   config: { host, port, infraEnv, apiKey, kernel, initrd, kargs: [..],
//             edgeboot?: { url, token },     // hub-side automation's view of edgeboot
//             notifyInstalled?: boolean }    // it reports install-done to edgeboot
//
// - GET /api/assisted-install/v2/infra-envs/<id>/downloads/files?api_key=K&file_name=ipxe-script
//   without `mac`: a redirect script that chains to the same URL with `&mac=${net0/mac}`;
//   with `mac`: 404 once that host is installed, else the boot script (initrd --name, kernel
//   with the stock arguments plus `kargs`, boot). A wrong api_key is a 401.
// - GET and HEAD /boot-artifacts/kernel, /images/<id>/pxe-initrd?api_key=K: the files (port 0: any).
// - POST /api/assisted-install/v2/infra-envs/<id>/hosts/progress {mac, stage: "done"}: the host
//   is installed from now on; with `notifyInstalled`, the hub posts install-done to edgeboot's
//   events URL of that machine (read from GET /api/v1/machines/{mac}/boot with the admin token).
//   With `edgeboot` set, the boot script carries that URL as `eb.events=` so the installer can
//   report to edgeboot too.
// Every request is printed as one JSON line: {method, path, query, status, bytes}.
import { createReadStream, statSync } from 'node:fs';
import { createServer } from 'node:http';

const cfg = JSON.parse(process.argv[2]);
let base = `http://${cfg.host}:${cfg.port}`;
const scriptPath = `/api/assisted-install/v2/infra-envs/${cfg.infraEnv}/downloads/files`;
const installed = new Set();
const normMac = (s) => s.toLowerCase().replace(/-/g, ':');
const out = (o) => process.stdout.write(`${JSON.stringify(o)}\n`);

async function edgebootEventsUrl(mac) {
  const r = await fetch(`${cfg.edgeboot.url}/api/v1/machines/${mac}/boot`, { headers: { authorization: `Bearer ${cfg.edgeboot.token}` } });
  if (!r.ok) throw new Error(`edgeboot /boot of ${mac}: ${r.status}`);
  return (await r.json()).eventsUrl;
}

function bootScript(eventsUrl) {
  const q = 'arch=x86_64&version=4.14';
  const kargs = [
    `coreos.live.rootfs_url=${base}/boot-artifacts/rootfs?${q}`,
    'random.trust_cpu=on rd.luks.options=discard ignition.firstboot ignition.platform.id=metal',
    'console=tty1 console=ttyS1,115200n8 coreos.inst.persistent-kargs="console=tty1 console=ttyS1,115200n8"',
    ...cfg.kargs,
    ...(eventsUrl ? [`eb.events=${eventsUrl}`] : []),
    `eb.hub=${base}/api/assisted-install/v2/infra-envs/${cfg.infraEnv}/hosts/progress`,
  ];
  return [
    '#!ipxe',
    `initrd --name initrd ${base}/images/${cfg.infraEnv}/pxe-initrd?api_key=${cfg.apiKey}&${q}`,
    `kernel ${base}/boot-artifacts/kernel?${q} initrd=initrd ${kargs.join(' ')}`,
    'boot',
    '',
  ].join('\n');
}

// As Go's http.ServeContent in the image service: Content-Length and Last-Modified, HEAD too.
function sendFile(req, res, file) {
  const st = statSync(file);
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': st.size, 'last-modified': st.mtime.toUTCString() });
  if (req.method === 'HEAD') {
    res.end();
    return 0;
  }
  createReadStream(file).pipe(res);
  return st.size;
}

async function handle(req, res, url) {
  const q = url.searchParams;
  if (req.method === 'GET' && url.pathname === scriptPath && q.get('file_name') === 'ipxe-script') {
    if (q.get('api_key') !== cfg.apiKey) return [401, 'wrong api_key\n'];
    const mac = q.get('mac');
    if (!mac) return [200, `#!ipxe\nchain ${base}${url.pathname}${url.search}&mac=\${net0/mac}\n`];
    if (installed.has(normMac(mac))) return [404, 'host is installed\n'];
    return [200, bootScript(cfg.edgeboot ? await edgebootEventsUrl(normMac(mac)) : undefined)];
  }
  const read = req.method === 'GET' || req.method === 'HEAD';
  if (read && url.pathname === '/boot-artifacts/kernel') return sendFile(req, res, cfg.kernel);
  if (read && url.pathname === `/images/${cfg.infraEnv}/pxe-initrd`) {
    if (q.get('api_key') !== cfg.apiKey) return [401, 'wrong api_key\n'];
    return sendFile(req, res, cfg.initrd);
  }
  if (req.method === 'POST' && url.pathname === `/api/assisted-install/v2/infra-envs/${cfg.infraEnv}/hosts/progress`) {
    let body = '';
    for await (const chunk of req) body += chunk;
    const { mac, stage } = JSON.parse(body);
    if (stage !== 'done') return [400, 'stage must be done\n'];
    installed.add(normMac(mac));
    if (cfg.notifyInstalled) {
      const r = await fetch(await edgebootEventsUrl(normMac(mac)), {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ type: 'install-done', message: 'the hub reports the host installed' }),
      });
      if (r.status !== 201) throw new Error(`edgeboot refused install-done: ${r.status} ${await r.text()}`);
    }
    return [204, ''];
  }
  return [404, 'not found\n'];
}

const server = createServer((req, res) => {
  const url = new URL(req.url, base);
  handle(req, res, url).then(
    (r) => {
      if (typeof r === 'number') return out({ method: req.method, path: url.pathname, query: Object.fromEntries(url.searchParams), status: 200, bytes: r });
      const [status, body] = r;
      res.writeHead(status, { 'content-type': 'text/plain' }).end(body);
      out({ method: req.method, path: url.pathname, query: Object.fromEntries(url.searchParams), status, bytes: Buffer.byteLength(body) });
    },
    (err) => {
      res.writeHead(500, { 'content-type': 'text/plain' }).end(`${err.message}\n`);
      out({ method: req.method, path: url.pathname, status: 500, error: err.message });
    },
  );
});
server.listen(cfg.port, cfg.host, () => {
  const { port } = server.address();
  base = `http://${cfg.host}:${port}`;
  out({ listening: `${cfg.host}:${port}`, port });
});
