/**
 * The dashboard (/ui/) in a real browser against a real boot: Debian's Chromium, driven by
 * playwright-core over a pipe, runs inside the server namespace of the VM lab
 * (test/helpers/boot-lab.ts), so every request it makes stays on that namespace's loopback and
 * bridge; a wrapper script written into the lab's dir execs it there.
 *
 * In order, on one page: an admin logs in through the form; registers a machine through
 * /ui/machines/new, first with a bad MAC (the field error beside the field), then with the
 * guest's MAC and the e2e-report profile, landing on its page; a UEFI guest boots (OVMF's PXE,
 * ipxe.efi over TFTP, iPXE, the report initramfs) while that page, never reloaded, fills its
 * timeline from /ui/events and htmx; the Reset button puts it back to registered; a viewer sees
 * no action, no bulk selection, no Register link, and a POST made from its page is refused;
 * then a keyboard-only admin logs in and registers a second machine. Every page is
 * screenshotted into test-output/ui/ and no console or page error may occur on the way (a CSP
 * violation is a console error) but the two error statuses the test provokes.
 * Needs root, chromium and what test/system/qemu-boot-full.test.ts needs, and a built dist/.
 */
import { chmodSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Frame, type Page } from 'playwright-core';
import t, { type Test } from 'tap';
import { assertOrder, createBootLab, describeTimeline, ev, SERVER_URL } from '../helpers/boot-lab.js';
import { sleep } from '../helpers/dhcp-system.js';
import { netnsList, netnsSkip, requireTools } from '../helpers/netns.js';
import { REPO_ROOT } from '../helpers/process.js';

const skip = netnsSkip();
t.setTimeout(420_000);

const CHROMIUM = '/usr/bin/chromium';
/** Chromium never reaches for the internet: no background requests, no updates, no QUIC probes. */
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const MAC = '52:54:00:eb:19:01';
const KEYBOARD_MAC = '52:54:00:aa:bb:01';
const PROFILE = 'e2e-report';
const VIEWER_TOKEN = 'viewer-token-of-the-browser-test';
const SHOTS = join(REPO_ROOT, 'test-output', 'ui');
const macPath = (mac: string): string => mac.replaceAll(':', '-');

interface Step {
  id: string;
  type: string;
  text: string;
}

/**
 * Runs `expr` in the page. An expression, not a function: the test's TypeScript has no DOM
 * types (tsconfig's lib is ES2022 alone), and a function's body would be typed as Node code.
 */
const inPage = <T>(page: Page, expr: string): Promise<T> => page.evaluate<T>(expr);

const timelineOf = (page: Page): Promise<Step[]> =>
  inPage(
    page,
    `[...document.querySelectorAll('#timeline li.step')].map((li) => ({
      id: li.dataset.eventId,
      type: li.querySelector('.what > strong')?.textContent ?? '',
      text: li.textContent.replace(/\\s+/g, ' ').trim(),
    }))`,
  );

