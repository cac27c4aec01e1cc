import type { ProfileSet } from '../profiles/profile.js';
import { sourceKey } from './source-key.js';

/** The source keys of every remote artifact a loaded profile names: pinned in the cache. */
export function pinnedKeys(set: ProfileSet): Set<string> {
  const keys = new Set<string>();
  for (const p of set.list()) for (const a of Object.values(p.artifacts)) if (/^https?:/.test(a.url)) keys.add(sourceKey(a.url));
  return keys;
}
