import t from 'tap';
import { detectVendor, isBusyMessage, VENDOR_NAMES, vendorQuirks } from '../../../src/bmc/vendors.js';

t.test('the address alias wins over everything the BMC says', async (t) => {
  t.equal(detectVendor({ alias: 'supermicro', rootVendor: 'Dell', rootOemKeys: ['Hpe'], manufacturer: 'Lenovo' }), 'supermicro');
  t.equal(detectVendor({ alias: 'lenovo', rootVendor: 'AMI' }), 'lenovo', 'xclarity-redfish:// on an AMI-based Lenovo');
});

t.test("else the service root's Vendor", async (t) => {
  const roots: [string, string][] = [
    ['Dell', 'dell'],
    ['HPE', 'hpe'],
    ['Supermicro', 'supermicro'],
    ['AMI', 'ami'],
    ['Lenovo', 'lenovo'],
  ];
  for (const [rootVendor, expected] of roots) t.equal(detectVendor({ rootVendor, manufacturer: 'Contoso' }), expected, rootVendor);
  t.equal(detectVendor({ rootVendor: 'Dell', manufacturer: 'Supermicro' }), 'dell', 'the root before the manufacturer');
});

t.test("else the root's Oem keys (older firmware without Vendor)", async (t) => {
  t.equal(detectVendor({ rootOemKeys: ['Hpe'] }), 'hpe');
  t.equal(detectVendor({ rootOemKeys: ['Hp'] }), 'hpe', 'iLO 4 says Hp');
  t.equal(detectVendor({ rootOemKeys: ['Dell'] }), 'dell');
  t.equal(detectVendor({ rootOemKeys: ['Supermicro'], manufacturer: 'Dell Inc.' }), 'supermicro', 'Oem before the manufacturer');
  t.equal(detectVendor({ rootOemKeys: ['Contoso'], manufacturer: 'Lenovo' }), 'lenovo', 'an unknown Oem key falls through');
});

t.test("else the system's Manufacturer, else generic", async (t) => {
  t.equal(detectVendor({ manufacturer: 'Dell Inc.' }), 'dell');
  t.equal(detectVendor({ manufacturer: 'Hewlett Packard Enterprise' }), 'hpe');
  t.equal(detectVendor({ manufacturer: 'HPE' }), 'hpe');
  t.equal(detectVendor({ manufacturer: 'Supermicro' }), 'supermicro');
  t.equal(detectVendor({ manufacturer: 'Lenovo' }), 'lenovo');
  t.equal(detectVendor({ manufacturer: 'American Megatrends Inc.' }), 'ami');
  t.equal(detectVendor({ manufacturer: 'Contoso' }), 'generic');
  t.equal(detectVendor({}), 'generic');
  t.equal(detectVendor({ alias: 'not-a-vendor', manufacturer: 'Contoso' }), 'generic', 'an unknown alias is no vendor');
});

t.test('no false friends: words that merely contain a vendor name', async (t) => {
  t.equal(detectVendor({ manufacturer: 'Camille Industries' }), 'generic', '"ami" inside a word');
  t.equal(detectVendor({ manufacturer: 'Philo Systems' }), 'generic', '"ilo" inside a word');
});

t.test('the quirk table: one profile per vendor name, each quirk where the field saw it', async (t) => {
  for (const name of VENDOR_NAMES) t.equal(vendorQuirks(name).name, name);
  t.equal(vendorQuirks('ami').ifMatchRequired, true);
  t.equal(vendorQuirks('lenovo').ifMatchRequired, true);
  t.equal(vendorQuirks('generic').ifMatchRequired, false);
  t.ok(vendorQuirks('supermicro').overrideReadBackRetries >= 1);
  t.ok(vendorQuirks('dell').onBusyRetry.backoffMs >= vendorQuirks('generic').onBusyRetry.backoffMs, 'iDRAC waits longer on 409');
  t.same(vendorQuirks('generic').onBusyRetry, { attempts: 5, backoffMs: 500 });
});

t.test("a busy-during-POST answer is recognised by its MessageId's last part, any registry version", async (t) => {
  const hpe = vendorQuirks('hpe');
  t.ok(isBusyMessage(hpe, ['iLO.2.14.UnableToModifyDuringSystemPOST']));
  t.ok(isBusyMessage(hpe, ['Base.1.8.GeneralError', 'iLO.2.8.UnableToModifyDuringSystemPOST']));
  t.notOk(isBusyMessage(hpe, ['Base.1.8.PropertyValueNotInList']));
  t.notOk(isBusyMessage(vendorQuirks('generic'), ['iLO.2.14.UnableToModifyDuringSystemPOST']), 'only where the table says so');
});
