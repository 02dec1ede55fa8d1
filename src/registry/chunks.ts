/** Pure helpers for chunked uploads: chunk size choice, Content-Range, and the Range a registry answers. */

export const defaultChunkSize = 96 * 1024 * 1024;

/** Blobs up to this size go up in one request (upstream Cog's default multipart threshold). */
export const defaultMultipartThreshold = 128 * 1024 * 1024;

export interface ChunkLimits {
  /** `OCI-Chunk-Min-Length` from the upload session, when offered */
  readonly min?: number | undefined;
  /** `OCI-Chunk-Max-Length`, when offered */
  readonly max?: number | undefined;
}

/**
 * Room left under a registry's `OCI-Chunk-Max-Length` (upstream Cog's margin): an edge proxy that enforces
 * a request limit may count more than the body.
 */
export const chunkMaxHeadroom = 64 * 1024;

/**
 * The bytes per PATCH. A registry that states its maximum gets chunks of that size less
 * `chunkMaxHeadroom` (its own figure wins over the preferred size, as upstream Cog does: fewer chunks,
 * fewer round trips and per-chunk flushes); otherwise the preferred size. Raised to the registry's
 * minimum, never past its maximum.
 */
export function chooseChunkSize(preferred: number, limits: ChunkLimits = {}): number {
  const max = limits.max !== undefined && limits.max > 0 ? limits.max : undefined;
  let size = max === undefined ? preferred : max > chunkMaxHeadroom ? max - chunkMaxHeadroom : max;
  if (limits.min !== undefined && limits.min > 0 && size < limits.min) size = limits.min;
  if (max !== undefined && size > max) size = max;
  return Math.max(1, Math.floor(size));
}

/** A positive integer header value, else undefined. */
export function parseLength(value: string | undefined): number | undefined {
  if (!value || !/^\s*\d+\s*$/.test(value)) return undefined;
  const n = Number(value);
  return Number.isSafeInteger(n) && n > 0 ? n : undefined;
}

/** `Content-Range` for bytes start..end inclusive, the distribution-spec way (no `bytes=` unit). */
export function contentRange(start: number, end: number): string {
  return `${start}-${end}`;
}

/**
 * How many bytes the registry holds, from the `Range: 0-<last>` header of an upload status or chunk
 * answer (`bytes=` tolerated). `0-0` is ambiguous (empty, or one byte); registries send it for an empty
 * session, so it reads as 0. Undefined when absent or unreadable.
 */
export function parseUploadedRange(value: string | undefined): number | undefined {
  if (!value) return undefined;
  const match = /^\s*(?:bytes=)?0-(\d+)\s*$/.exec(value);
  if (!match) return undefined;
  const last = Number(match[1]);
  return last === 0 ? 0 : last + 1;
}

/** The byte ranges (inclusive) of `size` bytes cut in `chunk`-sized pieces from `start`. */
export function chunkRanges(size: number, chunk: number, start = 0): [number, number][] {
  const ranges: [number, number][] = [];
  for (let at = start; at < size; at += chunk) ranges.push([at, Math.min(at + chunk, size) - 1]);
  return ranges;
}
