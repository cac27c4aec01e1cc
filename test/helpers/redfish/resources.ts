/**
 * The JSON documents the emulator serves (DSP0268 schemas: ServiceRoot, ComputerSystem,
 * EthernetInterface, Manager, SessionService/Session, TaskService/Task), built from its state.
 * Only the properties real clients (redfishtool, sushy, edgeboot's client) read, plus the ones
 * every Redfish resource carries (@odata.id, @odata.type, Id, Name).
 */
import type { Profile } from './profiles.js';
import { SESSIONS_PATH, sessionPath, type Session } from './sessions.js';

export const ROOT = '/redfish/v1';
export const BOOT_ENABLED_VALUES = ['Disabled', 'Once', 'Continuous'];
export const BOOT_MODE_VALUES = ['UEFI', 'Legacy'];

export interface BootState {
  target: string;
  enabled: string;
  mode?: string;
  httpBootUri?: string;
}

/** Everything a document needs to know about the emulated BMC and its one system. */
export interface View {
  profile: Profile;
  serviceUuid: string;
  systemId: string;
  managerId: string;
  uuid: string;
  serial: string;
  model: string;
  manufacturer: string;
  macs: string[];
  powerState: string;
  boot: BootState;
  bootTargets: string[];
  resetTypes: string[];
  modeSupported: boolean;
  etag: string;
  inPost: boolean;
  sessionService: boolean;
}

const ref = (path: string): { '@odata.id': string } => ({ '@odata.id': path });

function collection(path: string, type: string, name: string, members: string[]): Record<string, unknown> {
  return {
    '@odata.id': path,
    '@odata.type': `#${type}.${type}`,
    Name: name,
    Members: members.map(ref),
    'Members@odata.count': members.length,
  };
}

export const systemPath = (v: View): string => `${ROOT}/Systems/${v.systemId}`;
export const managerPath = (v: View): string => `${ROOT}/Managers/${v.managerId}`;
export const resetTarget = (v: View): string => `${systemPath(v)}/Actions/ComputerSystem.Reset`;
export const nicPath = (v: View, i: number): string => `${systemPath(v)}/EthernetInterfaces/${v.profile.nicId(i)}`;
const chassisPath = `${ROOT}/Chassis/1`;

export function versions(): Record<string, unknown> {
  return { v1: `${ROOT}/` };
}

export function serviceRoot(v: View): Record<string, unknown> {
  return {
    '@odata.id': ROOT,
    '@odata.type': '#ServiceRoot.v1_11_0.ServiceRoot',
    Id: 'RootService',
    Name: 'Root Service',
    RedfishVersion: '1.11.0',
    UUID: v.serviceUuid,
    ...(v.profile.vendor === undefined ? {} : { Vendor: v.profile.vendor }),
    Product: v.profile.product,
    ProtocolFeaturesSupported: { ExpandQuery: { ExpandAll: false }, SelectQuery: false, FilterQuery: false },
    Systems: ref(`${ROOT}/Systems`),
    Managers: ref(`${ROOT}/Managers`),
    Chassis: ref(`${ROOT}/Chassis`),
    TaskService: ref(`${ROOT}/TaskService`),
    ...(v.sessionService ? { SessionService: ref(`${ROOT}/SessionService`), Links: { Sessions: ref(SESSIONS_PATH) } } : { Links: {} }),
  };
}

export function odataServiceDocument(v: View): Record<string, unknown> {
  const names = ['Systems', 'Managers', 'Chassis', 'TaskService', ...(v.sessionService ? ['SessionService'] : [])];
  return {
    '@odata.context': `${ROOT}/$metadata`,
    value: [{ name: 'Service', kind: 'Singleton', url: ROOT }, ...names.map((name) => ({ name, kind: 'Singleton', url: `${ROOT}/${name}` }))],
  };
}

