/** Time helpers for BuildKit's `google.protobuf.Timestamp` values and for the durations we print. */
import type { google_protobuf_Timestamp } from '../gen/types.js';

/** Milliseconds since the epoch (fractional, keeps sub-millisecond precision), or undefined if unset. */
export function timestampMs(ts: google_protobuf_Timestamp | undefined): number | undefined {
  if (ts === undefined) return undefined;
  return Number(ts.seconds ?? 0) * 1000 + (ts.nanos ?? 0) / 1e6;
}

/** RFC 3339 in UTC with the full nanosecond fraction (trailing zeros dropped), as Go's time.RFC3339Nano. */
export function timestampIso(ts: google_protobuf_Timestamp | undefined): string | undefined {
  if (ts === undefined) return undefined;
  const seconds = Number(ts.seconds ?? 0);
  const whole = new Date(seconds * 1000).toISOString().replace(/\.\d+Z$/, '');
  const nanos = ts.nanos ?? 0;
  const fraction = nanos === 0 ? '' : `.${String(nanos).padStart(9, '0').replace(/0+$/, '')}`;
  return `${whole}${fraction}Z`;
}

/** Seconds with one decimal, the way step durations are shown: `1.2s`. */
export function formatSeconds(ms: number): string {
  return `${(Math.max(0, ms) / 1000).toFixed(1)}s`;
}

/**
 * Seconds since a step started, as the prefix of its log lines: three decimals below 10 s, two below
 * 100 s, one beyond, so the column stays narrow.
 */
export function formatLogOffset(ms: number): string {
  const seconds = Math.max(0, ms) / 1000;
  const decimals = seconds < 10 ? 3 : seconds < 100 ? 2 : 1;
  return seconds.toFixed(decimals);
}

const byteUnits = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'] as const;

/** A byte count in binary units with two decimals (`10.24MB`), as BuildKit's progress shows them. */
export function formatBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < byteUnits.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value}B` : `${value.toFixed(2)}${byteUnits[unit]}`;
}
