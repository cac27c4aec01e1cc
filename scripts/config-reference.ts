/** `npm run docs:config`: writes docs/configuration-reference.md from the config schema. */
import { writeFileSync } from 'node:fs';
import { configReference, REFERENCE_PATH } from '../src/config/reference.js';

writeFileSync(new URL(`../${REFERENCE_PATH}`, import.meta.url), configReference());
process.stdout.write(`wrote ${REFERENCE_PATH}\n`);
