/**
 * Process-level helpers: the real `node dist/main.js serve` as a child process on loopback with
 * port 0, and the real CLI. Assumes dist/ is built (`npm test` runs tsc first).
 *
 * Every child is registered for a kill in `t.teardown` as soon as it is spawned, so a test that
 * fails half-way (or a server that never becomes ready) leaves no process behind.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const MAIN_JS = join(REPO_ROOT, 'dist', 'main.js');

/** What the helpers need of a tap test. */
export interface Teardown {
  teardown(fn: () => unknown): void;
}

/** One pino line as the server printed it. */
export interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Milliseconds from the `stop()` call (or from the spawn, for `exited`) to the exit. */
  ms: number;
}

export interface ServerProcess {
  port: number;
  /** `http://127.0.0.1:<port>` (inside the namespace when started with `netns`) */
  url: string;
  dataDir: string;
  /** The working directory of the server (where `./var` lands in cwd mode). */
  cwd: string;
  /** The admin token, read from `<dataDir>/admin-token` once the server serves. */
  token: string;
  process: ChildProcess;
  /** Every JSON line of stdout so far, parsed, in order. */
  logLines: LogLine[];
  /** stdout lines that were not JSON (there should be none). */
  otherStdout: string[];
  stderr(): string;
  /** Resolves when the process has exited, however that happened. */
  exited: Promise<Exit>;
  /**
   * Sends `signal` (default SIGTERM) and waits up to `timeoutMs` (default 10 s) for the exit.
   * If it does not exit in time it is SIGKILLed and this rejects.
   */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<Exit>;
}

export interface StartOptions {
  /**
   * Env mode: the server gets EDGEBOOT_SERVER_DATA_DIR=dataDir,
   * EDGEBOOT_STORE_URL=sqlite:<dataDir>/edgeboot.db and EDGEBOOT_LOG_LEVEL. Its cwd is `cwd` if
   * given, else a fresh temp dir.
   */
  dataDir?: string;
  /**
   * Cwd mode (no `dataDir`): the server runs with no config at all in this directory, so its
   * data lands in `<cwd>/var`. Pass the same cwd again to restart on the same data.
   * Default: a fresh temp dir.
   */
  cwd?: string;
  /** Env mode only; must let `info` through (the ready line is at info). Default info. */
  logLevel?: 'info' | 'debug' | 'trace';
  /** More arguments after `serve --set http.listen=<listen>`. */
  args?: string[];
  /** `http.listen`; default 127.0.0.1:0. `url` names 127.0.0.1 for a wildcard address. */
  listen?: string;
  /** More environment. */
  env?: Record<string, string>;
  /** Default 20 s. */
  readyTimeoutMs?: number;
  /**
   * Run the server inside this network namespace (`ip netns exec NS node …`; needs root). Its
   * HTTP then listens on the namespace's own loopback: `url` is reachable only from inside it.
   * The child's pid is the server's own (`ip netns exec` execs), so `stop()` signals the server.
   */
  netns?: string;
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

/** Last resort for a test process that exits without running its teardowns. */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const child of live) {
      try {
        child.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
  });
}

/** `child` is SIGKILLed if the test process exits while it runs; untracked once it exits. */
export function killAtExit(child: ChildProcess): void {
  installExitHook();
  live.add(child);
  child.once('exit', () => live.delete(child));
}

/**
 * The parent's environment without any EDGEBOOT_ variable, so tests are hermetic, and with
 * DHCP off: a server on the host itself must never answer on the host's real network (DHCP
 * tests run inside network namespaces of their own).
 */
/** Each line of `input` that is JSON of the shape `is` accepts goes to `onJson`, any other to `onOther`. */
export function onJsonLines<T>(input: NodeJS.ReadableStream, is: (v: unknown) => v is T, onJson: (v: T) => void, onOther: (line: string) => void): void {
  createInterface({ input }).on('line', (line) => {
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      // not JSON
      onOther(line);
      return;
    }
    if (is(parsed)) onJson(parsed);
    else onOther(line);
  });
}

