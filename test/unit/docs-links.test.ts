/**
 * The README and docs/ (issue 16): every relative link in README.md and docs/*.md names a file
 * or folder of the repository, and every #anchor a heading of the page it points to, as GitHub
 * makes heading ids. Every page of docs/ is linked from the README, and the README's first
 * fenced block holds exactly the two commands a newcomer runs. The checker is tried on
 * synthetic pages first, so that a checker which found nothing could not pass on the real ones.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import t from 'tap';
import { REPO_ROOT } from '../helpers/process.js';

interface Link {
  line: number;
  target: string;
}

interface BrokenLink extends Link {
  reason: string;
}

/** The lines of a Markdown page outside fenced code blocks, each with its 1-based number. */
function proseLines(text: string): { line: number; text: string }[] {
  const out: { line: number; text: string }[] = [];
  let fenced = false;
  text.split('\n').forEach((line, i) => {
    if (/^\s*```/.test(line)) fenced = !fenced;
    else if (!fenced) out.push({ line: i + 1, text: line });
  });
  return out;
}

/** Inline links `[text](target)` of the prose; code spans are not links. */
function markdownLinks(text: string): Link[] {
  const links: Link[] = [];
  for (const { line, text: prose } of proseLines(text)) {
    const withoutCode = prose.replace(/`[^`]*`/g, '');
    for (const m of withoutCode.matchAll(/\[[^\]]*\]\(([^)\s]+)\)/g)) links.push({ line, target: m[1] ?? '' });
  }
  return links;
}

/** GitHub's id for a heading: lower case, punctuation dropped, spaces to hyphens, repeats numbered. */
function headingIds(text: string): Set<string> {
  const ids = new Set<string>();
  const seen = new Map<string, number>();
  for (const { text: prose } of proseLines(text)) {
    const m = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(prose);
    if (!m) continue;
    const base = (m[1] ?? '')
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    ids.add(n === 0 ? base : `${base}-${n}`);
  }
  return ids;
}

/** The links of one page (path relative to root) that do not resolve inside root. */
function brokenLinks(root: string, page: string, read: (path: string) => string): BrokenLink[] {
  const text = read(page);
  const broken: BrokenLink[] = [];
  for (const link of markdownLinks(text)) {
    if (/^[a-z][a-z0-9+.-]*:/i.test(link.target)) continue; // https:, mailto: …: not a file of ours
    const hash = link.target.indexOf('#');
    const pathPart = hash < 0 ? link.target : link.target.slice(0, hash);
    const anchor = hash < 0 ? undefined : link.target.slice(hash + 1);
    const targetPage = pathPart === '' ? page : relative(root, resolve(root, dirname(page), pathPart));
    if (targetPage === '..' || targetPage.startsWith(`..${sep}`)) {
      broken.push({ ...link, reason: `${pathPart} leaves the repository` });
      continue;
    }
    if (!existsSync(join(root, targetPage))) {
      broken.push({ ...link, reason: `${targetPage} does not exist` });
      continue;
    }
    if (anchor !== undefined && !headingIds(read(targetPage)).has(anchor)) {
      broken.push({ ...link, reason: `${targetPage} has no heading #${anchor}` });
    }
  }
  return broken;
}

const readIn = (root: string) => (path: string) => readFileSync(join(root, path), 'utf8');
const docsPages = readdirSync(join(REPO_ROOT, 'docs'))
  .filter((f) => f.endsWith('.md'))
  .map((f) => `docs/${f}`)
  .sort();

t.test('the checker finds a missing file, a missing heading and a path out of the repository', async (t) => {
  const dir = t.testdir({
    'README.md': [
      '# Top',
      'See [a](docs/a.md), [its part](docs/a.md#the-registry-mirror-v2), [here](#top) and [a folder](docs/).',
      'Broken: [gone](docs/gone.md), [no part](docs/a.md#nowhere), [out](../outside.md), [no top](#bottom).',
      '`[in code](docs/gone.md)` and [web](https://example.org/x) are not checked.',
      '```',
      '[in a fence](docs/gone.md)',
      '```',
    ].join('\n'),
    docs: { 'a.md': '# A\n\n## The registry mirror (`/v2/`)\n\nBack to [the README](../README.md#top).\n' },
  });
  t.same(
    brokenLinks(dir, 'README.md', readIn(dir)).map((b) => [b.line, b.target, b.reason]),
    [
      [3, 'docs/gone.md', 'docs/gone.md does not exist'],
      [3, 'docs/a.md#nowhere', 'docs/a.md has no heading #nowhere'],
      [3, '../outside.md', '../outside.md leaves the repository'],
      [3, '#bottom', 'README.md has no heading #bottom'],
    ],
  );
  t.same(brokenLinks(dir, 'docs/a.md', readIn(dir)), [], 'a link up to the README and its anchor resolve');
  t.same([...headingIds('# Tests\n## Tests\n## Tests\n### A, b & c: `d`\n')], ['tests', 'tests-1', 'tests-2', 'a-b--c-d']);
});

t.test('every relative link of README.md and docs/ resolves in the repository', async (t) => {
  t.ok(docsPages.length >= 17, `docs/ holds its pages (${docsPages.length})`);
  for (const page of ['README.md', ...docsPages]) {
    const broken = brokenLinks(REPO_ROOT, page, readIn(REPO_ROOT));
    t.same(
      broken.map((b) => `${page}:${b.line}: ${b.target}: ${b.reason}`),
      [],
      `${page}: links resolve`,
    );
  }
});

t.test('the README links every page of docs/', async (t) => {
  const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
  const linked = new Set(markdownLinks(readme).map((l) => l.target.split('#')[0]));
  t.same(
    docsPages.filter((p) => !linked.has(p)),
    [],
    'no page of docs/ is unreachable from the README',
  );
});

t.test("the README's first fenced block is exactly the two commands", async (t) => {
  const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
  const first = /^```[^\n]*\n([\s\S]*?)^```/m.exec(readme);
  t.equal(first?.[1], 'npm ci && npm start\nnpm test\n');
});
