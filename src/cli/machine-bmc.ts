/** A machine's BMC on the command line: the `--bmc…` flags of `machines add`, and the lines `machines show` prints of it. */
import { readFileSync } from 'node:fs';
import type { BmcBootMode, BmcRun, BmcStatus } from '../machines/bmc.js';
import type { Machine } from '../machines/model.js';
import { ClientError } from './client.js';

/** The BMC as the API answers it: the settings without the password, what was last seen of it, the run. */
export type BmcAnswer = Partial<BmcStatus> & {
  address: string;
  username: string;
  passwordSet: boolean;
  systemId?: string;
  verifyTls: boolean;
  bootMode: BmcBootMode;
  run?: BmcRun;
};
export type MachineAnswer = Omit<Machine, 'bmc'> & { bmc?: BmcAnswer };

export interface BmcFlags {
  bmc?: string;
  bmcUser?: string;
  bmcPasswordFile?: string;
  bmcSystemId?: string;
  bmcInsecure?: boolean;
  bmcBootMode?: BmcBootMode;
}

/** The `bmc` of a PUT body from the flags; undefined without --bmc. The password is read from its file, never from the command line. */
export function bmcBody(o: BmcFlags): Record<string, unknown> | undefined {
  if (o.bmc === undefined) {
    const stray = (['bmcUser', 'bmcPasswordFile', 'bmcSystemId', 'bmcInsecure', 'bmcBootMode'] as const).filter((k) => o[k] !== undefined);
    if (stray.length > 0) throw new ClientError(`--${stray.map(kebab).join(', --')} need${stray.length === 1 ? 's' : ''} --bmc <address>`);
    return undefined;
  }
  if (o.bmcUser === undefined) throw new ClientError('--bmc needs --bmc-user <name>');
  return {
    address: o.bmc,
    username: o.bmcUser,
    ...(o.bmcPasswordFile !== undefined && { password: readPassword(o.bmcPasswordFile) }),
    ...(o.bmcSystemId !== undefined && { systemId: o.bmcSystemId }),
    verifyTls: o.bmcInsecure !== true,
    ...(o.bmcBootMode !== undefined && { bootMode: o.bmcBootMode }),
  };
}

const kebab = (key: string): string => key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

/** The file's text with one trailing newline dropped (as `echo` or an editor leaves it); `-` is standard input. */
function readPassword(file: string): string {
  let text: string;
  try {
    text = readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch (err) {
    throw new ClientError(`--bmc-password-file ${file}: cannot read it: ${(err as Error).message}`);
  }
  const password = text.replace(/\r?\n$/, '');
  if (password === '') throw new ClientError(`--bmc-password-file ${file}: the file is empty; put the BMC's password in it`);
  return password;
}

/** `machines show`'s lines of the BMC, each [label, value]; none without one. */
export function bmcFields(b: BmcAnswer | undefined): [string, string | undefined][] {
  if (b === undefined) return [];
  const login = `user ${b.username}, ${b.passwordSet ? 'password set' : 'no password'}${b.verifyTls ? '' : ', TLS not verified'}`;
  const hardware = [b.manufacturer, b.model, b.serial && `serial ${b.serial}`].filter(Boolean).join(' ');
  const seen = b.checkedAt === undefined ? undefined : `${b.reachable ? (b.powerState ?? 'reachable') : 'unreachable'} (checked ${b.checkedAt})`;
  const run = b.run && `${b.run.phase}, attempt ${b.run.attempts}, since ${b.run.startedAt}${b.run.deadlineAt ? `, boot due by ${b.run.deadlineAt}` : ''}`;
  return [
    ['bmc', `${b.address}${b.systemId ? ` system ${b.systemId}` : ''} (${login}, boot mode ${b.bootMode})`],
    ['system', hardware === '' ? undefined : `${hardware}${b.vendor ? ` (${b.vendor})` : ''}`],
    ['power', seen],
    ['bmc error', b.lastError],
    ['bmc run', run],
  ];
}