export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('EDGEBOOT_')) env[k] = v;
  // Host-level tests never take the real TFTP port: a free loopback port each.
  return { ...env, EDGEBOOT_DHCP_MODE: 'off', EDGEBOOT_TFTP_LISTEN: '127.0.0.1:0', ...extra };
}

/** A fresh temp dir, removed at teardown (after the processes of the test are stopped). */
export function tempDir(t: Teardown, prefix = 'edgeboot-proc-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function assertBuilt(): void {
  if (!existsSync(MAIN_JS)) throw new Error(`${MAIN_JS} is missing: build first (npx tsc -p tsconfig.json, or npm test)`);
}

function isLogLine(v: unknown): v is LogLine {
  return typeof v === 'object' && v !== null && typeof (v as { msg?: unknown }).msg === 'string' && typeof (v as { level?: unknown }).level === 'number';
}

function watchExit(child: ChildProcess, since: number): Promise<Exit> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) {
      resolve({ code: child.exitCode, signal: child.signalCode, ms: Date.now() - since });
      return;
    }
    child.once('exit', (code, signal) => resolve({ code, signal, ms: Date.now() - since }));
  });
}

/** Kills a child with SIGKILL and waits (bounded) for it to be gone. */
async function killHard(child: ChildProcess, exited: Promise<Exit>): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([exited, new Promise<void>((r) => (timer = setTimeout(r, 5_000)))]);
  clearTimeout(timer);
}

/** Starts `edgeboot serve` on 127.0.0.1:0 and waits for its `edgeboot serving` line. */
export async function startServer(t: Teardown, opts: StartOptions = {}): Promise<ServerProcess> {
  assertBuilt();
  installExitHook();
  const cwd = opts.cwd ?? tempDir(t);
  const envMode = opts.dataDir !== undefined;
  const dataDir = opts.dataDir ?? join(cwd, 'var');
  const env = cleanEnv({
    ...(envMode && {
      EDGEBOOT_SERVER_DATA_DIR: dataDir,
      EDGEBOOT_STORE_URL: `sqlite:${join(dataDir, 'edgeboot.db')}`,
      EDGEBOOT_LOG_LEVEL: opts.logLevel ?? 'info',
    }),
    ...opts.env,
  });
  const args = [MAIN_JS, 'serve', '--set', `http.listen=${opts.listen ?? '127.0.0.1:0'}`, ...(opts.args ?? [])];
  const spawnedAt = Date.now();
  const [command, argv] = opts.netns === undefined ? [process.execPath, args] : ['ip', ['netns', 'exec', opts.netns, process.execPath, ...args]];
  const child = spawn(command, argv, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  const exited = watchExit(child, spawnedAt);
  void exited.then(() => live.delete(child));
  t.teardown(() => killHard(child, exited));

  const logLines: LogLine[] = [];
  const otherStdout: string[] = [];
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d: string) => (stderr += d));

  const ready = new Promise<LogLine>((resolve, reject) => {
    const describe = (what: string) => {
      const tail = [...logLines.slice(-5).map((l) => JSON.stringify(l)), ...otherStdout.slice(-5)].join('\n    ');
      return `edgeboot serve (cwd ${cwd}) ${what}\n  stderr: ${stderr.trim() || '(empty)'}\n  stdout tail:\n    ${tail || '(empty)'}`;
    };
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(new Error(describe(`could not be spawned: ${err.message}`)));
    });
    onJsonLines(
      child.stdout as NodeJS.ReadableStream,
      isLogLine,
      (parsed) => {
        logLines.push(parsed);
        if (parsed.msg === 'edgeboot serving') {
          clearTimeout(timer);
          resolve(parsed);
        }
      },
      (line) => otherStdout.push(line),
    );
    void exited.then((e) => {
      clearTimeout(timer);
      // Give stderr a moment to drain so the message carries the reason.
      setTimeout(() => reject(new Error(describe(`exited before serving (code ${e.code}, signal ${e.signal})`))), 50);
    });
    const limit = opts.readyTimeoutMs ?? 20_000;
    // The callbacks above that clear it run on later events, after this line.
    const timer = setTimeout(() => reject(new Error(describe(`did not log "edgeboot serving" within ${limit} ms`))), limit);
  });

  let line: LogLine;
  try {
    line = await ready;
  } catch (err) {
    await killHard(child, exited);
    throw err;
  }
  const http = String(line.http);
  const listenHost = (opts.listen ?? '127.0.0.1:0').replace(/:[0-9]+$/, '');
  const m = /^(.+):([0-9]+)$/.exec(http);
  if (m?.[1] !== listenHost) throw new Error(`the "edgeboot serving" line has http ${JSON.stringify(http)}, expected ${listenHost}:<port>`);
  const port = Number(m[2]);
  if (!(port > 0 && port < 65536)) throw new Error(`the "edgeboot serving" line names port ${port}`);
  const tokenFile = join(dataDir, 'admin-token');
  if (!existsSync(tokenFile)) throw new Error(`the server serves but ${tokenFile} does not exist; stderr: ${stderr}`);
  const token = readFileSync(tokenFile, 'utf8').trim();

  return {
    port,
    url: `http://${listenHost === '0.0.0.0' ? '127.0.0.1' : listenHost}:${port}`,
    dataDir,
    cwd,
    token,
    process: child,
    logLines,
    otherStdout,
    stderr: () => stderr,
    exited,
    async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 10_000): Promise<Exit> {
      const since = Date.now();
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), timeoutMs)));
      const r = await Promise.race([exited, timedOut]);
      clearTimeout(timer);
      if (r === 'timeout') {
        await killHard(child, exited);
        throw new Error(`edgeboot serve did not exit within ${timeoutMs} ms of ${signal}; stderr: ${stderr}`);
      }
      return { ...r, ms: Date.now() - since };
    },
  };
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `node dist/main.js ...args` to completion (at most `timeoutMs`, default 20 s, then
 * SIGKILL). The environment has no EDGEBOOT_ variable except those in `env`.
 */
