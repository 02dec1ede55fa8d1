/**
 * Which process holds a pid, from Linux's /proc: a process's start time (in clock ticks after boot)
 * tells it apart from a later process given the same pid. A lock file records its writer's; a live pid
 * whose start differs is another process, and the lock was left by one that died. No wall clock is
 * involved (a lock on a network file system carries its server's clock in its mtime).
 */
import { readFile } from 'node:fs/promises';

/**
 * The fields of a `/proc/<pid>/stat` line from field 3 (the state) on: the command name in field 2
 * may hold spaces and parentheses, so fields are counted after its last `)`. Pure.
 */
export function procStatFields(pidStat: string): string[] {
  const close = pidStat.lastIndexOf(')');
  return close < 0
    ? []
    : pidStat
        .slice(close + 1)
        .trim()
        .split(/\s+/);
}

/** The `starttime` (field 22: clock ticks after boot) of a `/proc/<pid>/stat` line; undefined when unreadable. Pure. */
export function startTicksFromProc(pidStat: string): string | undefined {
  const ticks = procStatFields(pidStat)[19];
  return ticks !== undefined && /^\d+$/.test(ticks) ? ticks : undefined;
}

/** When process `pid` started, in clock ticks after boot; undefined where /proc cannot tell (not Linux, gone). */
export async function processStartTicks(pid: number | 'self'): Promise<string | undefined> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  return stat === undefined ? undefined : startTicksFromProc(stat);
}
