/**
 * The artifacts an admin pinned in the cache by hand (`POST /api/v1/cache/pin`), beside those a
 * profile pins by naming them (pinned.ts). Kept in the store's settings as one JSON list, read
 * once at start and written on each change; eviction reads the set in memory.
 */
import type { SettingsRepository } from '../store/store.js';

const SETTING = 'cache-pins';

export class CachePins {
  private constructor(
    private readonly store: Pick<SettingsRepository, 'putSetting'>,
    private readonly keys: Set<string>,
  ) {}

  static async load(store: Pick<SettingsRepository, 'getSetting' | 'putSetting'>): Promise<CachePins> {
    const text = await store.getSetting(SETTING);
    const parsed: unknown = text === undefined ? [] : JSON.parse(text);
    const keys = Array.isArray(parsed) ? parsed.filter((k): k is string => typeof k === 'string') : [];
    return new CachePins(store, new Set(keys));
  }

  has(key: string): boolean {
    return this.keys.has(key);
  }

  get all(): ReadonlySet<string> {
    return this.keys;
  }

  async set(key: string, pinned: boolean): Promise<void> {
    if (pinned === this.keys.has(key)) return;
    if (pinned) this.keys.add(key);
    else this.keys.delete(key);
    await this.store.putSetting(SETTING, JSON.stringify([...this.keys].sort()));
  }
}
