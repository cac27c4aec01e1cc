/**
 * The JSON Schemas of the API, in TypeBox: each is the route's validation and its swagger entry,
 * and (through the type provider, app.ts) the type of the handler's body, query and params. Where
 * TypeBox's own form would change the schema Fastify and fast-json-stringify see (an enum becomes
 * anyOf, a record patternProperties), `Type.Unsafe` keeps the plain JSON Schema and names its type.
 */
import { Type, type Static } from 'typebox';
import { DISK_PATTERN, HOSTNAME_PATTERN, SAFE_URL_PATTERN } from '../boot/safe.js';
import { NAME_PATTERN } from '../profiles/schema.js';
import { MACHINE_STATES } from '../machines/state.js';
import { EVENT_SOURCES } from '../machines/model.js';
import { EVENT_TYPE_PATTERN } from '../machines/events.js';
import { BMC_BOOT_MODES } from '../machines/bmc.js';

/** `{ type: 'string', enum }`, typed as one of the words. */
export const oneOf = <const W extends readonly string[]>(words: W, options: { default?: W[number]; description?: string } = {}) =>
  Type.Unsafe<W[number]>({ type: 'string', enum: words, ...options });

/** `aa:bb:cc:dd:ee:ff`, `aa-bb-cc-dd-ee-ff` or `aabbccddeeff`, any case. */
export const MAC_PATTERN = '^([0-9A-Fa-f]{2}([:-]?)[0-9A-Fa-f]{2}(\\2[0-9A-Fa-f]{2}){4})$';
const mac = Type.String({ pattern: MAC_PATTERN, description: 'a MAC address: aa:bb:cc:dd:ee:ff, aa-bb-… or aabb…' });
const uuid = Type.String({ pattern: '^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$' });
const LABEL_KEY_TEXT = '[A-Za-z0-9]([A-Za-z0-9._/-]{0,61}[A-Za-z0-9])?';
const LABEL_VALUE_TEXT = '([A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?)?';
const LABEL_KEY = `^${LABEL_KEY_TEXT}$`;
const LABEL_VALUE = `^${LABEL_VALUE_TEXT}$`;
const IMAGE_REF = '^[A-Za-z0-9][A-Za-z0-9._/:@-]{0,511}$';
const state = oneOf(MACHINE_STATES);
const opt = Type.Optional;
const text = () => Type.String();
const count = () => Type.Integer();
/** Any JSON object: `{ type: 'object' }` as it was, where `Type.Object({})` would add `properties: {}`. */
const anyObject = () => Type.Unsafe<Record<string, unknown>>({ type: 'object' });

const labels = Type.Unsafe<Record<string, string>>({
  type: 'object',
  maxProperties: 64,
  propertyNames: { pattern: LABEL_KEY },
  additionalProperties: { type: 'string', pattern: LABEL_VALUE },
});

const precache = Type.Object(
  {
    release: opt(Type.String({ pattern: IMAGE_REF, description: 'a release image reference' })),
    images: opt(Type.Array(Type.String({ pattern: IMAGE_REF }), { maxItems: 1000 })),
    sizeGiB: opt(Type.Integer({ minimum: 1, maximum: 65536 })),
    disk: opt(Type.String({ pattern: DISK_PATTERN, maxLength: 255 })),
    liveProfile: opt(Type.String({ pattern: NAME_PATTERN })),
    bundle: opt(Type.String({ pattern: '^[0-9a-f]{16}$', description: 'a bundle built with POST /api/v1/bundles, instead of release and images' })),
  },
  { additionalProperties: false },
);

const disk = Type.Partial(
  Type.Object({
    path: text(),
    name: text(),
    sizeBytes: count(),
    type: text(),
    removable: Type.Boolean(),
    readOnly: Type.Boolean(),
    model: text(),
    serial: text(),
    transport: text(),
  }),
);

/** What a machine's live environment reports of its hardware (POST /api/v1/precache/{mac}/inventory). */
export const inventory = Type.Partial(
  Type.Object({
    disks: Type.Array(disk),
    macs: Type.Array(text()),
    memoryBytes: count(),
    cpus: count(),
    serial: text(),
    reportedAt: text(),
  }),
);

const precacheProgress = Type.Partial(
  Type.Object({
    boots: count(),
    step: text(),
    message: text(),
    filesDone: count(),
    filesTotal: count(),
    bytesDone: count(),
    bytesTotal: count(),
    disk: text(),
    bundle: text(),
    startedAt: text(),
    lastHeartbeatAt: text(),
    finishedAt: text(),
    outcome: text(),
  }),
);

