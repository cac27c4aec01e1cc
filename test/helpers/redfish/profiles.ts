/**
 * The vendor profiles: what each emulated BMC says about itself and which field quirk it
 * reproduces. Each quirk is one field here, with the real behaviour it stands for; the emulator
 * reads only this table, so a profile is data, not code paths sprinkled through the server.
 */

export type VendorProfile = 'generic' | 'supermicro' | 'ami' | 'idrac' | 'ilo';

/** The ResetType values DSP0268 ComputerSystem.Reset defines that the emulator carries out. */
export const ALL_RESET_TYPES = ['On', 'ForceOff', 'GracefulShutdown', 'GracefulRestart', 'ForceRestart', 'PushPowerButton'] as const;
export type ResetType = (typeof ALL_RESET_TYPES)[number];

export interface Profile {
  name: VendorProfile;
  /** ServiceRoot.Vendor (absent on the generic profile, as on DMTF's public mockups). */
  vendor?: string;
  product: string;
  manufacturer: string;
  model: string;
  systemId: string;
  managerId: string;
  managerModel: string;
  firmwareVersion: string;
  bootTargets: string[];
  resetTypes: ResetType[];
  /** EthernetInterface ids for NIC number i (0-based). */
  nicId(i: number): string;
  /** MACAddress as the BMC prints it. */
  macCase: 'lower' | 'upper';
  /**
   * Supermicro X11/X12 (and the Ironic bug reports about them, sushy's supermicro notes): the first
   * PATCH of the Boot object after each boot answers 200 but the BMC keeps its old
   * BootSourceOverrideMode (or, when Mode is not sent, its old BootSourceOverrideEnabled);
   * the same PATCH sent again sticks.
   */
  revertsFirstBootPatch: boolean;
  /** AMI MegaRAC (and Lenovo XClarity): PATCH without If-Match is 428 Precondition Required (DSP0266 allows a service to require it). */
  requiresIfMatch: boolean;
  /** iDRAC: `On` shortly after a power-off answers 409 (the host is still settling); this many transitionMs. 0: none. */
  busyAfterOffTransitions: number;
  /** iLO 5: a PATCH while the host is in POST is 400 iLO.2.14.UnableToModifyDuringSystemPOST; this many transitionMs after a boot starts. 0: none. */
  postTransitions: number;
  /** iDRAC and iLO answer some actions with 202 and a task monitor (DSP0266 "Asynchronous operations"). */
  resetAnswersTask: boolean;
  /** Task ids: iDRAC names its jobs JID_<number>. */
  taskIdPrefix: string;
  /**
   * `On` when on / `ForceOff` when off. iDRAC answers 409 (Dell registry PSU501 "Server is already
   * powered ON." / PSU502 "... OFF."); sushy-tools and DMTF's mockup server accept it as a no-op,
   * which the other profiles do.
   */
  conflictWhenAlreadyInState: boolean;
  /** The Oem object of the ComputerSystem, if the vendor has one. */
  systemOem?(o: { powerState: string; inPost: boolean }): Record<string, unknown>;
  managerOem?(): Record<string, unknown>;
}

const BASE_TARGETS = ['None', 'Pxe', 'Hdd', 'Cd', 'Usb', 'BiosSetup', 'UefiHttp'];

const NO_QUIRKS = {
  revertsFirstBootPatch: false,
  requiresIfMatch: false,
  busyAfterOffTransitions: 0,
  postTransitions: 0,
  resetAnswersTask: false,
  taskIdPrefix: '',
  conflictWhenAlreadyInState: false,
};

