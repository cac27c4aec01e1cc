import { DISK_PATTERN, HOSTNAME_PATTERN, SAFE_URL_PATTERN } from '../boot/safe.js';
import { NAME_PATTERN } from '../profiles/schema.js';
import { MACHINE_STATES } from '../machines/state.js';
import { EVENT_SOURCES } from '../machines/model.js';
import { EVENT_TYPE_PATTERN } from '../machines/events.js';

/** `aa:bb:cc:dd:ee:ff`, `aa-bb-cc-dd-ee-ff` or `aabbccddeeff`, any case. */
export const MAC_PATTERN = '^([0-9A-Fa-f]{2}([:-]?)[0-9A-Fa-f]{2}(\\2[0-9A-Fa-f]{2}){4})$';
const mac = { type: 'string', pattern: MAC_PATTERN, description: 'a MAC address: aa:bb:cc:dd:ee:ff, aa-bb-… or aabb…' };
const uuid = { type: 'string', pattern: '^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$' };
const LABEL_KEY_TEXT = '[A-Za-z0-9]([A-Za-z0-9._/-]{0,61}[A-Za-z0-9])?';
const LABEL_VALUE_TEXT = '([A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?)?';
const LABEL_KEY = `^${LABEL_KEY_TEXT}$`;
const LABEL_VALUE = `^${LABEL_VALUE_TEXT}$`;
const IMAGE_REF = '^[A-Za-z0-9][A-Za-z0-9._/:@-]{0,511}$';
const state = { type: 'string', enum: MACHINE_STATES };

const labels = {
  type: 'object',
  maxProperties: 64,
  propertyNames: { pattern: LABEL_KEY },
  additionalProperties: { type: 'string', pattern: LABEL_VALUE },
};

const precache = {
  type: 'object',
  additionalProperties: false,
  properties: {
    release: { type: 'string', pattern: IMAGE_REF, description: 'a release image reference' },
    images: { type: 'array', maxItems: 1000, items: { type: 'string', pattern: IMAGE_REF } },
    sizeGiB: { type: 'integer', minimum: 1, maximum: 65536 },
    disk: { type: 'string', pattern: DISK_PATTERN, maxLength: 255 },
    liveProfile: { type: 'string', pattern: NAME_PATTERN },
    bundle: { type: 'string', pattern: '^[0-9a-f]{16}$', description: 'a bundle built with POST /api/v1/bundles, instead of release and images' },
  },
};

const inventory = {
  type: 'object',
  properties: {
    disks: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          path: { type: 'string' },
          name: { type: 'string' },
          sizeBytes: { type: 'integer' },
          type: { type: 'string' },
          removable: { type: 'boolean' },
          readOnly: { type: 'boolean' },
          model: { type: 'string' },
          serial: { type: 'string' },
          transport: { type: 'string' },
        },
      },
    },
    macs: { type: 'array', items: { type: 'string' } },
    memoryBytes: { type: 'integer' },
    cpus: { type: 'integer' },
    serial: { type: 'string' },
    reportedAt: { type: 'string' },
  },
};

const precacheProgress = {
  type: 'object',
  properties: {
    boots: { type: 'integer' },
    step: { type: 'string' },
    message: { type: 'string' },
    filesDone: { type: 'integer' },
    filesTotal: { type: 'integer' },
    bytesDone: { type: 'integer' },
    bytesTotal: { type: 'integer' },
    disk: { type: 'string' },
    bundle: { type: 'string' },
    startedAt: { type: 'string' },
    lastHeartbeatAt: { type: 'string' },
    finishedAt: { type: 'string' },
    outcome: { type: 'string' },
  },
};

const assisted = {
  type: 'object',
  additionalProperties: false,
  required: ['ipxeScriptUrl'],
  properties: { ipxeScriptUrl: { type: 'string', maxLength: 4096, pattern: SAFE_URL_PATTERN, description: 'an http(s) URL without spaces, quotes, #, $, braces, | or ;' } },
};

const observed = {
  type: 'object',
  properties: {
    uuid: { type: 'string' },
    nics: { type: 'array', items: { type: 'string' } },
    arch: { type: 'string' },
    platform: { type: 'string' },
    serial: { type: 'string' },
    vendorClass: { type: 'string' },
    lastSeenAt: { type: 'string' },
  },
};

