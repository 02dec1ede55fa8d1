/**
 * Lists the project as the source copy would send it (same walk, same .dockerignore filter), for
 * `--separate-weights` to pick the weights from. Directories the weights rules never look into
 * (.git, .cog, __pycache__) are not entered.
 */
import { walkContext } from '../buildkit/filesync.js';
import { ContextFilter } from '../buildkit/patterns.js';
import { type ListedEntry, type WeightsSplit, findWeights } from '../plan/weights.js';

const notWalked = ['**/.git', '**/.cog', '**/__pycache__'];

/** Regular files and directories of `root` that a transfer excluding `exclude` would send. */
export async function listProject(root: string, exclude: readonly string[]): Promise<ListedEntry[]> {
  const filter = new ContextFilter({ exclude: [...exclude, ...notWalked] });
  const entries: ListedEntry[] = [];
  for await (const entry of walkContext(root, filter)) {
    // `file` is set for regular files only: symlinks and devices are never weights
    if (entry.file !== undefined)
      entries.push({ path: entry.path, kind: 'file', size: Number(entry.stat.size ?? 0) });
    else if ((entry.stat.mode ?? 0) & 0x80000000) entries.push({ path: entry.path, kind: 'dir', size: 0 });
  }
  return entries;
}

/** The weights of the project at `root` (see src/plan/weights.ts for the rules). */
export async function findProjectWeights(root: string, exclude: readonly string[]): Promise<WeightsSplit> {
  return findWeights(await listProject(root, exclude));
}
