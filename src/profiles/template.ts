/**
 * `{{ placeholder }}` templates of profile files, parsed once when the profile loads so that an
 * unknown placeholder is an error then, not when a machine boots (DESIGN.md).
 */
export const MACHINE_PLACEHOLDERS = [
  'server.url',
  'machine.mac',
  'machine.hostname',
  'machine.ip',
  'machine.eventsUrl',
  'machine.ignitionUrl',
  'machine.assistedScriptUrl',
  'kargs.staticIp',
  'kargs.ignition',
] as const;
export type MachinePlaceholder = (typeof MACHINE_PLACEHOLDERS)[number];

export type TemplatePart = { kind: 'text'; text: string } | { kind: 'value'; name: MachinePlaceholder } | { kind: 'artifact'; name: string };

export type Template = readonly TemplatePart[];

const PLACEHOLDER = /\{\{\s*([^{}]*?)\s*\}\}/g;
const known = new Set<string>(MACHINE_PLACEHOLDERS);

export type ParsedTemplate = { ok: true; template: Template } | { ok: false; reason: string };

export function parseTemplate(text: string, artifactNames: ReadonlySet<string>): ParsedTemplate {
  const parts: TemplatePart[] = [];
  let last = 0;
  for (const m of text.matchAll(PLACEHOLDER)) {
    const name = m[1] ?? '';
    if (m.index > last) parts.push({ kind: 'text', text: text.slice(last, m.index) });
    last = m.index + m[0].length;
    if (name.startsWith('artifacts.')) {
      const artifact = name.slice('artifacts.'.length);
      if (!artifactNames.has(artifact)) {
        return { ok: false, reason: `{{ ${name} }} names no artifact of this profile (it has: ${[...artifactNames].join(', ') || 'none'})` };
      }
      parts.push({ kind: 'artifact', name: artifact });
    } else if (known.has(name)) {
      parts.push({ kind: 'value', name: name as MachinePlaceholder });
    } else {
      return { ok: false, reason: `unknown placeholder {{ ${name} }}; known: artifacts.NAME, ${MACHINE_PLACEHOLDERS.join(', ')}` };
    }
  }
  if (last < text.length) parts.push({ kind: 'text', text: text.slice(last) });
  const stray = parts.find((p) => p.kind === 'text' && (p.text.includes('{{') || p.text.includes('}}')));
  if (stray) return { ok: false, reason: 'unbalanced {{ or }}' };
  return { ok: true, template: parts };
}

export function placeholdersOf(t: Template): MachinePlaceholder[] {
  return t.flatMap((p) => (p.kind === 'value' ? [p.name] : []));
}

/** Fills a template; `value` returns undefined for a value the machine does not have. */
export function fillTemplate(
  t: Template,
  value: (name: MachinePlaceholder) => string | undefined,
  artifactUrl: (name: string) => string,
): { ok: true; text: string } | { ok: false; missing: MachinePlaceholder } {
  let out = '';
  for (const p of t) {
    if (p.kind === 'text') out += p.text;
    else if (p.kind === 'artifact') out += artifactUrl(p.name);
    else {
      const v = value(p.name);
      if (v === undefined) return { ok: false, missing: p.name };
      out += v;
    }
  }
  return { ok: true, text: out };
}