const assisted = Type.Object(
  { ipxeScriptUrl: Type.String({ maxLength: 4096, pattern: SAFE_URL_PATTERN, description: 'an http(s) URL without spaces, quotes, #, $, braces, | or ;' }) },
  { additionalProperties: false },
);

const observed = Type.Partial(
  Type.Object({
    uuid: text(),
    nics: Type.Array(text()),
    arch: text(),
    platform: text(),
    serial: text(),
    vendorClass: text(),
    lastSeenAt: text(),
  }),
);

/** What edgeboot last saw of a machine's BMC (machines/bmc.ts BmcStatus), in answers; a body may carry it back, and it is ignored. */
const bmcStatusFields = {
  reachable: opt(Type.Boolean()),
  powerState: opt(text()),
  checkedAt: opt(text()),
  vendor: opt(text()),
  manufacturer: opt(text()),
  model: opt(text()),
  serial: opt(text()),
  uuid: opt(text()),
  macs: opt(Type.Array(text())),
  lastError: opt(text()),
};
const bmcRun = Type.Object(
  { phase: oneOf(['powered', 'booted', 'failed']), attempts: count(), startedAt: text(), deadlineAt: opt(text()) },
  { additionalProperties: false },
);
/** No white space or control characters: an address goes into URLs and log lines as it is. */
const BMC_ADDRESS_PATTERN = '^[^\\x00-\\x20\\x7f]+$';
/** Printable: no control characters (a user name goes into a Redfish session body or a Basic header). */
const PRINTABLE_PATTERN = '^[^\\x00-\\x1f\\x7f]+$';
/** One path segment under /redfish/v1/Systems/: iDRAC's System.Embedded.1, HPE's 1, AMI's Self. */
const BMC_SYSTEM_ID_PATTERN = '^(?!\\.\\.?$)[A-Za-z0-9._~-]{1,128}$';
const bmcSettingsFields = {
  address: Type.String({
    maxLength: 2048,
    pattern: BMC_ADDRESS_PATTERN,
    description: 'redfish://host[:port] (HTTPS), redfish+http://host:port, or a vendor alias such as idrac-redfish://host',
  }),
  username: Type.String({ minLength: 1, maxLength: 256, pattern: PRINTABLE_PATTERN }),
  systemId: opt(Type.String({ pattern: BMC_SYSTEM_ID_PATTERN, description: "the Redfish system's id; absent: the only one" })),
};

/** A machine's BMC in a PUT or PATCH body: the password write-only; what answers add is taken back and ignored. */
const bmcBody = Type.Object(
  {
    ...bmcSettingsFields,
    password: opt(Type.String({ minLength: 1, maxLength: 1024, description: 'write-only: sealed on the record, never answered; absent: keep the stored one' })),
    verifyTls: opt(Type.Boolean({ default: true })),
    bootMode: opt(oneOf(BMC_BOOT_MODES, { default: 'auto' })),
    passwordSet: opt(Type.Boolean()),
    ...bmcStatusFields,
    run: opt(anyObject()),
  },
  { additionalProperties: false },
);

/** A machine's BMC in answers: its settings without the password, what was last seen of it, and its provisioning run. */
export const bmcView = Type.Object(
  {
    address: text(),
    username: text(),
    passwordSet: Type.Boolean(),
    systemId: opt(text()),
    verifyTls: Type.Boolean(),
    bootMode: oneOf(BMC_BOOT_MODES),
    ...bmcStatusFields,
    run: opt(bmcRun),
  },
  { additionalProperties: false },
);
export type BmcView = Static<typeof bmcView>;

const macs = Type.Array(mac, { maxItems: 32 });
const hostname = Type.String({ pattern: HOSTNAME_PATTERN, maxLength: 253, description: 'an RFC 1123 host name' });
const ip = Type.String({ format: 'ipv4' });
const profile = Type.String({ pattern: NAME_PATTERN });

/**
 * PUT body: the operator-owned fields of a reservation, every one that reaches a script
 * pattern-checked. The server-owned fields a GET returns are accepted and ignored, so that a GET,
 * an edit and a PUT round-trip.
 */
