/** The keys of the config schema as a flat list, each with its environment variable (load.ts, the CLI's help, reference.ts). */
import { configSchema } from './schema.js';

export const ENV_PREFIX = 'EDGEBOOT_';

/** What of a key's JSON schema the loader and the reference read. */
export interface SchemaNode {
  type?: string;
  title?: string;
  description?: string;
  enum?: readonly string[];
  minimum?: number;
  maximum?: number;
  items?: SchemaNode;
  oneOf?: readonly SchemaNode[];
  default?: unknown;
  properties?: Record<string, SchemaNode>;
  required?: readonly string[];
}

export interface KeyInfo {
  section: string;
  key: string;
  path: string;
  env: string;
  schema: SchemaNode;
}

/**
 * A camelCase key as one word a part: a unit (GiB, MiB …) is one word and a capital run an
 * acronym (`installReserveGiB` is INSTALL_RESERVE_GIB, `pxeURLPrefix` PXE_URL_PREFIX).
 */
export const upperSnake = (s: string): string =>
  s
    .replace(/([KMGTP]i)B(?![a-z])/g, '$1b')
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1_$2')
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .toUpperCase();
/** The spelling before units and acronyms were kept whole (INSTALL_RESERVE_GI_B): still read, with a warning. */
const legacyUpperSnake = (s: string) => s.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();

/** The sections of the file in the schema's order, each with its own schema. */
export const CONFIG_SECTIONS: readonly (readonly [string, SchemaNode])[] = Object.entries(configSchema.properties as Record<string, SchemaNode>);

/** Every `section.key` of the schema, with its environment variable name. */
export const CONFIG_KEYS: readonly KeyInfo[] = CONFIG_SECTIONS.flatMap(([section, s]) =>
  Object.entries(s.properties ?? {}).map(([key, schema]) => ({
    section,
    key,
    path: `${section}.${key}`,
    env: `${ENV_PREFIX}${upperSnake(section)}_${upperSnake(key)}`,
    schema,
  })),
);
export const ENV_KEYS = new Map<string, KeyInfo>(CONFIG_KEYS.map((k) => [k.env, k]));
export const LEGACY_ENV_KEYS = new Map<string, KeyInfo>(
  CONFIG_KEYS.map((k) => [`${ENV_PREFIX}${legacyUpperSnake(k.section)}_${legacyUpperSnake(k.key)}`, k] as const).filter(([name]) => !ENV_KEYS.has(name)),
);
export const KEYS = new Map(CONFIG_KEYS.map((k) => [k.path, k]));
