import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The job script beside the sources (dist/precache/ and src/precache/ both reach it so). */
export const PRECACHE_JOB_PATH = fileURLToPath(new URL('../../src/precache/job.sh', import.meta.url));

/** The precache job's text, read once at start-up: the Ignition of every live boot carries it. */
export function loadPrecacheJob(path = PRECACHE_JOB_PATH): string {
  return readFileSync(path, 'utf8');
}
