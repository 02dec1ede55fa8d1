/** What every progress renderer offers, and the stream it writes to. */
import type { moby_buildkit_v1_StatusResponse } from '../gen/types.js';

/** Where progress goes, usually `process.stderr`; `columns`/`rows` are read when it is a terminal. */
export type ProgressOutput = NodeJS.WritableStream & { readonly columns?: number; readonly rows?: number };

export interface ProgressRenderer {
  /** Takes one status message from the solve's status stream. */
  update(status: moby_buildkit_v1_StatusResponse): void;
  /** Writes what is left (final view, failed steps' logs); resolves once it is written. Idempotent. */
  close(): Promise<void>;
}

/** Writes text and resolves when the stream has taken it (immediately for empty text). */
export function writeText(out: ProgressOutput, text: string): Promise<void> {
  if (text === '') return Promise.resolve();
  return new Promise((resolve) => {
    out.write(text, () => resolve());
  });
}
