/**
 * The project carries everything its tests read (issue 16): no test, helper, bench or CI script
 * reads outside the repository. The scanner is checked on synthetic files first, each escaping
 * path beside one that stays inside, so that a check which found nothing could not pass here;
 * then it runs over the real tree and must find nothing.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import t from 'tap';
import {
  ALLOWED_SYSTEM_PATHS,
  definedAnchors,
  fileKind,
  findOutsideReads,
  scanRepository,
  type Anchors,
  type OutsideRead,
} from '../../helpers/outside-reads.js';
import { REPO_ROOT } from '../../helpers/process.js';

const lines = (findings: OutsideRead[]) => findings.map((f) => f.line);

t.test('new URL(…, import.meta.url) is resolved from the file, counting its depth', async (t) => {
  const text = (rel: string) => `const p = fileURLToPath(new URL('${rel}', import.meta.url));\n`;
  t.same(findOutsideReads('test/unit/boot/a.test.ts', text('../../fixtures/x.json')), [], 'test/unit/boot + ../../fixtures stays in test/');
  t.same(findOutsideReads('test/unit/boot/a.test.ts', text('../../../package.json')), [], 'three levels up is the repository root');
  const out = findOutsideReads('test/unit/boot/a.test.ts', text('../../../../package.json'));
  t.same(lines(out), [1], 'four levels up from test/unit/boot is outside');
  t.match(out[0]?.reason, /resolves to \.\.\/package\.json, above the repository root/);
  t.equal(out[0]?.expression, "new URL('../../../../package.json', import.meta.url)", 'the expression as written');
  t.same(lines(findOutsideReads('test/a.test.ts', text('../../package.json'))), [1], 'the same kind of literal from a shallower file escapes sooner');
  t.same(findOutsideReads('test/a.test.ts', text('../package.json')), []);
  t.same(lines(findOutsideReads('bench/a.mjs', 'const u = new URL(`../../data/${name}`, import.meta.url);\n')), [1], 'a template literal, by its fixed head');
});

t.test('the shared/testdata read this check was written for is reported', async (t) => {
  const old = "const SCHEMA_PATH = fileURLToPath(new URL('../../../../shared/testdata/ignition-v3_4.schema.json', import.meta.url));\n";
  const out = findOutsideReads('test/unit/boot/ignition.test.ts', old);
  t.ok(
    out.some((f) => f.reason.includes('above the repository root')),
    'as a path above the root',
  );
  t.ok(
    out.some((f) => f.reason.includes("names '../shared'")),
    'and as a name of ../shared',
  );
  const helper = [
    "const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));",
    "export const TESTDATA_DIR = join(REPO_ROOT, '..', 'shared', 'testdata');",
  ].join('\n');
  t.same(lines(findOutsideReads('test/helpers/dhcp.ts', helper)), [2, 2], "join(REPO_ROOT, '..', 'shared', …): the climb and the segments");
});

t.test('join and resolve from a known base', async (t) => {
  const local = (expr: string) => `const HERE = dirname(fileURLToPath(import.meta.url));\nconst p = ${expr};\n`;
  t.same(findOutsideReads('test/helpers/x.ts', local("join(HERE, '..', '..', 'src')")), [], 'test/helpers up two is the root');
  t.same(lines(findOutsideReads('test/helpers/x.ts', local("join(HERE, '..', '..', '..', 'other')"))), [2], 'up three is beside it');
  t.same(lines(findOutsideReads('test/helpers/x.ts', local("path.resolve(HERE, '../../../other')"))), [2], 'path.resolve, one literal');
  t.same(lines(findOutsideReads('test/helpers/x.ts', local("join(HERE, '..', 'a/../../..', name)"))), [2], 'escaped before a computed segment');
  t.same(findOutsideReads('test/helpers/x.ts', local("join(HERE, name, '..', '..')")), [], 'not known past a computed segment');
  t.same(lines(findOutsideReads('test/unit/x.test.ts', "const d = join(import.meta.dirname, '..', '..', '..');\n")), [1], 'import.meta.dirname');
  t.same(lines(findOutsideReads('test/x.test.ts', "const d = resolve(__dirname, '../..');\n")), [1], '__dirname');
  t.same(findOutsideReads('test/x.test.ts', "const d = resolve(__dirname, '..');\n"), []);
  t.same(findOutsideReads('test/x.test.ts', "const d = join(tmp, '..', 'x');\n"), [], 'an unknown base is not guessed at');
  t.same(lines(findOutsideReads('test/x.test.ts', "const d = join(tmp, '..', 'shared', 'x');\n")), [1], "but '..', 'shared' is reported whatever the base");
  t.same(findOutsideReads('test/x.test.ts', "const s = parts.join('/');\nconst u = segments.slice(1).join('..');\n"), [], 'Array#join is not a path');
});

t.test('anchors a helper exports, through the file that imports them', async (t) => {
  const process = "export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));\n";
  const vm = "import { REPO_ROOT as ROOT } from './process.js';\nexport const VM_DIR = join(ROOT, 'test', 'vm');\n";
  const rootAnchors = definedAnchors('test/helpers/process.ts', process);
  t.equal(rootAnchors.get('REPO_ROOT'), '', 'REPO_ROOT is the root');
  const vmAnchors = definedAnchors('test/helpers/vm.ts', vm, new Map([['ROOT', '']]));
  t.equal(vmAnchors.get('VM_DIR'), 'test/vm', 'VM_DIR is built on it');
  const user = (expr: string) => `import { VM_DIR } from '../helpers/vm.js';\nconst d = ${expr};\n`;
  const imported: Anchors = new Map([['VM_DIR', 'test/vm']]);
  t.same(findOutsideReads('test/system/a.test.ts', user("join(VM_DIR, 'live-standin')"), imported), []);
  t.same(lines(findOutsideReads('test/system/a.test.ts', user("join(VM_DIR, '..', '..', '..', 'tools')"), imported)), [2]);
  t.same(findOutsideReads('test/system/a.test.ts', user("join(VM_DIR, '..', '..', '..', 'tools')")), [], 'without the anchor the base is unknown');
});

t.test('relative module specifiers', async (t) => {
  t.same(findOutsideReads('test/unit/a/b.test.ts', "import { x } from '../../../src/x.js';\n"), [], 'src/ from test/unit/a');
  t.same(lines(findOutsideReads('test/unit/a/b.test.ts', "import { x } from '../../../../lib/x.js';\n")), [1]);
  t.same(lines(findOutsideReads('bench/a.mjs', "const m = await import('../../x.mjs');\nexport * from '../../y.js';\n")), [1, 2]);
});

t.test('absolute paths', async (t) => {
  t.same(lines(findOutsideReads('test/helpers/a.ts', "const d = '/work/shared/testdata';\n")), [1], 'anything under /work');
  t.same(lines(findOutsideReads('test/helpers/a.ts', "const b = readFileSync('/home/me/boot.pcap');\n")), [1], 'a read of a path off the allow-list');
  t.match(findOutsideReads('test/helpers/a.ts', "existsSync('/srv/x')")[0]?.reason, /reads the absolute path \/srv\/x, which is not one of the allowed/);
  const allowed = [
    "readFileSync('/usr/lib/ipxe/ipxe.efi');",
    'readFileSync(`/proc/${pid}/status`);',
    "readdirSync('/lib/modules');",
    'existsSync(`/boot/vmlinuz-${v}`);',
    "readFileSync('/sys/class/net/lo/ifindex');",
    "join('/usr/share/OVMF', 'OVMF_CODE_4M.fd');",
  ].join('\n');
  t.same(findOutsideReads('test/helpers/a.ts', allowed), [], 'system paths on the allow-list');
  t.same(findOutsideReads('test/helpers/a.ts', "await api(`/api/v1/machines/${mac}`);\nconst dev = '/dev/sda';\n"), [], 'URL paths and values are not reads');
  for (const { prefix, reason } of ALLOWED_SYSTEM_PATHS) {
    t.ok(prefix.startsWith('/') && reason.length > 10, `${prefix} is allowed with a reason`);
    t.notOk(prefix.startsWith('/work') || prefix === '/', `${prefix} does not open the repository's surroundings`);
  }
});

t.test('comments, regular expressions and strings are told apart', async (t) => {
  const text = [
    '// shared/ used to sit beside the repository: ../shared/testdata',
    "/* new URL('../../../../x', import.meta.url) */",
    "const re = /'..', 'shared'/;",
    "const ok = new URL('../x', import.meta.url);",
    "const s = 'a // b'; const u = new URL('../../../y', import.meta.url);",
  ].join('\n');
  t.same(lines(findOutsideReads('test/helpers/a.ts', text)), [5], 'only the code on line 5, past a string holding //');
});

