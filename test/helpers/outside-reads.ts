/**
 * Finds reads outside the repository in the project's tests, helpers, benches and CI scripts. A
 * test that reads `../shared/…` or `/work/…` passes on one machine and fails in any other clone.
 *
 * The core (`findOutsideReads`) is pure: it takes a file's repository-relative path and its text.
 * It resolves each path expression from the file's own directory, counting the file's depth:
 * - TypeScript/JavaScript: `new URL('…', import.meta.url)`, relative import specifiers, and
 *   `join(…)`/`resolve(…)` whose base is known: the file's directory (`import.meta.dirname`,
 *   `__dirname`, `dirname(fileURLToPath(import.meta.url))`), or an anchor, that is a constant
 *   defined from those in this file or exported by a helper it imports (`REPO_ROOT`, `VM_DIR`, …);
 * - shell: `$(dirname "$0")/…`, `${BASH_SOURCE[0]}` alike, and variables set from them
 *   (`here=$(cd "$(dirname "$0")" && pwd)`, then `"$here/…"`).
 * Whatever the base, a string naming `../shared` (or the segments `'..', 'shared'`) or a path
 * under `/work` is reported. An absolute path given to a file-reading call or command must be
 * one of the system paths in ALLOWED_SYSTEM_PATHS. `scanRepository` is the thin shell that reads
 * the tree.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { extname, join, posix } from 'node:path';

export interface OutsideRead {
  /** Repository-relative path of the file, with `/` separators. */
  file: string;
  line: number;
  /** The expression as written (trimmed to one line). */
  expression: string;
  reason: string;
}

/** Identifier → the repository-relative directory (or absolute path) it holds; `''` is the root. */
export type Anchors = ReadonlyMap<string, string>;

/**
 * System paths that tests, helpers and benches read as tools or kernel interfaces, not as project
 * files. Each is installed by the CI's package list or provided by the kernel.
 */
export const ALLOWED_SYSTEM_PATHS: readonly { prefix: string; reason: string }[] = [
  { prefix: '/usr/lib/ipxe/', reason: "Debian's ipxe package: the iPXE binaries TFTP and /ipxe-bin serve" },
  { prefix: '/usr/share/OVMF/', reason: "Debian's ovmf package: UEFI firmware for the QEMU guests" },
  { prefix: '/boot/vmlinuz-', reason: "the host's Debian kernel (linux-image-amd64), booted by the VM tests" },
  { prefix: '/lib/modules/', reason: "that kernel's modules, packed into the test initramfs images" },
  { prefix: '/bin/busybox', reason: 'busybox-static, the userland of the test initramfs images' },
  { prefix: '/proc/', reason: 'the kernel: process status, open file descriptors, network counters' },
  { prefix: '/sys/', reason: 'the kernel: interface indexes, cgroup CPU accounting' },
  { prefix: '/dev/', reason: 'devices: /dev/null, /dev/urandom, /dev/shm scratch space, loop devices' },
  { prefix: '/tmp/', reason: 'scratch space a test or bench creates and removes' },
  { prefix: '/run/', reason: 'runtime state (network namespaces under /run/netns)' },
  { prefix: '/etc/os-release', reason: "the distribution's name and version, for a package installer to choose its packages" },
];

/**
 * Files that run inside a test VM (packed into its initramfs), where absolute paths are the
 * guest's own: `/proc/cmdline`, `/etc/systemd/system`, … Relative paths in them are still checked.
 */
export const GUEST_FILES: ReadonlySet<string> = new Set([
  'test/vm/init',
  'test/vm/udhcpc.script',
  'test/vm/live-standin/init',
  'test/vm/live-standin/systemctl',
  'test/vm/live-standin/udevadm',
  'test/vm/live-standin/udhcpc.script',
]);

/**
 * Files whose strings name the patterns this check looks for, without reading them: for these
 * the name rules (`../shared`, `/work`, `'..', 'shared'`) are off; their code is still resolved.
 */
