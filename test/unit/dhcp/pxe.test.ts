import t from 'tap';
import { messageType } from '../../../src/dhcp/options.js';
import { chooseBootFile, classifyClient, DEFAULT_BINARIES, type BootFile, type BootFileConfig, type PxeClient } from '../../../src/dhcp/pxe.js';
import { DHCP_CAPTURES, dhcpDatagrams, mustDecode, type DhcpCapture } from '../../helpers/dhcp.js';

/**
 * Client classification and boot-file choice: on every DHCP request in the captures (each one
 * assigned to a client kind below, so none goes unchecked), then on crafted option sets.
 */
const CFG: BootFileConfig = { httpBase: 'http://10.77.0.1:8080', binaries: DEFAULT_BINARIES, httpBinariesPath: '/ipxe' };
const SCRIPT: BootFile = { kind: 'http', url: 'http://10.77.0.1:8080/boot.ipxe', vendorClass: undefined };
const ZERO_UUID = '00000000-0000-0000-0000-000000000000';

const OVMF: PxeClient = {
  pxe: true,
  httpBoot: false,
  ipxe: false,
  ipxeHttp: undefined,
  archs: [7],
  firmware: 'efi-x86-64',
  vendorClass: 'PXEClient:Arch:00007:UNDI:003000',
  uuid: ZERO_UUID,
  undi: { major: 3, minor: 0 },
  userClasses: [],
};
const OVMF_IPXE: PxeClient = {
  pxe: true,
  httpBoot: false,
  ipxe: true,
  ipxeHttp: true,
  archs: [7],
  firmware: 'efi-x86-64',
  vendorClass: 'PXEClient:Arch:00007:UNDI:003010',
  uuid: ZERO_UUID,
  // Option 94 is 01 03 0a: UNDI 3.10, as option 60 says in decimal.
  undi: { major: 3, minor: 10 },
  userClasses: ['iPXE'],
};
const BIOS_IPXE: PxeClient = {
  pxe: true,
  httpBoot: false,
  ipxe: true,
  ipxeHttp: true,
  archs: [0],
  firmware: 'bios',
  vendorClass: 'PXEClient:Arch:00000:UNDI:002001',
  uuid: ZERO_UUID,
  undi: { major: 2, minor: 1 },
  userClasses: ['iPXE'],
};
const INTEL_UNDI: PxeClient = {
  pxe: true,
  httpBoot: false,
  ipxe: false,
  ipxeHttp: undefined,
  archs: [0],
  firmware: 'bios',
  vendorClass: 'PXEClient:Arch:00000:UNDI:002001',
  // Wire bytes 00 02 00 03 00 04 … 00 09, the first three fields read little-endian: this is
  // the well-known AMI placeholder SMBIOS UUID exactly as dmidecode (and Windows) print it, so
  // real firmware confirms the byte order. Shared by many boards: no machine identity.
  uuid: '03000200-0400-0500-0006-000700080009',
  undi: { major: 2, minor: 1 },
  userClasses: [],
};
const NOT_PXE = (vendorClass: string | undefined): PxeClient => ({
  pxe: false,
  httpBoot: false,
  ipxe: false,
  ipxeHttp: undefined,
  archs: [],
  firmware: undefined,
  vendorClass,
  uuid: undefined,
  undi: undefined,
  userClasses: [],
});
const NOT_NETBOOT: BootFile = { kind: 'none', reason: 'not a network-boot client' };

interface Kind {
  name: string;
  client: PxeClient;
  boot: BootFile;
}
const KINDS = {
  ovmf: { name: 'OVMF PXE firmware', client: OVMF, boot: { kind: 'tftp', file: 'ipxe.efi' } },
  ovmfIpxe: { name: 'iPXE chainloaded by OVMF', client: OVMF_IPXE, boot: SCRIPT },
  biosIpxe: { name: 'QEMU iPXE ROM (BIOS)', client: BIOS_IPXE, boot: SCRIPT },
  intelUndi: { name: 'Intel UNDI PXE', client: INTEL_UNDI, boot: { kind: 'tftp', file: 'undionly.kpxe' } },
  udhcpc: { name: 'the booted guest’s udhcpc', client: NOT_PXE('udhcp 1.35.0'), boot: NOT_NETBOOT },
  relayedPc: { name: 'a relayed non-PXE REQUEST', client: NOT_PXE(undefined), boot: NOT_NETBOOT },
} satisfies Record<string, Kind>;