t.test('shell scripts', async (t) => {
  t.same(findOutsideReads('bench/a.sh', 'cd "$(dirname "$0")/.."\n'), [], 'bench/.. is the root');
  t.same(lines(findOutsideReads('bench/a.sh', 'set -e\ncd "$(dirname "$0")/../.."\n')), [2], 'bench/../.. is beside it');
  const ci = '#!/usr/bin/env bash\nsource "$(dirname "${BASH_SOURCE[0]}")/../../env"\n';
  t.same(lines(findOutsideReads('.ci/run', ci)), [2], 'BASH_SOURCE, a CI script without extension');
  const build = (rel: string) => `#!/bin/bash\nhere=$(cd "$(dirname "$0")" && pwd)\ncp "$here/${rel}" "$root/init"\n`;
  t.same(findOutsideReads('test/vm/live-standin/build.sh', build('init')), [], 'a variable set from the script directory');
  t.same(findOutsideReads('test/vm/live-standin/build.sh', build('../../../README.md')), [], 'up three from test/vm/live-standin is the root');
  t.same(lines(findOutsideReads('test/vm/live-standin/build.sh', build('../../../../shared/tools/init'))), [3, 3], 'up four: the climb and the name');
  t.same(lines(findOutsideReads('bench/a.sh', 'dir=/work/shared/tools\n')), [1], '/work');
  t.same(lines(findOutsideReads('bench/a.sh', 'cat /srv/captures/a.pcap\n[ -f /opt/x ] && echo\nwhile read -r l; do :; done < /var/x\n')), [1, 2, 3]);
  t.same(findOutsideReads('bench/a.sh', 'cp /bin/busybox "$root/bin/"\n. /etc/os-release\nls /lib/modules | sort\n[ -x /usr/lib/ipxe/ipxe.efi ]\n'), []);
  t.same(findOutsideReads('bench/a.sh', '# cd "$(dirname "$0")/../.." reads ../shared\necho "#" x # /work\n'), [], 'comments, also after a command');
  t.same(findOutsideReads('test/vm/init', '#!/bin/sh\ncat /proc/cmdline /etc/hostname\n'), [], "a guest's own absolute paths");
  t.same(lines(findOutsideReads('test/vm/init', '#!/bin/sh\ncd "$(dirname "$0")/../../.."\n')), [2], 'but not its relative ones');
});

