/**
 * A name of a profile, label key or artifact: lower-case letters, digits and inner hyphens, so
 * it is safe in an iPXE script and a URL path as it is (the boot code and the API check it too).
 */
export const NAME_PATTERN = '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$';

const artifactUrl = {
  type: 'string',
  pattern: '^(https?|file)://[^\\s#${}|;"\'\\\\]+$',
  description: 'an http://, https:// or file:// URL without spaces',
};

export const profileSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['name'],
  properties: {
    name: { type: 'string', pattern: NAME_PATTERN, description: 'a lower-case name of letters, digits and hyphens' },
    description: { type: 'string', maxLength: 500 },
    artifacts: {
      type: 'object',
      propertyNames: { pattern: NAME_PATTERN },
      additionalProperties: {
        type: 'object',
        additionalProperties: false,
        required: ['url'],
        properties: {
          url: artifactUrl,
          sha256: { type: 'string', pattern: '^[0-9a-f]{64}$', description: '64 lower-case hex digits' },
          size: { type: 'integer', minimum: 0 },
        },
      },
    },
    boot: {
      type: 'object',
      additionalProperties: false,
      properties: {
        kernel: { type: 'string', pattern: NAME_PATTERN, description: 'the name of an artifact' },
        initrds: { type: 'array', items: { type: 'string', pattern: NAME_PATTERN }, description: 'names of artifacts' },
        args: { type: 'string', maxLength: 4096 },
        chain: { type: 'string', minLength: 1, description: 'a URL template' },
        local: { type: 'boolean', const: true },
      },
    },
    chain: { type: 'string', minLength: 1, description: 'a URL template' },
    local: { type: 'boolean', const: true },
    flow: {
      type: 'object',
      additionalProperties: false,
      required: ['install'],
      properties: {
        precache: { type: 'string', pattern: NAME_PATTERN, description: 'the name of a live-environment profile' },
        install: { type: 'string', pattern: NAME_PATTERN, description: 'the name of a profile' },
      },
    },
  },
} as const;

export interface RawProfile {
  name: string;
  description?: string;
  artifacts?: Record<string, { url: string; sha256?: string; size?: number }>;
  boot?: { kernel?: string; initrds?: string[]; args?: string; chain?: string; local?: true };
  chain?: string;
  local?: true;
  flow?: { precache?: string; install: string };
}
