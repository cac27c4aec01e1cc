import { Ajv, type ErrorObject } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { readFileSync } from 'node:fs';
import { extname, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { REDACTED } from '../secrets/redact.js';
import { ConfigError, type Config, type ConfigFile, type Listen, type UnknownMachinePolicy } from './config.js';
import { directoryFindings } from './directories.js';
import { CONFIG_KEYS, ENV_KEYS, ENV_PREFIX, KEYS, LEGACY_ENV_KEYS, type KeyInfo, type SchemaNode } from './keys.js';
import { configSchema } from './schema.js';
import { subnetProblems } from './subnets.js';
import { nearestName } from './suggest.js';

export { CONFIG_KEYS, ENV_PREFIX, upperSnake } from './keys.js';

// ajv-formats is CommonJS with a default export; under NodeNext it arrives wrapped.
const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;

const ajv = new Ajv({ allErrors: true, useDefaults: true, verbose: true, strict: true });
addFormats(ajv);
const validate = ajv.compile(configSchema);

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type JsonObject = Record<string, Json>;

/** Variables of the CLI client, not config keys. */
const CLIENT_ENV = new Set(['EDGEBOOT_URL', 'EDGEBOOT_TOKEN', 'EDGEBOOT_CONFIG']);

export interface LoadOptions {
  /** Path of a YAML or JSON file; absent: embedded defaults only. */
  file?: string;
  env?: NodeJS.ProcessEnv;
  /** `section.key=value` overrides from the command line, applied last. */
  sets?: string[];
  /** An unknown EDGEBOOT_ variable is an error (`config check`) rather than a warning (`serve`). */
  strictEnv?: boolean;
  /** Check on disk that tftp.roots and profiles.dirs are directories (directories.ts). */
  checkDirectories?: boolean;
}

export interface Loaded {
  config: Config;
  /** Non-fatal notes (unknown EDGEBOOT_ variables), for the log. */
  warnings: string[];
  /**
   * The `section.key` paths the file, the environment or `--set` named (each key of a file
   * section counts); a path absent here runs on its embedded default.
   */
  explicit: ReadonlySet<string>;
}

export function loadConfig(opts: LoadOptions = {}): Loaded {
  const warnings: string[] = [];
  const raw: JsonObject = opts.file ? readConfigFile(opts.file) : {};
  const source = opts.file ?? 'defaults, environment and flags';
  const problems: string[] = [];
  const explicit = new Set<string>();
  for (const [section, keys] of Object.entries(raw)) {
    if (keys === null || typeof keys !== 'object' || Array.isArray(keys)) continue;
    for (const key of Object.keys(keys)) explicit.add(`${section}.${key}`);
  }
  for (const [name, value] of Object.entries(opts.env ?? {})) {
    if (!name.startsWith(ENV_PREFIX) || value === undefined || CLIENT_ENV.has(name)) continue;
    const key = ENV_KEYS.get(name) ?? LEGACY_ENV_KEYS.get(name);
    if (!key) {
      const near = nearestName(name, ENV_KEYS.keys());
      const unknown = `${name}: no such config key${near ? `; did you mean ${near}?` : ''} (see edgeboot serve --help)`;
      if (opts.strictEnv) problems.push(unknown);
      else warnings.push(`ignoring ${unknown}`);
      continue;
    }
    if (key.env !== name) warnings.push(`${name} is deprecated: it is spelt ${key.env} now (for ${key.path})`);
    applyOverride(raw, key, value, name, problems);
    explicit.add(key.path);
  }
  for (const set of opts.sets ?? []) {
    const eq = set.indexOf('=');
    const key = eq > 0 ? KEYS.get(set.slice(0, eq)) : undefined;
    if (!key) {
      const near = eq > 0 ? nearestName(set.slice(0, eq), KEYS.keys()) : undefined;
      problems.push(`--set ${set}: expected section.key=value with a known key${near ? `; did you mean ${near}?` : ''} (see edgeboot serve --help)`);
      continue;
    }
    applyOverride(raw, key, set.slice(eq + 1), `--set ${key.path}`, problems);
    explicit.add(key.path);
  }
  // Report the file's problems along with those of the environment and flags, all at once.
  problems.push(...configProblems(raw));
  if (problems.length > 0) throw new ConfigError(problems, source);
  const config = normalise(raw as unknown as ConfigFile);
  if (opts.checkDirectories) {
    const found = directoryFindings(config, explicit);
    if (found.problems.length > 0) throw new ConfigError(found.problems, source);
    warnings.push(...found.warnings);
  }
  return { config, warnings, explicit };
}

/** Validates a parsed document (defaults filled in place) and normalises it. */
export function checkConfig(raw: JsonObject, source = 'config'): Config {
  const problems = configProblems(raw);
  if (problems.length > 0) throw new ConfigError(problems, source);
  return normalise(raw as unknown as ConfigFile);
}

/**
 * Schema errors, then what the schema cannot say: a port stops at 65535, the addresses of the
 * DHCP subnets agree with their cidr and with each other, and no value is a secret `config show` cut.
 */
function configProblems(raw: JsonObject): string[] {
  const redacted = redactedPaths(raw, '');
  const schemaProblems = validate(raw) ? [] : describeErrors(raw, validate.errors ?? []);
  // A cut secret fails its pattern too; the line saying what happened to it is the useful one.
  const problems = schemaProblems.filter((p) => !redacted.some((path) => p.startsWith(`${path}:`)));
  const cut = `the placeholder ${REDACTED} of a secret edgeboot config show cut, expected the real value (put it back in the file)`;
  problems.push(...redacted.map((path) => `${path}: got ${cut}`));
  for (const k of CONFIG_KEYS) {
    if (k.key !== 'listen' || problems.some((p) => p.startsWith(`${k.path}:`))) continue;
    const section = raw[k.section];
    const v = section && typeof section === 'object' && !Array.isArray(section) ? section[k.key] : undefined;
    if (typeof v === 'string' && Number(v.slice(v.lastIndexOf(':') + 1)) > 65535) {
      problems.push(`${k.path}: got ${describeValue(v)}, expected ${k.schema.description ?? 'host:port'}, with a port up to 65535`);
    }
  }
  const dhcp = raw.dhcp;
  const subnets = dhcp && typeof dhcp === 'object' && !Array.isArray(dhcp) ? dhcp.subnets : undefined;
  if (Array.isArray(subnets) && !problems.some((p) => p.startsWith('dhcp.subnets'))) {
    problems.push(...subnetProblems(subnets as unknown as ConfigFile['dhcp']['subnets']));
  }
  return problems;
}

/** Where a value holds the placeholder of a redacted secret, as `section.key[i]` paths. */
function redactedPaths(value: Json, path: string): string[] {
  if (typeof value === 'string') return value.includes(REDACTED) ? [path] : [];
  if (Array.isArray(value)) return value.flatMap((v, i) => redactedPaths(v, `${path}[${i}]`));
  if (value === null || typeof value !== 'object') return [];
  return Object.entries(value).flatMap(([k, v]) => redactedPaths(v, path === '' ? k : `${path}.${k}`));
}

function readConfigFile(file: string): JsonObject {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError([`cannot read ${file}: ${(err as Error).message}`], file);
  }
  let doc: unknown;
  try {
    doc = extname(file).toLowerCase() === '.json' ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw new ConfigError([`cannot parse ${file}: ${(err as Error).message}`], file);
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) {
    throw new ConfigError([`the top level must be a mapping of sections, got ${describeValue(doc)}`], file);
  }
  return doc as JsonObject;
}