/** A minimal CSDL document: clients that fetch $metadata get valid XML naming the schemas used. */
export function metadataXml(): string {
  const schemas = [
    'ServiceRoot',
    'ComputerSystem',
    'ComputerSystemCollection',
    'EthernetInterface',
    'Manager',
    'SessionService',
    'Session',
    'TaskService',
    'Task',
  ];
  const refs = schemas
    .map((s) => `  <edmx:Reference Uri="http://redfish.dmtf.org/schemas/v1/${s}_v1.xml"><edmx:Include Namespace="${s}"/></edmx:Reference>`)
    .join('\n');
  return `<?xml version="1.0" encoding="UTF-8"?>
<edmx:Edmx xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx" Version="4.0">
${refs}
  <edmx:DataServices>
    <Schema xmlns="http://docs.oasis-open.org/odata/ns/edm" Namespace="Service">
      <EntityContainer Name="Service" Extends="ServiceRoot.v1_11_0.ServiceContainer"/>
    </Schema>
  </edmx:DataServices>
</edmx:Edmx>
`;
}

export function systems(v: View): Record<string, unknown> {
  return collection(`${ROOT}/Systems`, 'ComputerSystemCollection', 'Computer System Collection', [systemPath(v)]);
}

export function system(v: View): Record<string, unknown> {
  const oem = v.profile.systemOem?.({ powerState: v.powerState, inPost: v.inPost });
  return {
    '@odata.id': systemPath(v),
    '@odata.type': '#ComputerSystem.v1_13_0.ComputerSystem',
    '@odata.etag': v.etag,
    Id: v.systemId,
    Name: 'System',
    SystemType: 'Physical',
    Manufacturer: v.manufacturer,
    Model: v.model,
    SerialNumber: v.serial,
    UUID: v.uuid,
    PowerState: v.powerState,
    Status: { State: 'Enabled', Health: 'OK' },
    Boot: {
      BootSourceOverrideTarget: v.boot.target,
      'BootSourceOverrideTarget@Redfish.AllowableValues': v.bootTargets,
      BootSourceOverrideEnabled: v.boot.enabled,
      ...(v.modeSupported ? { BootSourceOverrideMode: v.boot.mode, 'BootSourceOverrideMode@Redfish.AllowableValues': BOOT_MODE_VALUES } : {}),
      ...(v.bootTargets.includes('UefiHttp') ? { HttpBootUri: v.boot.httpBootUri ?? null } : {}),
    },
    EthernetInterfaces: ref(`${systemPath(v)}/EthernetInterfaces`),
    Links: { ManagedBy: [ref(managerPath(v))], Chassis: [ref(chassisPath)] },
    Actions: {
      '#ComputerSystem.Reset': { target: resetTarget(v), 'ResetType@Redfish.AllowableValues': v.resetTypes },
    },
    ...(oem === undefined ? {} : { Oem: oem }),
  };
}

function printedMac(v: View, mac: string): string {
  return v.profile.macCase === 'upper' ? mac.toUpperCase() : mac.toLowerCase();
}

export function ethernetInterfaces(v: View): Record<string, unknown> {
  return collection(
    `${systemPath(v)}/EthernetInterfaces`,
    'EthernetInterfaceCollection',
    'Ethernet Interface Collection',
    v.macs.map((_, i) => nicPath(v, i)),
  );
}

/** The NIC whose id is `id`, or undefined. */
export function ethernetInterface(v: View, id: string): Record<string, unknown> | undefined {
  const i = v.macs.findIndex((_, n) => v.profile.nicId(n) === id);
  const mac = v.macs[i];
  if (mac === undefined) return undefined;
  return {
    '@odata.id': nicPath(v, i),
    '@odata.type': '#EthernetInterface.v1_6_0.EthernetInterface',
    Id: id,
    Name: `NIC ${i + 1}`,
    MACAddress: printedMac(v, mac),
    PermanentMACAddress: printedMac(v, mac),
    SpeedMbps: 10000,
    LinkStatus: 'LinkUp',
    Status: { State: 'Enabled', Health: 'OK' },
  };
}

export function managers(v: View): Record<string, unknown> {
  return collection(`${ROOT}/Managers`, 'ManagerCollection', 'Manager Collection', [managerPath(v)]);
}