t.test('which files are scanned, and how', async (t) => {
  t.equal(fileKind('.ci/run', '#!/usr/bin/env bash\n'), 'shell');
  t.equal(fileKind('test/vm/init', '#!/bin/sh\n'), 'shell');
  t.equal(fileKind('bench/a.mjs', ''), 'js');
  t.equal(fileKind('test/helpers/a.ts', ''), 'js');
  t.equal(fileKind('bench/README.md', '# ../shared'), undefined, 'documentation');
  t.equal(fileKind('test/fixtures/x.json', '{}'), undefined, 'data');
  t.equal(fileKind('test/golden/dhcp/x.js', ''), undefined, 'goldens are data');
  t.equal(fileKind('bench/a.py', '#!/usr/bin/python3\n'), undefined, 'not a language this check reads');
});

t.test('a tree: a helper anchor used by a test that escapes through it', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'edgeboot-outside-reads-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const write = (file: string, text: string) => {
    mkdirSync(dirname(join(root, file)), { recursive: true });
    writeFileSync(join(root, file), text);
  };
  write('test/helpers/process.ts', "export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));\n");
  write('test/helpers/data.ts', "import { REPO_ROOT } from './process.js';\nexport const DATA = join(REPO_ROOT, '..', 'data');\n");
  write('test/unit/a.test.ts', "import { DATA } from '../helpers/data.js';\nconst f = join(DATA, 'x.pcap');\n");
  write('test/fixtures/x.pcap', '\0\0binary');
  write('.ci/run', '#!/bin/sh\ncd "$(dirname "$0")/.."\n');
  const { files, findings } = scanRepository(root);
  t.same(files.sort(), ['.ci/run', 'test/helpers/data.ts', 'test/helpers/process.ts', 'test/unit/a.test.ts']);
  t.same(
    findings.map((f) => `${f.file}:${f.line}`),
    ['test/helpers/data.ts:2'],
    'DATA itself is reported where it is defined; its user is not reported twice (its base is no longer known)',
  );
});

t.test('the repository reads nothing outside itself', async (t) => {
  const anchorsOf = (file: string) => definedAnchors(file, readFileSync(join(REPO_ROOT, file), 'utf8'));
  t.equal(anchorsOf('test/helpers/process.ts').get('REPO_ROOT'), '', "process.ts's REPO_ROOT resolves to the root");
  t.equal(anchorsOf('test/helpers/vm.ts').get('VM_DIR'), 'test/vm');
  t.equal(anchorsOf('test/helpers/dhcp.ts').get('TESTDATA_DIR'), 'test/fixtures');
  const { files, findings } = scanRepository(REPO_ROOT);
  for (const expected of ['test/helpers/dhcp.ts', 'test/helpers/standin.ts', 'test/unit/boot/ignition.test.ts', 'test/vm/live-standin/build.sh', '.ci/run']) {
    t.ok(files.includes(expected), `${expected} is scanned`);
  }
  t.ok(
    files.some((f) => f.startsWith('bench/')),
    'bench/ is scanned',
  );
  t.same(
    findings.map((f) => `${f.file}:${f.line}: ${f.expression} — ${f.reason}`),
    [],
    'no findings',
  );
});
