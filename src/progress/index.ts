/**
 * Build progress for BuildKit's status stream: pick a mode (`--progress` or BUILDKIT_PROGRESS), make
 * a renderer for it, feed it every status message of a solve, close it when the solve ends.
 *
 *     const mode = resolveProgressMode(argv.progress, process.env, process.stderr.isTTY);
 *     const progress = createProgressRenderer(mode, process.stderr);
 *     try {
 *       await solve(client, { ...options, onStatus: (status) => progress.update(status) });
 *     } finally {
 *       await progress.close();
 *     }
 *
 * Modes: `tty` redraws a live step list (tty.ts), `plain` appends stable lines (plain.ts), `rawjson`
 * writes each message as a JSON line (rawjson.ts), `quiet` writes nothing; `auto` is `tty` on a
 * terminal and `plain` otherwise.
 */
import { ProgressModel } from './model.js';
import type { ProgressOutput, ProgressRenderer } from './output.js';
import { createPlainRenderer } from './plain.js';
import { createRawJsonRenderer } from './rawjson.js';
import { createTtyRenderer } from './tty.js';

export {
  ProgressModel,
  type ProgressEvent,
  type VertexRecord,
  type StatusRecord,
  type LogLine,
} from './model.js';
export type { ProgressOutput, ProgressRenderer } from './output.js';
export { PlainPrinter, formatErrorSummary } from './plain.js';
export { formatRawJson, statusToJson } from './rawjson.js';
export { renderTtyFrame, TtyScreen } from './tty.js';

export { progressModes, resolveProgressMode, type ProgressMode, type ResolvedProgressMode } from './mode.js';
import type { ProgressMode } from './mode.js';

/** Log lines shown under a running step in tty mode unless BUILDKIT_TTY_LOG_LINES says otherwise. */
export const defaultTtyLogLines = 6;
/** Least time between two tty redraws. */
export const defaultTtyRefreshMs = 120;

export interface ProgressRendererOptions {
  /** read for NO_COLOR, COG_NO_COLOR and BUILDKIT_TTY_LOG_LINES; default process.env */
  readonly env?: NodeJS.ProcessEnv;
  /** local clock in ms; default Date.now */
  readonly now?: () => number;
  /** least time between tty redraws; default 120 ms */
  readonly refreshMs?: number;
}

/** A renderer for `mode` writing to `out`; `auto` is resolved by whether `out` is a terminal. */
export function createProgressRenderer(
  mode: ProgressMode,
  out: ProgressOutput,
  options: ProgressRendererOptions = {},
): ProgressRenderer {
  const env = options.env ?? process.env;
  const now = options.now ?? Date.now;
  const resolved = mode === 'auto' ? ((out as { isTTY?: boolean }).isTTY === true ? 'tty' : 'plain') : mode;
  switch (resolved) {
    case 'quiet':
      return { update: () => undefined, close: () => Promise.resolve() };
    case 'rawjson':
      return createRawJsonRenderer(out);
    case 'plain':
      return createPlainRenderer(out, { model: new ProgressModel(), now });
    case 'tty': {
      const logLines = ttyLogLines(env);
      return createTtyRenderer(out, {
        model: new ProgressModel({ logTailLines: Math.max(10, logLines) }),
        now,
        refreshMs: options.refreshMs ?? defaultTtyRefreshMs,
        logLines,
        color: (env.NO_COLOR ?? '') === '' && (env.COG_NO_COLOR ?? '') === '',
      });
    }
  }
}

/** BUILDKIT_TTY_LOG_LINES if it is a whole number ≥ 0, else the default. */
function ttyLogLines(env: NodeJS.ProcessEnv): number {
  const value = env.BUILDKIT_TTY_LOG_LINES?.trim() ?? '';
  return /^\d+$/.test(value) ? Number(value) : defaultTtyLogLines;
}
