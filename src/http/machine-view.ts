/**
 * A machine as every API answer shows it: the record with its BMC presented, never the sealed
 * password (passwordSet says whether there is one) and never the raw status or run fields. The one
 * mapping every route answering machines uses; the response schema's `bmc` (schemas.ts, no
 * additional properties) drops whatever this would miss.
 */
import type { Machine } from '../machines/model.js';
import type { BmcView } from './schemas.js';

export type MachineView = Omit<Machine, 'bmc' | 'bmcStatus' | 'bmcRun'> & { bmc?: BmcView };

export function machineView(m: Machine): MachineView {
  const { bmc, bmcStatus, bmcRun, ...rest } = m;
  if (bmc === undefined) return rest;
  const { passwordSealed, ...settings } = bmc;
  return { ...rest, bmc: { ...settings, passwordSet: passwordSealed !== undefined, ...bmcStatus, ...(bmcRun !== undefined && { run: bmcRun }) } };
}