/** Polls `probe` every 500 ms until `done` accepts it; throws after `timeoutMs`, naming what it saw last. */
async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T>, done: (v: T) => boolean, show: (v: T) => string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (done(v)) return v;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms; last seen: ${show(v)}`);
    await sleep(500);
  }
}

/** A console error the test provokes on purpose (an error status it asked for), allowed once each. */
interface Expected {
  text: RegExp;
  url: RegExp;
  seen: boolean;
}

function watchErrors(page: Page): { unexpected: string[]; provoked: string[]; expect(text: RegExp, url: RegExp): void } {
  const provoked: string[] = [];
  const unexpected: string[] = [];
  const expected: Expected[] = [];
  page.on('console', (msg) => {
    if (msg.type() !== 'error') return;
    const url = msg.location().url;
    const mine = expected.find((e) => !e.seen && e.text.test(msg.text()) && e.url.test(url));
    if (mine) {
      mine.seen = true;
      provoked.push(`${url}: ${msg.text()}`);
    } else unexpected.push(`console error at ${url}: ${msg.text()}`);
  });
  page.on('pageerror', (err) => unexpected.push(`page error at ${page.url()}: ${err.message}`));
  return { unexpected, provoked, expect: (text, url) => expected.push({ text, url, seen: false }) };
}

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true, timeout: 15_000 });
}

async function login(page: Page, token: string): Promise<void> {
  await page.goto(`${SERVER_URL}/ui/login`);
  await page.fill('#token', token);
  await page.click('button[type=submit]');
  await page.waitForURL(`${SERVER_URL}/ui/`);
}

async function logout(page: Page): Promise<void> {
  await page.click('form[action="/ui/logout"] button');
  await page.waitForURL(/\/ui\/login$/);
}

/** Presses Tab until `selector` has the focus, at most `max` times; how many presses it took. */
async function tabTo(page: Page, selector: string, max: number): Promise<number> {
  for (let n = 1; n <= max; n++) {
    await page.keyboard.press('Tab');
    if ((await page.locator(`${selector}:focus`).count()) === 1) return n;
  }
  const at = await inPage<string>(page, `document.activeElement ? document.activeElement.outerHTML.slice(0, 120) : '(nothing)'`);
  throw new Error(`${max} presses of Tab did not reach ${selector}; the focus is on ${at}`);
}

async function launch(t: Test, serverNs: string, dir: string): Promise<Browser> {
  // playwright-core talks to Chromium over fds 3 and 4, which `ip netns exec` and exec keep.
  const wrapper = join(dir, 'chromium-in-server-ns.sh');
  writeFileSync(wrapper, `#!/bin/sh\nexec ip netns exec ${serverNs} ${CHROMIUM} "$@"\n`);
  chmodSync(wrapper, 0o755);
  const browser = await chromium.launch({ executablePath: wrapper, args: CHROMIUM_ARGS, timeout: 60_000 });
  t.teardown(async () => {
    // The lab's clean-up may have killed it already (it kills whatever runs in its namespaces).
    await Promise.race([browser.close().catch(() => undefined), new Promise<void>((r) => setTimeout(r, 10_000).unref())]);
  });
  return browser;
}

