/** Reads `--progress plain` output: which build steps ran and which came from the cache. */

/**
 * Sources, exports and merges are BuildKit's bookkeeping, not build steps. An image source shared with
 * a concurrent Dockerfile build on the same daemon carries that build's name ("[stage-0 1/9] FROM …").
 */
const bookkeeping =
  /^(\[internal\]|\[auth\]|\[context [^\]]+\] load |load |exporting |sending |docker-image:\/\/|local:\/\/|resolve |merge |FROM |\[[^\]]+\] FROM )/;

export function stepsFromPlainProgress(progress: string): { ran: string[]; cached: string[] } {
  const names = new Map<string, string>();
  const cached = new Set<string>();
  const done = new Set<string>();
  for (const line of progress.split('\n')) {
    const header = /^#(\d+) (.+)$/.exec(line);
    if (header?.[1] && header[2] && !names.has(header[1])) names.set(header[1], header[2]);
    const status = /^#(\d+) (CACHED|DONE )/.exec(line);
    if (status?.[1] && status[2] === 'CACHED') cached.add(status[1]);
    else if (status?.[1]) done.add(status[1]);
  }
  return {
    ran: [...done]
      .filter((n) => !cached.has(n))
      .map((n) => names.get(n) ?? n)
      .filter((name) => !bookkeeping.test(name)),
    cached: [...cached].map((n) => names.get(n) ?? n),
  };
}
