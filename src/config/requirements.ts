// requirements.txt text → logical lines, and what each line is: a local wheel/sdist to copy into the
// build, a remote or index requirement to pass through, or a local form Cog does not support.
import { posix, win32 } from 'node:path';

export interface RequirementLine {
  /** the requirement with continuations joined, comments stripped and whitespace trimmed */
  text: string;
  /** 1-based line the requirement starts on (0 for python_packages entries) */
  line: number;
}

/**
 * Split requirements text into logical lines: CRLF and "\" continuations are handled, blank lines,
 * comment lines and `-e .` are skipped, and inline comments (a "#" at the start or after whitespace,
 * as pip reads them) are removed.
 */
export function parseRequirementsText(text: string): RequirementLine[] {
  const physical = text.split('\n').map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
  const out: RequirementLine[] = [];
  let pending = '';
  let startLine = 0;
  physical.forEach((raw, i) => {
    if (pending === '') startLine = i + 1;
    if (raw.endsWith('\\')) {
      pending += raw.slice(0, -1);
      return;
    }
    const joined = pending + raw;
    pending = '';
    const line = stripComment(joined).trim();
    if (line === '' || /^-e\s+\.$/.test(line)) return;
    out.push({ text: line, line: startLine });
  });
  if (pending !== '') {
    const line = stripComment(pending).trim();
    if (line !== '' && !/^-e\s+\.$/.test(line)) out.push({ text: line, line: startLine });
  }
  return out;
}

function stripComment(line: string): string {
  const m = /(^|\s)#/.exec(line);
  return m === null ? line : line.slice(0, m.index);
}

/** python_packages entries as requirement lines (line 0: they have no file). */
export function requirementsFromList(packages: readonly string[]): RequirementLine[] {
  return packages
    .map((p) => p.trim())
    .filter((p) => p !== '' && !p.startsWith('#'))
    .map((text) => ({ text, line: 0 }));
}

// ---------------------------------------------------------------------------------------------
// Local artifacts

export type RequirementKind =
  { kind: 'artifact'; path: string } | { kind: 'other' } | { kind: 'rejected'; message: string };

const ARTIFACT_SUFFIXES = ['.whl', '.zip', '.tar.gz', '.tgz', '.tar.bz2', '.tar.xz'];

function isRemote(text: string): boolean {
  return text.includes('://') || text.startsWith('git+');
}
function isFileUrl(text: string): boolean {
  return text.toLowerCase().startsWith('file:');
}
function isLocalPath(text: string): boolean {
  return posix.isAbsolute(text) || win32.isAbsolute(text) || text.startsWith('./') || text.startsWith('../');
}
function hasArtifactSuffix(text: string): boolean {
  const lower = text.toLowerCase();
  return ARTIFACT_SUFFIXES.some((s) => lower.endsWith(s));
}
function looksLikeArtifact(text: string): boolean {
  return !isRemote(text) && (isLocalPath(text) || hasArtifactSuffix(text));
}
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** Value of `option` at the start of `line` ("-f dir", "--find-links=dir", "--find-links dir"). */
function optionValue(line: string, option: string): string | undefined {
  if (!line.startsWith(option)) return undefined;
  let rest = line.slice(option.length);
  if (rest === '') return undefined;
  if (option.startsWith('--')) {
    if (rest.startsWith('=')) rest = rest.slice(1);
    else if (!/^\s/.test(rest)) return undefined;
  }
  return rest.trim();
}

/** An artifact path followed by an option: "--anything", "-f …" or "-r …". */
function hasInlineOption(line: string): boolean {
  for (const m of line.matchAll(/\s+/g)) {
    if (!looksLikeArtifact(line.slice(0, m.index).trim())) continue;
    const rest = line.slice(m.index + m[0].length);
    if (
      rest.startsWith('--') ||
      optionValue(rest, '-f') !== undefined ||
      optionValue(rest, '-r') !== undefined
    ) {
      return true;
    }
  }
  return false;
}

