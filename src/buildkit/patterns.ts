/**
 * `.dockerignore` pattern matching with the semantics of moby/patternmatcher, and the include/exclude
 * filter that tonistiigi/fsutil applies while walking a local context (the client, not the daemon,
 * filters what it sends). Reimplemented from the behaviour of those Go packages:
 *
 * - Patterns are trimmed and cleaned like Go's `filepath.Clean` (`./a//b/` is `a/b`); a leading `!`
 *   makes an exception. A later pattern wins over an earlier one.
 * - `*` is any run of characters but `/`, `?` one character but `/`, `[...]` a character class
 *   (`[^...]` negated), `\` escapes the next character. `**` spans directories: `**` alone matches
 *   everything, `**\/x` matches `x` at any depth, `a/**` everything below `a`.
 * - A path matches when it or one of its parent directories matches, so excluding a directory
 *   excludes its contents; an exception can re-include something below it.
 */
import { readFileSync, statSync } from 'node:fs';
import { lstat, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { CogError } from '../errors.js';

/** Go's `filepath.Clean` for `/`-separated paths: `.`/`..` resolved, slashes collapsed, no trailing `/`. */
export function cleanPath(path: string): string {
  if (path === '') return '.';
  const rooted = path.startsWith('/');
  const out: string[] = [];
  for (const part of path.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (out.length > 0 && out[out.length - 1] !== '..') out.pop();
      else if (!rooted) out.push('..');
      continue;
    }
    out.push(part);
  }
  const joined = out.join('/');
  if (rooted) return `/${joined}`;
  return joined === '' ? '.' : joined;
}

export class PatternError extends Error {
  constructor(pattern: string, reason: string) {
    super(`invalid pattern ${JSON.stringify(pattern)}: ${reason}`);
    this.name = 'PatternError';
  }
}

/**
 * Checks the syntax the way Go's `filepath.Match` does (patternmatcher rejects what it rejects): a
 * trailing `\`, an unterminated or empty `[...]`, and `-` or `]` where a class expects a character.
 */
function checkSyntax(pattern: string): void {
  const chars = [...pattern];
  let i = 0;
  const classChar = (): void => {
    const c = chars[i];
    if (c === undefined || c === '-' || c === ']') throw new PatternError(pattern, 'syntax error in pattern');
    if (c === '\\') {
      i++;
      if (chars[i] === undefined) throw new PatternError(pattern, 'syntax error in pattern');
    }
    i++;
  };
  while (i < chars.length) {
    const c = chars[i];
    if (c === '\\') {
      if (i + 1 >= chars.length) throw new PatternError(pattern, 'syntax error in pattern');
      i += 2;
    } else if (c === '[') {
      i++;
      if (chars[i] === '^') i++;
      let ranges = 0;
      for (;;) {
        if (chars[i] === ']' && ranges > 0) {
          i++;
          break;
        }
        classChar();
        if (chars[i] === '-') {
          i++;
          classChar();
        }
        ranges++;
      }
    } else {
      i++;
    }
  }
}

/** Characters with a meaning in a regexp but none in a pattern: matched literally (as patternmatcher does). */
const literalSpecials = new Set([...'.+()|{}$']);
/** Characters that may (and, with the `u` flag, only these may) follow a `\` in a JavaScript regexp. */
const regexpSyntax = new Set([...'^$\\.*+?()[]{}|/']);

type MatchType =
  | { readonly kind: 'exact' }
  | { readonly kind: 'prefix'; readonly prefix: string }
  | { readonly kind: 'suffix'; readonly suffix: string }
  | { readonly kind: 'regexp'; readonly regexp: RegExp };