/** Every client message (op 1) of every capture, by frame number. */
const EXPECTED: Record<DhcpCapture, Record<number, Kind>> = {
  'netboot-dhcp4.pcap': { 0: KINDS.intelUndi, 3: KINDS.relayedPc },
  'qemu-ovmf-full-boot.pcap': {
    0: KINDS.ovmf,
    2: KINDS.ovmf,
    248: KINDS.ovmfIpxe,
    250: KINDS.ovmfIpxe,
    252: KINDS.ovmfIpxe,
    254: KINDS.udhcpc,
    256: KINDS.udhcpc,
  },
  'qemu-ovmf-proxy-boot.pcap': {
    0: KINDS.ovmf,
    3: KINDS.ovmf,
    5: KINDS.ovmf, // the port 4011 request
    251: KINDS.ovmfIpxe,
    254: KINDS.ovmfIpxe,
    256: KINDS.ovmfIpxe, // iPXE's port 4011 request
    258: KINDS.udhcpc,
    260: KINDS.udhcpc,
  },
  'qemu-ipxe-bios-full-boot.pcap': { 0: KINDS.biosIpxe, 1: KINDS.biosIpxe, 4: KINDS.biosIpxe, 6: KINDS.udhcpc, 8: KINDS.udhcpc },
};

t.test('every DHCP request in the captures', async (t) => {
  for (const capture of DHCP_CAPTURES) {
    t.test(capture, async (t) => {
      const expected = EXPECTED[capture];
      const requests = dhcpDatagrams(capture)
        .map((u) => ({ u, p: mustDecode(u.payload) }))
        .filter(({ p }) => p.op === 1);
      t.same(
        requests.map(({ u }) => u.frame),
        Object.keys(expected).map(Number),
        'every client message has an expectation',
      );
      for (const { u, p } of requests) {
        const kind = expected[u.frame];
        if (!kind) continue;
        const what = `frame ${u.frame} ${messageType(p.options)} (${kind.name})`;
        t.ok(messageType(p.options) === 'discover' || messageType(p.options) === 'request', `${what} is a DISCOVER or REQUEST`);
        const c = classifyClient(p);
        t.strictSame(c, kind.client, `${what}: classified`);
        t.strictSame(chooseBootFile(c, CFG), kind.boot, `${what}: boot file`);
      }
    });
  }
});

/** Options from readable pieces: strings are latin1, arrays are bytes. */
const opts = (o: Record<number, string | readonly number[]>) =>
  new Map(Object.entries(o).map(([k, v]) => [Number(k), typeof v === 'string' ? Buffer.from(v, 'latin1') : Buffer.from(v)]));
const classify = (o: Record<number, string | readonly number[]>) => classifyClient({ options: opts(o) });
const boot = (o: Record<number, string | readonly number[]>) => chooseBootFile(classify(o), CFG);
const arch = (n: number) => [n >> 8, n & 255];
/** iPXE's 175: version (177), EFI (36) and, when asked, HTTP (19). */
const ipxe175 = (http: boolean) => [177, 5, 1, 26, 244, 16, 0, 36, 1, 1, ...(http ? [19, 1, 1] : [])];

t.test('architecture', async (t) => {
  t.test('from option 60 when option 93 is absent (dhcpcd)', async (t) => {
    const c = classify({ 60: 'PXEClient:Arch:00007:UNDI:003016' });
    t.same(c.archs, [7]);
    t.equal(c.firmware, 'efi-x86-64');
    t.equal(c.pxe, true);
    t.strictSame(boot({ 60: 'PXEClient:Arch:00007:UNDI:003016' }), { kind: 'tftp', file: 'ipxe.efi' });
    t.same(classify({ 60: 'PXEClient:Arch:00000:UNDI:002001' }).archs, [0]);
  });

  t.test('option 93 wins over option 60', async (t) => {
    t.same(classify({ 93: arch(11), 60: 'PXEClient:Arch:00007:UNDI:003000' }).archs, [11]);
  });

  t.test('an unusable option 93 falls back to option 60', async (t) => {
    t.same(classify({ 93: [0, 7, 0], 60: 'PXEClient:Arch:00007:UNDI:003000' }).archs, [7], 'odd length');
    t.same(classify({ 93: [], 60: 'PXEClient:Arch:00009:UNDI:003000' }).archs, [9], 'empty');
  });

  t.test('option 60 without five digits gives no architecture', async (t) => {
    t.same(classify({ 60: 'PXEClient:Arch:7:UNDI:003000' }).archs, []);
    t.same(classify({ 60: 'PXEClient' }).archs, []);
  });

  t.test('several architectures: the first known one', async (t) => {
    const c = classify({ 93: [...arch(2), ...arch(7), ...arch(0)], 60: 'PXEClient' });
    t.same(c.archs, [2, 7, 0]);
    t.equal(c.firmware, 'efi-x86-64');
  });

  t.test('option 60 with a trailing NUL', async (t) => {
    const c = classify({ 60: 'PXEClient:Arch:00011:UNDI:003000\0' });
    t.equal(c.vendorClass, 'PXEClient:Arch:00011:UNDI:003000');
    t.same(c.archs, [11]);
  });
});