export async function runCli(t: Teardown, args: string[], opts: { cwd?: string; env?: Record<string, string>; timeoutMs?: number } = {}): Promise<CliResult> {
  assertBuilt();
  installExitHook();
  const since = Date.now();
  const env = cleanEnv(opts.env);
  // DHCP is forced off only for `serve`: other commands read config, and a forced value
  // would hide what the test wrote into the file (e.g. `config check` of a bad dhcp.mode).
  if (args[0] !== 'serve' && opts.env?.EDGEBOOT_DHCP_MODE === undefined) delete env.EDGEBOOT_DHCP_MODE;
  if (args[0] !== 'serve' && opts.env?.EDGEBOOT_TFTP_LISTEN === undefined) delete env.EDGEBOOT_TFTP_LISTEN;
  const child = spawn(process.execPath, [MAIN_JS, ...args], { cwd: opts.cwd ?? REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  const exited = watchExit(child, since);
  void exited.then(() => live.delete(child));
  t.teardown(() => killHard(child, exited));
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stdout.on('data', (d: string) => (stdout += d));
  child.stderr.on('data', (d: string) => (stderr += d));
  const closed = new Promise<void>((r) => child.once('close', () => r()));
  const limit = opts.timeoutMs ?? 20_000;
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), limit)));
  const spawnError = new Promise<Error>((r) => child.once('error', r));
  const r = await Promise.race([closed, timedOut, spawnError]);
  clearTimeout(timer);
  if (r === 'timeout') {
    await killHard(child, exited);
    throw new Error(`edgeboot ${args.join(' ')} did not finish within ${limit} ms; stdout: ${stdout}; stderr: ${stderr}`);
  }
  if (r instanceof Error) throw new Error(`edgeboot ${args.join(' ')} could not be spawned: ${r.message}`);
  const e = await exited;
  return { code: e.code, signal: e.signal, stdout, stderr };
}

/** A loopback port that nothing listens on (bound, then closed again). */
export async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => resolve());
  });
  const addr = srv.address();
  await new Promise<void>((r) => srv.close(() => r()));
  if (addr === null || typeof addr === 'string') throw new Error('no port from the throwaway listener');
  return addr.port;
}