export const NAMES_THE_PATTERNS: ReadonlyMap<string, string> = new Map([
  ['test/helpers/outside-reads.ts', 'the scanner: its patterns are written out in it'],
  ['test/unit/repo/outside-reads.test.ts', "the scanner's test: it feeds escaping paths to the scanner as strings"],
]);

/** The folders scanned, relative to the repository root. */
export const SCANNED_DIRS = ['test', 'bench', 'scripts', '.ci'] as const;

/** Data, not code: captures, schemas and goldens are read by tests, they read nothing. */
const DATA_DIRS = ['test/fixtures/', 'test/golden/'];

const JS_EXTENSIONS = new Set(['.ts', '.mts', '.cts', '.js', '.mjs', '.cjs']);

export type FileKind = 'js' | 'shell';

/** How a file is scanned, from its name and first line; `undefined`: not code, not scanned. */
export function fileKind(path: string, text: string): FileKind | undefined {
  if (DATA_DIRS.some((d) => path.startsWith(d))) return undefined;
  const ext = extname(path);
  if (JS_EXTENSIONS.has(ext)) return 'js';
  if (ext === '.sh') return 'shell';
  const shebang = /^#!\s*(\S+)(?:\s+(\S+))?/.exec(text);
  if (!shebang) return undefined;
  const interpreter = shebang[1]?.endsWith('/env') ? shebang[2] : shebang[1];
  return interpreter !== undefined && /(^|\/)(ba|da|k)?sh$/.test(interpreter) ? 'shell' : undefined;
}

// ---------------------------------------------------------------------------------------------
// Paths

const dirOf = (file: string): string => normalize(posix.dirname(file));

/** posix.normalize with the root as `''` and no trailing slash. */
function normalize(p: string): string {
  const n = posix.normalize(p);
  if (n === '.' || n === './') return '';
  return n.length > 1 && n.endsWith('/') ? n.slice(0, -1) : n;
}

/** `rel` taken from `base` (a repository-relative directory or an absolute path). */
const resolveFrom = (base: string, rel: string): string => (rel.startsWith('/') ? normalize(rel) : normalize(posix.join(base, rel)));

const escapes = (repoPath: string): boolean => repoPath === '..' || repoPath.startsWith('../');

const allowedSystemPath = (abs: string): boolean =>
  ALLOWED_SYSTEM_PATHS.some(({ prefix }) => abs.startsWith(prefix) || (prefix.endsWith('/') && abs === prefix.slice(0, -1)));

const underWork = (s: string): boolean => s === '/work' || s.startsWith('/work/');
const namesShared = (s: string): boolean => /(^|[^\w.])\.\.\/shared\b/.test(s);

// ---------------------------------------------------------------------------------------------
// A small JavaScript/TypeScript tokenizer: enough to find strings and calls, with comments,
// template interpolations and regular expression literals skipped so that their text is not
// mistaken for a path.

interface Token {
  kind: 'word' | 'str' | 'punct';
  /** For `str`: the literal's value (a template: its text up to the first `${`). */
  value: string;
  /** A template literal with an interpolation: `value` is only its head. */
  partial?: boolean;
  line: number;
  start: number;
  end: number;
}

/** After these a `/` starts a regular expression literal, not a division. */
const REGEX_AFTER_PUNCT = new Set(['(', ',', '=', ':', '[', '!', '&', '|', '?', '{', '}', ';', '+', '-', '*', '%', '<', '>', '~', '^']);
const REGEX_AFTER_WORD = new Set(['return', 'typeof', 'case', 'do', 'else', 'in', 'of', 'new', 'delete', 'void', 'throw', 'yield', 'await']);

