import t from 'tap';
import { CONFIG_KEYS } from '../../../src/config/load.js';
import { editDistance, nearestName } from '../../../src/config/suggest.js';

t.test('editDistance', async (t) => {
  t.equal(editDistance('', ''), 0);
  t.equal(editDistance('MODE', 'MODE'), 0);
  t.equal(editDistance('MOED', 'MODE'), 1, 'a swap of neighbours is one step');
  t.equal(editDistance('LISTN', 'LISTEN'), 1, 'a letter left out');
  t.equal(editDistance('LISTEN', 'LISTENS'), 1, 'a letter added');
  t.equal(editDistance('MODE', 'MADE'), 1, 'a letter changed');
  t.equal(editDistance('', 'ABC'), 3);
  t.equal(editDistance('KITTEN', 'SITTING'), 3);
  t.equal(editDistance('CA', 'ABC'), 3, 'optimal string alignment: no edit of a swapped pair');
});

t.test('nearestName over the real variable names', async (t) => {
  const names = CONFIG_KEYS.map((k) => k.env);
  t.equal(nearestName('EDGEBOOT_DHCP_MOED', names), 'EDGEBOOT_DHCP_MODE');
  t.equal(nearestName('EDGEBOOT_HTTP_LISTN', names), 'EDGEBOOT_HTTP_LISTEN');
  t.equal(nearestName('EDGEBOOT_SERVER_DATADIR', names), 'EDGEBOOT_SERVER_DATA_DIR');
  t.equal(nearestName('edgeboot_dhcp_mode', names), 'EDGEBOOT_DHCP_MODE', 'case does not count');
  t.equal(nearestName('EDGEBOOT_NOTHING_LIKE_IT', names), undefined, 'nothing near: no guess');
  t.equal(nearestName('ab', ['ac']), undefined, 'a short name needs a close match');
  t.equal(nearestName('abcdef', ['abcdxy', 'abcdex']), 'abcdex', 'the nearest wins');
});
