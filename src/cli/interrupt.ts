/**
 * Ctrl-C for long-running commands: the first SIGINT (or SIGTERM) aborts the work's AbortSignal so the
 * build is cancelled on the daemon and the session closes; a second one exits at once.
 */
import { constants } from 'node:os';
import { CogError } from '../errors.js';

/** The shell's exit status for a process ended by `signal`: 128 + its number (130 for SIGINT, 143 SIGTERM). */
export function signalExitCode(signal: NodeJS.Signals): number {
  return 128 + (constants.signals[signal] ?? 2);
}

export class InterruptedError extends CogError {
  /** @param doing what the interrupt did, as withInterrupt's `doing` says it: "cancelling the build" */
  constructor(
    readonly signal: NodeJS.Signals,
    doing = 'cancelling the build',
  ) {
    super(`interrupted (${signal}): ${outcome(doing)}`, { exitCode: signalExitCode(signal) });
  }
}

/** "cancelling the push" → "the push was cancelled", "stopping the model" → "the model was stopped". */
function outcome(doing: string): string {
  const match = /^(cancelling|stopping) (.+)$/.exec(doing);
  if (!match) return doing;
  return `${match[2]} was ${match[1] === 'cancelling' ? 'cancelled' : 'stopped'}`;
}

/**
 * @param doing what the first Ctrl-C does, for the message (default: cancelling the build); asked at
 * the time, since a command's answer changes as it goes (building, then serving)
 */
export async function withInterrupt<T>(
  stderr: NodeJS.WritableStream,
  work: (signal: AbortSignal, interruptedBy: () => NodeJS.Signals | undefined) => Promise<T>,
  doing: () => string = () => 'cancelling the build',
): Promise<T> {
  const controller = new AbortController();
  let received: NodeJS.Signals | undefined;
  let did = '';
  const onSignal = (signal: NodeJS.Signals) => {
    if (received) {
      stderr.write(`cog: ${signal} again, exiting now\n`);
      process.exit(signalExitCode(signal));
    }
    received = signal;
    did = doing();
    stderr.write(`cog: ${signal}: ${did} (press Ctrl-C again to exit at once)\n`);
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    return await work(controller.signal, () => received);
  } catch (err) {
    if (received) throw new InterruptedError(received, did);
    throw err;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