function tokenizeJs(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  let line = 1;
  const n = text.length;
  const advanceTo = (end: number) => {
    for (let k = i; k < end; k++) if (text.charCodeAt(k) === 10) line++;
    i = end;
  };
  const regexAllowed = () => {
    const prev = tokens[tokens.length - 1];
    if (!prev) return true;
    if (prev.kind === 'punct') return REGEX_AFTER_PUNCT.has(prev.value);
    return prev.kind === 'word' && REGEX_AFTER_WORD.has(prev.value);
  };
  /** Index just past a quoted string starting at `from` (its quote), and its unescaped value. */
  const readQuoted = (from: number, quote: string): { end: number; value: string } => {
    let k = from + 1;
    let value = '';
    while (k < n && text[k] !== quote && text[k] !== '\n') {
      if (text[k] === '\\' && k + 1 < n) {
        value += text.charAt(k + 1);
        k += 2;
      } else value += text.charAt(k++);
    }
    return { end: Math.min(k + 1, n), value };
  };
  /** Index just past a template literal starting at `from`, with its head and whether it has `${`. */
  const readTemplate = (from: number): { end: number; value: string; partial: boolean } => {
    let k = from + 1;
    let value = '';
    let partial = false;
    while (k < n && text[k] !== '`') {
      if (text[k] === '\\') {
        if (!partial) value += text[k + 1] ?? '';
        k += 2;
      } else if (text[k] === '$' && text[k + 1] === '{') {
        partial = true;
        k = skipBalanced(k + 1);
      } else {
        if (!partial) value += text.charAt(k);
        k++;
      }
    }
    return { end: Math.min(k + 1, n), value, partial };
  };
  /** From an opening `{`, index just past its matching `}` (strings and templates inside skipped). */
  const skipBalanced = (from: number): number => {
    let depth = 0;
    let k = from;
    while (k < n) {
      const c = text[k];
      if (c === '{') depth++;
      else if (c === '}' && --depth === 0) return k + 1;
      else if (c === '"' || c === "'") {
        k = readQuoted(k, c).end;
        continue;
      } else if (c === '`') {
        k = readTemplate(k).end;
        continue;
      }
      k++;
    }
    return n;
  };
  while (i < n) {
    const c = text[i] ?? '';
    const next = text[i + 1];
    if (/\s/.test(c)) {
      advanceTo(i + 1);
    } else if (c === '/' && next === '/') {
      const eol = text.indexOf('\n', i);
      advanceTo(eol < 0 ? n : eol);
    } else if (c === '/' && next === '*') {
      const close = text.indexOf('*/', i + 2);
      advanceTo(close < 0 ? n : close + 2);
    } else if (c === '/' && regexAllowed()) {
      let k = i + 1;
      let inClass = false;
      while (k < n && text[k] !== '\n') {
        if (text[k] === '\\') k++;
        else if (text[k] === '[') inClass = true;
        else if (text[k] === ']') inClass = false;
        else if (text[k] === '/' && !inClass) break;
        k++;
      }
      advanceTo(k + 1);
    } else if (c === '"' || c === "'") {
      const { end, value } = readQuoted(i, c);
      tokens.push({ kind: 'str', value, line, start: i, end });
      advanceTo(end);
    } else if (c === '`') {
      const startLine = line;
      const { end, value, partial } = readTemplate(i);
      tokens.push({ kind: 'str', value, partial, line: startLine, start: i, end });
      advanceTo(end);
    } else if (/[\w$]/.test(c)) {
      let k = i;
      while (k < n && /[\w$]/.test(text[k] ?? '')) k++;
      tokens.push({ kind: 'word', value: text.slice(i, k), line, start: i, end: k });
      advanceTo(k);
    } else {
      tokens.push({ kind: 'punct', value: c, line, start: i, end: i + 1 });
      advanceTo(i + 1);
    }
  }
  return tokens;
}

// ---------------------------------------------------------------------------------------------
// Evaluating path expressions over tokens

/** A path expression's value: a repository-relative or absolute path, or not known statically. */
type PathValue = { known: true; path: string } | { known: false };
const UNKNOWN: PathValue = { known: false };

const JOIN_FUNCTIONS = new Set(['join', 'resolve']);
/** Calls whose first argument is a path the call reads. */
const READ_FUNCTIONS = new Set([
  'readFileSync',
  'readFile',
  'existsSync',
  'readdirSync',
  'readdir',
  'statSync',
  'stat',
  'lstatSync',
  'lstat',
  'openSync',
  'open',
  'opendirSync',
  'createReadStream',
  'copyFileSync',
  'copyFile',
  'cpSync',
  'cp',
  'accessSync',
  'access',
  'realpathSync',
]);

