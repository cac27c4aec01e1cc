import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { neighborMac, parseArpTable } from '../../../src/net/neighbors.js';

/** The kernel's neighbour table (/proc/net/arp) as TFTP and HTTP use it to name a client's MAC. */

// The layout of /proc/net/arp: a header, then columns padded with spaces.
const SAMPLE = [
  'IP address       HW type     Flags       HW address            Mask     Device',
  '192.168.178.1    0x1         0x2         38:10:d5:aa:bb:cc     *        eth0',
  '192.168.178.84   0x1         0x2         3C:EC:EF:12:34:56     *        br0',
  '192.168.178.90   0x1         0x0         00:00:00:00:00:00     *        br0',
  '192.168.178.91   0x1         0x0         52:54:00:00:00:91     *        br0',
  '192.168.178.92   0x1         0x2         00:00:00:00:00:00     *        br0',
  '192.168.178.93   0x1         0x6         52:54:00:00:00:93     *        br0',
  '192.168.178.94   0x1         0x4         52:54:00:00:00:94     *        br0',
  '10.77.0.50       0x1         0xa         52:54:00:00:00:50     *        vlan77',
  '10.77.0.51       0x1         0x2         not-a-mac             *        vlan77',
  '10.77.0.52       0x1         0x2',
  '',
].join('\n');

t.test('parseArpTable', async (t) => {
  const table = parseArpTable(SAMPLE);
  t.same(Object.fromEntries(table), {
    '192.168.178.1': '38:10:d5:aa:bb:cc',
    '192.168.178.84': '3c:ec:ef:12:34:56',
    '192.168.178.93': '52:54:00:00:00:93',
    '10.77.0.50': '52:54:00:00:00:50',
  });
  t.notOk(table.has('192.168.178.90'), 'incomplete (flags 0x0) skipped');
  t.notOk(table.has('192.168.178.91'), 'flags 0x0 skipped even with an address');
  t.notOk(table.has('192.168.178.92'), 'all-zero MAC skipped even when complete');
  t.notOk(table.has('192.168.178.94'), 'permanent but not complete (0x4) skipped');
  t.notOk(table.has('10.77.0.51'), 'an unreadable address skipped');
  t.notOk(table.has('10.77.0.52'), 'a short row skipped');
  t.equal(table.get('192.168.178.84'), '3c:ec:ef:12:34:56', 'MACs in the stored form (lower case)');

  t.equal(parseArpTable('').size, 0, 'empty text');
  t.equal(parseArpTable(SAMPLE.split('\n')[0] as string).size, 0, 'header only');
  t.equal(parseArpTable('192.168.178.1    0x1   0x2   38:10:d5:aa:bb:cc   *   eth0\n').size, 0, 'the first line is always the header');
  t.same(
    Object.fromEntries(parseArpTable('h\r\n  10.0.0.1\t0x1\t0x2\t02:00:00:00:00:01\t*\teth0  \n')),
    { '10.0.0.1': '02:00:00:00:00:01' },
    'tabs, leading and trailing blanks',
  );
  const twice = parseArpTable('h\n10.0.0.1 0x1 0x2 02:00:00:00:00:01 * eth0\n10.0.0.1 0x1 0x2 02:00:00:00:00:02 * eth1\n');
  t.equal(twice.get('10.0.0.1'), '02:00:00:00:00:02', 'an address on two interfaces: the later row');
});

t.test('neighborMac', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'edgeboot-arp-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'arp');
  writeFileSync(path, SAMPLE);
  t.equal(neighborMac('192.168.178.84', path), '3c:ec:ef:12:34:56');
  t.equal(neighborMac('10.77.0.50', path), '52:54:00:00:00:50');
  t.equal(neighborMac('192.168.178.90', path), undefined, 'incomplete entry');
  t.equal(neighborMac('192.168.178.200', path), undefined, 'not in the table');

  // Read on every call: a new neighbour shows up without a restart.
  writeFileSync(path, `${SAMPLE}192.168.178.200  0x1  0x2  02:aa:bb:cc:dd:ee  *  br0\n`);
  t.equal(neighborMac('192.168.178.200', path), '02:aa:bb:cc:dd:ee', 'the table is read again');

  t.equal(neighborMac('192.168.178.84', join(dir, 'missing')), undefined, 'no table (not Linux, no /proc): undefined');
  t.throws(() => neighborMac('192.168.178.84', dir), { code: 'EISDIR' }, 'other read errors are not hidden');
  t.doesNotThrow(() => neighborMac('127.0.0.1'), 'the real /proc/net/arp can be read');
});
