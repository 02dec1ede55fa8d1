/**
 * Whether files can be written in a directory, asked before a long build or run that writes there at
 * the end: it may be missing, a file may stand where a directory should (`out.json/x`), or it may not
 * take files (permissions, a read-only mount, a pseudo file system like /proc or /sys).
 */
import { randomBytes } from 'node:crypto';
import { open, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';

/** Why files cannot be written in a directory. */
export type DirectoryProblem =
  /** the directory does not exist (nor a file in its place): `mkdir -p` would make it */
  | { readonly kind: 'missing' }
  /** `path` (the directory or one above it) is a file, not a directory */
  | { readonly kind: 'file'; readonly path: string }
  /** it exists, and a file made in it was refused with `code` */
  | { readonly kind: 'unwritable'; readonly code: string };

async function statOf(path: string) {
  return stat(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT' || err.code === 'ENOTDIR') return undefined;
    throw err;
  });
}

/** What stops files being written in `dir` (absolute), or undefined when a file could be made there. */
export async function directoryProblem(dir: string): Promise<DirectoryProblem | undefined> {
  // the nearest of dir and its parents that exists: a directory (dir is missing) or a file in the way
  for (let path = dir; ; path = dirname(path)) {
    const found = await statOf(path);
    if (found && !found.isDirectory()) return { kind: 'file', path };
    if (found && path !== dir) return { kind: 'missing' };
    if (found) break;
    if (dirname(path) === path) return { kind: 'missing' };
  }
  // a file made and removed at once: access() says yes to root on read-only and pseudo file systems
  const probe = join(dir, `.cog-write-check-${randomBytes(6).toString('hex')}`);
  try {
    await (await open(probe, 'wx', 0o600)).close();
  } catch (err) {
    return { kind: 'unwritable', code: (err as NodeJS.ErrnoException).code ?? 'error' };
  }
  await rm(probe, { force: true });
  return undefined;
}
