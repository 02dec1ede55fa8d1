/** The line a registry request's retry prints on stderr (cog push's progress, cog inspect). */
import type { RetryInfo } from '../registry/retry.js';

/** What a retry says: the (already redacted) error, the attempt, and the wait. */
export function retryLine(info: RetryInfo): string {
  const what = info.error instanceof Error ? info.error.message : String(info.error);
  return `cog: ${what.split('\n')[0]}; retrying (${info.attempt}/${info.attempts - 1}) in ${(info.delayMs / 1000).toFixed(1)}s`;
}
