import type { PrecacheConfig, UnknownMachinePolicy } from '../config/config.js';
import type { Machine } from '../machines/model.js';
import { bootLoopReason } from '../machines/precache-run.js';
import type { MachineState, Transition } from '../machines/state.js';
import type { BootSpec, Profile, ProfileSet } from '../profiles/profile.js';
import type { AssistedBoot } from './assisted.js';
import type { HubAnswer } from './hub.js';

/**
 * The one answer to "what does this machine boot now?" (DESIGN.md). Pure: it reads the
 * machine, the profiles, the policy for unknown machines, the precache limits and the hub's
 * answer, and says what to boot and which state move serving it causes. DHCP, TFTP and HTTP
 * ask this; they never decide it themselves, nor edit what it decided.
 */
export type BootDecision =
  | {
      kind: 'boot';
      stage: 'precache' | 'install';
      profile: Profile;
      spec: Exclude<BootSpec, { kind: 'local' }>;
      transition?: Transition;
      reason: string;
      /** The hub's boot script, fetched server-side, that a chain stage serves rewritten. */
      hub?: AssistedBoot;
    }
  | { kind: 'local'; reason: string; transition?: Transition }
  | { kind: 'wait'; reason: string; transition?: Transition }
  | { kind: 'error'; reason: string; transition?: undefined };

/** What picks the stage: the machine's state and profile, or the policy for unknown machines. */
export interface StageInput {
  machine: Machine | undefined;
  profiles: ProfileSet;
  unknownMachines: UnknownMachinePolicy;
}

/** Everything the decision depends on. */
export interface PlanInput extends StageInput {
  /** `precache.maxBoots`: one precache boot more than this without a result is a boot loop. */
  precache: Pick<PrecacheConfig, 'maxBoots'>;
  /**
   * The hub's answer for this boot, when it was asked (hubScriptUrl says when to ask it);
   * absent: not asked (`boot.assistedChain: chain`, no hub, an untrusted request, the admin
   * API's `/boot`), and an assisted chain stage chains to the hub itself.
   */
  hub?: HubAnswer;
}

/**
 * The whole decision: the stage the machine's state calls for, what the hub's answer makes of
 * an assisted chain stage, and a precache boot that would be one too many failing the machine
 * instead (a boot loop).
 */
export function planBoot(input: PlanInput): BootDecision {
  const staged = stageOf(input);
  const answered = input.hub && isAssistedChain(staged) ? withHubAnswer(staged, input.hub, input.machine?.state) : staged;
  if (answered.kind !== 'boot' || answered.stage !== 'precache' || !input.machine) return answered;
  const loop = bootLoopReason(input.machine, input.precache.maxBoots);
  if (!loop) return answered;
  return { kind: 'wait', reason: `provisioning failed: ${loop}; reset it on the server to retry`, transition: { kind: 'error', reason: loop } };
}

/** A boot loop (planBoot): the one wait that moves the machine, to failed. */
export function isBootLoop(d: BootDecision): boolean {
  return d.kind === 'wait' && d.transition?.kind === 'error';
}

/**
 * Whether the machine's next boot chains to its assisted script, asked before the store
 * transaction because fetching that script is a network round trip: the script's URL, or
 * undefined. It reads the stage alone (as planBoot's first step does), not a plan: planBoot
 * runs once per request, with the hub's answer in its input.
 */
export function hubScriptUrl(input: StageInput): string | undefined {
  const url = input.machine?.assisted?.ipxeScriptUrl;
  return url !== undefined && isAssistedChain(stageOf(input)) ? url : undefined;
}

/** A machine an admin assigned a profile to: one edgeboot boots by its state and profile. */
function isAssigned(machine: Machine | undefined): machine is Machine & { profile: string; state: Exclude<MachineState, 'discovered'> } {
  return machine !== undefined && machine.state !== 'discovered' && machine.profile !== undefined;
}

/** The stage the machine's state and profile call for (an unknown machine's: the policy's). */
function stageOf({ machine, profiles, unknownMachines }: StageInput): BootDecision {
  if (!isAssigned(machine)) return planUnknown(profiles, unknownMachines);
  const profile = profiles.get(machine.profile);
  if (!profile) return { kind: 'error', reason: `profile ${machine.profile} is not loaded on the server` };
  const liveName = profile.flow?.precache === undefined ? undefined : (machine.precache?.liveProfile ?? profile.flow.precache);
  const installName = profile.flow?.install ?? profile.name;

  switch (machine.state) {
    case 'registered':
    case 'precaching':
      if (liveName !== undefined) return stage('precache', liveName, profiles, { kind: 'precache-served' });
      if (machine.state === 'precaching') {
        return { kind: 'error', reason: `machine is precaching but profile ${profile.name} has no precache stage; reset it` };
      }
      return stage('install', installName, profiles, { kind: 'install-served', precacheRequired: false });
    case 'precached':
    case 'installing':
      return stage('install', installName, profiles, { kind: 'install-served', precacheRequired: liveName !== undefined });
    case 'installed':
      return { kind: 'local', reason: 'installed: booting from the local disk' };
    case 'failed':
      return { kind: 'wait', reason: 'provisioning failed: reset it on the server to retry' };
  }
}

