/**
 * `edgeboot machines power` and `edgeboot machines provision` as the real CLI (`node dist/main.js`)
 * runs them against a real `edgeboot serve` on loopback, with Redfish emulators as the BMCs:
 * power on and a one-time network boot, provision --wait until the machine asks /ipxe, the
 * provision of many, and the password in no output and no server log line.
 */
import t from 'tap';
import { BMC_PASSWORD, BMC_USER } from '../helpers/bmc-lab.js';
import { runCli, startServer, tempDir, type CliResult } from '../helpers/process.js';
import { startRedfishEmulator, type RedfishEmulator } from '../helpers/redfish/emulator.js';

const srv = await startServer(t, { args: ['--set', 'bmc.bootTimeoutSeconds=20', '--set', 'bmc.parallel=2'] });
const conn = ['--server', srv.url, '--token', srv.token];
const cli = (args: string[]): Promise<CliResult> => runCli(t, [...args, ...conn], { cwd: tempDir(t), timeoutMs: 40_000 });
const outputs: string[] = [];
const run = async (args: string[]): Promise<CliResult> => {
  const r = await cli(args);
  outputs.push(r.stdout, r.stderr);
  return r;
};

async function emulator(mac: string): Promise<RedfishEmulator> {
  const emu = await startRedfishEmulator({ username: BMC_USER, password: BMC_PASSWORD, macs: [mac], transitionMs: 50 });
  t.teardown(() => emu.close());
  return emu;
}

/** A machine at 127.0.0.1 (where this test's requests come from) with the emulator as its BMC. */
async function register(mac: string, emu: RedfishEmulator): Promise<void> {
  const res = await fetch(`${srv.url}/api/v1/machines/${mac}`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${srv.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      profile: 'precache-assisted',
      assisted: { ipxeScriptUrl: 'https://hub.example.com/api/assisted-install/v2/infra-envs/9/downloads/files?file_name=ipxe-script' },
      ip: '127.0.0.1',
      bmc: { address: emu.address, username: BMC_USER, password: BMC_PASSWORD },
    }),
  });
  outputs.push(await res.text());
  if (res.status !== 201) throw new Error(`register ${mac}: ${res.status}`);
}

t.test('machines power: on, then a one-time network boot with --json', async (t) => {
  const mac = '52:54:00:30:00:01';
  const emu = await emulator(mac);
  await register(mac, emu);
  const on = await run(['machines', 'power', mac, 'on']);
  t.equal(on.code, 0, `power on exits 0 (stderr: ${on.stderr})`);
  t.match(on.stdout, new RegExp(`^${mac}: on \\(On; power was Off\\); power now \\w+\\n$`));
  const once = await run(['machines', 'power', mac, 'pxe-once', '--json']);
  t.equal(once.code, 0, once.stderr);
  t.match(JSON.parse(once.stdout), { action: 'pxe-once', override: { target: 'Pxe', kept: { enabled: 'Once' } } });
  t.match(emu.system().boot, { target: 'Pxe', enabled: 'Once' });
  const bad = await run(['machines', 'power', mac, 'reboot']);
  t.not(bad.code, 0, 'an unknown action is refused');
  t.match(bad.stderr, /on, off, restart, pxe-once/);
});

t.test('machines provision --wait: until the machine asks /ipxe; many at once; refusals', async (t) => {
  const mac = '52:54:00:30:00:02';
  const emu = await emulator(mac);
  await register(mac, emu);
  // The machine boots and asks /ipxe a little after the power-on.
  const firmware = (async () => {
    for (let i = 0; i < 100 && emu.boots.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 100));
    await new Promise((resolve) => setTimeout(resolve, 300));
    return (await fetch(`${srv.url}/ipxe?mac=${mac}`)).status;
  })();
  const p = await run(['machines', 'provision', mac, '--wait', '--timeout', '30']);
  t.equal(await firmware, 200);
  t.equal(p.code, 0, `provision --wait exits 0 (stderr: ${p.stderr})`);
  t.match(p.stdout, new RegExp(`^${mac}: one-time Pxe boot set( \\(\\w+\\))?, on \\(On; power was Off\\); following it until it asks /ipxe\\n`));
  t.match(p.stdout, new RegExp(`MAC\\s+RUN\\s+POWER CYCLES\\s+STATE\\n${mac}\\s+booted\\s+1\\s+precaching\\n$`));
  t.equal(emu.boots[0]?.networkFirst, true);

  const macs = ['52:54:00:30:00:03', '52:54:00:30:00:04'];
  const emus = await Promise.all(macs.map((m) => emulator(m)));
  for (const [i, m] of macs.entries()) {
    const emuOf = emus[i];
    if (emuOf) await register(m, emuOf);
  }
  const many = await run(['machines', 'provision', ...macs, mac, '52:54:00:30:00:99', '--json']);
  t.equal(many.code, 0, many.stderr);
  const body = JSON.parse(many.stdout) as { accepted: string[]; skipped: { mac: string; reason: string }[] };
  t.same(body.accepted, macs);
  t.same(body.skipped, [
    { mac, reason: 'it is precaching: reset it first' },
    { mac: '52:54:00:30:00:99', reason: 'no such machine' },
  ]);
  for (const e of emus) {
    for (let i = 0; i < 100 && e.boots.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 100));
    t.equal(e.boots[0]?.networkFirst, true, 'each accepted machine was booted into the network');
  }

  const none = await run(['machines', 'provision']);
  t.not(none.code, 0);
  t.match(none.stderr, /name at least one MAC, or pass --all-registered/);
  const refused = await run(['machines', 'provision', mac]);
  t.equal(refused.code, 1);
  t.match(refused.stderr, /is precaching: its next boot is not a network boot edgeboot serves; reset it first .*\[not_provisionable\]/);
});

t.test('the password is in no output of the CLI and no line of the server log', async (t) => {
  t.notOk(
    outputs.some((o) => o.includes(BMC_PASSWORD)),
    'CLI output and API answers',
  );
  t.notOk(JSON.stringify(srv.logLines).includes(BMC_PASSWORD), 'server log');
  t.notOk(srv.stderr().includes(BMC_PASSWORD), 'server stderr');
});