const PROFILES: Record<VendorProfile, Profile> = {
  generic: {
    ...NO_QUIRKS,
    name: 'generic',
    product: 'Redfish Emulator',
    manufacturer: 'Contoso',
    model: '3500',
    systemId: '1',
    managerId: 'BMC',
    managerModel: 'Joo Janta 200',
    firmwareVersion: '1.00',
    bootTargets: BASE_TARGETS,
    resetTypes: [...ALL_RESET_TYPES],
    nicId: (i) => `NIC${i + 1}`,
    macCase: 'lower',
  },
  supermicro: {
    ...NO_QUIRKS,
    revertsFirstBootPatch: true,
    name: 'supermicro',
    vendor: 'Supermicro',
    product: 'SYS-1029P-WTR',
    manufacturer: 'Supermicro',
    model: 'X11DDW-L',
    systemId: '1',
    managerId: '1',
    managerModel: 'ASPEED',
    firmwareVersion: '01.73.11',
    bootTargets: [...BASE_TARGETS, 'UsbCd', 'UefiShell'],
    resetTypes: [...ALL_RESET_TYPES],
    nicId: (i) => String(i + 1),
    macCase: 'lower',
  },
  ami: {
    ...NO_QUIRKS,
    requiresIfMatch: true,
    name: 'ami',
    vendor: 'AMI',
    product: 'AMI Redfish Server',
    manufacturer: 'AMI',
    model: 'MegaRAC SP-X',
    systemId: 'Self',
    managerId: 'Self',
    managerModel: 'MegaRAC SP-X',
    firmwareVersion: '12.61.22',
    bootTargets: BASE_TARGETS,
    resetTypes: [...ALL_RESET_TYPES],
    nicId: (i) => `EthernetInterface${i}`,
    macCase: 'lower',
  },
  idrac: {
    ...NO_QUIRKS,
    busyAfterOffTransitions: 3,
    resetAnswersTask: true,
    taskIdPrefix: 'JID_',
    conflictWhenAlreadyInState: true,
    name: 'idrac',
    vendor: 'Dell',
    product: 'Integrated Dell Remote Access Controller',
    manufacturer: 'Dell Inc.',
    model: 'PowerEdge R650',
    systemId: 'System.Embedded.1',
    managerId: 'iDRAC.Embedded.1',
    managerModel: '15G Monolithic',
    firmwareVersion: '6.10.30.00',
    bootTargets: BASE_TARGETS,
    resetTypes: [...ALL_RESET_TYPES],
    nicId: (i) => `NIC.Integrated.1-${i + 1}-1`,
    macCase: 'upper',
    systemOem: ({ powerState }) => ({
      Dell: {
        '@odata.type': '#DellOem.v1_3_0.DellOemResources',
        DellSystem: {
          '@odata.type': '#DellSystem.v1_3_0.DellSystem',
          Id: 'System.Embedded.1',
          SystemGeneration: '15G Monolithic',
          PowerState: powerState === 'On' ? 2 : 8,
        },
      },
    }),
    managerOem: () => ({ Dell: { DelliDRACCard: { '@odata.type': '#DelliDRACCard.v1_1_0.DelliDRACCard', IPMIVersion: '2.0' } } }),
  },
  ilo: {
    ...NO_QUIRKS,
    postTransitions: 2,
    resetAnswersTask: true,
    name: 'ilo',
    vendor: 'HPE',
    product: 'ProLiant DL360 Gen10',
    manufacturer: 'HPE',
    model: 'ProLiant DL360 Gen10',
    systemId: '1',
    managerId: '1',
    managerModel: 'iLO 5',
    firmwareVersion: 'iLO 5 v2.72',
    bootTargets: BASE_TARGETS,
    resetTypes: ['On', 'ForceOff', 'GracefulShutdown', 'ForceRestart', 'PushPowerButton', 'GracefulRestart'],
    nicId: (i) => String(i + 1),
    macCase: 'lower',
    systemOem: ({ powerState, inPost }) => ({
      Hpe: {
        '@odata.type': '#HpeComputerSystemExt.v2_11_0.HpeComputerSystemExt',
        PostState: powerState === 'Off' ? 'PowerOff' : inPost ? 'InPost' : 'FinishedPost',
      },
    }),
    managerOem: () => ({ Hpe: { '@odata.type': '#HpeiLO.v2_8_0.HpeiLO', License: { LicenseType: 'Perpetual' } } }),
  },
};

export function profile(name: VendorProfile): Profile {
  return PROFILES[name];
}
