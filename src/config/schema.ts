/**
 * The JSON Schema of the config file, with the embedded defaults (DESIGN.md). `description`
 * doubles as the "expected …" half of a validation error, so keep it a short noun phrase.
 */
const listen = (port: number) => ({
  type: 'string',
  pattern: '^(\\[[0-9A-Fa-f:.]+\\]|[0-9A-Za-z.-]*):[0-9]{1,5}$',
  description: `host:port, e.g. 0.0.0.0:${port} or [::]:${port}`,
  default: `0.0.0.0:${port}`,
});

/** 0 to 255 without leading zeros, as ajv's ipv4 format reads an address. */
const OCTET = '(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])';
const ipv4 = { type: 'string', format: 'ipv4', description: 'an IPv4 address such as 10.77.0.1' };
const byteSize = {
  description: 'a byte count, or a size such as 200GiB or 512MiB',
  oneOf: [
    { type: 'integer', minimum: 0 },
    { type: 'string', pattern: '^[0-9]+(\\.[0-9]+)?\\s*([KkMmGgTt][Ii]?[Bb]|[Bb])?$' },
  ],
};

export const configSchema = {
  $id: 'https://edgeboot.dev/schemas/config.json',
  type: 'object',
  additionalProperties: false,
  properties: {
    server: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        advertiseAddress: {
          type: 'string',
          pattern: '^(auto|[0-9A-Za-z.-]+)$',
          description: '"auto" or the address (IP or host name) machines reach this server at',
          default: 'auto',
        },
        dataDir: { type: 'string', minLength: 1, description: 'a directory path', default: './var' },
      },
    },
    http: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: { listen: listen(8080) },
    },
    tftp: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        enabled: { type: 'boolean', description: 'true or false (false: another TFTP server serves the iPXE binaries)', default: true },
        listen: listen(69),
        roots: { type: 'array', items: { type: 'string', minLength: 1 }, description: 'a list of directories', default: ['/usr/lib/ipxe'] },
        maxBlockSize: { type: 'integer', minimum: 512, maximum: 65464, description: 'a block size from 512 to 65464 (1468 fits a 1500-byte MTU)', default: 1468 },
        maxWindowSize: { type: 'integer', minimum: 1, maximum: 256, description: 'a window size from 1 to 256', default: 64 },
        timeoutSeconds: { type: 'integer', minimum: 1, maximum: 255, description: 'a retransmission timeout in seconds, 1 to 255', default: 1 },
        retries: { type: 'integer', minimum: 1, maximum: 20, description: 'timeouts in a row before a transfer is given up, 1 to 20', default: 5 },
        maxTransfers: { type: 'integer', minimum: 1, maximum: 10000, description: 'concurrent transfers, 1 to 10000', default: 512 },
        maxTransfersPerClient: { type: 'integer', minimum: 1, maximum: 10000, description: 'concurrent transfers from one client address, 1 to 10000', default: 16 },
      },
    },
    dhcp: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        mode: { type: 'string', enum: ['off', 'proxy', 'full'], description: 'one of off, proxy, full', default: 'proxy' },
        interfaces: { type: 'array', items: { type: 'string', minLength: 1 }, description: 'a list of interface names (empty: all)', default: [] },
        proxyPort: { type: 'integer', minimum: 1, maximum: 65535, description: 'a UDP port number', default: 4011 },
        listenPort: { type: 'integer', minimum: 1, maximum: 65535, description: 'a UDP port number (67 for real clients)', default: 67 },
        pxeLeaseSeconds: { type: 'integer', minimum: 60, description: 'a lease time in seconds for PXE and iPXE clients, at least 60', default: 600 },
        declineSeconds: { type: 'integer', minimum: 60, description: 'seconds a declined address stays quarantined, at least 60', default: 600 },
        efiBinary: { type: 'string', enum: ['ipxe.efi', 'snponly.efi'], description: 'ipxe.efi (own drivers) or snponly.efi (firmware network driver)', default: 'ipxe.efi' },
        subnets: {
          type: 'array',
          description: 'a list of subnets',
          default: [
            { cidr: '10.77.0.0/24', pool: ['10.77.0.100', '10.77.0.199'], router: '10.77.0.1', dns: ['10.77.0.1'], domain: 'lab.example', leaseSeconds: 3600 },
          ],
          items: {
            type: 'object',
            additionalProperties: false,
            required: ['cidr'],
            properties: {
              cidr: { type: 'string', pattern: `^(${OCTET}\\.){3}${OCTET}/(3[0-2]|[12]?[0-9])$`, description: 'an IPv4 CIDR such as 10.77.0.0/24' },
              pool: { type: 'array', items: ipv4, minItems: 2, maxItems: 2, description: 'the first and last address of the pool' },
              router: ipv4,
              dns: { type: 'array', items: ipv4, description: 'a list of IPv4 addresses' },
              domain: { type: 'string', pattern: '^[A-Za-z0-9.-]+$', description: 'a DNS domain name' },
              leaseSeconds: { type: 'integer', minimum: 60, description: 'a lease time in seconds, at least 60', default: 3600 },
            },
          },
        },
      },
    },
    store: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        url: {
          type: 'string',
          pattern: '^(sqlite:.+|postgres(ql)?://.+)$',
          description: 'sqlite:<path> or postgres://…',
          // <dataDir> stands for server.dataDir (load.ts), so the default follows it.
          default: 'sqlite:<dataDir>/edgeboot.db',
        },
      },
    },
    cache: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        dir: { type: 'string', minLength: 1, description: 'a directory path (<dataDir> stands for server.dataDir)', default: '<dataDir>/cache' },
        maxBytes: { ...byteSize, default: '200GiB' },
        maxTransfers: { type: 'integer', minimum: 0, maximum: 100000, description: 'concurrent large artifact transfers before machines are told to retry (503); 0: no limit', default: 0 },
        largeBytes: { ...byteSize, default: '64MiB' },
        retryAfterSeconds: { type: 'integer', minimum: 1, maximum: 3600, description: 'the Retry-After of a 503 for a busy server, 1 to 3600', default: 10 },
        clientRate: { ...byteSize, description: 'bytes per second one client may draw from the artifacts on disk, all its transfers together, such as 40MiB; 0: no cap', default: 0 },
      },
    },
    registry: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        pullSecret: { type: 'string', description: 'a path to a pull secret (auth.json), or empty', default: '' },
        insecureRegistries: { type: 'array', items: { type: 'string', minLength: 1 }, description: 'a list of registry hosts', default: [] },
        pullThrough: { type: 'boolean', description: 'fetch what the mirror lacks from the upstream (false: serve only what is stored)', default: true },
        readTokens: { type: 'array', items: { type: 'string', minLength: 16, pattern: '^[\\x21-\\x7e]+$' }, description: 'tokens a client of /v2/ must present (Basic password or Bearer); empty: anonymous reads', default: [] },
        upstreams: {
          type: 'object',
          additionalProperties: { type: 'string', pattern: '^[A-Za-z0-9.-]+(:[0-9]+)?$' },
          description: 'mirror path prefixes standing for an upstream host:port, such as {"lab": "127.0.0.1:5000"}',
          default: {},
        },
        // What a precached OpenShift install pulls (research/openshift-precache.md §1.2, §4): the
        // release and its payload (openshift-release-dev), OKD/origin (quay.io/openshift), upstream
        // assisted images (edge-infrastructure), factory-precaching-cli (openshift-kni); the
        // ai-images (multicluster-engine), ACM (rhacm2), the DU profile's operators (openshift4:
        // ptp, sriov, local-storage; openshift-logging; intel's certified sriov-fec), the operator
        // catalogs (redhat), RHEL base and support images (rhel8, rhel9).
        allowedUpstreams: {
          type: 'array',
          items: { type: 'string', pattern: '^(\\[[0-9A-Fa-f:.]+\\]|[A-Za-z0-9.-]+)(:[0-9]{1,5})?(/[a-z0-9._-]+)*/?$', description: 'a registry host[:port] or host/namespace prefix, such as quay.io/openshift-release-dev' },
          description: 'registry hosts (host[:port]) or host/namespace prefixes the mirror may reach, beside the hosts of upstreams and insecureRegistries',
          default: [
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
        },
      },
    },
    auth: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        adminTokens: {
          type: 'array',
          items: { type: 'string', minLength: 16, pattern: '^[\\x21-\\x7e]+$' },
          description: 'a list of tokens of at least 16 printable characters',
          default: [],
        },
      },
    },
    profiles: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        dirs: { type: 'array', items: { type: 'string', minLength: 1 }, description: 'a list of directories', default: [] },
      },
    },
    boot: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        unknownMachines: {
          type: 'string',
          pattern: '^[a-z0-9][a-z0-9-]*$',
          description: 'exit, wait or a profile name',
          default: 'exit',
        },
        recheckSeconds: { type: 'integer', minimum: 5, maximum: 3600, description: 'seconds between re-checks of a waiting machine, 5 to 3600', default: 30 },
        assistedChain: {
          type: 'string',
          enum: ['rewrite', 'chain'],
          description: "rewrite (fetch the hub's iPXE script and serve it with its artifacts from the cache) or chain (hand the machine the hub's URL)",
          default: 'rewrite',
        },
        verifyClient: {
          type: 'string',
          enum: ['source', 'off'],
          description:
            "source (a machine's secrets and state moves only for requests from its own address: its DHCP lease, its reservation's ip or a neighbour entry of one of its MACs) or off (any request that names the MAC; for networks behind NAT)",
          default: 'source',
        },
        maxDiscovered: {
          type: 'integer',
          minimum: 0,
          maximum: 10000000,
          description: 'discovered machines (booted, never reserved) kept; beyond, the least recently seen are deleted, down to 15/16 of it; 0: no cap',
          default: 4096,
        },
        discoverPerMinute: {
          type: 'integer',
          minimum: 0,
          maximum: 1000000,
          description: 'new discovered machines one client address may make a minute over HTTP (beyond, the script is served and no record is made); 0: no limit',
          default: 60,
        },
      },
    },
    precache: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        after: { type: 'string', enum: ['reboot', 'poweroff'], description: 'reboot (on into the install) or poweroff (ship the box) once the partition is written', default: 'reboot' },
        heartbeatSeconds: { type: 'integer', minimum: 30, maximum: 86400, description: 'seconds of silence from a precaching machine before it is failed, 30 to 86400', default: 900 },
        maxBoots: { type: 'integer', minimum: 1, maximum: 100, description: 'precache boots without a result before a boot loop fails the machine, 1 to 100', default: 3 },
        installReserveGiB: { type: 'integer', minimum: 0, maximum: 65536, description: 'GiB of the install disk kept in front of the data partition for the OS', default: 120 },
        progressSeconds: { type: 'integer', minimum: 1, maximum: 3600, description: 'seconds between progress reports of a download, 1 to 3600', default: 10 },
      },
    },
    log: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        level: { type: 'string', enum: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], description: 'one of fatal, error, warn, info, debug, trace, silent', default: 'info' },
      },
    },
  },
} as const;