t.test('boot file by firmware', async (t) => {
  const pxe = (n: number) => ({ 93: arch(n), 60: `PXEClient:Arch:${String(n).padStart(5, '0')}:UNDI:003000` });
  t.strictSame(boot(pxe(0)), { kind: 'tftp', file: 'undionly.kpxe' }, 'BIOS');
  t.strictSame(boot(pxe(7)), { kind: 'tftp', file: 'ipxe.efi' }, 'UEFI x86-64 (7)');
  t.strictSame(boot(pxe(9)), { kind: 'tftp', file: 'ipxe.efi' }, 'UEFI x86-64 (9, RFC 4578’s first name for it)');
  t.strictSame(boot(pxe(6)), { kind: 'tftp', file: 'ipxe-i386.efi' }, 'UEFI ia32');
  t.strictSame(boot(pxe(10)), { kind: 'tftp', file: 'ipxe-arm32.efi' }, 'UEFI arm32');
  const arm64 = classify(pxe(11));
  t.equal(arm64.firmware, 'efi-arm64');
  t.equal(arm64.httpBoot, false);
  t.strictSame(chooseBootFile(arm64, CFG), { kind: 'tftp', file: 'ipxe-arm64.efi' }, 'UEFI arm64 (11)');
  t.strictSame(
    chooseBootFile(arm64, { ...CFG, binaries: { ...DEFAULT_BINARIES, 'efi-arm64': 'arm64/snp.efi' } }),
    { kind: 'tftp', file: 'arm64/snp.efi' },
    'the configured binary',
  );
});

t.test('UEFI HTTP Boot', async (t) => {
  const x64 = { 93: arch(16), 60: 'HTTPClient:Arch:00016:UNDI:003000' };
  const c = classify(x64);
  t.equal(c.httpBoot, true);
  t.equal(c.pxe, true, 'HTTPClient is network-boot firmware');
  t.equal(c.firmware, 'efi-x86-64');
  t.strictSame(chooseBootFile(c, CFG), { kind: 'http', url: 'http://10.77.0.1:8080/ipxe/ipxe.efi', vendorClass: 'HTTPClient' });
  t.strictSame(
    boot({ 60: 'HTTPClient:Arch:00016:UNDI:003000' }),
    { kind: 'http', url: 'http://10.77.0.1:8080/ipxe/ipxe.efi', vendorClass: 'HTTPClient' },
    'arch from option 60 alone',
  );
  t.strictSame(
    boot({ 93: arch(19), 60: 'HTTPClient:Arch:00019' }),
    { kind: 'http', url: 'http://10.77.0.1:8080/ipxe/ipxe-arm64.efi', vendorClass: 'HTTPClient' },
    'arm64 HTTP (19)',
  );
  t.equal(classify({ 93: arch(16), 60: 'PXEClient:Arch:00016' }).httpBoot, true, 'an HTTP architecture alone');
});

