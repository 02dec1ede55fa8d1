/**
 * buildkitd's build cache as numbers: its records summed by kind, and the flags that bound a prune
 * (sizes and durations) read into what the Control API takes. Pure: the daemon calls are in client.ts.
 */
import type { Int64, moby_buildkit_v1_UsageRecord, google_protobuf_Timestamp } from '../gen/types.js';
import { CogError } from '../errors.js';

/** One cache record, as plain numbers. */
export interface CacheRecord {
  readonly id: string;
  /** e.g. regular, source.local, exec.cachemount, frontend, internal */
  readonly type: string;
  readonly description: string;
  readonly size: number;
  /** a build uses it now: no prune removes it */
  readonly inUse: boolean;
  /** other records share its data: removing it alone frees less than its size */
  readonly shared: boolean;
  readonly lastUsed: string | undefined;
}

export interface CacheKindUsage {
  readonly type: string;
  readonly records: number;
  readonly bytes: number;
  readonly reclaimableBytes: number;
}

export interface CacheUsage {
  readonly records: number;
  readonly bytes: number;
  /** what a prune could free: records no build is using */
  readonly reclaimableBytes: number;
  /** largest first */
  readonly kinds: readonly CacheKindUsage[];
}

const toNumber = (value: Int64 | undefined) => Number(value ?? 0);

function isoTime(time: google_protobuf_Timestamp | undefined): string | undefined {
  const seconds = toNumber(time?.seconds);
  if (!seconds) return undefined;
  return new Date(seconds * 1000 + Math.floor((time?.nanos ?? 0) / 1e6)).toISOString();
}

export function cacheRecord(record: moby_buildkit_v1_UsageRecord): CacheRecord {
  return {
    id: record.ID ?? '',
    type: record.RecordType || 'regular',
    description: record.Description ?? '',
    size: toNumber(record.Size),
    inUse: record.InUse === true,
    shared: record.Shared === true,
    lastUsed: isoTime(record.LastUsedAt ?? record.CreatedAt),
  };
}

/** Totals, overall and per record type. */
export function cacheUsage(records: readonly CacheRecord[]): CacheUsage {
  const kinds = new Map<string, { records: number; bytes: number; reclaimableBytes: number }>();
  let bytes = 0;
  let reclaimableBytes = 0;
  for (const record of records) {
    const kind = kinds.get(record.type) ?? { records: 0, bytes: 0, reclaimableBytes: 0 };
    kind.records++;
    kind.bytes += record.size;
    bytes += record.size;
    if (!record.inUse) {
      kind.reclaimableBytes += record.size;
      reclaimableBytes += record.size;
    }
    kinds.set(record.type, kind);
  }
  return {
    records: records.length,
    bytes,
    reclaimableBytes,
    kinds: [...kinds.entries()]
      .map(([type, kind]) => ({ type, ...kind }))
      .sort((a, b) => b.bytes - a.bytes || a.type.localeCompare(b.type)),
  };
}

const byteUnits: Readonly<Record<string, number>> = {
  '': 1,
  b: 1,
  k: 1024,
  kb: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1024 ** 3,
  gib: 1024 ** 3,
  t: 1024 ** 4,
  tb: 1024 ** 4,
  tib: 1024 ** 4,
};

/**
 * A size flag's value in bytes: `10GB`, `512mb`, `1.5g`, `2048` (bytes). Units are powers of 1024
 * whatever their spelling, as in Docker's and buildx's flags.
 */
export function parseByteSize(flag: string, value: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(value);
  const unit = byteUnits[match?.[2]?.toLowerCase() ?? 'x'];
  if (!match || unit === undefined) {
    throw new CogError(`${flag} "${value}" is not a size`, {
      hint: `give a number with an optional unit (B, KB, MB, GB, TB; powers of 1024), e.g. ${flag} 10GB`,
    });
  }
  return Math.round(Number(match[1]) * unit);
}

const durationUnits: Readonly<Record<string, number>> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

/** A duration flag's value in milliseconds: `24h`, `90m`, `1h30m`, `7d`, `45s`. */
export function parseDuration(flag: string, value: string): number {
  const trimmed = value.trim();
  const part = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/gy;
  let ms = 0;
  let end = 0;
  for (let match = part.exec(trimmed); match; match = part.exec(trimmed)) {
    ms += Number(match[1]) * (durationUnits[match[2] as string] as number);
    end = part.lastIndex;
  }
  if (trimmed === '' || end !== trimmed.length) {
    throw new CogError(`${flag} "${value}" is not a duration`, {
      hint: `give numbers with units d, h, m, s or ms, e.g. ${flag} 24h or ${flag} 1h30m`,
    });
  }
  return Math.round(ms);
}
