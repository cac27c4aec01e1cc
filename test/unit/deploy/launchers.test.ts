/**
 * Every launcher edgeboot ships passes node the same flags (docs/service.md "Memory"): `npm start`,
 * the bin's shebang, the systemd unit and the Docker image. A flag changed in one and not the
 * others would leave one way of running the server with another memory footprint.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { REPO_ROOT } from '../../helpers/process.js';

const read = (path: string): string => readFileSync(join(REPO_ROOT, path), 'utf8');

/** The `--…` options between the node binary and the script, from a command line's words. */
function nodeFlags(words: string[]): string[] {
  const node = words.findIndex((w) => w === 'node' || w.endsWith('/node'));
  const script = words.findIndex((w) => w.endsWith('main.js'));
  if (node < 0 || script < node) throw new Error(`no node … main.js in ${words.join(' ')}`);
  return words.slice(node + 1, script);
}

t.test('npm start, the shebang, the systemd unit and the image pass node the same flags', async (t) => {
  const pkg = JSON.parse(read('package.json')) as { scripts: { start: string } };
  const start = nodeFlags(pkg.scripts.start.split(' '));
  t.ok(start.length > 0 && start.every((f) => f.startsWith('--')), `npm start passes node flags: ${start.join(' ')}`);

  const shebang = read('src/main.ts').split('\n')[0] ?? '';
  t.match(shebang, /^#!\/usr\/bin\/env -S node /, 'the shebang runs node through env -S (several arguments)');
  t.same(shebang.replace(/^#!\/usr\/bin\/env -S node /, '').split(' '), start, 'the bin (src/main.ts shebang)');

  const execStart = /^ExecStart=(.*)$/m.exec(read('deploy/systemd/edgeboot.service'))?.[1] ?? '';
  t.same(nodeFlags(execStart.split(' ')), start, 'the systemd unit’s ExecStart');

  const entrypoint = /^ENTRYPOINT (\[.*\])$/m.exec(read('Dockerfile'))?.[1] ?? '[]';
  t.same(nodeFlags(JSON.parse(entrypoint) as string[]), start, 'the Docker image’s ENTRYPOINT');
});
