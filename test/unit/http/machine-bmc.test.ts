/**
 * The BMC between a body and the record, pure: toReservation seals through the function it is
 * given and keeps a stored password only at the same address; reservationOf and machineView never
 * hand the sealed password on. The API over a real app is test/integration/api-machines-bmc.test.ts.
 */
import t from 'tap';
import { ApiError } from '../../../src/http/errors.js';
import { machineView } from '../../../src/http/machine-view.js';
import { reservationOf, toReservation } from '../../../src/http/reservation.js';
import type { ReservationBody } from '../../../src/http/schemas.js';
import type { BmcSettings } from '../../../src/machines/bmc.js';
import type { Mac } from '../../../src/machines/mac.js';
import type { Machine } from '../../../src/machines/model.js';

const MAC = '52:54:00:b2:00:01' as Mac;
const ADDRESS = 'redfish://10.0.0.21';
const STORED: BmcSettings = { address: ADDRESS, username: 'root', passwordSealed: 'v1.stored', verifyTls: true, bootMode: 'auto' };
const machine = (bmc?: BmcSettings): Machine => ({
  mac: MAC,
  macs: [],
  labels: {},
  profile: 'local-disk',
  state: 'registered',
  observed: {},
  createdAt: 't0',
  updatedAt: 't1',
  ...(bmc && { bmc }),
  bmcStatus: { reachable: true, powerState: 'Off', checkedAt: 't2' },
  bmcRun: { phase: 'booted', attempts: 2, startedAt: 't3' },
});

/** A sealer that records what it was given. */
function sealer(): { seal: (plain: string) => string; given: string[] } {
  const given: string[] = [];
  return { seal: (plain) => (given.push(plain), `sealed(${given.length})`), given };
}

const bmcOf = (body: NonNullable<ReservationBody['bmc']>, cur?: Machine, seal = sealer().seal) => toReservation(MAC, { bmc: body }, cur, seal).bmc;

function apiError(fn: () => unknown): ApiError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ApiError) return err;
    throw err;
  }
  throw new Error('no error');
}

t.test('a given password is sealed through the function passed in; defaults filled in', async (t) => {
  const s = sealer();
  t.same(bmcOf({ address: ADDRESS, username: 'root', password: 'calvin' }, undefined, s.seal), {
    address: ADDRESS,
    username: 'root',
    passwordSealed: 'sealed(1)',
    verifyTls: true,
    bootMode: 'auto',
  });
  t.same(s.given, ['calvin']);
  t.same(bmcOf({ address: ADDRESS, username: 'root', verifyTls: false, bootMode: 'legacy', systemId: '1' }), {
    address: ADDRESS,
    username: 'root',
    systemId: '1',
    verifyTls: false,
    bootMode: 'legacy',
  });
});

t.test('no password: the stored one kept at the same address, refused at another', async (t) => {
  const s = sealer();
  t.equal(bmcOf({ address: ADDRESS, username: 'admin' }, machine(STORED), s.seal)?.passwordSealed, 'v1.stored');
  t.same(s.given, [], 'nothing sealed');
  const err = apiError(() => bmcOf({ address: 'redfish://10.0.0.22', username: 'root' }, machine(STORED)));
  t.equal(err.code, 'bmc_password_required');
  t.equal(err.statusCode, 400);
  t.same(err.details, { field: 'bmc.password' });
  t.notOk(err.message.includes('v1.stored'), 'the sealed value is not in the message');
  t.equal(bmcOf({ address: 'redfish://10.0.0.22', username: 'root', password: 'new' }, machine(STORED))?.passwordSealed, 'sealed(1)');
  t.equal(
    bmcOf({ address: 'redfish://10.0.0.22', username: 'root' }, machine({ ...STORED, passwordSealed: undefined }))?.passwordSealed,
    undefined,
    'none stored: none needed',
  );
});

t.test('an address parseBmcAddress refuses, or a system named twice differently: invalid_bmc_address', async (t) => {
  for (const [address, systemId, message] of [
    ['https://10.0.0.5', undefined, /^bmc\.address: .*did you mean redfish:\/\//],
    ['redfish://u:p@10.0.0.5', undefined, /user name or password/],
    ['redfish://10.0.0.5/redfish/v1/Systems/1', '2', /names the system 1 and bmc\.systemId 2/],
  ] as const) {
    const err = apiError(() => bmcOf({ address, username: 'root', ...(systemId && { systemId }) }));
    t.equal(err.code, 'invalid_bmc_address', address);
    t.match(err.message, message);
  }
  t.equal(
    bmcOf({ address: 'redfish://10.0.0.5/redfish/v1/Systems/System%2E1', username: 'r', systemId: 'System.1' })?.systemId,
    'System.1',
    'a %-escaped id agrees',
  );
});

t.test('reservationOf drops the sealed password, the status and the run; machineView shows them as the API does', async (t) => {
  const m = machine(STORED);
  const r = reservationOf(m);
  t.same(r.bmc, { address: ADDRESS, username: 'root', verifyTls: true, bootMode: 'auto' });
  t.notOk('bmcStatus' in r || 'bmcRun' in r);
  const view = machineView(m);
  t.same(view.bmc, {
    address: ADDRESS,
    username: 'root',
    passwordSet: true,
    verifyTls: true,
    bootMode: 'auto',
    reachable: true,
    powerState: 'Off',
    checkedAt: 't2',
    run: { phase: 'booted', attempts: 2, startedAt: 't3' },
  });
  t.notOk('bmcStatus' in view || 'bmcRun' in view);
  t.notMatch(JSON.stringify(view), /v1\.stored|passwordSealed/);
  t.equal(machineView(machine()).bmc, undefined, 'no BMC: no bmc, nor its status');
  t.notOk('bmcStatus' in machineView(machine()));
});
