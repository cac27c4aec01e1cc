/**
 * The config file, written once: its JSON Schema with the embedded defaults (DESIGN.md), from
 * which the types (config.ts), the validation and the environment names (load.ts), `config show`'s
 * key order (show.ts) and docs/configuration-reference.md (reference.ts) all come.
 */
import { Type, type Static } from 'typebox';
import { byteSize, flag, integer, ipv4, listen, OCTET, section, strings, token, word } from './schema-kit.js';
import { bootSection, precacheSection } from './schema-boot.js';
import { bmcSection } from './schema-bmc.js';

const server = section('The server itself', {
  advertiseAddress: Type.String({
    pattern: '^(auto|[0-9A-Za-z.-]+)$',
    title: 'The address the machines reach this server at, in the URLs of their scripts; auto: the Host header each request names',
    description: '"auto" or the address (IP or host name) machines reach this server at',
    default: 'auto',
  }),
  dataDir: Type.String({
    minLength: 1,
    title: 'Where the database, the cache and the generated admin token live; <dataDir> in other paths stands for it',
    description: 'a directory path',
    default: './var',
  }),
});

const http = section('The HTTP server: API, boot scripts, artifacts, registry mirror', { listen: listen('The address and port HTTP listens on', 8080) });

const tftp = section('The TFTP server of the iPXE binaries (RFC 1350, with blksize, windowsize, timeout and tsize)', {
  enabled: flag({ title: 'Whether edgeboot serves TFTP', description: 'true or false (false: another TFTP server serves the iPXE binaries)' }, true),
  listen: listen('The address and port TFTP listens on', 69),
  roots: strings({ title: 'The directories TFTP (and HTTP under /ipxe-bin/) serves files from, first match wins', description: 'a list of directories' }, [
    '/usr/lib/ipxe',
  ]),
  maxBlockSize: integer(
    { title: 'The largest block size a client may negotiate (RFC 2348)', description: 'a block size from 512 to 65464 (1468 fits a 1500-byte MTU)' },
    512,
    65464,
    1468,
  ),
  maxWindowSize: integer({ title: 'The largest window a client may negotiate (RFC 7440)', description: 'a window size from 1 to 256' }, 1, 256, 64),
  timeoutSeconds: integer(
    { title: 'Seconds before an unacknowledged block is sent again', description: 'a retransmission timeout in seconds, 1 to 255' },
    1,
    255,
    1,
  ),
  retries: integer(
    { title: 'Retransmissions of one block before the transfer is given up', description: 'timeouts in a row before a transfer is given up, 1 to 20' },
    1,
    20,
    5,
  ),
  maxTransfers: integer({ title: 'Transfers at once, all clients together', description: 'concurrent transfers, 1 to 10000' }, 1, 10000, 512),
  maxTransfersPerClient: integer(
    { title: 'Transfers at once from one client address', description: 'concurrent transfers from one client address, 1 to 10000' },
    1,
    10000,
    16,
  ),
});

const subnet = Type.Object(
  {
    cidr: Type.String({ pattern: `^(${OCTET}\\.){3}${OCTET}/(3[0-2]|[12]?[0-9])$`, title: 'The network', description: 'an IPv4 CIDR such as 10.77.0.0/24' }),
    pool: Type.Optional(
      Type.Unsafe<[string, string]>({
        type: 'array',
        items: ipv4(),
        minItems: 2,
        maxItems: 2,
        title: 'The addresses full-mode DHCP leases to machines without a reservation',
        description: 'the first and last address of the pool',
      }),
    ),
    router: Type.Optional(ipv4('The default gateway given to clients')),
    dns: Type.Optional(Type.Array(ipv4(), { title: 'The name servers given to clients', description: 'a list of IPv4 addresses' })),
    domain: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9.-]+$', title: 'The domain name given to clients', description: 'a DNS domain name' })),
    leaseSeconds: integer(
      {
        title: "The lease time of the subnet's addresses (a PXE or iPXE client's is at most dhcp.pxeLeaseSeconds)",
        description: 'a lease time in seconds, at least 60',
      },
      60,
      undefined,
      3600,
    ),
  },
  { additionalProperties: false },
);

