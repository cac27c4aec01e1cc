/**
 * docs/configuration-reference.md, generated from the config schema (schema.ts) so that it cannot
 * go stale: `npm run docs:config` writes it, and a unit test fails when the checked-in file differs.
 */
import { CONFIG_KEYS, CONFIG_SECTIONS, type SchemaNode } from './keys.js';

export const REFERENCE_PATH = 'docs/configuration-reference.md';
export const REFERENCE_COMMAND = 'npm run docs:config';

/** Text for a table cell: a `|` would end the cell and a `<dataDir>` would be read as HTML. */
const cell = (text: string): string => text.replaceAll('|', '\\|').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
const code = (text: string): string => `\`${text}\``;

function bounds(s: SchemaNode): string {
  if (s.minimum !== undefined && s.maximum !== undefined) return `, ${s.minimum} to ${s.maximum}`;
  if (s.minimum !== undefined) return `, at least ${s.minimum}`;
  return '';
}

/** The type column: the JSON type with its bounds, or the words an enum allows. */
function typeOf(s: SchemaNode): string {
  if (s.enum) return `one of ${s.enum.map(code).join(', ')}`;
  if (s.oneOf) return s.oneOf.map((o) => o.type ?? 'any').join(' or ');
  if (s.type === 'array') return `list of ${s.items?.type ?? 'value'}s`;
  if (s.type === 'object' && !s.properties) return 'mapping of strings';
  return `${s.type ?? 'any'}${bounds(s)}`;
}

const defaultOf = (s: SchemaNode): string => (s.default === undefined ? '(none)' : code(JSON.stringify(s.default).replaceAll('|', '\\|')));

/** What the key does (`title`), then what it accepts (`description`, the same words as the "expected …" of an error). */
const describe = (s: SchemaNode): string => cell([s.title && `${s.title}.`, s.description && `Expected: ${s.description}.`].filter(Boolean).join(' '));

function keyTable(rows: string[][], header: string[]): string[] {
  return [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)];
}

/** The fields of a list of objects (dhcp.subnets), which are set as JSON in the environment. */
function itemFields(path: string, items: SchemaNode): string[] {
  const required = new Set(items.required ?? []);
  const rows = Object.entries(items.properties ?? {}).map(([field, s]) => [
    code(`${path}[].${field}`),
    cell(typeOf(s)),
    required.has(field) && s.default === undefined ? 'required' : defaultOf(s),
    describe(s),
  ]);
  return ['', `Each entry of ${code(path)}:`, '', ...keyTable(rows, ['Field', 'Type', 'Default', 'Description'])];
}

export function configReference(): string {
  const out = [
    '# Configuration reference',
    '',
    `<!-- Generated from src/config/schema.ts by \`${REFERENCE_COMMAND}\`; do not edit by hand. -->`,
    '',
    'Every key of the config file, its type, its default, its environment variable and what it',
    'does. The file is YAML or JSON, one mapping per section; precedence is defaults < file <',
    'environment < `--set section.key=value`. In the environment, lists are comma-separated and',
    'lists of objects are JSON. `<dataDir>` in a path stands for `server.dataDir`.',
    '[configuration.md](configuration.md) explains loading, the checks beyond the schema and `config show`.',
  ];
  for (const [section, schema] of CONFIG_SECTIONS) {
    const keys = CONFIG_KEYS.filter((k) => k.section === section);
    const rows = keys.map((k) => [code(k.key), cell(typeOf(k.schema)), defaultOf(k.schema), code(k.env), describe(k.schema)]);
    out.push('', `## ${section}`, '', `${schema.title ?? section}.`, '', ...keyTable(rows, ['Key', 'Type', 'Default', 'Environment variable', 'Description']));
    for (const k of keys) if (k.schema.items?.properties) out.push(...itemFields(k.path, k.schema.items));
  }
  return `${out.join('\n')}\n`;
}