/** Classify one requirement line (already comment-stripped and trimmed). */
export function classifyRequirement(text: string): RequirementKind {
  const line = text.trim();
  if (line === '') return { kind: 'other' };
  if (isFileUrl(line)) return { kind: 'rejected', message: 'local file URL requirements are not supported' };

  const at = line.indexOf('@');
  if (at > 0) {
    const name = line.slice(0, at).trim();
    const target = line.slice(at + 1).trim();
    const spaced = /\s$/.test(line.slice(0, at)) || /^\s/.test(line.slice(at + 1));
    if (NAME.test(name)) {
      if (isFileUrl(target))
        return { kind: 'rejected', message: 'local file URL requirements are not supported' };
      if (isLocalPath(target) || (spaced && looksLikeArtifact(target))) {
        return {
          kind: 'rejected',
          message:
            'local direct reference requirements (`name @ path`) are not supported; list the path directly instead',
        };
      }
    }
  }

  if (line.startsWith('-')) {
    for (const option of ['--find-links', '--requirement', '-f', '-r']) {
      const value = optionValue(line, option);
      if (value !== undefined && value !== '' && (isFileUrl(value) || !isRemote(value))) {
        return { kind: 'rejected', message: `local requirements option "${option}" is not supported` };
      }
    }
    return { kind: 'other' };
  }

  // "./pkg.whl --hash=..." or "./pkg.whl -f dir"
  if (hasInlineOption(line)) {
    return {
      kind: 'rejected',
      message: 'local package artifact requirements do not support inline options or hashes',
    };
  }
  if (isRemote(line)) return { kind: 'other' };

  const semi = line.indexOf(';');
  if (semi >= 0 && looksLikeArtifact(line.slice(0, semi).trim())) {
    return {
      kind: 'rejected',
      message: 'environment markers are not supported on local package artifact requirements',
    };
  }
  const bracket = line.indexOf('[');
  if (bracket >= 0 && line.endsWith(']') && looksLikeArtifact(line.slice(0, bracket).trim())) {
    return { kind: 'rejected', message: 'extras are not supported on local package artifact requirements' };
  }

  if (!isLocalPath(line) && !hasArtifactSuffix(line)) return { kind: 'other' };
  if (!hasArtifactSuffix(line)) {
    return {
      kind: 'rejected',
      message: 'local package requirement is not a supported wheel or source archive',
    };
  }
  return { kind: 'artifact', path: line };
}

// ---------------------------------------------------------------------------------------------
// Names and versions

/** The distribution name at the start of a requirement, extras included: "torch[cu]>=2" → "torch[cu]". */
export function packageName(requirement: string): string {
  const m = /^([A-Za-z0-9_.-]+(?:\[[^\]]+\])?)/.exec(requirement);
  return m?.[1] ?? '';
}

/** PEP 503 normalised name without extras: "Cog_SDK[x]" → "cog-sdk". */
export function normalisedName(requirement: string): string {
  return packageName(requirement)
    .replace(/\[.*$/, '')
    .toLowerCase()
    .replace(/[-_.]+/g, '-');
}

/** Every version named by a specifier, in order: "torch>=2.0,<3" → ["2.0", "3"]. */
export function specifierVersions(requirement: string): string[] {
  const out: string[] = [];
  for (const m of requirement.matchAll(/[<>=!~]=?\s*([^\s,;|]+)/g)) if (m[1] !== undefined) out.push(m[1]);
  return out;
}

/**
 * The version of `name` the requirements ask for: the first specifier value; "" when the package is
 * listed without one; undefined when it is absent. Local artifacts are skipped.
 */
export function findPackageVersion(lines: readonly RequirementLine[], name: string): string | undefined {
  for (const { text } of lines) {
    if (classifyRequirement(text).kind !== 'other') continue;
    if (packageName(text) !== name) continue;
    return specifierVersions(text)[0] ?? '';
  }
  return undefined;
}

/** The requirement line for `name`, if any (for error locations). */
export function findPackageLine(
  lines: readonly RequirementLine[],
  name: string,
): RequirementLine | undefined {
  return lines.find((l) => classifyRequirement(l.text).kind === 'other' && packageName(l.text) === name);
}
