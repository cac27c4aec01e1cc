/**
 * `edgeboot serve` as the unprivileged user nobody, in a network namespace of a test's lab,
 * holding the given capabilities and nothing else (util-linux setpriv, as systemd's User= with
 * AmbientCapabilities= would), with NoNewPrivileges. Needs root and a built dist/.
 */
import { mkdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { Background, Lab } from './netns.js';
import { MAIN_JS, REPO_ROOT } from './process.js';

export const NOBODY = 65534;

export interface NobodyServe {
  lab: Lab;
  /** The namespace the server runs in. */
  ns: string;
  /** A directory nobody can reach (0755 up to it): the checkout is bind-mounted below it. */
  dir: string;
  /** setpriv(1) capability names, e.g. `net_bind_service`; none: no capability at all. */
  caps: string[];
  /** After `serve`. */
  args: string[];
  /** The whole environment of the server (nothing of the test's is passed on). */
  env: NodeJS.ProcessEnv;
}

export function serveAsNobody(o: NobodyServe): Background {
  const set = o.caps.map((c) => `+${c}`).join(',');
  // nobody must read the checkout (dist/, node_modules), wherever it was cloned: a clone under a
  // 0700 directory (mktemp -d) is out of its reach. So the server runs from a bind mount of the
  // checkout on a directory nobody can reach, in a mount namespace of its own (unshare). tap's
  // process-info hook (NODE_OPTIONS, added to every node child) is not for the server: `env -u`.
  const view = join(o.dir, 'checkout');
  mkdirSync(view, { recursive: true });
  const main = join(view, relative(REPO_ROOT, MAIN_JS));
  const privs = [
    'setpriv',
    `--reuid=${NOBODY}`,
    `--regid=${NOBODY}`,
    '--clear-groups',
    '--no-new-privs',
    `--inh-caps=-all${set ? `,${set}` : ''}`,
    `--ambient-caps=-all${set ? `,${set}` : ''}`,
    `--bounding-set=-all${set ? `,${set}` : ''}`,
    'env',
    '-u',
    'NODE_OPTIONS',
    process.execPath,
    main,
    'serve',
    ...o.args,
  ];
  const argv = ['unshare', '--mount', '--propagation', 'private', 'sh', '-c', 'mount --bind "$0" "$1" && shift && exec "$@"', REPO_ROOT, view, ...privs];
  return o.lab.start(o.ns, argv, { env: o.env });
}