/** Environment and flag values are text: turn them into what the schema expects. */
function applyOverride(raw: JsonObject, k: KeyInfo, text: string, origin: string, problems: string[]): void {
  let value: Json;
  const type = k.schema.type;
  if (type === 'integer' || type === 'number') {
    value = /^-?[0-9]+(\.[0-9]+)?$/.test(text.trim()) ? Number(text) : text;
  } else if (type === 'boolean') {
    value = text === 'true' ? true : text === 'false' ? false : text;
  } else if (type === 'array' && k.schema.items?.type === 'string') {
    value = text.trim() === '' ? [] : text.split(',').map((s) => s.trim());
  } else if (type === 'array' || type === 'object') {
    try {
      value = JSON.parse(text) as Json;
    } catch {
      problems.push(`${origin}: got ${JSON.stringify(text)}, expected JSON for ${k.schema.description ?? type}`);
      return;
    }
  } else if (k.schema.oneOf) {
    value = /^[0-9]+$/.test(text.trim()) ? Number(text) : text.trim();
  } else {
    value = text;
  }
  const section = raw[k.section];
  const target: JsonObject = section && typeof section === 'object' && !Array.isArray(section) ? section : {};
  target[k.key] = value;
  raw[k.section] = target;
}

function describeErrors(raw: JsonObject, errors: ErrorObject[]): string[] {
  // A oneOf failure repeats itself once per branch; keep the oneOf line only.
  const oneOfPaths = new Set(errors.filter((e) => e.keyword === 'oneOf').map((e) => e.instancePath));
  const out = new Set<string>();
  for (const e of errors) {
    if (e.keyword !== 'oneOf' && oneOfPaths.has(e.instancePath)) continue;
    const key = keyPath(e.instancePath) || '(top level)';
    if (e.keyword === 'additionalProperties') {
      const extra = (e.params as { additionalProperty: string }).additionalProperty;
      const where = key === '(top level)' ? extra : `${key}.${extra}`;
      const known = Object.keys((e.parentSchema as SchemaNode | undefined)?.properties ?? {}).join(', ');
      out.add(`${where}: unknown key; expected one of ${known}`);
      continue;
    }
    const expected = (e.parentSchema as SchemaNode | undefined)?.description ?? e.message ?? 'something else';
    out.add(`${key}: got ${describeValue(e.data)}, expected ${expected}`);
  }
  return [...out];
}

