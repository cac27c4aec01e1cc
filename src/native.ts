/**
 * The native addons (native/*.c), built by binding.gyp into build/Release on `npm ci`. Loaded on
 * first use, so importing a module that needs one never fails by itself.
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/** The package root: this file is src/*.ts under the test loader and dist/*.js built. */
const PACKAGE_ROOT = fileURLToPath(new URL('../', import.meta.url));
const loaded = new Map<string, unknown>();

// eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters -- the caller names its addon's interface (net/, http/sendfile.ts, tftp/pump.ts): an unchecked cast either way, kept here once
export function loadAddon<T>(name: string): T {
  const cached = loaded.get(name);
  if (cached !== undefined) return cached as T;
  const path = `${PACKAGE_ROOT}build/Release/${name}.node`;
  try {
    const addon = createRequire(import.meta.url)(path) as T;
    loaded.set(name, addon);
    return addon;
  } catch (err) {
    throw new Error(`${name} addon not loadable from ${path} (npm ci builds it; or run npx node-gyp rebuild): ${(err as Error).message}`, { cause: err });
  }
}
