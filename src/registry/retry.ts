/**
 * Retries with exponential backoff and jitter. Retried: 408, 429 (honouring Retry-After), 5xx except
 * 501/505, and socket-level failures (resets, broken pipes, timeouts). Never retried: other 4xx (401/403
 * above all), cancellation, and errors we raise about the user's input.
 */
import { RegistryError } from './errors.js';

export interface RetryPolicy {
  /** total tries, the first included */
  readonly attempts: number;
  readonly initialDelayMs: number;
  readonly factor: number;
  readonly maxDelayMs: number;
  /** extra random delay, as a fraction of the backoff (0.2 = up to +20 %) */
  readonly jitter: number;
  /** the most we wait for a Retry-After */
  readonly maxRetryAfterMs: number;
  /** told before each wait, when the call site gives no onRetry of its own (e.g. to show "retrying") */
  readonly onRetry?: ((info: RetryInfo) => void) | undefined;
}

export const defaultRetryPolicy: RetryPolicy = {
  attempts: 5,
  initialDelayMs: 1000,
  factor: 2,
  maxDelayMs: 30_000,
  jitter: 0.2,
  maxRetryAfterMs: 60_000,
};

const retryableCodes = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'ENETDOWN',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
]);

export function isRetryableStatus(status: number): boolean {
  // 499: nginx's "client closed request", which a proxy in front of a registry answers for a dropped
  // upstream connection (upstream Cog retries it too)
  return (
    status === 408 || status === 429 || status === 499 || (status >= 500 && status !== 501 && status !== 505)
  );
}

/**
 * Errors a retry loop gave up on after its last try: final for every loop around it too, or a request
 * inside a retried operation (the /v2/ ping inside every call) is tried attempts × attempts times.
 */
const exhausted = new WeakSet<object>();
const gaveUpOn = (err: unknown) => typeof err === 'object' && err !== null && exhausted.has(err);

/** Whether `err` is worth another try. Walks the `cause` chain for socket error codes. */
export function isRetryableError(err: unknown): boolean {
  if (gaveUpOn(err)) return false;
  for (let e = err, depth = 0; e && depth < 8; e = (e as { cause?: unknown }).cause, depth++) {
    if (typeof e !== 'object') return false;
    const { name, code } = e as { name?: string; code?: string };
    if (name === 'AbortError' || code === 'ABORT_ERR' || code === 'UND_ERR_ABORTED') return false;
    if (e instanceof RegistryError && e.status !== undefined) return isRetryableStatus(e.status);
    if (code && retryableCodes.has(code)) return true;
  }
  return false;
}

/** The wait before try `failures + 1`, given `failures` failed tries so far (1-based). */
export function backoffDelay(failures: number, policy: RetryPolicy, random: () => number = Math.random) {
  const base = Math.min(
    policy.maxDelayMs,
    policy.initialDelayMs * policy.factor ** Math.max(0, failures - 1),
  );
  return Math.round(base * (1 + policy.jitter * random()));
}

/** The wait after `err`: Retry-After when the registry gave one (capped), else the backoff. */
export function delayAfter(err: unknown, failures: number, policy: RetryPolicy, random?: () => number) {
  const backoff = backoffDelay(failures, policy, random);
  if (err instanceof RegistryError && err.retryAfterMs !== undefined)
    return Math.min(policy.maxRetryAfterMs, Math.max(err.retryAfterMs, 0));
  return backoff;
}

function abortError(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('The operation was aborted', 'AbortError');
}

/** Resolves after `ms`, or rejects as soon as `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortError(signal));
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortError(signal!));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export interface RetryInfo {
  readonly attempt: number;
  readonly attempts: number;
  readonly delayMs: number;
  readonly error: unknown;
}

export interface RetryOptions {
  readonly policy?: RetryPolicy;
  readonly signal?: AbortSignal | undefined;
  readonly onRetry?: ((info: RetryInfo) => void) | undefined;
  /** decides what is retried (default isRetryableError) */
  readonly retryable?: (err: unknown) => boolean;
}

/** Runs `fn` until it succeeds, a non-retryable error occurs, or the attempts run out. */
export async function withRetry<T>(
  fn: (attempt: number) => Promise<T>,
  options: RetryOptions = {},
): Promise<T> {
  const policy = options.policy ?? defaultRetryPolicy;
  const retryable = options.retryable ?? isRetryableError;
  for (let attempt = 1; ; attempt++) {
    options.signal?.throwIfAborted();
    try {
      return await fn(attempt);
    } catch (err) {
      if (options.signal?.aborted) throw abortError(options.signal);
      if (gaveUpOn(err) || !retryable(err)) throw err;
      if (attempt >= policy.attempts) {
        if (typeof err === 'object' && err !== null) exhausted.add(err);
        throw err;
      }
      const delayMs = delayAfter(err, attempt, policy);
      (options.onRetry ?? policy.onRetry)?.({ attempt, attempts: policy.attempts, delayMs, error: err });
      await sleep(delayMs, options.signal);
    }
  }
}
