import { readFileSync } from 'node:fs';
import t from 'tap';
import { CONFIG_KEYS } from '../../../src/config/load.js';
import { configReference, REFERENCE_COMMAND, REFERENCE_PATH } from '../../../src/config/reference.js';

const checkedIn = readFileSync(new URL(`../../../${REFERENCE_PATH}`, import.meta.url), 'utf8');

t.test('the checked-in configuration reference is the one the schema generates', async (t) => {
  const fresh = configReference();
  const [ours, theirs] = [checkedIn.split('\n'), fresh.split('\n')];
  const at = theirs.findIndex((line, i) => line !== ours[i]);
  const where = at < 0 ? 'it has extra lines at the end' : `line ${at + 1} is ${JSON.stringify(ours[at])}, generated ${JSON.stringify(theirs[at])}`;
  t.equal(checkedIn, fresh, `${REFERENCE_PATH} is stale (${where}); regenerate it with ${REFERENCE_COMMAND}`);
});

t.test('every key says what it does and what it accepts, and the reference names it with its variable', async (t) => {
  const reference = configReference();
  for (const k of CONFIG_KEYS) {
    t.ok(k.schema.title, `${k.path} has a title (what it does)`);
    t.ok(k.schema.description, `${k.path} has a description (what it accepts)`);
    t.match(reference, new RegExp(`^\\| \`${k.key}\` \\|.*\\| \`${k.env}\` \\|`, 'm'), `${k.path} is a row with ${k.env}`);
  }
});

t.test('a table cell holds no raw | or <', async (t) => {
  const reference = configReference();
  t.match(reference, /&lt;dataDir&gt;/, '<dataDir> in prose is escaped, not read as an HTML tag');
  t.match(reference, /`"sqlite:<dataDir>\/edgeboot.db"`/, 'but kept as is inside a code span');
  for (const line of reference.split('\n').filter((l) => l.startsWith('| `'))) {
    t.equal(line.replaceAll('\\|', '').split('|').length, line.startsWith('| `dhcp.subnets[].') ? 6 : 7, `columns of ${line.slice(0, 40)}`);
  }
});