class JsScan {
  readonly anchors = new Map<string, string>();
  readonly findings: OutsideRead[] = [];
  private readonly fileDir: string;
  private readonly reported = new Set<string>();
  /** Set while a definition is evaluated only for its value: the loop reaches its calls itself. */
  private quiet = false;

  constructor(
    readonly file: string,
    readonly text: string,
    readonly tokens: Token[],
    imported: Anchors,
  ) {
    this.fileDir = dirOf(file);
    for (const [name, value] of imported) this.anchors.set(name, value);
  }

  private is(i: number, kind: Token['kind'], value?: string): boolean {
    const t = this.tokens[i];
    return t?.kind === kind && (value === undefined || t.value === value);
  }

  /** `import.meta.url` at i: the index past it, or -1. */
  private importMetaUrl(i: number): number {
    return this.importMeta(i, 'url') ? i + 5 : -1;
  }

  /** Index of the `)` matching the `(` at `open`. */
  private closing(open: number): number {
    let depth = 0;
    for (let k = open; k < this.tokens.length; k++) {
      const t = this.tokens[k];
      if (t?.kind !== 'punct') continue;
      if (t.value === '(' || t.value === '[' || t.value === '{') depth++;
      else if ((t.value === ')' || t.value === ']' || t.value === '}') && --depth === 0) return k;
    }
    return this.tokens.length;
  }

  /** The arguments of the call whose `(` is at `open`, as [start, end) token ranges. */
  private args(open: number): [number, number][] {
    const close = this.closing(open);
    const out: [number, number][] = [];
    let depth = 0;
    let start = open + 1;
    for (let k = open + 1; k < close; k++) {
      const t = this.tokens[k];
      if (t?.kind !== 'punct') continue;
      if ('([{'.includes(t.value)) depth++;
      else if (')]}'.includes(t.value)) depth--;
      else if (t.value === ',' && depth === 0) {
        out.push([start, k]);
        start = k + 1;
      }
    }
    if (start < close) out.push([start, close]);
    return out;
  }

  private text_(from: number, to: number): string {
    const a = this.tokens[from];
    const b = this.tokens[to - 1];
    if (!a || !b) return '';
    return this.text.slice(a.start, b.end).replace(/\s+/g, ' ').trim();
  }

  private report(at: number, end: number, reason: string): void {
    const finding = { file: this.file, line: this.tokens[at]?.line ?? 0, expression: this.text_(at, end), reason };
    const key = `${finding.line}\0${finding.expression}\0${reason}`;
    if (this.quiet || this.reported.has(key)) return;
    this.reported.add(key);
    this.findings.push(finding);
  }

  /** `import.meta.<prop>` at i. */
  private importMeta(i: number, prop: string): boolean {
    return (
      this.is(i, 'word', 'import') &&
      this.is(i + 1, 'punct', '.') &&
      this.is(i + 2, 'word', 'meta') &&
      this.is(i + 3, 'punct', '.') &&
      this.is(i + 4, 'word', prop)
    );
  }

