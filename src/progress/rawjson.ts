/**
 * Raw JSON progress: every status message BuildKit sends, as one JSON object per line, for programs
 * to read. The shape follows BuildKit's own `rawjson` output (Go's `client.SolveStatus` encoding):
 *
 *     {"vertexes":[{"digest":"sha256:…","inputs":[],"name":"…","cached":false,
 *                   "started":"2025-01-02T03:04:05.123456789Z","completed":"…","error":"…"}],
 *      "statuses":[{"id":"…","vertex":"sha256:…","name":"…","current":1,"total":2,"timestamp":"…",
 *                   "started":"…","completed":"…"}],
 *      "logs":[{"vertex":"sha256:…","stream":1,"data":"aGVsbG8K","timestamp":"…"}],
 *      "warnings":[{"vertex":"sha256:…","level":1,"short":"…","detail":["…"],"url":"…"}]}
 *
 * Digests are strings; times are RFC 3339 UTC with nanoseconds; log `data` and the warning `short`
 * and `detail` bytes are base64, as in BuildKit's output, so binary output survives unchanged.
 * Fields that are unset are left out; the four lists are always present.
 */
import type {
  moby_buildkit_v1_StatusResponse,
  moby_buildkit_v1_Vertex,
  moby_buildkit_v1_VertexLog,
  moby_buildkit_v1_VertexStatus,
  moby_buildkit_v1_VertexWarning,
  pb_Range,
} from '../gen/types.js';
import type { ProgressOutput, ProgressRenderer } from './output.js';
import { timestampIso } from './time.js';

export type JsonValue = string | number | boolean | JsonValue[] | { [key: string]: JsonValue };
type JsonObject = { [key: string]: JsonValue };

/** The JSON form of one status message (see the module comment for its shape). */
export function statusToJson(status: moby_buildkit_v1_StatusResponse): JsonObject {
  return {
    vertexes: (status.vertexes ?? []).map(vertexToJson),
    statuses: (status.statuses ?? []).map(vertexStatusToJson),
    logs: (status.logs ?? []).map(logToJson),
    warnings: (status.warnings ?? []).map(warningToJson),
  };
}

/** One line of rawjson output. */
export function formatRawJson(status: moby_buildkit_v1_StatusResponse): string {
  return `${JSON.stringify(statusToJson(status))}\n`;
}

function vertexToJson(vertex: moby_buildkit_v1_Vertex): JsonObject {
  const group = vertex.progressGroup;
  return withoutUnset({
    digest: vertex.digest ?? '',
    inputs: vertex.inputs ?? [],
    name: vertex.name ?? '',
    cached: vertex.cached ?? false,
    started: timestampIso(vertex.started),
    completed: timestampIso(vertex.completed),
    error: vertex.error || undefined,
    progressGroup:
      group === undefined
        ? undefined
        : withoutUnset({ id: group.id ?? '', name: group.name ?? '', weak: group.weak ?? false }),
  });
}

function vertexStatusToJson(status: moby_buildkit_v1_VertexStatus): JsonObject {
  return withoutUnset({
    id: status.ID ?? '',
    vertex: status.vertex ?? '',
    name: status.name || undefined,
    current: Number(status.current ?? 0),
    total: Number(status.total ?? 0),
    timestamp: timestampIso(status.timestamp),
    started: timestampIso(status.started),
    completed: timestampIso(status.completed),
  });
}

function logToJson(log: moby_buildkit_v1_VertexLog): JsonObject {
  return withoutUnset({
    vertex: log.vertex ?? '',
    stream: Number(log.stream ?? 0),
    data: base64(log.msg),
    timestamp: timestampIso(log.timestamp),
  });
}

function warningToJson(warning: moby_buildkit_v1_VertexWarning): JsonObject {
  const info = warning.info;
  return withoutUnset({
    vertex: warning.vertex ?? '',
    level: Number(warning.level ?? 0),
    short: base64(warning.short),
    detail: (warning.detail ?? []).map(base64),
    url: warning.url || undefined,
    sourceInfo:
      info === undefined
        ? undefined
        : withoutUnset({ filename: info.filename || undefined, language: info.language || undefined }),
    range: warning.ranges === undefined ? undefined : warning.ranges.map(rangeToJson),
  });
}

function rangeToJson(range: pb_Range): JsonObject {
  return {
    start: { line: range.start?.line ?? 0, character: range.start?.character ?? 0 },
    end: { line: range.end?.line ?? 0, character: range.end?.character ?? 0 },
  };
}

function base64(bytes: Uint8Array | undefined): string {
  return bytes === undefined
    ? ''
    : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

function withoutUnset(fields: Record<string, JsonValue | undefined>): JsonObject {
  const object: JsonObject = {};
  for (const [key, value] of Object.entries(fields)) if (value !== undefined) object[key] = value;
  return object;
}

/** Writes each status message as one JSON line; nothing is left to write on close. */
export function createRawJsonRenderer(out: ProgressOutput): ProgressRenderer {
  let closed = false;
  return {
    update(status) {
      if (!closed) out.write(formatRawJson(status));
    },
    close() {
      closed = true;
      return Promise.resolve();
    },
  };
}
