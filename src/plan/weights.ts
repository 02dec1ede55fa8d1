/**
 * `--separate-weights`: which parts of the project are model weights, to be copied into an image layer
 * of their own (upstream Cog's legacy weights split, rules reimplemented). Pure: it works on a listing
 * of the project, made by src/build/project-listing.ts.
 *
 * - Weight files are regular files of at least 10 MiB, outside .git, .cog and __pycache__ directories,
 *   that are not code (.py, .ipynb), wheels, logs, images, video or audio.
 * - A directory holding a code file (at any depth) is a code directory and is never split out: its
 *   large files stay in the source copy.
 * - A large file below the project root is split out with its directory; nested weight directories
 *   collapse into the topmost one that is split out. Large files at the root are listed one by one.
 */

export const weightSizeThreshold = 10 * 1024 * 1024;

/** One entry of a project listing; `path` is project-relative with `/` separators. */
export interface ListedEntry {
  readonly path: string;
  readonly kind: 'file' | 'dir';
  /** bytes; 0 for directories */
  readonly size: number;
}

export interface WeightsSplit {
  /** project-relative directories copied whole, sorted */
  readonly dirs: readonly string[];
  /** project-relative files at the project root, sorted */
  readonly files: readonly string[];
}

const skippedDirNames = new Set(['.git', '.cog', '__pycache__']);
const codeExtensions = new Set(['.py', '.ipynb']);
const nonWeightExtensions = new Set([
  '.py',
  '.ipynb',
  '.whl',
  '.log',
  // images
  '.jpg',
  '.jpeg',
  '.png',
  '.gif',
  '.bmp',
  '.tif',
  '.tiff',
  '.webp',
  '.svg',
  '.ico',
  '.heic',
  // video
  '.mp4',
  '.m4v',
  '.mov',
  '.avi',
  '.mkv',
  '.webm',
  '.wmv',
  '.flv',
  '.mpg',
  '.mpeg',
  // audio
  '.mp3',
  '.wav',
  '.flac',
  '.ogg',
  '.oga',
  '.opus',
  '.aac',
  '.m4a',
  '.wma',
]);

function extension(path: string): string {
  const name = path.slice(path.lastIndexOf('/') + 1);
  const dot = name.lastIndexOf('.');
  return dot <= 0 ? '' : name.slice(dot).toLowerCase();
}

function parentOf(path: string): string {
  const slash = path.lastIndexOf('/');
  return slash < 0 ? '' : path.slice(0, slash);
}

/** Whether a walk should not enter the directory `path` (nothing below it can be a weight or code). */
export function isSkippedDir(path: string): boolean {
  return skippedDirNames.has(path.slice(path.lastIndexOf('/') + 1));
}

function inSkippedDir(path: string): boolean {
  const parts = path.split('/');
  return parts.slice(0, -1).some((part) => skippedDirNames.has(part));
}

/** Whether `path` is `dir` or below it (by whole path components). */
export function isWithin(path: string, dir: string): boolean {
  return path === dir || path.startsWith(`${dir}/`);
}

/** The weight directories and root weight files of a project listing. */
export function findWeights(
  entries: readonly ListedEntry[],
  threshold: number = weightSizeThreshold,
): WeightsSplit {
  const codeDirs = new Set<string>();
  const large: string[] = [];
  for (const entry of entries) {
    if (entry.kind !== 'file' || inSkippedDir(entry.path)) continue;
    const ext = extension(entry.path);
    if (codeExtensions.has(ext)) {
      // every directory above a code file is a code directory
      for (let dir = parentOf(entry.path); dir !== ''; dir = parentOf(dir)) codeDirs.add(dir);
      continue;
    }
    if (entry.size >= threshold && !nonWeightExtensions.has(ext)) large.push(entry.path);
  }
  const files: string[] = [];
  const candidates = new Set<string>();
  for (const path of large) {
    const dir = parentOf(path);
    if (dir === '') files.push(path);
    else if (!codeDirs.has(dir)) candidates.add(dir);
  }
  // topmost first, so a nested candidate finds the one it collapses into already kept
  const dirs: string[] = [];
  for (const dir of [...candidates].sort((a, b) => depth(a) - depth(b) || compare(a, b))) {
    if (!dirs.some((kept) => isWithin(dir, kept))) dirs.push(dir);
  }
  return { dirs: dirs.sort(compare), files: files.sort(compare) };
}

function depth(path: string): number {
  return path.split('/').length;
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Escapes a literal path for a .dockerignore-style pattern (`*?[]\` and a leading `!`). */
export function literalPattern(path: string): string {
  const escaped = path.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
  return escaped.startsWith('!') ? `\\${escaped}` : escaped;
}

/** The split-out paths as a person reads them: directories with a trailing `/`, then root files. */
export function weightPaths(split: WeightsSplit): string[] {
  return [...split.dirs.map((dir) => `${dir}/`), ...split.files];
}

/** The patterns that keep the split-out weights out of the source copy. */
export function weightExcludes(split: WeightsSplit): string[] {
  return [
    ...split.dirs.flatMap((dir) => [literalPattern(dir), `${literalPattern(dir)}/**`]),
    ...split.files.map(literalPattern),
  ];
}

/** The patterns that select just the weights for their own transfer. */
export function weightIncludes(split: WeightsSplit): string[] {
  return [...split.dirs, ...split.files].map(literalPattern);
}
