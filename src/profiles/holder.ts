import type { Logger } from 'pino';
import { BUILTIN_PROFILES_DIR, loadProfiles } from './load.js';
import type { ProfileSet } from './profile.js';

/** The loaded profiles, replaced whole on reload (SIGHUP) so readers never see half a set. */
export class ProfileHolder {
  private set: ProfileSet;
  constructor(private readonly dirs: readonly string[]) {
    this.set = this.load();
  }
  readonly current = (): ProfileSet => this.set;
  reload(): ProfileSet {
    this.set = this.load();
    return this.set;
  }
  private load(): ProfileSet {
    return loadProfiles([{ dir: BUILTIN_PROFILES_DIR, builtin: true }, ...this.dirs.map((dir) => ({ dir, builtin: false }))]);
  }
}

/** One warning per profile file not loaded, then the names of those loaded. */
export function reportProfiles(set: ProfileSet, log: Logger): void {
  for (const p of set.problems) log.warn({ file: p.file, problem: p.message }, 'profile not loaded');
  log.info({ profiles: set.list().map((p) => p.name) }, 'profiles loaded');
}