const dhcp = section('The DHCP server: who answers PXE clients, and whether edgeboot hands out addresses', {
  mode: word(
    ['off', 'proxy', 'full'],
    {
      title:
        'off: another DHCP server does everything; proxy: another server gives the addresses, edgeboot the boot file (port 4011 too); ' +
        'full: edgeboot leases addresses from dhcp.subnets',
      description: 'one of off, proxy, full',
    },
    'proxy',
  ),
  interfaces: strings({ title: 'The network interfaces DHCP answers on', description: 'a list of interface names (empty: all)' }, []),
  proxyPort: integer({ title: 'The proxy DHCP port PXE clients ask for their boot file on', description: 'a UDP port number' }, 1, 65535, 4011),
  listenPort: integer({ title: 'The DHCP server port', description: 'a UDP port number (67 for real clients)' }, 1, 65535, 67),
  pxeLeaseSeconds: integer(
    {
      title: "The lease time of a PXE or iPXE client in full mode, at most its subnet's leaseSeconds",
      description: 'a lease time in seconds for PXE and iPXE clients, at least 60',
    },
    60,
    undefined,
    600,
  ),
  declineSeconds: integer(
    {
      title: 'How long an address a client declined (RFC 2131 §4.3.3) is not leased again',
      description: 'seconds a declined address stays quarantined, at least 60',
    },
    60,
    undefined,
    600,
  ),
  efiBinary: word(
    ['ipxe.efi', 'snponly.efi'],
    { title: 'The iPXE binary UEFI firmware is given', description: 'ipxe.efi (own drivers) or snponly.efi (firmware network driver)' },
    'ipxe.efi',
  ),
  subnets: Type.Array(subnet, {
    title: 'The subnets full-mode DHCP leases from (and reserved machines take their static ip= kernel argument from)',
    description: 'a list of subnets',
    default: [
      { cidr: '10.77.0.0/24', pool: ['10.77.0.100', '10.77.0.199'], router: '10.77.0.1', dns: ['10.77.0.1'], domain: 'lab.example', leaseSeconds: 3600 },
    ],
  }),
});

const store = section('Where machines, leases, events and the cache index are kept', {
  url: Type.String({
    pattern: '^(sqlite:.+|postgres(ql)?://.+)$',
    title: 'The database; postgres:// is refused for now',
    description: 'sqlite:<path> or postgres://…',
    // <dataDir> stands for server.dataDir (load.ts), so the default follows it.
    default: 'sqlite:<dataDir>/edgeboot.db',
  }),
});

const cache = section('The artifact cache, and how large transfers are admitted', {
  dir: Type.String({
    minLength: 1,
    title: 'Where cached artifacts and image blobs are stored',
    description: 'a directory path (<dataDir> stands for server.dataDir)',
    default: '<dataDir>/cache',
  }),
  maxBytes: byteSize('The size beyond which the least recently used artifacts are evicted (profile artifacts are pinned)', '200GiB'),
  maxTransfers: integer(
    {
      title: 'Large artifact transfers at once before machines are told to retry',
      description: 'concurrent large artifact transfers before machines are told to retry (503); 0: no limit',
    },
    0,
    100000,
    0,
  ),
  largeBytes: byteSize('The size from which an artifact counts as large for cache.maxTransfers', '64MiB'),
  retryAfterSeconds: integer(
    { title: 'The Retry-After of a 503 for a busy server', description: 'the Retry-After of a 503 for a busy server, 1 to 3600' },
    1,
    3600,
    10,
  ),
  clientRate: byteSize(
    "The cap on one client's reads from the artifacts on disk",
    0,
    'bytes per second one client may draw from the artifacts on disk, all its transfers together, such as 40MiB; 0: no cap',
  ),
});