function planUnknown(profiles: ProfileSet, policy: UnknownMachinePolicy): BootDecision {
  if (policy === 'exit') return { kind: 'local', reason: 'no profile assigned (boot.unknownMachines: exit)' };
  if (policy === 'wait') return { kind: 'wait', reason: 'no profile assigned yet: waiting for an admin to assign one' };
  // A profile for unknown machines boots its install stage without moving any state.
  const p = profiles.get(policy.profile);
  if (!p) return { kind: 'error', reason: `boot.unknownMachines names profile ${policy.profile}, which is not loaded` };
  const target = p.flow ? profiles.get(p.flow.install) : p;
  if (!target?.boot) return { kind: 'error', reason: `profile ${policy.profile} has no boot stage for unknown machines` };
  if (target.boot.kind === 'local') return { kind: 'local', reason: `unknown machine: profile ${target.name} boots the local disk` };
  return { kind: 'boot', stage: 'install', profile: target, spec: target.boot, reason: `no profile assigned: booting ${target.name} (boot.unknownMachines)` };
}

function stage(which: 'precache' | 'install', name: string, profiles: ProfileSet, transition: Transition): BootDecision {
  const p = profiles.get(name);
  if (!p) return { kind: 'error', reason: `the ${which} stage needs profile ${name}, which is not loaded` };
  if (!p.boot) return { kind: 'error', reason: `profile ${name} is a flow and cannot be the ${which} stage of another` };
  // Booting the local disk serves no installer: no state moves.
  if (p.boot.kind === 'local') return { kind: 'local', reason: `profile ${name} boots the local disk` };
  return { kind: 'boot', stage: which, profile: p, spec: p.boot, transition, reason: `${which} stage: ${name}` };
}

/** Whether proxy DHCP answers a PXE client, and why not when it does not. */
export type PxeAnswer = { answer: true } | { answer: false; reason: string };

/**
 * Proxy DHCP answers only the machines edgeboot will boot. An assigned machine is answered in
 * any state, even when its script says "boot the local disk": that script is where its state
 * and timeline move. An unknown, discovered or unassigned machine whose plan is the local disk
 * (boot.unknownMachines: exit, or a profile that boots the disk) gets silence: the firmware
 * gives up on proxy offers quickly and boots its own disk, and edgeboot on a shared network
 * answers no PXE boot that is not its business (pixiecore is silent the same way). Such a
 * machine's plan is its stage: the precache limits and the hub concern assigned machines only.
 */
export function pxeAnswer(input: StageInput): PxeAnswer {
  if (isAssigned(input.machine)) return { answer: true };
  const d = stageOf(input);
  return d.kind === 'local' ? { answer: false, reason: `not booted by edgeboot: ${d.reason}` } : { answer: true };
}

/** A chain stage to the machine's assisted script: what edgeboot fetches and rewrites. */
export function isAssistedChain(d: BootDecision): d is Extract<BootDecision, { kind: 'boot' }> {
  return d.kind === 'boot' && d.spec.kind === 'chain' && d.spec.url.some((p) => p.kind === 'value' && p.name === 'machine.assistedScriptUrl');
}

/**
 * What the hub's answer makes of an assisted chain stage: its script, served rewritten; a 404
 * (boot-order control: the host is installed), the local disk — and `installed` for a machine
 * that was installing; an error, a wait and re-check with the hub's error as the reason.
 */
export function withHubAnswer(d: Extract<BootDecision, { kind: 'boot' }>, answer: HubAnswer, state: MachineState | undefined): BootDecision {
  switch (answer.kind) {
    case 'boot':
      return { ...d, hub: answer.script, reason: `${d.reason}, the hub's script served from this server's cache` };
    case 'installed':
      return {
        kind: 'local',
        reason: 'the hub answers 404 for this host: it is installed',
        ...(state === 'installing' && { transition: { kind: 'install-done' } }),
      };
    case 'error':
      return { kind: 'error', reason: answer.reason };
  }
}
