/** A status-stream timestamp (RFC 3339 string or protobuf Timestamp) in epoch milliseconds. */
export function statusTimeMs(ts: unknown): number | undefined {
  if (typeof ts === 'string') return Date.parse(ts);
  if (ts && typeof ts === 'object' && 'seconds' in ts) {
    const t = ts as { seconds?: number | string; nanos?: number };
    return Number(t.seconds ?? 0) * 1000 + (t.nanos ?? 0) / 1e6;
  }
  return undefined;
}