/** Translates a cleaned pattern as patternmatcher does: plain text, a `prefix**`, a `**suffix`, or a regexp. */
function compile(pattern: string): MatchType {
  let re = '^';
  let type: 'exact' | 'prefix' | 'suffix' | 'regexp' = 'exact';
  let inClass = false; // only to choose a valid escape inside [...]
  const chars = [...pattern];
  for (let i = 0, n = 0; i < chars.length; i++, n++) {
    const ch = chars[i] as string;
    if (ch === '*') {
      if (chars[i + 1] === '*') {
        i++;
        if (chars[i + 1] === '/') i++; // `**/` is `**`
        if (i + 1 >= chars.length) {
          // a trailing `**` accepts everything, like .gitignore
          if (type === 'exact') type = 'prefix';
          else {
            re += '.*';
            type = 'regexp';
          }
        } else {
          re += '(.*/)?';
          type = 'regexp';
        }
        if (n === 0) type = 'suffix';
      } else {
        re += '[^/]*';
        type = 'regexp';
      }
    } else if (ch === '?') {
      re += '[^/]';
      type = 'regexp';
    } else if (ch === '\\') {
      const next = chars[i + 1];
      if (next === undefined) {
        re += '\\\\';
      } else {
        i++;
        if (/^[A-Za-z0-9]$/.test(next))
          re += `\\${next}`; // \d, \w, \t ... as in Go's regexp
        else if (regexpSyntax.has(next) || (inClass && next === '-')) re += `\\${next}`;
        else re += next;
        type = 'regexp';
      }
    } else if (ch === ']' && !inClass) {
      re += '\\]'; // a literal there, as in Go's regexp (JavaScript's refuses a lone one)
    } else if (ch === '[' || ch === ']') {
      re += ch;
      inClass = ch === '[';
      type = 'regexp';
    } else if (literalSpecials.has(ch)) {
      re += `\\${ch}`;
    } else {
      re += ch;
    }
  }
  switch (type) {
    case 'exact':
      return { kind: 'exact' };
    case 'prefix':
      return { kind: 'prefix', prefix: pattern.slice(0, -2) };
    case 'suffix':
      return { kind: 'suffix', suffix: pattern.slice(2) };
    case 'regexp':
      try {
        return { kind: 'regexp', regexp: new RegExp(`${re}$`, 'u') };
      } catch (err) {
        throw new PatternError(pattern, (err as Error).message);
      }
  }
}

/** One pattern of a list: its cleaned text, whether it is an exception (`!`), and how it matches. */
export class Pattern {
  /** the cleaned pattern, without the `!` */
  readonly text: string;
  readonly exclusion: boolean;
  /** how many path components the pattern has */
  readonly depth: number;
  private readonly type: MatchType;

  constructor(raw: string) {
    // cleaned before the `!` is removed, as patternmatcher does (so `!./a` stays `./a`)
    let p = cleanPath(raw.trim());
    this.exclusion = p.startsWith('!');
    if (this.exclusion) {
      if (p.length === 1) throw new PatternError(raw, 'illegal exclusion pattern: "!"');
      p = p.slice(1);
    }
    checkSyntax(p);
    this.text = p;
    this.depth = p.split('/').length;
    this.type = compile(p);
  }

  /** Whether the pattern matches `path` itself (not its parents). */
  match(path: string): boolean {
    const type = this.type;
    switch (type.kind) {
      case 'exact':
        return path === this.text;
      case 'prefix':
        return path.startsWith(type.prefix);
      case 'suffix':
        // `**/foo` also matches `foo`
        return path.endsWith(type.suffix) || (type.suffix.startsWith('/') && path === type.suffix.slice(1));
      case 'regexp':
        return type.regexp.test(path);
    }
  }

  /** The pattern without a trailing `/**` or `/*`: the directory below which it can match. */
  withoutTrailingGlob(): string {
    let p = this.text;
    if (p.endsWith('/**')) p = p.slice(0, -3);
    if (p.endsWith('/*')) p = p.slice(0, -2);
    return p;
  }

  toString(): string {
    return this.exclusion ? `!${this.text}` : this.text;
  }
}

/** Per-pattern results for a directory, so that its children need not re-match every parent. */
export type MatchInfo = readonly boolean[];

/** An ordered list of patterns, `.dockerignore` style: the last pattern that matches decides. */
export class PatternMatcher {
  readonly patterns: readonly Pattern[];
  /** whether any pattern is an exception (`!...`) */
  readonly hasExclusions: boolean;

  /** Throws a PatternError for a malformed pattern; blank patterns are skipped. */
  constructor(patterns: readonly string[]) {
    this.patterns = patterns.filter((p) => p.trim() !== '').map((p) => new Pattern(p));
    this.hasExclusions = this.patterns.some((p) => p.exclusion);
  }

  /** Whether `path` (`/`-separated, relative) or one of its parent directories is matched. */
  matches(path: string): boolean {
    return this.matchesUsingParent(path).matched;
  }