export function manager(v: View): Record<string, unknown> {
  const oem = v.profile.managerOem?.();
  return {
    '@odata.id': managerPath(v),
    '@odata.type': '#Manager.v1_10_0.Manager',
    Id: v.managerId,
    Name: 'Manager',
    ManagerType: 'BMC',
    Model: v.profile.managerModel,
    FirmwareVersion: v.profile.firmwareVersion,
    UUID: v.serviceUuid,
    PowerState: 'On',
    Status: { State: 'Enabled', Health: 'OK' },
    Links: { ManagerForServers: [ref(systemPath(v))], ManagerForChassis: [ref(chassisPath)] },
    ...(oem === undefined ? {} : { Oem: oem }),
  };
}

export function chassisCollection(): Record<string, unknown> {
  return collection(`${ROOT}/Chassis`, 'ChassisCollection', 'Chassis Collection', [chassisPath]);
}

export function chassis(v: View): Record<string, unknown> {
  return {
    '@odata.id': chassisPath,
    '@odata.type': '#Chassis.v1_14_0.Chassis',
    Id: '1',
    Name: 'Chassis',
    ChassisType: 'RackMount',
    Manufacturer: v.manufacturer,
    Model: v.model,
    SerialNumber: v.serial,
    PowerState: v.powerState,
    Status: { State: 'Enabled', Health: 'OK' },
    Links: { ComputerSystems: [ref(systemPath(v))], ManagedBy: [ref(managerPath(v))] },
  };
}

/** A service singleton (SessionService, TaskService): enabled, healthy, with its own properties. */
function serviceDoc(name: string, type: string, props: Record<string, unknown>): Record<string, unknown> {
  return {
    '@odata.id': `${ROOT}/${name}`,
    '@odata.type': `#${name}.${type}.${name}`,
    Id: name,
    Name: name.replace(/Service$/, ' Service'),
    ServiceEnabled: true,
    Status: { State: 'Enabled', Health: 'OK' },
    ...props,
  };
}

export function sessionServiceDoc(): Record<string, unknown> {
  return serviceDoc('SessionService', 'v1_1_8', { SessionTimeout: 1800, Sessions: ref(SESSIONS_PATH) });
}

export function sessionsDoc(list: Session[]): Record<string, unknown> {
  return collection(
    SESSIONS_PATH,
    'SessionCollection',
    'Session Collection',
    list.map((s) => sessionPath(s.id)),
  );
}

export function sessionDoc(s: Session): Record<string, unknown> {
  return { '@odata.id': sessionPath(s.id), '@odata.type': '#Session.v1_3_0.Session', Id: s.id, Name: `Session ${s.id}`, UserName: s.username };
}

export interface TaskView {
  id: string;
  state: 'Running' | 'Completed';
  startedAt: number;
  endedAt?: number;
  name: string;
}

export const taskPath = (id: string): string => `${ROOT}/TaskService/Tasks/${id}`;
export const taskMonitorPath = (id: string): string => `${ROOT}/TaskService/TaskMonitors/${id}`;

export function taskServiceDoc(): Record<string, unknown> {
  return serviceDoc('TaskService', 'v1_1_5', { CompletedTaskOverWritePolicy: 'Oldest', Tasks: ref(`${ROOT}/TaskService/Tasks`) });
}

export function tasksDoc(ids: string[]): Record<string, unknown> {
  return collection(`${ROOT}/TaskService/Tasks`, 'TaskCollection', 'Task Collection', ids.map(taskPath));
}

export function taskDoc(t: TaskView): Record<string, unknown> {
  const done = t.state === 'Completed';
  return {
    '@odata.id': taskPath(t.id),
    '@odata.type': '#Task.v1_4_3.Task',
    Id: t.id,
    Name: t.name,
    TaskState: t.state,
    TaskStatus: 'OK',
    PercentComplete: done ? 100 : 50,
    StartTime: new Date(t.startedAt).toISOString(),
    ...(t.endedAt === undefined ? {} : { EndTime: new Date(t.endedAt).toISOString() }),
    TaskMonitor: taskMonitorPath(t.id),
    Messages: done ? [{ MessageId: 'Base.1.8.Success', Message: 'Successfully Completed Request', Severity: 'OK' }] : [],
  };
}
