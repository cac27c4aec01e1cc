/**
 * Network namespaces for system tests: a "lab" of namespaces, veth links and bridges that a test
 * builds and always removes, and the processes it runs inside them.
 *
 * Rules the helpers keep:
 * - Every namespace is named `eb-<tag>-<pid>-<n>`: unique to this test process, so parallel
 *   test files never meet, and recognisable, so that the leftovers of an earlier run whose
 *   process is gone can be swept at the next start.
 * - Links are created inside a namespace of the lab, their peer moved straight into another
 *   one: nothing is ever created in, or sent on, the host's own namespace.
 * - `cleanup()` is synchronous and idempotent: it kills every process still inside the lab's
 *   namespaces (by pid, from `ip netns pids`: only processes the test started live there) and
 *   deletes the namespaces. It runs at teardown and, as a last resort, on process exit.
 * - Every command is bounded in time.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';

/** What the helpers need of a tap test. */
export interface Teardown {
  teardown(fn: () => unknown): void;
}

/** Bound of one `ip` command. */
const IP_TIMEOUT_MS = 5_000;
const STALE = /^eb-[a-z]{2}-(\d+)-\d+$/;

export function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: IP_TIMEOUT_MS });
}

/** The names `ip netns list` shows now. */
export function netnsList(): string[] {
  return ip('netns', 'list')
    .split('\n')
    .map((line) => line.trim().split(/\s+/)[0] ?? '')
    .filter((name) => name !== '');
}

function has(cmd: string, args: string[]): boolean {
  try {
    execFileSync(cmd, args, { stdio: 'ignore', timeout: IP_TIMEOUT_MS });
    return true;
  } catch {
    return false;
  }
}

/**
 * Why namespace tests cannot run here, or false. Not root outside CI is a reported skip (a
 * developer's unprivileged `npm test`); in CI (CI=true, root) anything missing is a failure,
 * reported by `requireTools`, never a skip.
 */
export function netnsSkip(): string | false {
  if (process.getuid?.() === 0) return false;
  if (process.env.CI) return false; // fails loudly in requireTools instead
  return 'needs root (network namespaces); CI runs these as root';
}

/**
 * Throws, naming the Debian package, when a tool the test drives is missing (CI installs them
 * all: see .ci/run). `tools` maps a command to [probe arguments, package].
 */