export const reservationBody = Type.Object(
  {
    mac: opt(mac),
    macs: opt(macs),
    uuid: opt(uuid),
    hostname: opt(hostname),
    ip: opt(ip),
    profile: opt(profile),
    labels: opt(labels),
    assisted: opt(assisted),
    precache: opt(precache),
    bmc: opt(bmcBody),
    state: opt(state),
    observed: opt(observed),
    createdAt: opt(text()),
    updatedAt: opt(text()),
    precachedAt: opt(text()),
    inventory: opt(anyObject()),
    precacheProgress: opt(anyObject()),
  },
  { $id: 'reservation', additionalProperties: false },
);
export type ReservationBody = Static<typeof reservationBody>;

/** A machine as the API answers it (machine-view.ts makes it); the order of the properties is the order of the JSON. */
export const machineResponse = Type.Object({
  mac,
  macs,
  uuid: opt(uuid),
  hostname: opt(hostname),
  ip: opt(ip),
  profile: opt(profile),
  labels,
  assisted: opt(assisted),
  precache: opt(precache),
  bmc: opt(bmcView),
  state,
  observed: opt(observed),
  precachedAt: opt(text()),
  inventory: opt(inventory),
  precacheProgress: opt(precacheProgress),
  createdAt: text(),
  updatedAt: text(),
});

export const eventResponse = Type.Object({
  id: count(),
  time: text(),
  source: oneOf(EVENT_SOURCES),
  type: text(),
  message: opt(text()),
  from: opt(state),
  to: opt(state),
  data: opt(Type.Unsafe<Record<string, unknown>>({ type: 'object', additionalProperties: true })),
});

export const eventBody = Type.Object(
  {
    type: Type.String({ pattern: EVENT_TYPE_PATTERN, description: 'a lower-case event type such as booted or precache-done' }),
    message: opt(Type.String({ maxLength: 4096 })),
    data: opt(Type.Unsafe<Record<string, unknown>>({ type: 'object', additionalProperties: true, maxProperties: 256 })),
  },
  { additionalProperties: false },
);

/** `GET /api/v1/machines/{mac}/script?format=json`: the preview of a machine's boot script. */
export const scriptPreviewResponse = Type.Object({
  mac: text(),
  state,
  wouldMoveTo: opt(oneOf(MACHINE_STATES, { description: 'the state serving this script would move the machine to; absent: it stays' })),
  decision: Type.Object({
    kind: oneOf(['boot', 'local', 'wait', 'error']),
    reason: text(),
    stage: opt(text()),
    profile: opt(text()),
    hub: opt(text()),
  }),
  script: Type.String({ description: 'the iPXE script, every secret replaced by *redacted*' }),
});

export const errorResponse = Type.Object({ error: text(), message: text(), details: opt(Type.Unknown()), requestId: opt(text()) });

/** `key=value` of a listing's label filter: a key and a value a reservation can hold. */
export const labelSelector = Type.String({ pattern: `^${LABEL_KEY_TEXT}=${LABEL_VALUE_TEXT}$`, description: 'key=value' });

export const macParams = Type.Object({ mac });

/** A 204's schema: `{ type: 'null' }` for swagger, typed as no payload so that `reply.code(204).send()` takes none. */
export const noContent = Type.Unsafe<undefined>({ type: 'null' });

/**
 * The error replies of a route, for swagger and the serialiser. Typed `unknown` for the type
 * provider: error bodies come from the error handler (errors.ts), never from a route's return.
 */
export const errors = (...codes: number[]): Record<number, unknown> => Object.fromEntries(codes.map((c) => [c, errorResponse]));

/** An image reference as the image and bundle APIs take it (parsed further by registry/reference.ts). */
const IMAGE_REF_TEXT = { minLength: 3, maxLength: 512, pattern: '^[\\x21-\\x7e]+$' };
export const imageRef = Type.String(IMAGE_REF_TEXT);

/** What an image job and a bundle are made of: a release, images, a filter, the platform, the pace. */
export const imageSetProperties = {
  release: opt(Type.String({ ...IMAGE_REF_TEXT, description: 'a release image, by tag or digest: quay.io/openshift-release-dev/ocp-release:4.14.0-x86_64' })),
  images: opt(Type.Array(imageRef, { maxItems: 10000, description: 'more images (assisted-installer, multicluster-engine, …)' })),
  filter: opt(
    Type.String({ maxLength: 65536, description: 'patterns: a YAML `patterns:` list or one regular expression per line; matching images are left out' }),
  ),
  parallel: opt(Type.Integer({ minimum: 1, maximum: 64, default: 4 })),
  architecture: opt(Type.String({ pattern: '^[a-z0-9]+$', default: 'amd64', description: "the release's platform" })),
};
