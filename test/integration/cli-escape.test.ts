/**
 * What the operator's terminal shows (issue 15 §6): a machine posts an event whose message
 * carries terminal controls (an OSC title, BEL, a clear-screen CSI, CR, the one-byte C1 CSI
 * U+009B, DEL) and a bidi override (U+202E). The real `edgeboot machines show`, against a real
 * server, prints none of those raw and shows each escaped; `--json` parses to the exact original.
 */
import t from 'tap';
import { runCli, startServer, tempDir } from '../helpers/process.js';

const srv = await startServer(t);
const MAC = '52:54:00:e5:c0:01';
const HOSTILE = 'done\u001b]0;pwned\u0007\u001b[2J\rfake line\u009b31mred\u007f \u202eevil\u202c\nsecond';
/** Every control above, raw: none may reach the terminal. */
const RAW = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;

t.test('machines show escapes what a machine posted; --json keeps it exactly', async (t) => {
  const auth = { authorization: `Bearer ${srv.token}`, 'content-type': 'application/json' };
  const put = await fetch(`${srv.url}/api/v1/machines/${MAC}`, {
    method: 'PUT',
    headers: auth,
    body: JSON.stringify({ profile: 'local-disk', hostname: 'term-1' }),
  });
  t.equal(put.status, 201, 'machine saved');
  const boot = (await (await fetch(`${srv.url}/api/v1/machines/${MAC}/boot`, { headers: auth })).json()) as { eventsUrl: string };
  const token = new URL(boot.eventsUrl).searchParams.get('token') ?? '';
  const posted = await fetch(`${srv.url}/api/v1/machines/${MAC}/events?token=${encodeURIComponent(token)}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ type: 'note', message: HOSTILE }),
  });
  t.equal(posted.status, 201, 'the machine posts its event with its own token');

  const conn = ['--server', srv.url, '--token', srv.token];
  const shown = await runCli(t, ['machines', 'show', MAC, ...conn], { cwd: tempDir(t) });
  t.equal(shown.code, 0, `exit 0 (stderr: ${shown.stderr})`);
  t.notMatch(shown.stdout, RAW, 'no raw control character on stdout (newlines aside)');
  t.notMatch(shown.stderr, RAW, 'nor on stderr');
  for (const escaped of ['\\x1b]0;pwned\\x07\\x1b[2J', '\\x0dfake line', '\\u009b31mred', '\\u007f', '\\u202eevil\\u202c', '\\x0asecond']) {
    t.ok(shown.stdout.includes(escaped), `shown escaped: ${escaped}`);
  }
  const row = shown.stdout.split('\n').find((l) => l.includes('pwned')) ?? '';
  t.match(row, /machine\s+note\s+done/, 'the whole message stays on its event row');

  const json = await runCli(t, ['machines', 'show', MAC, '--json', ...conn], { cwd: tempDir(t) });
  t.equal(json.code, 0, `--json: exit 0 (stderr: ${json.stderr})`);
  t.notMatch(json.stdout, RAW, '--json: no raw control character either');
  const doc = JSON.parse(json.stdout) as { events: { type: string; message?: string }[] };
  t.equal(doc.events.find((e) => e.type === 'note')?.message, HOSTILE, '--json parses to the exact original message');
});

t.test('an error message is escaped on stderr', async (t) => {
  const r = await runCli(t, ['machines', 'show', 'x\u009b2J\u202eevil', '--server', srv.url, '--token', srv.token], { cwd: tempDir(t) });
  t.equal(r.code, 1, 'exit 1');
  t.match(r.stderr, /is not a MAC address/, 'it says why');
  t.notMatch(r.stderr, RAW, 'the argument echoed without its raw controls');
  t.ok(r.stderr.includes('\\u009b2J\\u202eevil'), 'shown escaped');
});
