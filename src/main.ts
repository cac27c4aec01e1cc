#!/usr/bin/env -S node --max-semi-space-size=8 --heap-growing-percent=100
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { cacheCommand } from './cli/cache.js';
import { imagesCommand } from './cli/images.js';
import { siteconfigCommand } from './cli/siteconfig.js';
import { machinesCommand } from './cli/machines.js';
import { ClientError } from './cli/client.js';
import { terminalSafe } from './cli/format.js';
import { ConfigError } from './config/config.js';
import { CONFIG_KEYS, loadConfig } from './config/load.js';
import { showText } from './config/show.js';
import { redactSecrets } from './secrets/redact.js';
import type { Logger } from 'pino';
import { createLogger } from './log.js';

/** Every line of output: a control character from the server (an event a machine posted, say) is shown escaped, never obeyed by the terminal. */
const print = (s: string) => process.stdout.write(`${terminalSafe(s)}\n`);
const collect = (v: string, prev: string[]) => [...prev, v];

function envHelp(): string {
  const width = Math.max(...CONFIG_KEYS.map((k) => k.env.length));
  return [
    '',
    'Every config key can be set in the environment (lists comma-separated, lists of objects as JSON)',
    'or with --set section.key=value. Precedence: defaults < file < environment < --set.',
    '',
    ...CONFIG_KEYS.map((k) => `  ${k.env.padEnd(width)}  ${k.path}: ${k.schema.description ?? ''} (default ${JSON.stringify(k.schema.default)})`),
  ].join('\n');
}

/**
 * An error no handler caught leaves the process in a state nothing vouches for: it is logged
 * once at fatal level (through the logger, so its secrets are redacted) and the process exits
 * with 70 (EX_SOFTWARE), for systemd's Restart=on-failure or Docker's restart policy to start a clean one.
 */
function exitOnEscapedErrors(log: Logger): void {
  const die = (kind: 'uncaughtException' | 'unhandledRejection') => (err: unknown) => {
    log.fatal({ err, kind }, `crashed: ${kind}; exiting for the service manager to restart edgeboot`);
    process.exit(70);
  };
  process.on('uncaughtException', die('uncaughtException'));
  process.on('unhandledRejection', die('unhandledRejection'));
}

/** The version in package.json, found beside dist/ (or src/), wherever the command is run from. */
function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

const program = new Command('edgeboot')
  .description('PXE/iPXE provisioning server: machines, profiles, boot scripts, a local cache, the precache flow')
  .option('--server <url>', 'server of the client commands (env EDGEBOOT_URL, default http://127.0.0.1:8080)')
  .option('--token <token>', 'admin token (env EDGEBOOT_TOKEN, default: ./var/admin-token)')
  .option('--json', 'machine-readable output')
  .version(packageVersion(), '-V, --version', 'print the version of edgeboot')
  .showHelpAfterError();

program
  .command('serve')
  .description('run the server (with no config file: embedded defaults, HTTP on 0.0.0.0:8080, data under ./var)')
  .option('-c, --config <file>', 'YAML or JSON config file (env EDGEBOOT_CONFIG)')
  .option('--set <key=value>', 'override one config key, e.g. --set http.listen=127.0.0.1:9000 (repeatable)', collect, [])
  .addHelpText('after', envHelp)
  .action(async (o: { config?: string; set: string[] }) => {
    const { config, warnings, explicit } = loadConfig({ file: o.config ?? process.env.EDGEBOOT_CONFIG, env: process.env, sets: o.set, checkDirectories: true });
    const log = createLogger(config.log.level);
    exitOnEscapedErrors(log);
    for (const w of warnings) log.warn(w);
    // A first `npm start` as a normal user serves HTTP: DHCP and TFTP on their embedded defaults
    // stay off with a warning when their port is not allowed; a port the operator named still fails.
    const onDefaults = ['dhcp', 'tftp'].filter((section) => ![...explicit].some((key) => key.startsWith(`${section}.`)));
    // The server's modules (Fastify, the store, the native addons) load for `serve` alone: the client commands start without them.
    const [{ startServer }, { describeStart }, { reportProfiles }] = await Promise.all([
      import('./server.js'),
      import('./start-lines.js'),
      import('./profiles/holder.js'),
    ]);
    const running = await startServer(config, log, { offWhenDenied: new Set(onDefaults) });
    describeStart(config, running, log);
    const shutdown = (signal: string) => {
      log.info({ signal }, 'shutting down');
      running.stop().then(
        () => process.exit(0),
        (err: unknown) => {
          log.error({ err }, 'shutdown failed');
          process.exit(1);
        },
      );
    };
    process.once('SIGTERM', () => shutdown('SIGTERM'));
    process.once('SIGINT', () => shutdown('SIGINT'));
    process.on('SIGHUP', () => reportProfiles(running.profiles.reload(), log));
  });

const configCmd = program.command('config').description('check or show configuration');
configCmd
  .command('check')
  .description('validate a config file (with the environment applied, an unknown EDGEBOOT_ variable an error) and its directories, without starting')
  .argument('<file>', 'YAML or JSON config file')
  .action((file: string) => {
    const { warnings } = loadConfig({ file, env: process.env, strictEnv: true, checkDirectories: true });
    for (const w of warnings) process.stderr.write(`edgeboot: warning: ${terminalSafe(redactSecrets(w))}\n`);
    print(`${file}: valid`);
  });
configCmd
  .command('show')
  .description('print the resolved configuration (defaults, file, environment and --set merged; paths absolute; secrets redacted) without starting anything')
  .argument('[file]', 'YAML or JSON config file (same as --config)')
  .option('-c, --config <file>', 'YAML or JSON config file (env EDGEBOOT_CONFIG)')
  .option('--set <key=value>', 'override one config key, as serve takes it (repeatable)', collect, [])
  .action((file: string | undefined, o: { config?: string; set: string[] }) => {
    const { config, warnings } = loadConfig({ file: file ?? o.config ?? process.env.EDGEBOOT_CONFIG, env: process.env, sets: o.set });
    for (const w of warnings) process.stderr.write(`edgeboot: warning: ${terminalSafe(redactSecrets(w))}\n`);
    print(showText(config, program.opts<{ json?: boolean }>().json ? 'json' : 'yaml'));
  });

program.addCommand(machinesCommand(print));
program.addCommand(cacheCommand(print));
program.addCommand(imagesCommand(print));
program.addCommand(siteconfigCommand(print));

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof ConfigError || err instanceof ClientError) {
    process.stderr.write(`edgeboot: ${terminalSafe(redactSecrets(err.message))}\n`);
    process.exit(err instanceof ConfigError ? 2 : 1);
  }
  process.stderr.write(`edgeboot: ${terminalSafe(redactSecrets((err as Error).message))}\n`);
  process.exit(1);
});
