/**
 * Which progress view a command renders in, from `--progress` or BUILDKIT_PROGRESS. Kept apart from
 * the renderers so that `cog build`'s quick answers can check the value without loading them.
 */
import { CogError } from '../errors.js';

export const progressModes = ['auto', 'tty', 'plain', 'rawjson', 'quiet'] as const;
export type ProgressMode = (typeof progressModes)[number];
export type ResolvedProgressMode = Exclude<ProgressMode, 'auto'>;

/**
 * The mode to render in: the `--progress` flag if given, else BUILDKIT_PROGRESS if set and not
 * empty, else `auto`; `auto` becomes `tty` when the output is a terminal and `plain` otherwise.
 * An explicit `tty` is honoured even when the output is not a terminal.
 * @throws CogError for a value that is not a mode, naming where it came from
 */
export function resolveProgressMode(
  flag: string | undefined,
  env: NodeJS.ProcessEnv,
  isTTY: boolean,
): ResolvedProgressMode {
  const fromEnv = env.BUILDKIT_PROGRESS !== undefined && env.BUILDKIT_PROGRESS.trim() !== '';
  const source = flag !== undefined ? '--progress' : fromEnv ? 'BUILDKIT_PROGRESS' : undefined;
  const raw = flag ?? (fromEnv ? env.BUILDKIT_PROGRESS : undefined) ?? 'auto';
  const mode = progressModes.find((candidate) => candidate === raw.trim().toLowerCase());
  if (mode === undefined) {
    const where =
      source === '--progress'
        ? `--progress ${JSON.stringify(raw)}`
        : `BUILDKIT_PROGRESS=${JSON.stringify(raw)}`;
    throw new CogError(`invalid progress mode ${where}`, {
      hint: `use one of: ${progressModes.join(', ')}${source === 'BUILDKIT_PROGRESS' ? ' (or unset BUILDKIT_PROGRESS)' : ''}`,
    });
  }
  if (mode !== 'auto') return mode;
  return isTTY ? 'tty' : 'plain';
}