  /**
   * The value of the path expression in tokens [from, to), or UNKNOWN. Reports a join/resolve
   * or URL inside it that climbs above the repository root.
   */
  evaluate(from: number, to: number): PathValue {
    const t = this.tokens[from];
    if (!t || from >= to) return UNKNOWN;
    if (t.kind === 'str' && to === from + 1) return t.partial ? UNKNOWN : { known: true, path: t.value };
    if (t.kind !== 'word') return UNKNOWN;
    // import.meta.dirname
    if (this.importMeta(from, 'dirname') && to === from + 5) {
      return { known: true, path: this.fileDir };
    }
    if (t.value === '__dirname' && to === from + 1) return { known: true, path: this.fileDir };
    if (to === from + 1) {
      const anchor = this.anchors.get(t.value);
      return anchor === undefined ? UNKNOWN : { known: true, path: anchor };
    }
    // new URL(lit, import.meta.url)
    if (t.value === 'new' && this.is(from + 1, 'word', 'URL') && this.is(from + 2, 'punct', '(')) {
      return this.closing(from + 2) === to - 1 ? this.urlValue(from, from + 2) : UNKNOWN;
    }
    // name( … ) or path.name( … ) / posix.name( … )
    let call = from;
    if (this.is(from + 1, 'punct', '.') && this.is(from + 2, 'word')) call = from + 2;
    const name = this.tokens[call]?.value ?? '';
    if (!this.is(call + 1, 'punct', '(') || this.closing(call + 1) !== to - 1) return UNKNOWN;
    const args = this.args(call + 1);
    if (name === 'fileURLToPath' && args.length === 1) {
      const [a, b] = args[0] ?? [0, 0];
      if (this.importMetaUrl(a) === b) return { known: true, path: this.file };
      return this.evaluate(a, b);
    }
    if (name === 'dirname' && args.length === 1) {
      const [a, b] = args[0] ?? [0, 0];
      const v = this.evaluate(a, b);
      return v.known ? { known: true, path: normalize(posix.dirname(v.path)) } : UNKNOWN;
    }
    if (JOIN_FUNCTIONS.has(name)) return this.joinValue(name, from, args, to);
    return UNKNOWN;
  }

  /** `new URL(lit, import.meta.url)` whose `(` is at `open`. */
  private urlValue(at: number, open: number): PathValue {
    const args = this.args(open);
    const [first, second] = args;
    if (args.length !== 2 || !first || !second) return UNKNOWN;
    if (this.importMetaUrl(second[0]) !== second[1]) return UNKNOWN;
    const lit = this.tokens[first[0]];
    if (first[1] !== first[0] + 1 || lit?.kind !== 'str') return UNKNOWN;
    const rel = lit.partial ? lit.value.slice(0, lit.value.lastIndexOf('/') + 1) : lit.value;
    const path = resolveFrom(this.fileDir, rel);
    if (escapes(path)) this.report(at, this.closing(open) + 1, `new URL('${lit.value}') from ${this.fileDir}/ resolves to ${path}, above the repository root`);
    return lit.partial ? UNKNOWN : { known: true, path };
  }

  /** join/resolve(args…) starting at token `at`: the segments taken in order from a known base. */
  private joinValue(name: string, at: number, args: [number, number][], end: number): PathValue {
    let value: PathValue = UNKNOWN;
    /** False past a computed segment: the path so far is a prefix of the result. */
    let complete = true;
    for (const [index, [a, b]] of args.entries()) {
      const arg = this.evaluate(a, b);
      if (index === 0) {
        value = arg;
        if (value.known && value.path.startsWith('/')) this.checkAbsolute(at, end, value.path);
      } else if (value.known && complete) {
        if (!arg.known) complete = false;
        // join() concatenates an absolute segment, resolve() starts again from it.
        else value = { known: true, path: resolveFrom(value.path, name === 'join' ? arg.path.replace(/^\/+/, '') : arg.path) };
      }
    }
    // Above the root a later segment cannot bring the path back in without naming the checkout's folder.
    if (value.known && escapes(value.path)) {
      this.report(at, end, `${name}(…) resolves to ${value.path}${complete ? '' : '/…'} (from the repository root), above it`);
      return UNKNOWN;
    }
    return complete ? value : UNKNOWN;
  }

  private checkAbsolute(at: number, end: number, abs: string): void {
    if (underWork(abs)) return; // reported once, by the string check
    if (!allowedSystemPath(abs)) this.report(at, end, `reads the absolute path ${abs}, which is not one of the allowed system paths`);
  }