  /**
   * Like `matches`, with the results of `path`'s parent directory (from the call for that directory),
   * as a walk does; without them every parent directory of `path` is tried.
   */
  matchesUsingParent(path: string, parent?: MatchInfo): { matched: boolean; info: MatchInfo } {
    const info: boolean[] = [];
    let matched = false;
    let parents: string[] | undefined;
    const known = parent !== undefined && parent.length > 0;
    this.patterns.forEach((pattern, i) => {
      let match = parent?.[i] ?? false;
      if (!match) {
        // an inclusion cannot change a match, an exception cannot change a non-match
        if (pattern.exclusion !== matched) {
          info.push(false);
          return;
        }
        match = pattern.match(path);
        if (!match && !known) {
          parents ??= parentDirs(path);
          match = parents.some((dir) => pattern.match(dir));
        }
      }
      info.push(match);
      if (match) matched = !pattern.exclusion;
    });
    return { matched, info };
  }
}

/** `a/b/c` -> `a`, `a/b` */
function parentDirs(path: string): string[] {
  const parts = path.split('/');
  const out: string[] = [];
  for (let i = 1; i < parts.length; i++) out.push(parts.slice(0, i).join('/'));
  return out;
}

/** What to do with one entry of a walk. */
export type FilterDecision =
  /** send the entry (and any parent directories not sent yet) */
  | 'keep'
  /** do not send it, but walk a directory's contents: something below may be kept */
  | 'hide'
  /** do not send it nor anything below it */
  | 'skip';

/** The filter state of a directory, handed to the checks of its entries. */
export interface DirFilterState {
  readonly include?: MatchInfo;
  readonly exclude?: MatchInfo;
}

/** Characters that make a pattern more than a literal path prefix. */
const globChars = /[*[\]?^\\]/;

export interface ContextFilterOptions {
  readonly include?: readonly string[];
  readonly exclude?: readonly string[];
}

/**
 * fsutil's walk filter: an entry is sent if it matches the include patterns (when there are any) and
 * does not match the exclude patterns. Directories are only skipped outright when no pattern could
 * select something below them (include patterns or exclude exceptions that are plain path prefixes);
 * otherwise they are walked and their contents checked one by one.
 */
export class ContextFilter {
  private readonly include: PatternMatcher | undefined;
  private readonly exclude: PatternMatcher | undefined;
  private readonly onlyPrefixIncludes: boolean;
  private readonly onlyPrefixExceptions: boolean;

  constructor(options: ContextFilterOptions) {
    this.include = options.include?.length ? new PatternMatcher(options.include) : undefined;
    this.exclude = options.exclude?.length ? new PatternMatcher(options.exclude) : undefined;
    this.onlyPrefixIncludes = !(this.include?.patterns ?? []).some(
      (p) => !p.exclusion && globChars.test(p.withoutTrailingGlob()),
    );
    this.onlyPrefixExceptions = !(this.exclude?.patterns ?? []).some(
      (p) => p.exclusion && globChars.test(p.withoutTrailingGlob()),
    );
  }

  /** Whether the filter lets everything through. */
  get empty(): boolean {
    return this.include === undefined && this.exclude === undefined;
  }

  /** Decides about `path`; for a directory, `state` is what its entries' checks need. */
  check(
    path: string,
    isDir: boolean,
    parent: DirFilterState = {},
  ): { decision: FilterDecision; state: DirFilterState } {
    let hide = false;
    let include: MatchInfo | undefined;
    let exclude: MatchInfo | undefined;
    if (this.include) {
      const r = this.include.matchesUsingParent(path, parent.include);
      include = r.info;
      if (!r.matched) {
        if (isDir && this.onlyPrefixIncludes && !this.couldMatchBelow(this.include, path, false)) {
          return { decision: 'skip', state: {} };
        }
        hide = true;
      }
    }
    if (this.exclude) {
      const r = this.exclude.matchesUsingParent(path, parent.exclude);
      exclude = r.info;
      if (r.matched) {
        if (isDir && this.onlyPrefixExceptions) {
          if (!this.exclude.hasExclusions || !this.couldMatchBelow(this.exclude, path, true)) {
            return { decision: 'skip', state: {} };
          }
        }
        hide = true;
      }
    }
    const state: DirFilterState = {
      ...(include ? { include } : {}),
      ...(exclude ? { exclude } : {}),
    };
    return { decision: hide ? 'hide' : 'keep', state };
  }

  /** Whether a pattern (inclusions, or exceptions when `exceptions`) names something below `dir`. */
  private couldMatchBelow(matcher: PatternMatcher, dir: string, exceptions: boolean): boolean {
    const dirSlash = `${dir}/`;
    return matcher.patterns.some(
      (p) => p.exclusion === exceptions && `${p.withoutTrailingGlob()}/`.startsWith(dirSlash),
    );
  }
}

