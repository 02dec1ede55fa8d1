/**
 * Drops chosen steps from a status stream before it is rendered, e.g. a probe whose failure is expected
 * and reported another way. Stateful per stream: a step's statuses, logs and warnings follow its vertex.
 */
import type { moby_buildkit_v1_StatusResponse } from '../gen/types.js';

export function hidingVertices(
  isHidden: (name: string) => boolean,
): (status: moby_buildkit_v1_StatusResponse) => moby_buildkit_v1_StatusResponse {
  const hidden = new Set<string>();
  const shown = (digest: string | undefined) => digest === undefined || !hidden.has(digest);
  return (status) => {
    for (const vertex of status.vertexes ?? []) {
      if (vertex.digest !== undefined && isHidden(vertex.name ?? '')) hidden.add(vertex.digest);
    }
    if (hidden.size === 0) return status;
    return {
      ...status,
      vertexes: (status.vertexes ?? []).filter((v) => shown(v.digest)),
      statuses: (status.statuses ?? []).filter((s) => shown(s.vertex)),
      logs: (status.logs ?? []).filter((l) => shown(l.vertex)),
      warnings: (status.warnings ?? []).filter((w) => shown(w.vertex)),
    };
  };
}