  run(): void {
    const toks = this.tokens;
    for (let i = 0; i < toks.length; i++) {
      const t = toks[i];
      if (!t) continue;
      if (t.kind === 'str') this.checkString(i);
      if (t.kind !== 'word') continue;
      // const NAME = <path expression>
      if ((t.value === 'const' || t.value === 'let' || t.value === 'var') && this.is(i + 1, 'word') && this.is(i + 2, 'punct', '=')) {
        this.quiet = true;
        const v = this.evaluate(i + 3, this.expressionEnd(i + 3));
        this.quiet = false;
        const name = toks[i + 1]?.value;
        if (v.known && name) this.anchors.set(name, v.path);
        continue;
      }
      // import … from '…', export … from '…', import '…', import('…')
      if ((t.value === 'from' || t.value === 'import') && toks[i + 1]?.kind === 'str') this.checkSpecifier(i + 1);
      if (t.value === 'import' && this.is(i + 1, 'punct', '(') && toks[i + 2]?.kind === 'str') this.checkSpecifier(i + 2);
      if (t.value === 'new' && this.is(i + 1, 'word', 'URL') && this.is(i + 2, 'punct', '(')) this.urlValue(i, i + 2);
      const dotted = i > 0 && this.is(i - 1, 'punct', '.');
      if (this.is(i + 1, 'punct', '(') && (JOIN_FUNCTIONS.has(t.value) || READ_FUNCTIONS.has(t.value))) {
        const start = dotted && toks[i - 2]?.kind === 'word' ? i - 2 : i;
        const close = this.closing(i + 1);
        if (JOIN_FUNCTIONS.has(t.value)) {
          if (!dotted || ['path', 'posix', 'win32'].includes(toks[i - 2]?.value ?? '')) this.evaluate(start, close + 1);
        } else {
          const [first] = this.args(i + 1);
          if (first) {
            const v = this.evaluate(first[0], first[1]);
            const head = toks[first[0]];
            const abs = v.known ? v.path : head?.kind === 'str' && head.partial && head.value.startsWith('/') ? head.value : undefined;
            if (abs?.startsWith('/')) this.checkAbsolute(start, close + 1, abs);
            else if (v.known && escapes(v.path)) this.report(start, close + 1, `reads ${v.path}, above the repository root`);
          }
        }
      }
    }
  }

  /** End (exclusive) of the expression starting at `from`: up to a `;` or a new statement line. */
  private expressionEnd(from: number): number {
    let depth = 0;
    for (let k = from; k < this.tokens.length; k++) {
      const t = this.tokens[k];
      if (!t) break;
      if (t.kind === 'punct') {
        if ('([{'.includes(t.value)) depth++;
        else if (')]}'.includes(t.value)) {
          if (depth === 0) return k;
          depth--;
        } else if (depth === 0 && (t.value === ';' || t.value === ',')) return k;
      }
      // Without semicolons: a word on a new line after a complete operand starts the next statement.
      const next = this.tokens[k + 1];
      if (depth === 0 && next && next.line > t.line && next.kind === 'word' && t.kind !== 'punct') return k + 1;
    }
    return this.tokens.length;
  }

  private checkSpecifier(i: number): void {
    const t = this.tokens[i];
    if (!t?.value.startsWith('.')) return;
    const path = resolveFrom(this.fileDir, t.value);
    if (escapes(path)) this.report(i, i + 1, `the module '${t.value}' from ${this.fileDir}/ resolves to ${path}, above the repository root`);
  }

