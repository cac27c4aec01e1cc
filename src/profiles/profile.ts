import type { MachinePlaceholder, Template } from './template.js';

export interface Artifact {
  url: string;
  sha256?: string;
  size?: number;
}

/** What one boot stage does: a kernel boot, a chain to another script, or the local disk. */
export type BootSpec = { kind: 'kernel'; kernel: string; initrds: string[]; args: Template } | { kind: 'chain'; url: Template } | { kind: 'local' };

/** A profile with several stages: the precache live environment, then the installer. */
export interface Flow {
  /** Name of the live-environment profile; a reservation's `precache.liveProfile` overrides it. */
  precache?: string;
  /** Name of the profile the install stage boots. */
  install: string;
}

export interface Profile {
  name: string;
  description: string;
  /** File it came from; `builtin` profiles ship in the package's profiles/ folder. */
  file: string;
  builtin: boolean;
  artifacts: Record<string, Artifact>;
  boot: BootSpec | undefined;
  flow: Flow | undefined;
  /** Machine values its templates need (`machine.hostname`, `machine.assistedScriptUrl`, …). */
  requires: MachinePlaceholder[];
}

/**
 * The artifact of a profile by a name from a request: own members only, so that `constructor`
 * or `__proto__` in a URL is an unknown artifact, not Object.prototype's.
 */
export function artifactOf(profile: Profile, name: string): Artifact | undefined {
  return Object.hasOwn(profile.artifacts, name) ? profile.artifacts[name] : undefined;
}

export interface ProfileProblem {
  file: string;
  message: string;
}

/** The loaded profiles; built-ins first, a user file of the same name replaces a built-in. */
export interface ProfileSet {
  get(name: string): Profile | undefined;
  list(): Profile[];
  problems: readonly ProfileProblem[];
}