t.test('the dashboard in Chromium: register, watch a UEFI boot live, reset, viewer, keyboard only', { skip }, async (t) => {
  const started = Date.now();
  requireTools({ chromium: [['--version'], 'chromium'] });
  const bl = await createBootLab(t, 'ub', { mode: 'full', env: { EDGEBOOT_AUTH_VIEWER_TOKENS: VIEWER_TOKEN } });
  bl.explainOnFailure(t);
  mkdirSync(SHOTS, { recursive: true });
  rmSync(join(SHOTS, 'failure.png'), { force: true });
  const browser = await launch(t, bl.serverNs, bl.dir);
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  page.setDefaultTimeout(15_000);
  const errors = watchErrors(page);
  const machineUrl = `${SERVER_URL}/ui/machines/${macPath(MAC)}`;

  await t.test('1. an admin logs in through the form', async (t) => {
    await page.goto(`${SERVER_URL}/ui/`);
    t.match(page.url(), /\/ui\/login\?next=%2Fui%2F$/, 'no session: the dashboard sends the browser to the login');
    await shot(page, 'login');
    await page.fill('#token', bl.server.token);
    await page.click('button[type=submit]');
    await page.waitForURL(`${SERVER_URL}/ui/`);
    t.equal(await page.locator('.who .role').textContent(), 'admin', 'logged in as admin');
    t.equal(await page.locator('h1').textContent(), 'Overview');
  });

  await t.test('2. registers the guest through the form: a bad MAC first, then the real one', async (t) => {
    await page.goto(`${SERVER_URL}/ui/machines/new`);
    await page.fill('#f-mac', 'not-a-mac');
    await page.fill('#f-hostname', 'browser-1');
    errors.expect(/status of 400/, /\/ui\/machines\/new$/);
    const [refused] = await Promise.all([
      page.waitForResponse((r) => r.url() === `${SERVER_URL}/ui/machines/new` && r.request().method() === 'POST'),
      page.click('form.reservation button[type=submit]'),
    ]);
    await page.waitForLoadState();
    t.equal(refused.status(), 400, 'the form comes back with 400');
    t.equal(
      await page.locator('#f-mac-err').textContent(),
      '"not-a-mac" is not a MAC address (aa:bb:cc:dd:ee:ff, aa-bb-… or aabb…)',
      'the error says what is wrong',
    );
    t.ok(await page.locator('.field.invalid:has(#f-mac) > #f-mac-err').isVisible(), 'beside the MAC field, in its own row of the form');
    t.equal(await page.locator('#f-mac').getAttribute('aria-invalid'), 'true', 'the field is marked invalid');
    t.equal(await page.locator('#f-mac').getAttribute('aria-describedby'), 'f-mac-err', 'and names its error');
    t.equal(await page.locator('#f-mac').inputValue(), 'not-a-mac', 'what was typed is kept');
    t.equal(await page.locator('#f-hostname').inputValue(), 'browser-1', 'and the other fields too');
    await shot(page, 'register-error');

    await page.fill('#f-mac', MAC);
    await page.selectOption('#f-profile', PROFILE);
    await page.click('form.reservation button[type=submit]');
    await page.waitForURL(machineUrl);
    t.equal(await page.locator('h1').textContent(), 'browser-1', "the machine's page");
    t.equal(await page.locator('#machine-state').textContent(), 'registered', 'registered');
    const m = await bl.api('GET', `/api/v1/machines/${MAC}`);
    t.match(m.body, { mac: MAC, hostname: 'browser-1', profile: PROFILE, state: 'registered' }, 'the API has the machine as the form registered it');
  });

  await t.test("3. a UEFI guest boots while the machine's page, never reloaded, fills its timeline", async (t) => {
    await inPage(page, 'window.__marker = 1');
    let navigations = 0;
    const onNavigation = (frame: Frame) => {
      if (frame === page.mainFrame()) navigations++;
    };
    page.on('framenavigated', onNavigation);
    await page.waitForSelector('html[data-live="on"]', { state: 'attached' });
    const before = await timelineOf(page);
    t.comment(`before the boot the timeline has ${before.length} steps: ${before.map((s) => s.type).join(', ') || 'none'}`);

    const bootStarted = Date.now();
    const vm = bl.vm('uefi', 'uefi', MAC, 240_000);
    // What the boot produces on edgeboot's side up to the report (qemu-boot-proxy.test.ts asserts the same chain).
    const wanted = ['dhcp-offer', 'dhcp-ack', 'tftp-transfer', 'entry-script-served', 'state-changed', 'script-served', 'asset-served', 'booted'];
    const steps = await until(
      'the live timeline shows the whole boot',
      240_000,
      () => timelineOf(page),
      (s) => wanted.every((w) => s.some((x) => x.type === w)),
      (s) => s.map((x) => x.type).join(', '),
    );
    t.comment(`the page showed the boot ${Math.round((Date.now() - bootStarted) / 1000)} s after power-on`);
    await vm.stop();
    const state = await page.locator('#machine-state').textContent();
    t.not(state, 'registered', `the state badge moved on by itself (${state ?? ''})`);
    t.ok(steps.length > before.length, 'steps were added');

    const events = await bl.events(MAC);
    t.comment(describeTimeline(events));
    assertOrder(t, events, [
      ev('dhcp-offer', { ipxe: false }),
      ev('dhcp-ack', { ipxe: false }),
      ev('tftp-transfer', { file: 'ipxe.efi', outcome: 'complete' }),
      ev('dhcp-offer', { ipxe: true }),
      ev('dhcp-ack', { ipxe: true }),
      ev('entry-script-served'),
      ev('state-changed', {}, { from: 'registered', to: 'installing' }),
      ev('script-served', { kind: 'boot', stage: 'install', profile: PROFILE }),
      ev('asset-served', { artifact: 'kernel', status: 200 }),
      ev('asset-served', { artifact: 'initramfs', status: 200 }),
      ev('booted', { role: 'report' }),
    ]);
    const ids = events.map((e) => String(e.id));
    const shown = await until(
      'the page lists every event of the timeline, in order',
      15_000,
      () => timelineOf(page),
      (s) => s.map((x) => x.id).join() === ids.join(),
      (s) => `page ${s.map((x) => x.id).join()} vs API ${ids.join()}`,
    );
    t.same(
      shown.map((s) => s.type),
      events.map((e) => e.type),
      'the page shows the steps the API lists, in its order',
    );
    t.equal(await page.locator('#machine-state').textContent(), [...events].reverse().find((e) => e.to !== undefined)?.to, 'the badge shows the latest state');
    const tftp = shown.find((s) => s.type === 'tftp-transfer');
    t.match(tftp?.text, /ipxe\.efi: [\d.]+ [KM]iB in/, 'the TFTP step says what was sent and how fast');
    t.equal(await inPage(page, 'window.__marker'), 1, 'the page was never reloaded (the marker set after load is still there)');
    t.equal(navigations, 0, 'and the main frame never navigated');
    page.off('framenavigated', onNavigation);
    t.equal(page.url(), machineUrl);
    await shot(page, 'machine');
  });

  await t.test('7. screenshots of the other pages (taken while the machine is installing)', async (t) => {
    for (const [name, path, h1] of [
      ['overview', '/ui/', 'Overview'],
      ['machines', '/ui/machines', 'Machines'],
      ['discovered', '/ui/discovered', 'Discovered'],
      ['leases', '/ui/leases', 'Leases'],
      ['cache', '/ui/cache', 'Cache, images and bundles'],
      ['profiles', '/ui/profiles', 'Profiles'],
    ] as const) {
      const r = await page.goto(`${SERVER_URL}${path}`);
      t.equal(r?.status(), 200, `${path} answers 200`);
      t.equal(await page.locator('h1').first().textContent(), h1, `${path}: ${h1}`);
      if (name === 'machines') t.equal(await page.locator(`#machine-table a[href="/ui/machines/${macPath(MAC)}"]`).count(), 1, 'the table links the guest');
      if (name === 'leases') t.match(await page.locator('table').textContent(), MAC, 'the guest has a lease');
      await shot(page, name);
    }
  });

  await t.test('4. the Reset button puts the machine back to registered', async (t) => {
    await page.goto(machineUrl);
    await page.click('button[name=action][value=reset]');
    await page.waitForURL(machineUrl);
    t.equal(await page.locator('#machine-state').textContent(), 'registered', 'the badge shows registered');
    const last = (await timelineOf(page)).at(-1);
    t.equal(last?.type, 'state-changed', 'the newest step is the state change');
    t.match(last?.text, /installing → registered/, 'from installing back to registered');
    t.match(last?.text, /forced reset to registered from installing/, 'by a reset');
    const events = await bl.events(MAC);
    t.match(events.at(-1), { type: 'state-changed', from: 'installing', to: 'registered', data: { cause: 'reset', forced: true } }, 'the API agrees');
  });

  await t.test('5. a viewer sees no action and cannot act', async (t) => {
    await logout(page);
    await login(page, VIEWER_TOKEN);
    t.equal(await page.locator('.who .role').textContent(), 'viewer', 'logged in as viewer');
    await page.goto(machineUrl);
    t.equal(await page.locator('#machine-state').textContent(), 'registered', "the viewer sees the machine's page");
    t.equal(await page.locator('button[name=action]').count(), 0, 'no action button');
    t.equal(await page.locator('form[action$="/action"], form[action="/ui/machines/bulk"], form.reservation').count(), 0, 'no action, delete or edit form');
    await shot(page, 'machine-viewer');
    await page.goto(`${SERVER_URL}/ui/machines`);
    t.equal(await page.locator('#machine-table a[href^="/ui/machines/"]').count(), 1, 'the machines page lists the machine');
    t.equal(await page.locator('input[type=checkbox][name=mac], #select-all, #bulk-action').count(), 0, 'no bulk checkbox or action');
    t.equal(await page.locator('a[href="/ui/machines/new"]').count(), 0, 'no Register link');
    t.notMatch(await page.locator('main').textContent(), /Register/, 'and no Register text');
    await shot(page, 'machines-viewer');

    const csrf = await page.locator('form[action="/ui/logout"] input[name=_csrf]').inputValue();
    const eventsBefore = (await bl.events(MAC)).length;
    errors.expect(/status of 403/, /\/action$/);
    const answer = await page.evaluate(
      async ({ url, token }) => {
        const r = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({ _csrf: token, action: 'reset' }).toString(),
        });
        return { status: r.status, text: await r.text() };
      },
      { url: `/ui/machines/${macPath(MAC)}/action`, token: csrf },
    );
    t.equal(answer.status, 403, "a POST from the viewer's page is refused");
    t.match(answer.text, /read-only/, 'for the role, not the CSRF token');
    t.equal((await bl.events(MAC)).length, eventsBefore, 'and nothing happened to the machine');
  });

  await t.test('6. keyboard only: an admin logs in and registers a second machine', async (t) => {
    await logout(page);
    t.equal(await page.locator('#token:focus').count(), 1, 'the login form has the focus on the token');
    await page.keyboard.type(bl.server.token);
    await page.keyboard.press('Enter');
    await page.waitForURL(`${SERVER_URL}/ui/`);
    t.equal(await page.locator('.who .role').textContent(), 'admin', 'logged in as admin');
    await page.goto(`${SERVER_URL}/ui/machines/new`);
    t.equal(await tabTo(page, 'a.skip', 1), 1, 'the first Tab reaches the skip link');
    await page.keyboard.press('Enter');
    t.equal(await tabTo(page, '#f-mac', 3), 2, 'past the skip link, the breadcrumb and then the MAC field');
    await page.keyboard.type(KEYBOARD_MAC);
    t.equal(await tabTo(page, '#f-hostname', 1), 1, 'then the hostname');
    await page.keyboard.type('keyboard-1');
    t.equal(await tabTo(page, '#f-profile', 3), 3, 'then IP, UUID and the profile');
    await page.keyboard.type(PROFILE);
    t.equal(await page.locator('#f-profile').inputValue(), PROFILE, 'typing picks the profile');
    const presses = await tabTo(page, 'form.reservation button[type=submit]', 20);
    t.comment(`${presses} Tabs from the profile to Register`);
    await page.keyboard.press('Enter');
    await page.waitForURL(`${SERVER_URL}/ui/machines/${macPath(KEYBOARD_MAC)}`);
    t.equal(await page.locator('h1').textContent(), 'keyboard-1', "it lands on the new machine's page");
    const m = await bl.api('GET', `/api/v1/machines/${KEYBOARD_MAC}`);
    t.match(m.body, { mac: KEYBOARD_MAC, hostname: 'keyboard-1', profile: PROFILE, state: 'registered' }, 'registered with what was typed');
  });

  t.comment(`the console errors the test provoked: ${errors.provoked.join('; ') || 'none'}`);
  t.same(errors.unexpected, [], 'no console error and no page error in the whole run (a CSP violation would be one)');
  if (!t.passing()) await shot(page, 'failure').catch(() => undefined);
  await browser.close();
  bl.lab.cleanup();
  t.same(
    netnsList().filter((n) => n.startsWith(bl.lab.prefix)),
    [],
    'no namespace, browser or VM is left behind',
  );
  t.comment(`the whole run took ${Math.round((Date.now() - started) / 1000)} s`);
});