/**
 * `pattern` with no ", " in it, matching the same names: buildkitd hands a transfer's patterns to the
 * session as repeated header fields, which Node's HTTP/2 joins with ", " (see transferRequest), so a
 * pattern holding ", " came back as two. Outside a class the space becomes the class `[ ]`; inside one
 * it is escaped.
 */
export function withoutCommaSpace(pattern: string): string {
  let out = '';
  let inClass = false;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i] as string;
    if (c === ' ' && out.endsWith(',')) {
      // in a class an escaped space, which cannot start a range as a moved one could (`[+, -x]`)
      out += inClass ? '\\ ' : '[ ]';
    } else if (c === '\\' && i + 1 < pattern.length) {
      out += c + (pattern[++i] as string);
    } else {
      if (c === '[' && !inClass) inClass = true;
      else if (c === ']' && inClass) inClass = false;
      out += c;
    }
  }
  return out;
}

/**
 * Reads a `.dockerignore` file's text into exclude patterns, as moby/patternmatcher's ignorefile does:
 * a UTF-8 BOM is dropped, lines starting with `#` are comments, lines are trimmed and blank ones
 * skipped, patterns are cleaned and a leading `/` removed; a `!` prefix is kept.
 */
export function parseDockerignore(text: string): string[] {
  return dockerignoreLines(text).map((l) => l.pattern);
}

/** The patterns of a `.dockerignore` text with the line each is on (see parseDockerignore). */
function dockerignoreLines(text: string): { pattern: string; line: number }[] {
  const patterns: { pattern: string; line: number }[] = [];
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  lines.forEach((line, index) => {
    if (line.startsWith('#')) return;
    let pattern = line.trim();
    if (pattern === '') return;
    const invert = pattern.startsWith('!');
    if (invert) pattern = pattern.slice(1).trim();
    if (pattern.length > 0) {
      pattern = cleanPath(pattern);
      if (pattern.length > 1 && pattern.startsWith('/')) pattern = pattern.slice(1);
    }
    patterns.push({ pattern: invert ? `!${pattern}` : pattern, line: index + 1 });
  });
  return patterns;
}

/**
 * The patterns of the file `name`'s text, each checked as the build will use it: one that Docker's
 * builder refuses (`foo[`, a lone `!`) is named with its line now, not when the context is sent.
 * @throws CogError
 */
function checkedDockerignore(text: string, name: string): string[] {
  const patterns = dockerignoreLines(text);
  for (const { pattern, line } of patterns) {
    try {
      new Pattern(pattern);
    } catch (err) {
      if (!(err instanceof PatternError)) throw err;
      throw new CogError(`${name}:${line}: ${err.message}`, {
        hint: pattern.startsWith('!')
          ? `a ! is followed by the pattern it makes an exception for: complete or remove that line of ${name}`
          : `fix or remove that line of ${name} (a [ starts a character class: write \\[ for a literal one)`,
      });
    }
  }
  return patterns.map((p) => p.pattern);
}

/** The exclude patterns of `dir/.dockerignore`, or none if there is no such file. */
export async function readDockerignore(dir: string, name = '.dockerignore'): Promise<string[]> {
  return readDockerignoreSync(dir, name);
}

/**
 * `readDockerignore` without waiting (for `cog build`'s up-to-date check, which must be quick; the
 * file is small). No file, or a link to nothing, is no patterns, as for Docker; anything else that is
 * no readable regular file is named.
 * @throws CogError
 */
export function readDockerignoreSync(dir: string, name = '.dockerignore'): string[] {
  const path = join(dir, name);
  try {
    const stat = statSync(path, { throwIfNoEntry: false });
    if (stat === undefined) return [];
    // a FIFO would block the read for ever
    if (!stat.isFile())
      throw new CogError(`${name} is ${stat.isDirectory() ? 'a directory' : 'not a regular file'}`, {
        hint: `${name} holds the patterns of files the build leaves out: make it a file, or remove it`,
      });
    return checkedDockerignore(readFileSync(path, 'utf8'), name);
  } catch (err) {
    if (err instanceof CogError) throw err;
    throw new CogError(`${name} cannot be read: ${(err as Error).message}`, {
      hint: `check the permissions of ${name}`,
    });
  }
}