/** The operator-owned fields of a reservation; every one that reaches a script is pattern-checked. */
const reservationProperties = {
  mac,
  macs: { type: 'array', maxItems: 32, items: mac },
  uuid,
  hostname: { type: 'string', pattern: HOSTNAME_PATTERN, maxLength: 253, description: 'an RFC 1123 host name' },
  ip: { type: 'string', format: 'ipv4' },
  profile: { type: 'string', pattern: NAME_PATTERN },
  labels,
  assisted,
  precache,
};

/**
 * PUT body. The server-owned fields a GET returns are accepted and ignored, so that a GET,
 * an edit and a PUT round-trip.
 */
export const reservationBody = {
  $id: 'reservation',
  type: 'object',
  additionalProperties: false,
  properties: {
    ...reservationProperties,
    state,
    observed,
    createdAt: { type: 'string' },
    updatedAt: { type: 'string' },
    precachedAt: { type: 'string' },
    inventory: { type: 'object' },
    precacheProgress: { type: 'object' },
  },
} as const;

export const machineResponse = {
  type: 'object',
  required: ['mac', 'macs', 'labels', 'state', 'createdAt', 'updatedAt'],
  properties: { ...reservationProperties, state, observed, precachedAt: { type: 'string' }, inventory, precacheProgress, createdAt: { type: 'string' }, updatedAt: { type: 'string' } },
} as const;

export const eventResponse = {
  type: 'object',
  required: ['id', 'time', 'source', 'type'],
  properties: {
    id: { type: 'integer' },
    time: { type: 'string' },
    source: { type: 'string', enum: EVENT_SOURCES },
    type: { type: 'string' },
    message: { type: 'string' },
    from: state,
    to: state,
    data: { type: 'object', additionalProperties: true },
  },
} as const;

export const eventBody = {
  type: 'object',
  additionalProperties: false,
  required: ['type'],
  properties: {
    type: { type: 'string', pattern: EVENT_TYPE_PATTERN, description: 'a lower-case event type such as booted or precache-done' },
    message: { type: 'string', maxLength: 4096 },
    data: { type: 'object', additionalProperties: true, maxProperties: 256 },
  },
} as const;

/** `GET /api/v1/machines/{mac}/script?format=json`: the preview of a machine's boot script. */
export const scriptPreviewResponse = {
  type: 'object',
  required: ['mac', 'state', 'decision', 'script'],
  properties: {
    mac: { type: 'string' },
    state,
    wouldMoveTo: { ...state, description: 'the state serving this script would move the machine to; absent: it stays' },
    decision: {
      type: 'object',
      required: ['kind', 'reason'],
      properties: {
        kind: { type: 'string', enum: ['boot', 'local', 'wait', 'error'] },
        reason: { type: 'string' },
        stage: { type: 'string' },
        profile: { type: 'string' },
        hub: { type: 'string' },
      },
    },
    script: { type: 'string', description: 'the iPXE script, every secret replaced by *redacted*' },
  },
} as const;

export const errorResponse = {
  type: 'object',
  required: ['error', 'message'],
  properties: { error: { type: 'string' }, message: { type: 'string' }, details: {}, requestId: { type: 'string' } },
} as const;

/** `key=value` of a listing's label filter: a key and a value a reservation can hold. */
export const labelSelector = { type: 'string', pattern: `^${LABEL_KEY_TEXT}=${LABEL_VALUE_TEXT}$`, description: 'key=value' } as const;

export const macParams = {
  type: 'object',
  required: ['mac'],
  properties: { mac },
} as const;

export const errors = (...codes: number[]) => Object.fromEntries(codes.map((c) => [c, errorResponse]));

/** An image reference as the image and bundle APIs take it (parsed further by registry/reference.ts). */
export const imageRef = { type: 'string', minLength: 3, maxLength: 512, pattern: '^[\\x21-\\x7e]+$' } as const;

/** What an image job and a bundle are made of: a release, images, a filter, the platform, the pace. */
export const imageSetProperties = {
  release: { ...imageRef, description: 'a release image, by tag or digest: quay.io/openshift-release-dev/ocp-release:4.14.0-x86_64' },
  images: { type: 'array', maxItems: 10000, items: imageRef, description: 'more images (assisted-installer, multicluster-engine, …)' },
  filter: { type: 'string', maxLength: 65536, description: 'patterns: a YAML `patterns:` list or one regular expression per line; matching images are left out' },
  parallel: { type: 'integer', minimum: 1, maximum: 64, default: 4 },
  architecture: { type: 'string', pattern: '^[a-z0-9]+$', default: 'amd64', description: "the release's platform" },
} as const;
