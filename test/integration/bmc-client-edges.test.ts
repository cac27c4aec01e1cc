/**
 * The Redfish client's answers to what the emulator does not do: a tiny scripted BMC per test for
 * several systems, a BMC that keeps its values, ActionInfo, 412/428 preconditions, failed tasks,
 * Redfish error messages (and a secret echoed in one), session Locations and odd answers.
 */
import { once } from 'node:events';
import { createServer, type IncomingMessage } from 'node:http';
import t, { type Test } from 'tap';
import { withBmc } from '../../src/bmc/redfish.js';
import type { BmcTarget } from '../../src/bmc/types.js';
import { bmcError } from '../helpers/bmc-error.js';

const PASSWORD = 'edge-Pa55word-9';

interface Seen {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  body: unknown;
}
interface Reply {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}
type Script = (request: Seen) => Reply | undefined;

/** A BMC whose answers the test scripts; unscripted paths are 404. Every request is recorded. */
async function scriptedBmc(t: Test, script: Script): Promise<{ target: (o?: Partial<BmcTarget>) => BmcTarget; seen: Seen[]; port: number }> {
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const request: Seen = { method: req.method ?? 'GET', path: req.url ?? '/', headers: req.headers, body: text ? (JSON.parse(text) as unknown) : undefined };
      seen.push(request);
      const reply = script(request) ?? { status: 404, body: { error: { code: 'Base.1.8.ResourceMissingAtURI', message: 'not found' } } };
      const payload = reply.body === undefined ? '' : typeof reply.body === 'string' ? reply.body : JSON.stringify(reply.body);
      res.writeHead(reply.status, { 'Content-Type': 'application/json', ...reply.headers });
      res.end(payload);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => new Promise((resolve) => server.close(resolve)));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const target = (o: Partial<BmcTarget> = {}): BmcTarget => ({
    address: `redfish+http://127.0.0.1:${port}`,
    username: 'admin',
    password: PASSWORD,
    verifyTls: true,
    bootMode: 'uefi',
    ...o,
  });
  return { target, seen, port };
}

const ROOT = { Systems: { '@odata.id': '/redfish/v1/Systems' } };
const OPTS = { timeoutMs: 2000 };

function systemDoc(o: { power?: string; boot?: Record<string, unknown>; actions?: Record<string, unknown>; etag?: string } = {}): Record<string, unknown> {
  return {
    Id: '1',
    PowerState: o.power ?? 'Off',
    Manufacturer: 'Contoso',
    Boot: o.boot ?? { BootSourceOverrideTarget: 'None', BootSourceOverrideEnabled: 'Disabled', BootSourceOverrideMode: 'Legacy' },
    Actions: o.actions ?? { '#ComputerSystem.Reset': { target: '/redfish/v1/Systems/1/Actions/ComputerSystem.Reset' } },
    ...(o.etag ? { '@odata.etag': o.etag } : {}),
  };
}

/** The common answers: root, one system in the collection; `rest` scripts everything else. */
function basicBmc(rest: Script, members = ['/redfish/v1/Systems/1']): Script {
  return (request) => {
    if (request.method === 'GET' && request.path === '/redfish/v1') return { status: 200, body: ROOT };
    if (request.method === 'GET' && request.path === '/redfish/v1/Systems')
      return { status: 200, body: { Members: members.map((id) => ({ '@odata.id': id })) } };
    return rest(request);
  };
}

