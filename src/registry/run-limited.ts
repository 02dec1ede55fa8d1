/** Running uploads side by side, the first failure stopping the rest. */
import { setMaxListeners } from 'node:events';

/**
 * Runs `tasks` with at most `limit` at once; the first failure aborts the others through `controller`,
 * whose signal the tasks share.
 */
export async function runLimited(
  tasks: readonly (() => Promise<void>)[],
  limit: number,
  controller: AbortController,
): Promise<void> {
  // every request of every running task listens on the shared signal (undici, and the client for an
  // abort before the connection), each listener removed when its request ends: five uploads and a token
  // request passed Node's leak warning at 10 listeners, printed to the user on every push
  setMaxListeners(0, controller.signal);
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async () => {
    while (next < tasks.length && !failure) {
      const task = tasks[next++]!;
      try {
        await task();
      } catch (error) {
        if (!failure) {
          failure = { error };
          controller.abort(error);
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, worker));
  if (failure) throw failure.error;
}
