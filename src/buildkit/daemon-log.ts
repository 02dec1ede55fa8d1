/**
 * What a private buildkitd's log says about why it did not come up. buildkitd ends a fatal error with
 * the Go stack trace of where it was raised (`main.main`, then a tab-indented `file.go:N` per frame),
 * so the log's last lines are the trace and the line that says why comes before it.
 */

/** A frame of a Go stack trace: a tab-indented `file.go:N` line, or the function line before one. */
function stackFrameLines(lines: readonly string[]): Set<number> {
  const frames = new Set<number>();
  lines.forEach((line, i) => {
    if (!line.startsWith('\t')) return;
    frames.add(i);
    if (i > 0 && !lines[i - 1]!.startsWith('\t')) frames.add(i - 1);
  });
  return frames;
}

/** buildkitd's own fatal message (`buildkitd: …`) and logrus's error lines (`level=error`, fatal, panic). */
const errorLine = /^buildkitd: |\blevel=(error|fatal|panic)\b|^(panic|fatal error): /;

/**
 * The lines of a log worth showing: its error lines without the stack trace, the last `max` of them;
 * a log without any shows its last `max` lines that are not stack frames.
 */
export function daemonLogExcerpt(log: string, max = 8): string {
  const lines = log.split('\n').filter((line) => line.trim() !== '');
  const frames = stackFrameLines(lines);
  const kept = lines.filter((_, i) => !frames.has(i));
  const errors = kept.filter((line) => errorLine.test(line));
  return (errors.length > 0 ? errors : kept).slice(-max).join('\n');
}

/** The state directory another buildkitd holds (`could not lock ROOT/buildkitd.lock`), if the log says so. */
export function lockedRoot(log: string): string | undefined {
  return /could not lock (\S+)\/buildkitd\.lock/.exec(log)?.[1];
}
