/**
 * tftp.roots and profiles.dirs on disk (issue 16 §3): a directory the operator named must exist;
 * the embedded /usr/lib/ipxe may be missing and only warns. Real directories in a temp folder.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { ConfigError } from '../../../src/config/config.js';
import { directoryFindings } from '../../../src/config/directories.js';
import { loadConfig, type LoadOptions } from '../../../src/config/load.js';

const dir = mkdtempSync(join(tmpdir(), 'edgeboot-dirs-test-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const roots = join(dir, 'ipxe');
const profiles = join(dir, 'profiles');
const missing = join(dir, 'missing');
const aFile = join(dir, 'a-file');
mkdirSync(roots);
mkdirSync(profiles);
writeFileSync(aFile, 'not a directory\n');

function problemsOf(opts: LoadOptions): string[] {
  try {
    loadConfig({ ...opts, checkDirectories: true });
    return [];
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
}

t.test('existing directories pass, with no warning', async (t) => {
  const { warnings } = loadConfig({ env: { EDGEBOOT_TFTP_ROOTS: roots, EDGEBOOT_PROFILES_DIRS: profiles }, checkDirectories: true });
  t.same(warnings, []);
});

/** The problem line for `path` at `at`. */
const problem = (at: string, path: string, why = 'does not exist') => `${at}: ${path} ${why}; expected an existing directory`;

t.test('a named directory that is missing or no directory is an error naming the key and the path', async (t) => {
  t.same(problemsOf({ env: { EDGEBOOT_TFTP_ROOTS: `${roots},${missing}` } }), [problem('tftp.roots[1]', missing)], 'tftp.roots from the environment');
  t.same(problemsOf({ sets: [`profiles.dirs=${aFile}`] }), [problem('profiles.dirs[0]', aFile, 'is not a directory')], 'profiles.dirs from --set');
  t.same(problemsOf({ sets: [`profiles.dirs=${join(aFile, 'sub')}`] }), [problem('profiles.dirs[0]', join(aFile, 'sub'))], 'below a file');
  t.same(
    problemsOf({ sets: [`tftp.roots=${missing}`, `profiles.dirs=${missing}`] }),
    [problem('tftp.roots[0]', missing), problem('profiles.dirs[0]', missing)],
    'both at once',
  );
});

t.test('the embedded /usr/lib/ipxe: a warning naming the fix, never an error', async (t) => {
  const config = { ...loadConfig().config };
  config.tftp = { ...config.tftp, roots: [missing] };
  const found = directoryFindings(config, new Set());
  t.same(found.problems, []);
  t.equal(found.warnings.length, 1);
  t.match(found.warnings[0], `tftp.roots[0]: ${missing} does not exist`);
  t.match(found.warnings[0], 'apt-get install ipxe');
  t.match(found.warnings[0], 'EDGEBOOT_TFTP_ROOTS');
  t.same(directoryFindings(config, new Set(['tftp.roots'])).problems, [problem('tftp.roots[0]', missing)], 'the same path named explicitly');
});

t.test('TFTP off: its roots are not looked at', async (t) => {
  t.same(problemsOf({ sets: ['tftp.enabled=false', `tftp.roots=${missing}`] }), []);
});

t.test('without checkDirectories loadConfig stays pure', async (t) => {
  t.doesNotThrow(() => loadConfig({ sets: [`tftp.roots=${missing}`, `profiles.dirs=${missing}`] }));
});

t.test('bmc.caFile, when set, must be a file of PEM certificates', async (t) => {
  const pem = join(dir, 'ca.pem');
  writeFileSync(pem, '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
  t.same(problemsOf({ env: { EDGEBOOT_BMC_CA_FILE: pem } }), [], 'a PEM file');
  t.same(problemsOf({}), [], 'none set: nothing checked');
  const expected = (path: string, why: string) => [`bmc.caFile: ${path} ${why}; expected a PEM file of CA certificates`];
  t.same(problemsOf({ env: { EDGEBOOT_BMC_CA_FILE: missing } }), expected(missing, 'does not exist'));
  t.same(problemsOf({ env: { EDGEBOOT_BMC_CA_FILE: aFile } }), expected(aFile, 'holds no PEM certificate (-----BEGIN CERTIFICATE-----)'));
  t.same(problemsOf({ env: { EDGEBOOT_BMC_CA_FILE: roots } }), expected(roots, 'cannot be read (EISDIR)'), 'a directory');
});