t.test('iPXE', async (t) => {
  const base = { 93: arch(7), 60: 'PXEClient:Arch:00007:UNDI:003010' };
  t.test('user class: raw `iPXE` and RFC 3004', async (t) => {
    t.same(classify({ ...base, 77: 'iPXE' }).userClasses, ['iPXE']);
    const rfc = classify({ ...base, 77: '\x04iPXE' });
    t.same(rfc.userClasses, ['iPXE']);
    t.equal(rfc.ipxe, true);
    t.equal(rfc.ipxeHttp, undefined, 'no 175: HTTP support unknown');
    t.strictSame(chooseBootFile(rfc, CFG), SCRIPT, 'iPXE gets the script, not the binary again');
    t.same(classify({ ...base, 77: '\x04iPXE\x05other' }).userClasses, ['iPXE', 'other'], 'two RFC 3004 instances');
    t.same(classify({ ...base, 77: '\x04iPXE\x09' }).userClasses, ['\x04iPXE\x09'], 'a bad RFC 3004 list is one raw class');
    t.same(classify({ ...base, 77: '\x04iPXE\x00' }).userClasses, ['\x04iPXE\x00'], 'RFC 3004 has no empty instance: one raw class');
    t.equal(classify({ ...base, 77: 'iPXE2' }).ipxe, false, 'only the exact class counts');
    t.equal(classify({ ...base, 77: 'ipxe' }).ipxe, false, 'case matters');
  });
  t.test('option 175 with and without HTTP (19)', async (t) => {
    const http = classify({ ...base, 175: ipxe175(true) });
    t.equal(http.ipxe, true, '175 alone marks iPXE');
    t.equal(http.ipxeHttp, true);
    t.strictSame(chooseBootFile(http, CFG), SCRIPT);
    const noHttp = classify({ ...base, 77: 'iPXE', 175: ipxe175(false) });
    t.equal(noHttp.ipxeHttp, false);
    t.strictSame(chooseBootFile(noHttp, CFG), { kind: 'none', reason: 'this iPXE build has no HTTP support' });
    const empty = classify({ ...base, 77: 'iPXE', 175: [] });
    t.equal(empty.ipxeHttp, undefined, 'an empty feature list says nothing');
    t.strictSame(chooseBootFile(empty, CFG), SCRIPT);
  });
  t.test('iPXE on an architecture without a binary still gets the script', async (t) => {
    t.strictSame(boot({ 93: arch(2), 60: 'PXEClient:Arch:00002', 77: 'iPXE' }), SCRIPT);
  });
});

t.test('clients with no boot file', async (t) => {
  const plain = classify({ 53: [1], 12: 'laptop', 55: [1, 3, 6] });
  t.strictSame(plain, NOT_PXE(undefined), 'no option 60: not PXE');
  t.strictSame(chooseBootFile(plain, CFG), NOT_NETBOOT);
  t.strictSame(boot({ 60: 'MSFT 5.0' }), NOT_NETBOOT, 'another vendor class');
  t.strictSame(boot({ 93: arch(7) }), NOT_NETBOOT, 'an architecture without PXEClient');
  t.strictSame(boot({ 93: arch(2), 60: 'PXEClient:Arch:00002:UNDI:002001' }), { kind: 'none', reason: 'no iPXE binary for architecture itanium' });
  t.strictSame(boot({ 93: arch(0x1234), 60: 'PXEClient' }), { kind: 'none', reason: 'no iPXE binary for architecture 4660' });
  t.strictSame(boot({ 60: 'PXEClient' }), { kind: 'none', reason: 'no iPXE binary for architecture unknown' });
  t.strictSame(boot({ 93: [...arch(2), ...arch(12)], 60: 'PXEClient' }), {
    kind: 'none',
    reason: 'no iPXE binary for architecture itanium, ppc-open-firmware',
  });
});

t.test('UUID (option 97) and UNDI (option 94)', async (t) => {
  // RFC 4578 §2.3: type 0 and the 16-byte GUID as firmware sends it. EDK2 copies the SMBIOS
  // type 1 bytes (little-endian first three fields since SMBIOS 2.6) and iPXE byte-swaps its
  // big-endian UUID the same way before sending, so the canonical text (dmidecode, iPXE
  // ${uuid}) reads the first three fields reversed.
  const guid = [0x33, 0x22, 0x11, 0x00, 0x55, 0x44, 0x77, 0x66, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff];
  t.equal(classify({ 97: [0, ...guid] }).uuid, '00112233-4455-6677-8899-aabbccddeeff');
  t.equal(classify({ 97: [1, ...guid] }).uuid, undefined, 'type other than 0');
  t.equal(classify({ 97: guid }).uuid, undefined, 'no type byte');
  t.equal(classify({ 97: [0, ...guid, 0] }).uuid, undefined, 'too long');
  t.same(classify({ 94: [1, 3, 16] }).undi, { major: 3, minor: 16 });
  t.equal(classify({ 94: [2, 3, 16] }).undi, undefined, 'type other than UNDI');
  t.equal(classify({ 94: [1, 3] }).undi, undefined, 'short');
});
