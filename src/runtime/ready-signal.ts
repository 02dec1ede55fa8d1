/**
 * How `cog run` learns that the model's setup() finished, while its whole run is one BuildKit exec it sees
 * only through the build's status stream: the probe, asked to (SmokeOptions.announceReady), writes
 * readyLine on its stdout once the server says READY, and this watches the run's step for it. The probe
 * writes nothing else on its stdout (the server's output goes to stderr), so the step's stdout is left
 * out of what the progress view shows.
 */
import type { moby_buildkit_v1_StatusResponse } from '../gen/types.js';

/** What the probe writes on its stdout when the server is READY. */
export const readyLine = 'cog: the model is READY\n';

/** BuildKit's stream number of an exec's stdout in a vertex log. */
const stdoutStream = 1;

/**
 * A status transform that calls `onReady` once the step named `stepName` has written readyLine on its
 * stdout (the line may come in pieces), and drops that stdout from the status. Stateful per stream.
 */
export function watchingForReady(
  stepName: string,
  onReady: () => void,
): (status: moby_buildkit_v1_StatusResponse) => moby_buildkit_v1_StatusResponse {
  const steps = new Set<string>();
  let written = '';
  let ready = false;
  const isStepStdout = (log: NonNullable<moby_buildkit_v1_StatusResponse['logs']>[number]) =>
    log.vertex !== undefined && steps.has(log.vertex) && Number(log.stream ?? 0) === stdoutStream;
  return (status) => {
    for (const vertex of status.vertexes ?? []) {
      if (vertex.digest !== undefined && vertex.name === stepName) steps.add(vertex.digest);
    }
    const logs = status.logs ?? [];
    if (steps.size === 0 || !logs.some(isStepStdout)) return status;
    for (const log of logs.filter(isStepStdout)) {
      if (ready) break;
      const seen = written + Buffer.from(log.msg ?? []).toString('utf8');
      if (seen.includes(readyLine)) {
        ready = true;
        onReady();
      }
      // the last of it is enough to find the line across pieces
      written = seen.slice(-readyLine.length);
    }
    return { ...status, logs: logs.filter((log) => !isStepStdout(log)) };
  };
}
