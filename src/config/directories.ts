/**
 * The directories the configuration names, checked on disk: the one part of validation that is
 * I/O, kept apart so the rest stays pure. `config check` and the start both run it.
 */
import { readFileSync, statSync } from 'node:fs';
import type { Config } from './config.js';

export interface DirectoryFindings {
  /** A directory the operator named that is missing or is no directory: the start must stop. */
  problems: string[];
  /** The embedded default of tftp.roots missing: the server can run (HTTP serves), loudly. */
  warnings: string[];
}

/** Why `path` is no usable directory, or undefined when it is one. */
function notADirectory(path: string): string | undefined {
  try {
    return statSync(path).isDirectory() ? undefined : 'is not a directory';
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'ENOENT' || code === 'ENOTDIR' ? 'does not exist' : `cannot be read (${code ?? (err as Error).message})`;
  }
}

/**
 * tftp.roots (when TFTP is enabled) and profiles.dirs, and bmc.caFile when set (a file of PEM certificates). `explicit` is loadConfig's: a path the file,
 * the environment or --set named must exist; the embedded default /usr/lib/ipxe may be absent
 * (no Debian ipxe package) and only warns, so `npm start` on defaults still serves HTTP.
 */
export function directoryFindings(config: Config, explicit: ReadonlySet<string>): DirectoryFindings {
  const findings: DirectoryFindings = { problems: [], warnings: [] };
  const lists: [string, readonly string[]][] = [['profiles.dirs', config.profiles.dirs]];
  if (config.tftp.enabled) lists.unshift(['tftp.roots', config.tftp.roots]);
  for (const [key, dirs] of lists) {
    dirs.forEach((dir, i) => {
      const why = notADirectory(dir);
      if (why === undefined) return;
      const at = `${key}[${i}]`;
      if (explicit.has(key) || key !== 'tftp.roots') {
        findings.problems.push(`${at}: ${dir} ${why}; expected an existing directory`);
      } else {
        findings.warnings.push(
          `${at}: ${dir} ${why}, so TFTP has no iPXE binaries to serve: ` +
            'install them (apt-get install ipxe) or set tftp.roots (EDGEBOOT_TFTP_ROOTS) to a directory that holds them',
        );
      }
    });
  }
  const caProblem = config.bmc.caFile === undefined ? undefined : notAPemFile(config.bmc.caFile);
  if (caProblem !== undefined) findings.problems.push(`bmc.caFile: ${config.bmc.caFile} ${caProblem}; expected a PEM file of CA certificates`);
  return findings;
}

/** Why `path` holds no PEM certificate (RFC 7468), or undefined when it holds one at least. */
function notAPemFile(path: string): string | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'latin1');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'ENOENT' || code === 'ENOTDIR' ? 'does not exist' : `cannot be read (${code ?? (err as Error).message})`;
  }
  return text.includes('-----BEGIN CERTIFICATE-----') ? undefined : 'holds no PEM certificate (-----BEGIN CERTIFICATE-----)';
}
