/**
 * Keeps a private buildkitd from outliving the command that started it, however the command ends.
 * The command's own close stops it normally; until then the guard covers the ways around that:
 * - `process.exit` (a second Ctrl-C, see cli/interrupt.ts): stopped synchronously in an 'exit' listener;
 * - SIGINT/SIGTERM that no command handler takes (one that installs none, like `cog cache du`, or one
 *   whose handler is not installed yet): stopped, then the signal is raised again, so the process ends
 *   as the signal would have ended it. A second signal while it stops ends it at once.
 */
import { readFileSync } from 'node:fs';

export interface DaemonStops {
  /** stops the daemon and removes its files; called once */
  readonly stop: () => Promise<void>;
  /** the same without waiting for the event loop: at exit */
  readonly stopNow: () => void;
  /** says what a signal no command takes does */
  readonly notice: (signal: NodeJS.Signals) => void;
}

/** Installs the guard; the returned function takes it off (when the command has closed the daemon). */
export function guardDaemon(stops: DaemonStops): () => void {
  let stopping = false;
  const finish = (signal: NodeJS.Signals) => {
    release();
    stops.stopNow();
    process.kill(process.pid, signal);
  };
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) return finish(signal);
    // the command's own handler (withInterrupt) takes it: the command closes the daemon
    if (process.listenerCount(signal) > 1) return;
    stopping = true;
    stops.notice(signal);
    void stops.stop().finally(() => finish(signal));
  };
  const onExit = () => stops.stopNow();
  const release = () => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('exit', onExit);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('exit', onExit);
  return release;
}

/** Whether process `pid` has ended (gone, or a zombie its parent has not reaped yet). Linux's /proc. */
export function processEnded(pid: number): boolean {
  try {
    // "PID (COMM) STATE …": COMM may hold spaces and parentheses, the state follows the last ')'
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return /^\s*[ZX]/.test(stat.slice(stat.lastIndexOf(')') + 1));
  } catch {
    return true;
  }
}

/** Blocks until `ended()` or `ms` passed; whether it ended. For 'exit' listeners, which cannot wait. */
export function waitSync(ended: () => boolean, ms: number): boolean {
  const sleeper = new Int32Array(new SharedArrayBuffer(4));
  const deadline = Date.now() + ms;
  while (!ended()) {
    if (Date.now() >= deadline) return false;
    Atomics.wait(sleeper, 0, 0, 50);
  }
  return true;
}
