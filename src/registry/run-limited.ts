/** Running uploads side by side, the first failure stopping the rest. */

/** Runs `tasks` with at most `limit` at once; the first failure aborts the others through `controller`. */
export async function runLimited(
  tasks: readonly (() => Promise<void>)[],
  limit: number,
  controller: AbortController,
): Promise<void> {
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
