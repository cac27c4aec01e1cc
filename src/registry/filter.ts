import { parse as parseYaml } from 'yaml';

/**
 * An image filter as factory-precaching-cli takes one: a YAML document `patterns: [aws, azure,
 * "\\bvsphere\\b"]`, or one regular expression per line (blank lines and `#` comments
 * skipped). An image is left out when any pattern matches its reference or its name.
 */
export interface ImageFilter {
  patterns: RegExp[];
  /** The first pattern matching any of `texts`, as written, or undefined. */
  excludes(...texts: string[]): string | undefined;
}

export function parseFilter(text: string): ImageFilter {
  let sources: string[];
  if (/^\s*patterns\s*:/m.test(text)) {
    const doc = parseYaml(text) as { patterns?: unknown } | null;
    const list = doc?.patterns;
    if (!Array.isArray(list) || !list.every((p): p is string => typeof p === 'string')) throw new Error('the filter\'s "patterns" must be a list of strings');
    sources = list;
  } else {
    sources = text
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '' && !l.startsWith('#'));
  }
  const patterns = sources.map((p) => {
    try {
      return new RegExp(p);
    } catch (err) {
      throw new Error(`the filter pattern ${JSON.stringify(p)} is not a regular expression: ${(err as Error).message}`, { cause: err });
    }
  });
  return {
    patterns,
    excludes: (...texts) => patterns.find((re) => texts.some((t) => re.test(t)))?.source,
  };
}
