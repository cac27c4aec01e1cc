/**
 * The parts of a machine search every store reads alike (store.ts MachineSearch): the bounds of
 * the window and what the text looks for.
 */
import { MACHINE_SEARCH_MAX_LIMIT, type MachineSearch } from './store.js';

/** Throws a RangeError unless offset and limit are whole numbers in bounds. */
export function checkSearchWindow({ offset, limit }: Pick<MachineSearch, 'offset' | 'limit'>): void {
  if (!Number.isSafeInteger(offset) || offset < 0) throw new RangeError(`machine search: offset ${offset} is not a whole number ≥ 0`);
  if (!Number.isSafeInteger(limit) || limit < 0 || limit > MACHINE_SEARCH_MAX_LIMIT) {
    throw new RangeError(`machine search: limit ${limit} is not a whole number from 0 to ${MACHINE_SEARCH_MAX_LIMIT}`);
  }
}

/** What a search text looks for, lower case; every field is a plain substring (no wildcards). */
export interface SearchText {
  /** In hostname, IP, serials and the colon form of every MAC. */
  needle: string;
  /** A (partial) MAC typed with hyphens, in the colon form MACs are stored in. */
  colonMac?: string;
  /** A (partial) MAC typed as bare hex digits: a substring of the 12 digits of a MAC. */
  hexMac?: string;
}

const HEX_DIGITS = /^[0-9a-f]{1,12}$/;
/** Octets of one or two digits between hyphens, the first and last possibly cut: `aa-bb-c`, `-bb-cc`. */
const HYPHENATED_OCTETS = /^-?[0-9a-f]{1,2}(?:-[0-9a-f]{1,2})*-?$/;

/** Only A-Z are folded: SQLite's LIKE folds no other letters, and both stores must agree. */
export function asciiLowerCase(s: string): string {
  return s.replace(/[A-Z]+/g, (upper) => upper.toLowerCase());
}

/** The text of a search, or undefined when it filters nothing (absent, or blank). */
export function searchText(text: string | undefined): SearchText | undefined {
  const needle = asciiLowerCase(text?.trim() ?? '');
  if (needle === '') return undefined;
  if (HEX_DIGITS.test(needle)) return { needle, hexMac: needle };
  if (needle.includes('-') && HYPHENATED_OCTETS.test(needle)) return { needle, colonMac: needle.replaceAll('-', ':') };
  return { needle };
}