export function requireTools(tools: Record<string, readonly [string[], string]>): void {
  if (process.getuid?.() !== 0) throw new Error('network namespace tests need root');
  const missing: string[] = [];
  if (!has('ip', ['-V'])) missing.push('ip (iproute2)');
  for (const [cmd, [args, pkg]] of Object.entries(tools)) if (!has(cmd, args)) missing.push(`${cmd} (${pkg})`);
  if (missing.length > 0) throw new Error(`missing tools: ${missing.join(', ')}; apt-get install them (see .ci/run)`);
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Kills (SIGKILL) every process inside `ns` and deletes it. Never throws. */
function destroyNamespace(ns: string): void {
  for (let round = 0; round < 3; round++) {
    let pids: number[];
    try {
      pids = ip('netns', 'pids', ns)
        .split('\n')
        .map((s) => Number(s.trim()))
        .filter((n) => Number.isInteger(n) && n > 0);
    } catch {
      break;
    }
    if (pids.length === 0) break;
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
  try {
    ip('netns', 'del', ns);
  } catch {
    // already gone
  }
}

/** Deletes namespaces of earlier runs (any eb-xx- test) whose process no longer exists. */
function sweepStale(): void {
  let names: string[];
  try {
    names = netnsList();
  } catch {
    return;
  }
  for (const name of names) {
    const m = STALE.exec(name);
    if (m === null || pidAlive(Number(m[1]))) continue;
    destroyNamespace(name);
  }
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

export interface Background {
  child: ChildProcess;
  /** stdout and stderr so far, interleaved as they came. */
  output(): string;
  /** Resolves when `re` matches the output, rejects on exit or after `timeoutMs`. */
  waitFor(re: RegExp, timeoutMs: number): Promise<RegExpMatchArray>;
  /** SIGTERM, then SIGKILL after `timeoutMs` (default 3 s); resolves with the exit. */
  stop(timeoutMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export interface Lab {
  /** `eb-<tag>-<pid>-` */
  prefix: string;
  /** The namespaces made so far. */
  names(): string[];
  /** A new namespace with `lo` up. `role` only documents the call site. */
  netns(role: string): string;
  /**
   * A veth pair: `a.dev` in `a.ns`, `b.dev` in `b.ns`, both up, with optional MACs. Created in
   * `a.ns` with the peer moved straight into `b.ns`.
   */
  veth(a: { ns: string; dev: string; mac?: string }, b: { ns: string; dev: string; mac?: string }): void;
  /** A bridge that forwards at once (no STP, no forwarding delay), up. */
  bridge(ns: string, dev: string): void;
  /** Enslaves `dev` to bridge `br` in `ns`. */
  attach(ns: string, dev: string, br: string): void;
  /** `ip -n ns <args>` */
  ipIn(ns: string, ...args: string[]): string;
  /** Runs `argv` in `ns` to completion, killed after `timeoutMs`; never rejects on a non-zero exit. */
  run(ns: string, argv: string[], opts: { timeoutMs: number; env?: NodeJS.ProcessEnv; input?: string }): Promise<RunResult>;
  /** Starts `argv` in `ns` in the background; killed at cleanup if still running. */
  start(ns: string, argv: string[], opts?: { env?: NodeJS.ProcessEnv }): Background;
  /** Kills the lab's processes and deletes its namespaces; idempotent and synchronous. */
  cleanup(): void;
}

let labCount = 0;

/**
 * A lab whose namespaces are deleted in `t.teardown` (and on process exit), whatever happens in
 * the test. `tag` is two lower-case letters naming the test file.
 */
export function createLab(t: Teardown, tag: string): Lab {
  if (!/^[a-z]{2}$/.test(tag)) throw new Error(`lab tag ${tag}: expected two lower-case letters`);
  const prefix = `eb-${tag}-${process.pid}-`;
  const made: string[] = [];
  const children = new Set<ChildProcess>();
  let n = labCount++ * 100;

  const cleanup = (): void => {
    for (const child of children) {
      if (child.exitCode === null && child.signalCode === null) {
        try {
          child.kill('SIGKILL');
        } catch {
          // already gone
        }
      }
    }
    children.clear();
    for (const ns of made.splice(0)) destroyNamespace(ns);
  };
  t.teardown(cleanup);
  process.once('exit', cleanup);
  sweepStale();

  const childEnv = (env?: NodeJS.ProcessEnv): NodeJS.ProcessEnv => {
    const e = { ...process.env, ...env };
    delete e.NODE_OPTIONS; // tap's hooks are not for the tools we run
    return e;
  };

  const lab: Lab = {
    prefix,
    names: () => [...made],
    netns() {
      const name = `${prefix}${n++}`;
      ip('netns', 'add', name);
      made.push(name);
      ip('-n', name, 'link', 'set', 'lo', 'up');
      return name;
    },
    veth(a, b) {
      ip('-n', a.ns, 'link', 'add', a.dev, 'type', 'veth', 'peer', 'name', b.dev, 'netns', b.ns);
      if (a.mac) ip('-n', a.ns, 'link', 'set', 'dev', a.dev, 'address', a.mac);
      if (b.mac) ip('-n', b.ns, 'link', 'set', 'dev', b.dev, 'address', b.mac);
      ip('-n', a.ns, 'link', 'set', a.dev, 'up');
      ip('-n', b.ns, 'link', 'set', b.dev, 'up');
    },
    bridge(ns, dev) {
      ip('-n', ns, 'link', 'add', dev, 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0');
      ip('-n', ns, 'link', 'set', dev, 'up');
    },
    attach(ns, dev, br) {
      ip('-n', ns, 'link', 'set', dev, 'master', br);
    },
    ipIn: (ns, ...args) => ip('-n', ns, ...args),
    run(ns, argv, opts) {
      const since = Date.now();
      const child = spawn('ip', ['netns', 'exec', ns, ...argv], { env: childEnv(opts.env), stdio: ['pipe', 'pipe', 'pipe'] });
      children.add(child);
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
      child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      // A tool that exits without reading its input (a GET's curl, under load) closes the pipe
      // first: EPIPE then says nothing the exit status does not.
      child.stdin.on('error', (err: NodeJS.ErrnoException) => {
        if (err.code !== 'EPIPE') stderr += `\n(stdin: ${err.message})`;
      });
      child.stdin.end(opts.input ?? '');
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs);
        let grace: NodeJS.Timeout | undefined;
        const done = (code: number | null, signal: NodeJS.Signals | null) => {
          clearTimeout(timer);
          clearTimeout(grace);
          children.delete(child);
          resolve({ code, signal, stdout, stderr, ms: Date.now() - since });
        };
        child.once('error', (err) => {
          clearTimeout(timer);
          children.delete(child);
          reject(new Error(`${argv.join(' ')} in ${ns} could not be spawned: ${err.message}`));
        });
        // 'close' waits for the output pipes, which a forked helper of the tool may hold open:
        // after the exit itself, wait for them at most half a second.
        child.once('exit', (code, signal) => (grace = setTimeout(() => done(code, signal), 500)));
        child.once('close', done);
      });
    },
    start(ns, argv, opts = {}) {
      const child = spawn('ip', ['netns', 'exec', ns, ...argv], { env: childEnv(opts.env), stdio: ['pipe', 'pipe', 'pipe'] });
      children.add(child);
      let out = '';
      const listeners = new Set<() => void>();
      const onData = (d: string) => {
        out += d;
        for (const l of [...listeners]) l();
      };
      child.stdout.setEncoding('utf8').on('data', onData);
      child.stderr.setEncoding('utf8').on('data', onData);
      const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
        child.once('error', (err) => {
          out += `\n[spawn error: ${err.message}]`;
          resolve({ code: null, signal: null });
        });
        child.once('exit', (code, signal) => resolve({ code, signal }));
      });
      void exited.then(() => {
        children.delete(child);
        for (const l of [...listeners]) l();
      });
      let done = false;
      void exited.then(() => (done = true));
      return {
        child,
        output: () => out,
        exited,
        waitFor(re, timeoutMs) {
          return new Promise((resolve, reject) => {
            const check = () => {
              const m = re.exec(out);
              if (m) {
                finish();
                resolve(m);
              } else if (done) {
                finish();
                reject(new Error(`${argv[0]} in ${ns} exited before printing ${re}; output:\n${out}`));
              }
            };
            const timer = setTimeout(() => {
              finish();
              reject(new Error(`${argv[0]} in ${ns} did not print ${re} within ${timeoutMs} ms; output:\n${out}`));
            }, timeoutMs);
            const finish = () => {
              clearTimeout(timer);
              listeners.delete(check);
            };
            listeners.add(check);
            check();
          });
        },
        async stop(timeoutMs = 3_000) {
          if (!done) child.kill('SIGTERM');
          let timer: NodeJS.Timeout | undefined;
          const late = new Promise<'late'>((r) => (timer = setTimeout(() => r('late'), timeoutMs)));
          const r = await Promise.race([exited, late]);
          clearTimeout(timer);
          if (r !== 'late') return r;
          child.kill('SIGKILL');
          const gone = await Promise.race([exited, new Promise<'late'>((res) => (timer = setTimeout(() => res('late'), 2_000)))]);
          clearTimeout(timer);
          if (gone === 'late') throw new Error(`${argv[0]} in ${ns} did not exit after SIGKILL`);
          return gone;
        },
      };
    },
    cleanup,
  };
  return lab;
}