function hasWildcards(name: string): boolean {
  for (let i = 0; i < name.length; i++) {
    const ch = name[i];
    if (ch === '\\') i++;
    else if (ch === '*' || ch === '?' || ch === '[') return true;
  }
  return false;
}

function isNotFound(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/** Drops paths below an earlier path of the list (expects it sorted); `undefined` if the root is in it. */
export function dedupePaths(paths: readonly string[]): string[] | undefined {
  const out: string[] = [];
  let last: string | undefined;
  for (const p of paths) {
    if (p === '.') return undefined;
    if (last !== undefined && p.startsWith(`${last}/`)) continue;
    out.push(p);
    last = p;
  }
  return out;
}

/**
 * fsutil's FollowLinks: the given paths (a last component may hold wildcards) plus, for every symlink
 * met along them, the symlink and its target, followed recursively within `root`. The result is
 * added to the include patterns, so that a symlink arrives with what it points to.
 */
export async function resolveFollowPaths(
  root: string,
  paths: readonly string[],
): Promise<string[] | undefined> {
  const resolved = new Set<string>();

  /** The targets (as absolute, context-rooted paths) of the symlink(s) at `p`, or undefined. */
  const readSymlink = async (p: string, allowWildcard: boolean): Promise<string[] | undefined> => {
    const slash = p.lastIndexOf('/');
    const base = slash < 0 ? p : p.slice(slash + 1);
    const parent = slash < 0 ? '.' : p.slice(0, slash);
    if (allowWildcard && hasWildcards(base)) {
      if (parent === '..' || parent.startsWith('../')) return undefined;
      let names: string[];
      try {
        names = await readdir(join(root, parent));
      } catch (err) {
        if (isNotFound(err)) return undefined;
        throw err;
      }
      let matcher: Pattern;
      try {
        matcher = new Pattern(base);
      } catch {
        return undefined;
      }
      let out: string[] | undefined;
      for (const name of names.sort()) {
        if (!matcher.match(name)) continue;
        const targets = await readSymlink(parent === '.' ? name : `${parent}/${name}`, false);
        if (targets) out = [...(out ?? []), ...targets];
      }
      return out;
    }
    if (p === '.' || p === '/' || p === '..' || p.startsWith('../')) return undefined;
    let isLink: boolean;
    try {
      isLink = (await lstat(join(root, p))).isSymbolicLink();
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
    if (!isLink) return undefined;
    const link = cleanPath(await readlink(join(root, p)));
    if (link.startsWith('/')) return [link];
    return [cleanPath(`/${parent}/${link}`)];
  };

  const append = async (path: string): Promise<void> => {
    // context-relative: `/a` is `a` (an absolute symlink target points into the context too)
    let p = cleanPath(path);
    if (p.startsWith('/')) p = cleanPath(p.slice(1));
    let current = '.';
    for (;;) {
      const slash = p.indexOf('/');
      const first = slash < 0 ? p : p.slice(0, slash);
      current = cleanPath(`${current}/${first}`);
      const targets = await readSymlink(current, true);
      p = slash < 0 ? '' : p.slice(slash + 1);
      if ((p === '' || targets) && resolved.has(current)) return;
      if (targets) {
        resolved.add(current);
        for (const target of targets) await append(p ? `${target}/${p}` : target);
        return;
      }
      if (p === '') {
        resolved.add(current);
        return;
      }
    }
  };

  for (const p of paths) await append(p);
  return dedupePaths([...resolved].sort(byteOrder));
}

/** Byte-wise (UTF-8) order of two strings, as Go sorts them. */
export function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

/**
 * The include/exclude filter for one transfer, from the patterns the daemon asked for: follow paths
 * are resolved against `root` and added to the include patterns, as fsutil does.
 */
export async function contextFilter(
  root: string,
  options: ContextFilterOptions & { readonly followPaths?: readonly string[] },
): Promise<ContextFilter> {
  let include = options.include ? [...options.include] : undefined;
  if (options.followPaths?.length) {
    const targets = await resolveFollowPaths(root, options.followPaths);
    // as in fsutil: the root among the targets leaves the include patterns as they are; the root
    // among the include patterns lifts them
    if (targets !== undefined) include = dedupePaths([...(include ?? []), ...targets]);
  }
  return new ContextFilter({
    ...(include?.length ? { include } : {}),
    ...(options.exclude ? { exclude: options.exclude } : {}),
  });
}
