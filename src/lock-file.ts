/**
 * Lock files between cog processes: a file made with O_EXCL next to what it guards, naming its holder
 * (`pid@host:start`). A waiter waits for a live holder, and clears the lock of one that is gone (died
 * holding it: a crash, the OOM killer, kill -9), so no later command is stuck on a leftover.
 */
import { type FileHandle, open, readFile, rm, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import { CogError } from './errors.js';
import { processStartTicks } from './process-start.js';

/** A lock from another host older than this was left by a process that died holding it. */
const staleLockMs = 30_000;

/**
 * What a lock file says: the process holding it, on which host, and (where /proc tells) when that
 * process started, which tells it apart from a later process given the same pid.
 */
async function lockOwner(): Promise<string> {
  const ticks = await processStartTicks('self');
  return `${process.pid}@${hostname()}${ticks === undefined ? '' : `:${ticks}`}`;
}

/**
 * Whether the lock file (as stat'ed) was left by a process that no longer runs: its pid on this host
 * is gone, or now belongs to another process (its start differs from the one the lock records: the
 * pid was reused). A lock without a start (written where /proc does not tell) is held while its pid runs.
 */
async function isStaleLock(lock: string, mtimeMs: number): Promise<boolean> {
  const owner = await readFile(lock, 'utf8').catch(() => '');
  const match = /^(\d+)@(.*?)(?::(\d+))?$/.exec(owner.trim());
  if (match && match[2] === hostname()) {
    const pid = Number(match[1]);
    try {
      process.kill(pid, 0);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ESRCH') return true;
      if (code !== 'EPERM') return false; // cannot tell: wait
    }
    // alive (EPERM: another user's): the writer, unless it started at another time than the writer
    const recorded = match[3];
    if (recorded === undefined) return false;
    const current = await processStartTicks(pid);
    return current !== undefined && current !== recorded;
  }
  return Date.now() - mtimeMs > staleLockMs;
}

/** A guard left by a process that died while clearing a stale lock (a matter of milliseconds) is this old. */
const staleGuardMs = 5_000;

/**
 * Removes the lock when it is still stale, judged again under a guard file (`<lock>.clearing`, taken
 * with O_EXCL): two waiters that both found the dead holder's lock would otherwise both remove "it",
 * the second one removing the lock the first had taken since (a new file can even get the freed inode,
 * so comparing inodes does not tell). Under the guard, a lock taken anew names a live holder, or is
 * still empty, and is left alone. A waiter that finds the guard taken leaves the clearing to its holder.
 */
async function clearStaleLock(lock: string): Promise<void> {
  const guard = `${lock}.clearing`;
  try {
    await (await open(guard, 'wx', 0o600)).close();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') return; // the lock's own wait times out then
    const left = await stat(guard).catch(() => undefined);
    if (left && Date.now() - left.mtimeMs > staleGuardMs)
      await rm(guard, { force: true }).catch(() => undefined);
    else await new Promise((r) => setTimeout(r, 10)); // its holder is clearing it now
    return;
  }
  try {
    const now = await stat(lock).catch(() => undefined);
    if (now && (await isStaleLock(lock, now.mtimeMs)))
      await rm(lock, { force: true }).catch((rmErr: unknown) => {
        throw new CogError(
          `cannot remove the stale lock ${lock} (${(rmErr as NodeJS.ErrnoException).code ?? 'error'})`,
          { hint: `remove ${lock} by hand` },
        );
      });
  } finally {
    await rm(guard, { force: true }).catch(() => undefined);
  }
}

export interface LockWait {
  /** how long to wait for a live holder */
  readonly waitMs: number;
  /** the error when a live holder still has the lock after `waitMs` */
  readonly busy: () => CogError;
}

/**
 * Takes the lock file, waiting for a live holder and clearing a dead one's. `held: false` with the
 * cause when no lock file can be made there (a read-only directory): the caller decides.
 */
export async function takeLockFile(
  lock: string,
  wait: LockWait,
): Promise<{ readonly held: true } | { readonly held: false; readonly cause: unknown }> {
  const deadline = Date.now() + wait.waitMs;
  for (;;) {
    let handle: FileHandle;
    try {
      handle = await open(lock, 'wx', 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') return { held: false, cause: err };
      const seen = await stat(lock).catch(() => undefined);
      if (seen && (await isStaleLock(lock, seen.mtimeMs))) {
        await clearStaleLock(lock);
        continue;
      }
      if (Date.now() > deadline) throw wait.busy();
      await new Promise((r) => setTimeout(r, 25 + Math.random() * 50));
      continue;
    }
    // held from here, whether or not the owner's name is written
    await handle.writeFile(await lockOwner()).catch(() => undefined);
    await handle.close().catch(() => undefined);
    return { held: true };
  }
}

/** Lets the lock go (the holder's last step). */
export async function releaseLockFile(lock: string): Promise<void> {
  await rm(lock, { force: true }).catch(() => undefined);
}
