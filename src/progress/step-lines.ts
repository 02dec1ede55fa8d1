/**
 * Lines for a long step of cog's own that moves a known number of bytes: a source-only build's layer
 * write and upload (cli/source-only.ts), which no BuildKit progress covers. A big project must not look
 * stalled, a small one must not get noise: nothing while the step is quick; once it has run
 * `firstAfterMs`, a line with the bytes done, then one at most every `everyMs` while bytes flow; when a
 * line was printed, a closing one with the time taken. One line each, no redraw, so a CI log reads the
 * same as a terminal. Quiet and rawjson: none (rawjson is BuildKit's status stream). `cog push`'s
 * blob-by-blob view is push-progress.ts; this is for one step that has nothing else on screen.
 */
import { formatSize } from '../image/inspect.js';
import type { ResolvedProgressMode } from './mode.js';
import { formatSeconds } from './time.js';

export interface StepLines {
  /** `done` of the step's bytes are through (never more than the total it was given is shown) */
  update(done: number): void;
  /** the step finished; says so when a line about it was printed */
  end(): void;
}

export interface StepLinesOptions {
  readonly firstAfterMs?: number;
  readonly everyMs?: number;
  /** the clock (ms), for tests */
  readonly now?: () => number;
}

export interface StepLinesTarget {
  readonly stream: NodeJS.WritableStream;
  readonly mode: ResolvedProgressMode;
}

/** Lines for the step `what` ("writing the source layer") of `total` bytes, on `target`. */
export function createStepLines(
  target: StepLinesTarget,
  what: string,
  total: number,
  options: StepLinesOptions = {},
): StepLines {
  const { firstAfterMs = 2_000, everyMs = 5_000, now = () => performance.now() } = options;
  const silent = target.mode === 'quiet' || target.mode === 'rawjson';
  const started = now();
  let lastLine: number | undefined;
  let ended = false;
  return {
    update(done) {
      if (silent || ended) return;
      const at = now();
      const due = lastLine === undefined ? at - started >= firstAfterMs : at - lastLine >= everyMs;
      if (!due) return;
      lastLine = at;
      target.stream.write(`cog: ${what}: ${formatSize(Math.min(done, total))} / ${formatSize(total)}\n`);
    },
    end() {
      if (ended) return;
      ended = true;
      if (silent || lastLine === undefined) return;
      target.stream.write(`cog: ${what}: done, ${formatSize(total)} in ${formatSeconds(now() - started)}\n`);
    },
  };
}
