/**
 * Where writing a file at a path lands, as the kernel's open() follows symbolic links: through every
 * link on the way, a relative link read from its link's real directory (`..` from a linked directory is
 * its target's parent), and a link whose target does not exist yet leads to that target (created there).
 * Atomic writers put their temporary file next to this place and rename it there, so a link stays a link.
 */
import { lstat, readlink, realpath } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';

/** The file writing `path` lands in; a missing file is written where it is named. Rejects ELOOP for a loop. */
export async function writeTarget(path: string): Promise<string> {
  try {
    return await realpath(path); // there, through any links
  } catch {
    // missing, or a link to nothing: follow the links from each directory's real path
  }
  let target = path;
  for (let hops = 0; hops < 40; hops++) {
    let dir: string;
    try {
      dir = await realpath(dirname(target));
    } catch {
      return target; // its directory is missing too: made fresh
    }
    const here = join(dir, basename(target));
    const isLink = await lstat(here).then(
      (st) => st.isSymbolicLink(),
      () => false,
    );
    if (!isLink) return here;
    target = resolve(dir, await readlink(here));
  }
  throw Object.assign(new Error(`too many levels of symbolic links: ${path}`), { code: 'ELOOP' });
}
