import { Ajv, type ErrorObject } from 'ajv';
import { readdirSync, readFileSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import type { BootSpec, Profile, ProfileProblem, ProfileSet } from './profile.js';
import { profileSchema, type RawProfile } from './schema.js';
import { parseTemplate, placeholdersOf, type MachinePlaceholder, type Template } from './template.js';

/** The profiles/ folder shipped with edgeboot, beside src/ and dist/. */
export const BUILTIN_PROFILES_DIR = fileURLToPath(new URL('../../profiles/', import.meta.url));

const ajv = new Ajv({ allErrors: true, strict: true });
const validate = ajv.compile<RawProfile>(profileSchema);

const PROFILE_EXTENSIONS = new Set(['.yaml', '.yml', '.json']);

export interface ProfileSource {
  dir: string;
  builtin: boolean;
}

/**
 * Loads every profile file of the folders, in order: a later folder's profile replaces an
 * earlier one of the same name (user folders come after the built-ins). A broken file is
 * reported in `problems` and skipped; it never stops the others from loading.
 */
export function loadProfiles(sources: readonly ProfileSource[]): ProfileSet {
  const problems: ProfileProblem[] = [];
  const byName = new Map<string, Profile>();
  for (const src of sources) {
    let files: string[];
    try {
      files = readdirSync(src.dir)
        .filter((f) => PROFILE_EXTENSIONS.has(extname(f).toLowerCase()))
        .sort();
    } catch (err) {
      problems.push({ file: src.dir, message: `cannot read profile folder: ${(err as Error).message}` });
      continue;
    }
    const seenHere = new Map<string, string>();
    for (const f of files) {
      const file = join(src.dir, f);
      const r = parseProfileFile(file, src.builtin);
      if (!r.ok) {
        problems.push({ file, message: r.message });
        continue;
      }
      const twin = seenHere.get(r.profile.name);
      if (twin) {
        problems.push({ file, message: `profile ${r.profile.name} is also defined in ${basename(twin)}; keeping that one` });
        continue;
      }
      seenHere.set(r.profile.name, file);
      byName.set(r.profile.name, r.profile);
    }
  }
  for (const p of [...byName.values()]) {
    const why = checkFlow(p, byName);
    if (why) {
      problems.push({ file: p.file, message: why });
      byName.delete(p.name);
    }
  }
  return profileSet(byName, problems);
}

export function profileSet(byName: Map<string, Profile>, problems: ProfileProblem[] = []): ProfileSet {
  const sorted = [...byName.values()].sort((a, b) => a.name.localeCompare(b.name));
  return { get: (name) => byName.get(name), list: () => sorted, problems };
}

type ParsedProfile = { ok: true; profile: Profile } | { ok: false; message: string };

export function parseProfileFile(file: string, builtin: boolean): ParsedProfile {
  let doc: unknown;
  try {
    const text = readFileSync(file, 'utf8');
    doc = extname(file).toLowerCase() === '.json' ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    return { ok: false, message: `cannot parse: ${(err as Error).message.split('\n')[0]}` };
  }
  return parseProfile(doc, file, builtin);
}

export function parseProfile(doc: unknown, file: string, builtin: boolean): ParsedProfile {
  if (!validate(doc)) return { ok: false, message: describe(validate.errors ?? []) };
  const artifacts = doc.artifacts ?? {};
  const names = new Set(Object.keys(artifacts));
  const chainText = doc.chain ?? doc.boot?.chain;
  const local = doc.local ?? doc.boot?.local;
  const hasKernel = doc.boot?.kernel !== undefined;
  const kinds = [hasKernel, chainText !== undefined, local === true, doc.flow !== undefined].filter(Boolean).length;
  if (kinds !== 1) {
    return { ok: false, message: 'a profile needs exactly one of boot.kernel, chain, local: true or flow' };
  }
  if (!hasKernel && (doc.boot?.initrds || doc.boot?.args)) {
    return { ok: false, message: 'boot.initrds and boot.args need boot.kernel' };
  }
  let boot: BootSpec | undefined;
  let requires: MachinePlaceholder[] = [];
  const template = (text: string, where: string): Template | string => {
    const t = parseTemplate(text.replace(/\s+/g, ' ').trim(), names);
    if (!t.ok) return `${where}: ${t.reason}`;
    requires = [...requires, ...placeholdersOf(t.template)];
    return t.template;
  };
  if (hasKernel && doc.boot?.kernel) {
    const refs = [doc.boot.kernel, ...(doc.boot.initrds ?? [])];
    const missing = refs.find((r) => !names.has(r));
    if (missing) return { ok: false, message: `boot names artifact ${missing}, which artifacts does not define` };
    const args = template(doc.boot.args ?? '', 'boot.args');
    if (typeof args === 'string') return { ok: false, message: args };
    boot = { kind: 'kernel', kernel: doc.boot.kernel, initrds: doc.boot.initrds ?? [], args };
  } else if (chainText !== undefined) {
    const url = template(chainText, 'chain');
    if (typeof url === 'string') return { ok: false, message: url };
    boot = { kind: 'chain', url };
  } else if (local) {
    boot = { kind: 'local' };
  }
  // Placeholders that always have a value are not requirements of the machine.
  const optional = new Set<MachinePlaceholder>(['server.url', 'machine.mac', 'machine.eventsUrl', 'machine.ignitionUrl', 'kargs.staticIp', 'kargs.ignition']);
  return {
    ok: true,
    profile: {
      name: doc.name,
      description: doc.description ?? '',
      file,
      builtin,
      artifacts,
      boot,
      flow: doc.flow,
      requires: [...new Set(requires)].filter((r) => !optional.has(r)),
    },
  };
}

function checkFlow(p: Profile, byName: Map<string, Profile>): string | undefined {
  if (!p.flow) return undefined;
  for (const [stage, name] of [
    ['precache', p.flow.precache],
    ['install', p.flow.install],
  ] as const) {
    if (name === undefined) continue;
    const target = byName.get(name);
    if (!target) return `flow.${stage} names profile ${name}, which is not loaded`;
    if (target.flow) return `flow.${stage} names profile ${name}, which is itself a flow`;
    if (stage === 'precache' && target.boot?.kind !== 'kernel') {
      return `flow.precache names profile ${name}, which boots no kernel: the live environment must`;
    }
  }
  return undefined;
}

function describe(errors: ErrorObject[]): string {
  return errors
    .map((e) => {
      const at = e.instancePath.slice(1).replaceAll('/', '.') || '(top level)';
      if (e.keyword === 'additionalProperties') {
        return `${at}: unknown key ${(e.params as { additionalProperty: string }).additionalProperty}`;
      }
      return `${at}: ${e.message ?? 'invalid'}`;
    })
    .join('; ');
}