  private checkString(i: number): void {
    const t = this.tokens[i];
    if (!t || NAMES_THE_PATTERNS.has(this.file)) return;
    if (namesShared(t.value)) this.report(i, i + 1, "names '../shared', outside the repository");
    else if (underWork(t.value)) this.report(i, i + 1, `names ${t.value}, an absolute path outside the repository's own tree`);
    else if (t.value === '..' && this.is(i + 1, 'punct', ',') && /^shared(\/|$)/.test(this.tokens[i + 2]?.value ?? '') && this.is(i + 2, 'str')) {
      this.report(i, i + 3, "the segments '..', 'shared' climb out to a folder beside the repository");
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Shell

/** A line with its comment removed (a `#` that starts a word outside quotes). */
function stripShellComment(line: string): string {
  let quote: string | undefined;
  for (let k = 0; k < line.length; k++) {
    const c = line[k];
    if (quote) {
      if (c === '\\' && quote === '"') k++;
      else if (c === quote) quote = undefined;
    } else if (c === '\\') k++;
    else if (c === '"' || c === "'") quote = c;
    else if (c === '#' && (k === 0 || /[\s;&|(]/.test(line[k - 1] ?? ''))) return line.slice(0, k);
  }
  return line;
}

/** `$(dirname "$0")` and `$(dirname "${BASH_SOURCE[0]}")`, quoted or not. */
const SCRIPT_DIR = String.raw`\$\(\s*dirname\s+"?(?:\$0|\$\{0\}|\$\{BASH_SOURCE(?:\[0\])?\}|\$BASH_SOURCE)"?\s*\)`;
/** A path continuing a directory expression: `/rel/…` up to a quote, space or shell operator. */
const REL_TAIL = String.raw`((?:/[^\s"'\`;|&)<>$]*)*)`;
/** Commands whose path arguments are files they read. */
const SHELL_READ_COMMANDS = new Set(['cat', 'cp', 'source', '.', 'cd', 'ls', 'head', 'tail', 'sha256sum', 'ldd', 'du', 'readlink', 'realpath', 'stat']);

function scanShell(file: string, text: string): OutsideRead[] {
  const findings: OutsideRead[] = [];
  const fileDir = dirOf(file);
  const vars = new Map<string, string>();
  const guest = GUEST_FILES.has(file);
  const report = (line: number, expression: string, reason: string) => findings.push({ file, line, expression: expression.trim(), reason });
  const checkResolved = (line: number, expression: string, base: string, tail: string) => {
    const path = resolveFrom(base, tail.replace(/^\//, ''));
    if (escapes(path)) report(line, expression, `from ${fileDir || '.'}/ this resolves to ${path}, above the repository root`);
    return path;
  };
  text.split('\n').forEach((raw, index) => {
    const line = index + 1;
    const code = stripShellComment(raw);
    // here=$(cd "$(dirname "$0")/rel" && pwd), here=$(dirname "$0"), here="$(dirname "$0")/rel"
    const assign = new RegExp(String.raw`\b(\w+)=(?:\$\(\s*cd\s+"?|"?)${SCRIPT_DIR}${REL_TAIL}`).exec(code);
    if (assign?.[1]) vars.set(assign[1], checkResolved(line, assign[0], fileDir, assign[2] ?? ''));
    for (const m of code.matchAll(new RegExp(SCRIPT_DIR + REL_TAIL, 'g'))) {
      if (assign && m.index >= assign.index && m.index < assign.index + assign[0].length) continue;
      checkResolved(line, m[0], fileDir, m[1] ?? '');
    }
    for (const m of code.matchAll(new RegExp(String.raw`\$\{?(\w+)\}?` + REL_TAIL, 'g'))) {
      const base = m[1] ? vars.get(m[1]) : undefined;
      if (base !== undefined && m[2]) checkResolved(line, m[0], base, m[2]);
    }
    if (namesShared(code)) report(line, code, "names '../shared', outside the repository");
    for (const m of code.matchAll(/(?<![\w.$}/-])\/work(?:\/[^\s"'`;|&)]*)?/g)) {
      report(line, m[0], `names ${m[0]}, an absolute path outside the repository's own tree`);
    }
    if (guest) return;
    for (const abs of shellReadPaths(code)) {
      if (!underWork(abs) && !allowedSystemPath(abs)) report(line, abs, `reads the absolute path ${abs}, which is not one of the allowed system paths`);
    }
  });
  return findings;
}

/** Absolute paths a shell line reads: arguments of SHELL_READ_COMMANDS, `<` redirections, `[ -f … ]` tests. */
function shellReadPaths(code: string): string[] {
  const out: string[] = [];
  const unquote = (w: string) => w.replace(/^["']|["']$/g, '');
  for (const segment of code.split(/&&|\|\||[;|(){}]|\$\(|`/)) {
    const words = segment.trim().split(/\s+/).filter(Boolean).map(unquote);
    const [command, ...rest] = words;
    if (command && SHELL_READ_COMMANDS.has(command)) out.push(...rest.filter((w) => w.startsWith('/')));
  }
  for (const m of code.matchAll(/(?<![<\d&])<\s*"?(\/[^\s"';|&)]+)/g)) if (m[1]) out.push(m[1]);
  for (const m of code.matchAll(/\[\[?\s+!?\s*-[efdrsxL]\s+"?(\/[^\s"';|&)\]]+)/g)) if (m[1]) out.push(m[1]);
  return out;
}

// ---------------------------------------------------------------------------------------------
// The core and the shell around it

/** The anchors a JS/TS file defines (its `const NAME = <path expression>`), for files that import it. */
export function definedAnchors(file: string, text: string, imported: Anchors = new Map()): Anchors {
  const scan = new JsScan(file, text, tokenizeJs(text), imported);
  scan.run();
  return scan.anchors;
}

/** Imported names a JS/TS file takes from relative modules: local name → (repository path of the module, exported name). */
export function relativeImports(file: string, text: string): { local: string; exported: string; module: string }[] {
  const out: { local: string; exported: string; module: string }[] = [];
  for (const m of text.matchAll(/import\s+(?:type\s+)?\{([^}]*)\}\s*from\s*['"](\.[^'"]+)['"]/g)) {
    const module = resolveFrom(dirOf(file), m[2] ?? '').replace(/\.js$/, '.ts');
    for (const part of (m[1] ?? '').split(',')) {
      const names = /^\s*(?:type\s+)?(\w+)(?:\s+as\s+(\w+))?\s*$/.exec(part);
      if (names?.[1]) out.push({ exported: names[1], local: names[2] ?? names[1], module });
    }
  }
  return out;
}

/**
 * The reads outside the repository in one file, given its repository-relative path (with `/`)
 * and text. `imported`: anchors the file takes from the helpers it imports (see scanRepository).
 */
export function findOutsideReads(file: string, text: string, imported: Anchors = new Map()): OutsideRead[] {
  const kind = fileKind(file, text);
  if (kind === 'shell') return scanShell(file, text);
  if (kind !== 'js') return [];
  const scan = new JsScan(file, text, tokenizeJs(text), imported);
  scan.run();
  return scan.findings;
}

/** Every file under `dir` (repository-relative), recursively; symlinks are not followed. */
function listFiles(root: string, dir: string): string[] {
  let entries;
  try {
    entries = readdirSync(join(root, dir), { withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  return entries.flatMap((e) => {
    const rel = `${dir}/${e.name}`;
    if (e.isDirectory()) return e.name === 'node_modules' ? [] : listFiles(root, rel);
    return e.isFile() ? [rel] : [];
  });
}

/** Scans SCANNED_DIRS of the repository at `root`: the helpers' anchors first, then every file. */
export function scanRepository(root: string): { files: string[]; findings: OutsideRead[] } {
  const texts = new Map<string, string>();
  for (const dir of SCANNED_DIRS) {
    for (const file of listFiles(root, dir)) {
      const buf = readFileSync(join(root, file));
      if (!buf.includes(0)) texts.set(file, buf.toString('utf8'));
    }
  }
  const code = [...texts].filter(([file, text]) => fileKind(file, text) !== undefined);
  // Anchors pass: a helper's exported constants (two rounds, for anchors built from imported ones).
  let anchorsByFile = new Map<string, Anchors>();
  const importedAnchors = (file: string, text: string): Anchors => {
    const out = new Map<string, string>();
    for (const { local, exported, module } of relativeImports(file, text)) {
      const value = anchorsByFile.get(module)?.get(exported);
      if (value !== undefined) out.set(local, value);
    }
    return out;
  };
  for (let round = 0; round < 2; round++) {
    const next = new Map<string, Anchors>();
    for (const [file, text] of code) if (fileKind(file, text) === 'js') next.set(file, definedAnchors(file, text, importedAnchors(file, text)));
    anchorsByFile = next;
  }
  const findings = code.flatMap(([file, text]) => findOutsideReads(file, text, importedAnchors(file, text)));
  return { files: code.map(([file]) => file), findings };
}
