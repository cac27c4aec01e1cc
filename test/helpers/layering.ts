/**
 * The layering check (issue 17): src/README.md says, per folder or module of src/, what it may
 * import; this reads that table and every relative import of src/**\/*.ts and names each edge the
 * table forbids.
 *
 * A row of the table is a unit: a folder (`boot/`), a module (`main.ts`, `machines/service.ts`).
 * A file belongs to the most specific row that covers it. Its "May import" cell lists units in
 * backticks; `*` is everything, `name (types)` allows `import type` only, and `no siblings`
 * forbids the modules of the unit itself to import one another (route modules).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, posix, relative } from 'node:path';

export interface Allowed {
  /** A folder (`store/`) or a module (`machines/mac.ts`). */
  unit: string;
  typesOnly: boolean;
}

export interface Rule {
  /** The row's name: its first cell's paths, joined. */
  unit: string;
  /** Folders (`boot/`) and modules (`machines/mac.ts`) the row covers. */
  members: string[];
  mayImport: Allowed[];
  everything: boolean;
  noSiblings: boolean;
}

export interface Import {
  /** The importing file, relative to src/ (`boot/service.ts`). */
  file: string;
  line: number;
  /** As written (`../store/store.js`). */
  specifier: string;
  /** The imported module, relative to src/ (`store/store.ts`). */
  target: string;
  typeOnly: boolean;
}

export interface Violation extends Import {
  rule: string;
}

/** The rows of the first Markdown table whose header has a "May import" column. */
export function parseRules(markdown: string): Rule[] {
  const rows = markdown.split('\n').filter((l) => l.trim().startsWith('|'));
  const cells = (row: string) =>
    row
      .trim()
      .replace(/^\|/, '')
      .replace(/\|$/, '')
      .split('|')
      .map((c) => c.trim());
  const header = rows.findIndex((r) => cells(r).some((c) => /^may import$/i.test(c)));
  if (header < 0) throw new Error('no table with a "May import" column');
  const headCells = cells(rows[header] ?? '');
  const unitCol = 0;
  const mayCol = headCells.findIndex((c) => /^may import$/i.test(c));
  const rules: Rule[] = [];
  for (const row of rows.slice(header + 1)) {
    const c = cells(row);
    if (c.every((x) => /^:?-+:?$/.test(x))) continue;
    const members = [...(c[unitCol] ?? '').matchAll(/`([^`]+)`/g)].map((m) => m[1] ?? '');
    if (members.length === 0) break;
    const may = c[mayCol] ?? '';
    const mayImport = [...may.matchAll(/`([^`]+)`(\s*\(types\))?/g)].map((m) => ({ unit: m[1] ?? '', typesOnly: m[2] !== undefined }));
    rules.push({
      unit: members.join(', '),
      members,
      mayImport: mayImport.filter((a) => a.unit !== '*'),
      everything: mayImport.some((a) => a.unit === '*'),
      noSiblings: /no siblings/i.test(may),
    });
  }
  return rules;
}

const covers = (path: string, file: string) => (path.endsWith('/') ? file.startsWith(path) : file === path);

/** How specifically a row covers a file: the length of its longest member covering it, 0 for none. */
const specificity = (rule: Rule, file: string) => Math.max(0, ...rule.members.filter((m) => covers(m, file)).map((m) => m.length));

/** The most specific row covering a file (a module row beats its folder's row). */
export function unitOf(rules: readonly Rule[], file: string): Rule | undefined {
  return rules.filter((r) => specificity(r, file) > 0).sort((a, b) => specificity(b, file) - specificity(a, file))[0];
}

/** Static imports, `export … from` and `import('…')` of relative modules, with their line numbers. */
export function importsOf(file: string, text: string): Import[] {
  const found: Import[] = [];
  const add = (index: number, specifier: string, typeOnly: boolean) => {
    if (!specifier.startsWith('.')) return;
    const target = posix.normalize(posix.join(posix.dirname(file), specifier)).replace(/\.js$/, '.ts');
    found.push({ file, line: text.slice(0, index).split('\n').length, specifier, target, typeOnly });
  };
  const statement = /^[ \t]*(import|export)\s+(type\s+)?([^;'"]*?)\s*from\s*'([^']+)'/gm;
  for (const m of text.matchAll(statement)) {
    const clause = m[3] ?? '';
    const names = /\{([^}]*)\}/.exec(clause)?.[1];
    const allTypes =
      names !== undefined &&
      !/^[^{]*\w[^{]*\{/.test(clause) &&
      names
        .split(',')
        .map((n) => n.trim())
        .filter(Boolean)
        .every((n) => n.startsWith('type '));
    add(m.index, m[4] ?? '', m[2] !== undefined || allTypes);
  }
  for (const m of text.matchAll(/^[ \t]*import\s+'([^']+)'/gm)) add(m.index, m[1] ?? '', false);
  for (const m of text.matchAll(/\bimport\(\s*'([^']+)'\s*\)/g)) add(m.index, m[1] ?? '', false);
  return found;
}

/** Why an import breaks the rules, or undefined when it is allowed. */
export function ruleBroken(rules: readonly Rule[], imp: Import): string | undefined {
  const from = unitOf(rules, imp.file);
  const to = unitOf(rules, imp.target);
  if (!from) return `${imp.file} is in no row of src/README.md`;
  if (!to) return `${imp.target} is in no row of src/README.md`;
  if (from === to) return from.noSiblings ? `modules of ${from.unit} do not import one another` : undefined;
  if (from.everything) return undefined;
  const allowed = from.mayImport.filter((a) => covers(a.unit, imp.target));
  if (allowed.length === 0) return `${from.unit} may not import ${to.unit}`;
  if (!imp.typeOnly && allowed.every((a) => a.typesOnly)) return `${from.unit} may import types only from ${allowed.map((a) => a.unit).join(', ')}`;
  return undefined;
}

export function sourceFiles(srcDir: string): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.push(relative(srcDir, p).split('\\').join('/'));
    }
  };
  walk(srcDir);
  return out.sort();
}

/** Every forbidden edge of the tree under srcDir, by the rules of srcDir/README.md. */
export function checkLayering(srcDir: string): { rules: Rule[]; files: string[]; imports: Import[]; violations: Violation[] } {
  const rules = parseRules(readFileSync(join(srcDir, 'README.md'), 'utf8'));
  const files = sourceFiles(srcDir);
  const imports = files.flatMap((f) => importsOf(f, readFileSync(join(srcDir, f), 'utf8')));
  const violations = imports.flatMap((i) => {
    const rule = ruleBroken(rules, i);
    return rule === undefined ? [] : [{ ...i, rule }];
  });
  return { rules, files, imports, violations };
}

export const describeViolation = (v: Violation) => `src/${v.file}:${v.line} imports '${v.specifier}' (src/${v.target}): ${v.rule}`;
