/**
 * When a process on this machine started, from Linux's /proc: a lock file naming a live pid was left by
 * another process when that pid's process started after the lock was written (the pid was reused).
 */
import { readFile } from 'node:fs/promises';

/**
 * The start time in ms since the epoch from `/proc/<pid>/stat` and `/proc/stat`: the process's
 * `starttime` (field 22, clock ticks after boot; the name in field 2 may hold spaces and parentheses,
 * so fields are counted after its last `)`) plus the boot time `btime`. Linux reports these ticks in
 * USER_HZ, 100 a second on every architecture. Undefined when either text is not as expected. Pure.
 */
export function processStartFromProc(
  pidStat: string,
  procStat: string,
  ticksPerSecond = 100,
): number | undefined {
  const close = pidStat.lastIndexOf(')');
  if (close < 0) return undefined;
  const ticks = pidStat
    .slice(close + 1)
    .trim()
    .split(/\s+/)[19];
  const boot = /^btime\s+(\d+)\s*$/m.exec(procStat)?.[1];
  if (ticks === undefined || !/^\d+$/.test(ticks) || boot === undefined) return undefined;
  return Number(boot) * 1000 + (Number(ticks) * 1000) / ticksPerSecond;
}

/** When process `pid` started (ms since the epoch); undefined where /proc cannot tell (not Linux, gone). */
export async function processStartMs(pid: number): Promise<number | undefined> {
  try {
    const [pidStat, procStat] = await Promise.all([
      readFile(`/proc/${pid}/stat`, 'utf8'),
      readFile('/proc/stat', 'utf8'),
    ]);
    return processStartFromProc(pidStat, procStat);
  } catch {
    return undefined;
  }
}
