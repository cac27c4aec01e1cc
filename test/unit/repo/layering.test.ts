/**
 * The layering check (issue 17): every relative import of src/**\/*.ts must be allowed by the
 * table in src/README.md. The parser and the rules are checked on small synthetic inputs first,
 * so that a check which found nothing could not pass; then the real tree must break no rule.
 */
import { join } from 'node:path';
import t from 'tap';
import { checkLayering, describeViolation, importsOf, parseRules, ruleBroken, unitOf, type Import } from '../../helpers/layering.js';
import { REPO_ROOT } from '../../helpers/process.js';

const TABLE = `
| Unit | Owns | May import |
| --- | --- | --- |
| \`errors.ts\` | errors | nothing |
| \`machines/mac.ts\`, \`machines/model.ts\` | the model | \`errors.ts\` |
| \`store/\` | persistence | \`machines/mac.ts\`, \`machines/model.ts\` |
| \`machines/\` | the service | \`machines/mac.ts\`, \`store/\` |
| \`boot/\` | booting | \`machines/\`, \`cache/\` (types), \`cache/key.ts\` |
| \`cache/\` | cache | nothing |
| \`http/\` | the app | \`boot/\` |
| \`http/routes/\` | routes | \`http/\`, \`boot/\`; no siblings |
| \`server.ts\` | wiring | \`*\` |
`;

const imp = (file: string, specifier: string, typeOnly = false): Import => {
  const [found] = importsOf(file, `${typeOnly ? 'import type' : 'import'} { x } from '${specifier}';\n`);
  if (!found) throw new Error(`no import parsed from ${specifier}`);
  return found;
};

t.test('the table: rows, members, types-only entries, everything, no siblings', async (t) => {
  const rules = parseRules(`# title\n\ntext\n${TABLE}\nafter the table`);
  t.equal(rules.length, 9);
  t.same(rules[1]?.members, ['machines/mac.ts', 'machines/model.ts']);
  t.same(rules[4]?.mayImport, [
    { unit: 'machines/', typesOnly: false },
    { unit: 'cache/', typesOnly: true },
    { unit: 'cache/key.ts', typesOnly: false },
  ]);
  t.ok(rules[8]?.everything);
  t.ok(rules[7]?.noSiblings);
  t.notOk(rules[6]?.noSiblings);
  t.throws(() => parseRules('| a | b |\n| - | - |\n'), /May import/);
});

t.test('a file belongs to the most specific row', async (t) => {
  const rules = parseRules(TABLE);
  t.equal(unitOf(rules, 'machines/mac.ts')?.unit, 'machines/mac.ts, machines/model.ts');
  t.equal(unitOf(rules, 'machines/service.ts')?.unit, 'machines/');
  t.equal(unitOf(rules, 'http/routes/boot.ts')?.unit, 'http/routes/');
  t.equal(unitOf(rules, 'http/app.ts')?.unit, 'http/');
  t.equal(unitOf(rules, 'dhcp/server.ts'), undefined);
});

t.test('imports: static, type-only, export-from, side effect, dynamic, multi-line; packages skipped', async (t) => {
  const text = [
    "import { a } from '../store/store.js';",
    "import type { B } from '../machines/model.js';",
    "import { type C, type D } from './c.js';",
    "import E, { type F } from './e.js';",
    "export { g } from '../errors.js';",
    "export type { H } from './h.js';",
    "import './side.js';",
    'import {',
    '  i,',
    '  j,',
    "} from '../net/ipv4.js';",
    "const m = await import('../http/app.js');",
    "import fastify from 'fastify';",
    "import { readFile } from 'node:fs/promises';",
  ].join('\n');
  const found = importsOf('boot/service.ts', text).map((i) => [i.line, i.target, i.typeOnly]);
  t.same(found, [
    [1, 'store/store.ts', false],
    [2, 'machines/model.ts', true],
    [3, 'boot/c.ts', true],
    [4, 'boot/e.ts', false],
    [5, 'errors.ts', false],
    [6, 'boot/h.ts', true],
    [8, 'net/ipv4.ts', false],
    [7, 'boot/side.ts', false],
    [12, 'http/app.ts', false],
  ]);
});

t.test('rules: each forbidden edge is named, each allowed one passes', async (t) => {
  const rules = parseRules(TABLE);
  const broken = (file: string, specifier: string, typeOnly = false) => ruleBroken(rules, imp(file, specifier, typeOnly));
  t.equal(broken('store/sqlite.ts', '../machines/model.js'), undefined, 'store -> machine model');
  t.equal(broken('machines/mac.ts', '../store/store.js'), 'machines/mac.ts, machines/model.ts may not import store/', 'the model is below the store');
  t.equal(broken('machines/service.ts', './mac.js'), undefined, 'the service uses the model of its own folder');
  t.equal(broken('machines/service.ts', './model.js'), 'machines/ may not import machines/mac.ts, machines/model.ts', 'only the modules it lists');
  t.equal(broken('boot/hub.ts', '../cache/artifacts.js', true), undefined, 'types from cache');
  t.equal(broken('boot/hub.ts', '../cache/artifacts.js'), 'boot/ may import types only from cache/');
  t.equal(broken('boot/hub.ts', '../cache/key.js'), undefined, 'a module named on its own is allowed whole');
  t.equal(broken('boot/hub.ts', '../http/redact.js'), 'boot/ may not import http/');
  t.equal(broken('http/routes/a.ts', '../checks.js'), undefined, 'a route uses a non-route http module');
  t.equal(broken('http/routes/a.ts', './b.js'), 'modules of http/routes/ do not import one another');
  t.equal(broken('http/app.ts', './routes/a.js'), 'http/ may not import http/routes/', 'only rows that list it');
  t.equal(broken('server.ts', './http/routes/a.js'), undefined, 'wiring imports everything');
  t.equal(broken('dhcp/server.ts', '../errors.js'), 'dhcp/server.ts is in no row of src/README.md');
  t.equal(broken('errors.ts', './dhcp/x.js'), 'dhcp/x.ts is in no row of src/README.md');
});

t.test('src/ breaks no rule of src/README.md', async (t) => {
  const { files, imports, rules, violations } = checkLayering(join(REPO_ROOT, 'src'));
  t.ok(files.length > 100, `${files.length} modules read`);
  t.ok(imports.length > 300, `${imports.length} imports read`);
  t.same(
    files.filter((f) => !unitOf(rules, f)),
    [],
    'every module is in a row of src/README.md',
  );
  t.same(violations.map(describeViolation), [], 'no forbidden edge');
});