const registry = section('The read-only registry mirror at /v2/', {
  pullSecret: Type.String({
    title: 'The credentials the mirror pulls from upstream registries with',
    description: 'a path to a pull secret (auth.json), or empty',
    default: '',
  }),
  insecureRegistries: strings({ title: 'Upstream registries reached over plain HTTP', description: 'a list of registry hosts' }, []),
  pullThrough: flag(
    { title: 'Whether the mirror fetches what it lacks', description: 'fetch what the mirror lacks from the upstream (false: serve only what is stored)' },
    true,
  ),
  readTokens: Type.Array(token(), {
    title: 'The tokens a client of /v2/ must present',
    description: 'tokens a client of /v2/ must present (Basic password or Bearer); empty: anonymous reads',
    default: [],
  }),
  upstreams: Type.Unsafe<Record<string, string>>({
    type: 'object',
    additionalProperties: { type: 'string', pattern: '^[A-Za-z0-9.-]+(:[0-9]+)?$' },
    title: 'Path prefixes of the mirror that stand for an upstream registry',
    description: 'mirror path prefixes standing for an upstream host:port, such as {"lab": "127.0.0.1:5000"}',
    default: {},
  }),
  // What a precached OpenShift install pulls (research/openshift-precache.md §1.2, §4): the
  // release and its payload (openshift-release-dev), OKD/origin (quay.io/openshift), upstream
  // assisted images (edge-infrastructure), factory-precaching-cli (openshift-kni); the
  // ai-images (multicluster-engine), ACM (rhacm2), the DU profile's operators (openshift4:
  // ptp, sriov, local-storage; openshift-logging; intel's certified sriov-fec), the operator
  // catalogs (redhat), RHEL base and support images (rhel8, rhel9).
  allowedUpstreams: strings(
    {
      title: 'Where the mirror may pull from',
      description: 'registry hosts (host[:port]) or host/namespace prefixes the mirror may reach, beside the hosts of upstreams and insecureRegistries',
    },
    [
      'quay.io/openshift-release-dev',
      'quay.io/openshift',
      'quay.io/edge-infrastructure',
      'quay.io/openshift-kni',
      'registry.redhat.io/multicluster-engine',
      'registry.redhat.io/rhacm2',
      'registry.redhat.io/openshift4',
      'registry.redhat.io/openshift-logging',
      'registry.redhat.io/redhat',
      'registry.redhat.io/rhel8',
      'registry.redhat.io/rhel9',
      'registry.connect.redhat.com/intel',
    ],
    {
      pattern: '^(\\[[0-9A-Fa-f:.]+\\]|[A-Za-z0-9.-]+)(:[0-9]{1,5})?(/[a-z0-9._-]+)*/?$',
      description: 'a registry host[:port] or host/namespace prefix, such as quay.io/openshift-release-dev',
    },
  ),
});

const auth = section('Who may use the API', {
  adminTokens: Type.Array(token(), {
    title: 'The admin tokens of the API; empty: one is generated into <dataDir>/admin-token',
    description: 'a list of tokens of at least 16 printable characters',
    default: [],
  }),
  viewerTokens: Type.Array(token(), {
    title: 'Tokens that log in to the dashboard (/ui/) read-only: they see everything but secrets and cannot act',
    description: 'a list of tokens of at least 16 printable characters',
    default: [],
  }),
  sessionHours: integer({ title: 'How long a dashboard login lasts before it must log in again', description: 'hours, from 1 to 720' }, 1, 720, 12),
  secretKeyFile: Type.String({
    title: 'The key that seals the BMC passwords the store keeps, made at first start (mode 0600); back it up with the database',
    description: 'a path (<dataDir> stands for server.dataDir), or empty for <dataDir>/secret.key',
    default: '',
  }),
});

const profiles = section('Boot profiles beside the built-in ones', {
  dirs: strings({ title: 'Directories of profile files', description: 'a list of directories' }, []),
});

const log = section('Logging', {
  level: word(
    ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'],
    { title: 'The least severe level logged', description: 'one of fatal, error, warn, info, debug, trace, silent' },
    'info',
  ),
});

export const configSchema = Type.Object(
  { server, http, tftp, dhcp, store, cache, registry, auth, profiles, boot: bootSection, precache: precacheSection, bmc: bmcSection, log },
  { $id: 'https://edgeboot.dev/schemas/config.json', additionalProperties: false },
);

/** The config file once validated, every default filled in: before load.ts normalises it into a `Config`. */
export type ConfigFile = Static<typeof configSchema>;