/** A JSON pointer as the config's own notation: `/dhcp/subnets/0/pool` is `dhcp.subnets[0].pool`. */
function keyPath(pointer: string): string {
  return pointer
    .split('/')
    .slice(1)
    .map((part) => part.replaceAll('~1', '/').replaceAll('~0', '~'))
    .reduce((path, part) => (/^[0-9]+$/.test(part) ? `${path}[${part}]` : path === '' ? part : `${path}.${part}`), '');
}

function describeValue(v: unknown): string {
  if (v === undefined) return 'nothing';
  const s = JSON.stringify(v);
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

// ---- normalisation: the schema has already checked every shape below ----

/**
 * Paths as absolute ones, resolved once against the working directory at start; `<dataDir>` in
 * a path (the defaults of store.url and cache.dir) stands for server.dataDir, so that setting
 * the data dir alone moves the database and the cache with it.
 */
function resolveDataPath(path: string, dataDir: string): string {
  return resolve(path.replaceAll('<dataDir>', dataDir));
}

function normalise(c: ConfigFile): Config {
  const dataDir = resolve(c.server.dataDir);
  const { caFile, ...bmcRest } = c.bmc;
  const storeUrl = c.store.url.startsWith('sqlite:') ? `sqlite:${resolveDataPath(c.store.url.slice('sqlite:'.length), dataDir)}` : c.store.url;
  return {
    ...c,
    server: { ...c.server, dataDir },
    store: { ...c.store, url: storeUrl },
    http: { listen: parseListen(c.http.listen) },
    tftp: { ...c.tftp, listen: parseListen(c.tftp.listen) },
    cache: {
      dir: resolveDataPath(c.cache.dir, dataDir),
      maxBytes: parseByteSize(c.cache.maxBytes),
      maxTransfers: c.cache.maxTransfers,
      largeBytes: parseByteSize(c.cache.largeBytes),
      retryAfterSeconds: c.cache.retryAfterSeconds,
      clientRate: parseByteSize(c.cache.clientRate),
    },
    boot: { ...c.boot, unknownMachines: parsePolicy(c.boot.unknownMachines) },
    auth: { ...c.auth, secretKeyFile: resolveDataPath(c.auth.secretKeyFile || '<dataDir>/secret.key', dataDir) },
    bmc: { ...bmcRest, ...(caFile !== '' && { caFile: resolveDataPath(caFile, dataDir) }) },
  };
}

export function parseListen(s: string): Listen {
  const i = s.lastIndexOf(':');
  let host = s.slice(0, i);
  if (host.startsWith('[')) host = host.slice(1, -1);
  return { host: host === '' ? '0.0.0.0' : host, port: Number(s.slice(i + 1)) };
}

const UNITS: Record<string, number> = { B: 1, KB: 1e3, MB: 1e6, GB: 1e9, TB: 1e12, KIB: 2 ** 10, MIB: 2 ** 20, GIB: 2 ** 30, TIB: 2 ** 40 };

export function parseByteSize(v: number | string): number {
  if (typeof v === 'number') return v;
  const m = /^([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)$/.exec(v.trim());
  const unit = UNITS[(m?.[2] || 'B').toUpperCase()];
  if (!m || unit === undefined) throw new ConfigError([`cannot read size ${JSON.stringify(v)}`]);
  return Math.round(Number(m[1]) * unit);
}

function parsePolicy(s: string): UnknownMachinePolicy {
  return s === 'exit' || s === 'wait' ? s : { profile: s };
}
