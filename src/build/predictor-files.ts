/**
 * The files cog.yaml's `run:`/`predict:` and `train:` name must reach the image's /src: a .dockerignore
 * pattern that leaves one out builds an image whose server cannot start (the schema is read from the
 * project on this machine, so nothing fails until the model runs). Pure.
 */
import { posix } from 'node:path';
import {
  ContextFilter,
  type DirFilterState,
  type Pattern,
  PatternError,
  PatternMatcher,
} from '../buildkit/patterns.js';
import type { CogConfig } from '../config/types.js';

/** A file cog.yaml names for the server to load, and the key naming it. */
export interface ReferencedFile {
  readonly key: 'run' | 'predict' | 'train';
  /** relative to the project, `/`-separated, e.g. `src/predict.py` */
  readonly file: string;
}

/** The file part of `predict.py:Predictor`, relative to the project; undefined outside it or malformed. */
function referencedPath(ref: string): string | undefined {
  const colon = ref.indexOf(':');
  if (colon <= 0) return undefined;
  const file = posix.normalize(ref.slice(0, colon).replace(/\\/g, '/'));
  if (posix.isAbsolute(file) || file === '..' || file.startsWith('../')) return undefined;
  return file;
}

/** The predictor and trainer files of a config, with the key that names each. */
export function referencedFiles(config: Pick<CogConfig, 'run' | 'predict' | 'train'>): ReferencedFile[] {
  const files: ReferencedFile[] = [];
  const add = (key: ReferencedFile['key'], ref: string | undefined) => {
    const file = ref?.trim() ? referencedPath(ref.trim()) : undefined;
    if (file) files.push({ key, file });
  };
  // `run` wins over the deprecated `predict` when both are set, as in the completed config
  if (config.run?.trim()) add('run', config.run);
  else add('predict', config.predict);
  add('train', config.train);
  return files;
}

/** A referenced file the .dockerignore patterns leave out, with the pattern that does. */
export interface ExcludedFile extends ReferencedFile {
  readonly pattern: string;
}

/**
 * The referenced files `exclude` (the .dockerignore patterns) keeps out of the build's context, decided
 * as the context walk decides (ContextFilter, each directory's results handed to its entries): a file
 * is left out when a directory above it is skipped or the file itself is not sent. A pattern list that
 * does not parse is the build's to refuse: nothing is reported for it here.
 */
export function excludedReferencedFiles(
  files: readonly ReferencedFile[],
  exclude: readonly string[],
): ExcludedFile[] {
  let filter: ContextFilter;
  let matcher: PatternMatcher;
  try {
    filter = new ContextFilter({ exclude });
    matcher = new PatternMatcher(exclude);
  } catch (err) {
    if (err instanceof PatternError) return [];
    throw err;
  }
  const excluded: ExcludedFile[] = [];
  for (const ref of files) {
    const pattern = excludingPattern(filter, matcher, ref.file);
    if (pattern) excluded.push({ ...ref, pattern: pattern.text });
  }
  return excluded;
}

/**
 * The pattern that leaves `file` out of the walk `filter` makes, undefined when the walk sends it: its
 * directories are checked from the top, each with its parent's state, as the walk checks them. Once
 * a path is left out, the pattern named is the last one matching it (with the same parent results),
 * the one that made the match.
 */
function excludingPattern(filter: ContextFilter, matcher: PatternMatcher, file: string): Pattern | undefined {
  const parts = file.split('/');
  let state: DirFilterState = {};
  for (let i = 1; i <= parts.length; i++) {
    const path = parts.slice(0, i).join('/');
    const isDir = i < parts.length;
    const checked = filter.check(path, isDir, state);
    // a directory that is not sent itself is still walked: something below it may be
    if (checked.decision === 'skip' || (checked.decision === 'hide' && !isDir)) {
      const { info } = matcher.matchesUsingParent(path, state.exclude);
      const last = info.lastIndexOf(true);
      return matcher.patterns[last];
    }
    state = checked.state;
  }
  return undefined;
}

/** What to tell the user about an excluded file: the message and the hint. */
export function excludedFileMessage(
  excluded: ExcludedFile,
  configFile: string,
): { message: string; hint: string } {
  const role = excluded.key === 'train' ? 'trainer' : 'predictor';
  return {
    message:
      `.dockerignore leaves out ${excluded.file} (pattern "${excluded.pattern}"), the ${role} ` +
      `${configFile} names in ${excluded.key}: — the image would have no ${role} and its server would fail to start`,
    hint: `remove that pattern from .dockerignore, or add the line !${excluded.file} below it`,
  };
}