t.test('several systems: a clear error naming them and asking for systemId; none: a protocol error', async (t) => {
  const several = await scriptedBmc(
    t,
    basicBmc(() => undefined, ['/redfish/v1/Systems/Node1', '/redfish/v1/Systems/Node2']),
  );
  const error = await bmcError(withBmc(several.target(), OPTS, (s) => s.system()));
  t.equal(error.kind, 'refused');
  t.match(error.message, /the BMC has 2 systems \(Node1, Node2\): set the machine's bmc systemId/);

  const none = await scriptedBmc(
    t,
    basicBmc(() => undefined, []),
  );
  const empty = await bmcError(withBmc(none.target(), OPTS, (s) => s.system()));
  t.equal(empty.kind, 'protocol');
  t.match(empty.message, /lists no systems/);
});

t.test('a BMC that answers 200 and keeps its values: PATCHed twice, then a kept error with what it kept', async (t) => {
  const bmc = await scriptedBmc(
    t,
    basicBmc((request) => {
      if (request.path !== '/redfish/v1/Systems/1') return undefined;
      return request.method === 'PATCH' ? { status: 204 } : { status: 200, body: systemDoc() };
    }),
  );
  const error = await bmcError(withBmc(bmc.target(), OPTS, (s) => s.setOneTimeBoot({ target: 'Pxe' })));
  t.equal(error.kind, 'kept');
  t.match(error.message, 'the BMC kept Target=None, Enabled=Disabled, Mode=Legacy after 2 PATCHes of Target=Pxe, Enabled=Once, Mode=UEFI');
  t.equal(bmc.seen.filter((r) => r.method === 'PATCH').length, 2);
});

t.test('412: the ETag moved; re-read, PATCH once more with the new one', async (t) => {
  let etag = 'W/"1"';
  let boot: Record<string, unknown> = { BootSourceOverrideTarget: 'None', BootSourceOverrideEnabled: 'Disabled' };
  let refusedOnce = false;
  const bmc = await scriptedBmc(
    t,
    basicBmc((request) => {
      if (request.path !== '/redfish/v1/Systems/1') return undefined;
      if (request.method === 'GET') return { status: 200, body: systemDoc({ boot, etag }) };
      if (!refusedOnce) {
        refusedOnce = true;
        etag = 'W/"2"';
        return { status: 412, body: { error: { code: 'Base.1.8.PreconditionFailed', message: 'ETag mismatch' } } };
      }
      boot = (request.body as { Boot: Record<string, unknown> }).Boot;
      return { status: 200 };
    }),
  );
  const result = await withBmc(bmc.target(), OPTS, (s) => s.setOneTimeBoot({ target: 'Pxe' }));
  t.equal(result.mode, undefined, 'no Mode: the Boot object has no BootSourceOverrideMode');
  t.same(
    bmc.seen.filter((r) => r.method === 'PATCH').map((r) => r.headers['if-match']),
    ['W/"1"', 'W/"2"'],
    'the @odata.etag, then the new one',
  );
});

t.test('428 from a BMC not known to need If-Match and showing no ETag: sent again with If-Match *', async (t) => {
  let boot: Record<string, unknown> = { BootSourceOverrideTarget: 'None', BootSourceOverrideEnabled: 'Disabled' };
  const bmc = await scriptedBmc(
    t,
    basicBmc((request) => {
      if (request.path !== '/redfish/v1/Systems/1') return undefined;
      if (request.method === 'GET') return { status: 200, body: systemDoc({ boot }) };
      if (request.headers['if-match'] === undefined)
        return { status: 428, body: { error: { code: 'Ami.1.0.PreconditionHeaderMissing', message: 'If-Match' } } };
      boot = (request.body as { Boot: Record<string, unknown> }).Boot;
      return { status: 200 };
    }),
  );
  await withBmc(bmc.target(), OPTS, (s) => s.setOneTimeBoot({ target: 'Pxe' }));
  t.same(
    bmc.seen.filter((r) => r.method === 'PATCH').map((r) => r.headers['if-match'] ?? '(none)'),
    ['(none)', '*'],
  );
});

t.test('the allowed ResetTypes from @Redfish.ActionInfo; a restart without restart types is ForceOff, Off, On', async (t) => {
  let power = 'On';
  const actions = {
    '#ComputerSystem.Reset': { target: '/redfish/v1/Systems/1/Actions/ComputerSystem.Reset', '@Redfish.ActionInfo': '/redfish/v1/Systems/1/ResetActionInfo' },
  };
  const bmc = await scriptedBmc(
    t,
    basicBmc((request) => {
      if (request.path === '/redfish/v1/Systems/1') return { status: 200, body: systemDoc({ power, actions }) };
      if (request.path === '/redfish/v1/Systems/1/ResetActionInfo') {
        return { status: 200, body: { Parameters: [{ Name: 'ResetType', AllowableValues: ['On', 'ForceOff'] }] } };
      }
      if (request.path.endsWith('/ComputerSystem.Reset')) {
        power = (request.body as { ResetType: string }).ResetType === 'On' ? 'On' : 'Off';
        return { status: 204 };
      }
      return undefined;
    }),
  );
  const [view, restart] = await withBmc(bmc.target(), OPTS, async (s) => [await s.system(), await s.reset('restart')] as const);
  t.same(view.resetTypes, ['On', 'ForceOff']);
  t.same(restart.resetTypes, ['ForceOff', 'On']);
  t.equal(power, 'On');
});

t.test('a reset task that ends in Exception: a refused error with the task message; an absolute Location works', async (t) => {
  const bmc = await scriptedBmc(
    t,
    basicBmc((request) => {
      if (request.path === '/redfish/v1/Systems/1') return { status: 200, body: systemDoc() };
      if (request.path.endsWith('/ComputerSystem.Reset')) {
        return { status: 202, headers: { Location: `http://127.0.0.1:${bmc.port}/redfish/v1/TaskService/Tasks/7` } };
      }
      if (request.path === '/redfish/v1/TaskService/Tasks/7') {
        return { status: 200, body: { TaskState: 'Exception', Messages: [{ Message: 'Power supply fault' }] } };
      }
      return undefined;
    }),
  );
  const error = await bmcError(withBmc(bmc.target(), OPTS, (s) => s.reset('on')));
  t.equal(error.kind, 'refused');
  t.match(error.message, /the reset task \/redfish\/v1\/TaskService\/Tasks\/7 ended Exception: Power supply fault/);
});

t.test('a refused PATCH: the Redfish ExtendedInfo messages and the status, with a password the BMC echoed cut', async (t) => {
  const bmc = await scriptedBmc(
    t,
    basicBmc((request) => {
      if (request.path !== '/redfish/v1/Systems/1') return undefined;
      if (request.method === 'GET') return { status: 200, body: systemDoc() };
      const info = [
        {
          MessageId: 'Base.1.8.PropertyValueNotInList',
          Message: 'The value UEFI for the property BootSourceOverrideMode is not in the list of acceptable values.',
        },
        { MessageId: 'Oem.1.0.Debug', Message: `request by admin/${PASSWORD} with ${request.headers.authorization ?? ''}` },
      ];
      return { status: 400, body: { error: { code: 'Base.1.8.GeneralError', message: 'See ExtendedInfo', '@Message.ExtendedInfo': info } } };
    }),
  );
  const error = await bmcError(withBmc(bmc.target(), OPTS, (s) => s.setOneTimeBoot({ target: 'Pxe' })));
  t.equal(error.kind, 'refused');
  t.equal(error.status, 400);
  t.match(error.message, /PATCH \/redfish\/v1\/Systems\/1 answered HTTP 400: The value UEFI .* acceptable values\. Base\.1\.8\.PropertyValueNotInList/);
  t.notMatch(error.message, PASSWORD);
  t.match(error.message, 'request by admin/<redacted> with Basic <redacted>', 'the password and its Basic form cut');
});

t.test('a session without Location is deleted at its @odata.id; a SessionService that fails falls back to Basic', async (t) => {
  const withBody = await scriptedBmc(t, (request) => {
    if (request.path === '/redfish/v1' && request.method === 'GET') return { status: 200, body: { ...ROOT, SessionService: {} } };
    if (request.path === '/redfish/v1/SessionService/Sessions' && request.method === 'POST') {
      return { status: 201, headers: { 'X-Auth-Token': 'tok-123456' }, body: { '@odata.id': '/redfish/v1/SessionService/Sessions/abc' } };
    }
    if (request.method === 'DELETE') return { status: 204 };
    if (request.path === '/redfish/v1/Systems') return { status: 200, body: { Members: [{ '@odata.id': '/redfish/v1/Systems/1' }] } };
    if (request.path === '/redfish/v1/Systems/1') return { status: 200, body: systemDoc() };
    return undefined;
  });
  await withBmc(withBody.target(), OPTS, (s) => s.system());
  t.same(
    withBody.seen.filter((r) => r.method === 'DELETE').map((r) => [r.path, r.headers['x-auth-token']]),
    [['/redfish/v1/SessionService/Sessions/abc', 'tok-123456']],
  );

  const failing = await scriptedBmc(t, (request) => {
    if (request.path === '/redfish/v1' && request.method === 'GET') return { status: 200, body: { ...ROOT, SessionService: {} } };
    if (request.path === '/redfish/v1/SessionService/Sessions') return { status: 500, body: { error: { message: 'session table full' } } };
    return basicBmc((r) => (r.path === '/redfish/v1/Systems/1' ? { status: 200, body: systemDoc() } : undefined))(request);
  });
  const view = await withBmc(failing.target(), OPTS, (s) => s.system());
  t.equal(view.id, '1');
  const afterLogin = failing.seen.filter((r) => r.path.startsWith('/redfish/v1/Systems'));
  t.ok(
    afterLogin.every((r) => r.headers.authorization?.startsWith('Basic ')),
    'Basic on every request after the refused login',
  );
});

t.test('an answer that is not JSON: a protocol error', async (t) => {
  const bmc = await scriptedBmc(
    t,
    basicBmc((request) => (request.path === '/redfish/v1/Systems/1' ? { status: 200, body: '<html>login</html>' } : undefined)),
  );
  const error = await bmcError(withBmc(bmc.target(), OPTS, (s) => s.system()));
  t.equal(error.kind, 'protocol');
  t.match(error.message, /GET \/redfish\/v1\/Systems\/1 answered no JSON object/);
});

t.test('a bad address: a BmcError before any connection', async (t) => {
  const error = await bmcError(
    withBmc({ address: 'https://10.0.0.1', username: 'u', password: 'p', verifyTls: true, bootMode: 'uefi' }, OPTS, (s) => s.system()),
  );
  t.equal(error.kind, 'protocol');
  t.match(error.message, /did you mean redfish:\/\//);
});

t.test('403 to a PATCH: an auth error that says the account lacks the privilege', async (t) => {
  const bmc = await scriptedBmc(
    t,
    basicBmc((request) => {
      if (request.path !== '/redfish/v1/Systems/1') return undefined;
      if (request.method === 'GET') return { status: 200, body: systemDoc() };
      return { status: 403, body: { error: { code: 'Base.1.8.InsufficientPrivilege', message: 'There are insufficient privileges for the account.' } } };
    }),
  );
  const error = await bmcError(withBmc(bmc.target(), OPTS, (s) => s.setOneTimeBoot({ target: 'Pxe' })));
  t.equal(error.kind, 'auth');
  t.equal(error.status, 403);
  t.match(error.message, /insufficient privileges .*the BMC denies user "admin" this request: the account needs the ConfigureComponents privilege/);
});

t.test('a power state that is neither on nor off: restart restarts, off forces off, on sends On', async (t) => {
  const sent: string[] = [];
  const bmc = await scriptedBmc(
    t,
    basicBmc((request) => {
      if (request.path === '/redfish/v1/Systems/1') return { status: 200, body: { ...systemDoc(), PowerState: 'Paused' } };
      if (!request.path.endsWith('/ComputerSystem.Reset')) return undefined;
      sent.push((request.body as { ResetType: string }).ResetType);
      return { status: 204 };
    }),
  );
  await withBmc(bmc.target(), OPTS, async (s) => {
    await s.reset('restart');
    await s.reset('off');
    await s.reset('on');
  });
  t.same(sent, ['ForceRestart', 'ForceOff', 'On']);
});

t.test('links that end with a slash (iLO 4) are used without it', async (t) => {
  const bmc = await scriptedBmc(
    t,
    basicBmc((request) => (request.path === '/redfish/v1/Systems/1' ? { status: 200, body: systemDoc() } : undefined), ['/redfish/v1/Systems/1/']),
  );
  const view = await withBmc(bmc.target(), OPTS, (s) => s.system());
  t.equal(view.path, '/redfish/v1/Systems/1');
  t.equal(view.id, '1');
});

t.test('503 (a BMC busy restarting itself): waited out per Retry-After and sent again, a few times at most', async (t) => {
  let unavailable = 1;
  const bmc = await scriptedBmc(
    t,
    basicBmc((request) => {
      if (request.path !== '/redfish/v1/Systems/1') return undefined;
      if (unavailable-- > 0) return { status: 503, headers: { 'Retry-After': '0' }, body: { error: { message: 'data sources are unavailable' } } };
      return { status: 200, body: systemDoc() };
    }),
  );
  const view = await withBmc(bmc.target(), OPTS, (s) => s.system());
  t.equal(view.id, '1');

  const down = await scriptedBmc(
    t,
    basicBmc((request) =>
      request.path === '/redfish/v1/Systems/1' ? { status: 503, headers: { 'Retry-After': '0' }, body: { error: { message: 'still starting' } } } : undefined,
    ),
  );
  const error = await bmcError(withBmc(down.target(), OPTS, (s) => s.system()));
  t.equal(error.kind, 'refused');
  t.equal(error.status, 503);
  t.match(error.message, /HTTP 503: still starting/);
  t.equal(down.seen.filter((r) => r.path === '/redfish/v1/Systems/1').length, 3, 'three tries');
});

t.test('a BMC whose ETag header does not match its own If-Match check: the @odata.etag is sent on the retry', async (t) => {
  let boot: Record<string, unknown> = { BootSourceOverrideTarget: 'None', BootSourceOverrideEnabled: 'Disabled' };
  const bmc = await scriptedBmc(
    t,
    basicBmc((request) => {
      if (request.path !== '/redfish/v1/Systems/1') return undefined;
      if (request.method === 'GET') return { status: 200, headers: { ETag: '"abc-gzip"' }, body: systemDoc({ boot, etag: '"abc"' }) };
      if (request.headers['if-match'] !== '"abc"') return { status: 412, body: { error: { message: 'The ETag supplied did not match' } } };
      boot = (request.body as { Boot: Record<string, unknown> }).Boot;
      return { status: 204 };
    }),
  );
  const result = await withBmc(bmc.target(), OPTS, (s) => s.setOneTimeBoot({ target: 'Pxe' }));
  t.equal(result.kept.enabled, 'Once');
  t.same(
    bmc.seen.filter((r) => r.method === 'PATCH').map((r) => r.headers['if-match']),
    ['"abc-gzip"', '"abc"'],
  );
});

t.test('a session token the BMC echoes in an error is cut from the message', async (t) => {
  const token = 'tok-SECRET-4242';
  const bmc = await scriptedBmc(t, (request) => {
    if (request.path === '/redfish/v1' && request.method === 'GET') return { status: 200, body: { ...ROOT, SessionService: {} } };
    if (request.path === '/redfish/v1/SessionService/Sessions')
      return { status: 201, headers: { 'X-Auth-Token': token, Location: '/redfish/v1/SessionService/Sessions/9' } };
    if (request.method === 'DELETE') return { status: 204 };
    const echoed = `session ${String(request.headers['x-auth-token'])} has no rights here`;
    return { status: 500, body: { error: { code: 'Base.1.8.InternalError', message: echoed } } };
  });
  const error = await bmcError(withBmc(bmc.target(), OPTS, (s) => s.system()));
  t.equal(error.kind, 'refused');
  t.match(error.message, 'session <redacted> has no rights here');
  t.notMatch(error.message, token);
  t.ok(
    bmc.seen.some((r) => r.method === 'DELETE'),
    'the session still deleted',
  );
});

t.test('a session the BMC grants but then refuses (401 even when fresh): deleted, and Basic used instead', async (t) => {
  const bmc = await scriptedBmc(t, (request) => {
    if (request.path === '/redfish/v1' && request.method === 'GET') return { status: 200, body: { ...ROOT, SessionService: {} } };
    if (request.path === '/redfish/v1/SessionService/Sessions')
      return { status: 201, headers: { 'X-Auth-Token': 'useless', Location: '/redfish/v1/SessionService/Sessions/1' } };
    if (request.method === 'DELETE') return { status: 204 };
    if (request.headers['x-auth-token']) return { status: 401, body: { error: { message: 'no valid session' } } };
    return basicBmc((r) => (r.path === '/redfish/v1/Systems/1' ? { status: 200, body: systemDoc() } : undefined))(request);
  });
  const view = await withBmc(bmc.target(), OPTS, (s) => s.system());
  t.equal(view.id, '1');
  t.equal(bmc.seen.filter((r) => r.method === 'POST').length, 2, 'logged in, then once more after the 401');
  t.equal(bmc.seen.filter((r) => r.method === 'DELETE').length, 1, 'the second session deleted before Basic');
  t.ok(bmc.seen.at(-1)?.headers.authorization?.startsWith('Basic '), 'Basic at the end');
});
