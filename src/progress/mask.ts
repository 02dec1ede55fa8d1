/**
 * Masks secrets in the daemon's words about each step before a status is rendered: a registry that
 * refuses a push may echo the credentials it was sent, and buildkitd passes its refusal on as the
 * step's error. Pure; `secrets` is asked on every status (the session hands credentials out as the
 * daemon asks for them).
 */
import type { moby_buildkit_v1_StatusResponse } from '../gen/types.js';
import { redactSecrets } from '../registry/redact.js';

export function maskingSecrets(
  secrets: () => readonly string[],
): (status: moby_buildkit_v1_StatusResponse) => moby_buildkit_v1_StatusResponse {
  return (status) => {
    const now = secrets();
    if (now.length === 0 || !(status.vertexes ?? []).some((v) => v.error)) return status;
    return {
      ...status,
      vertexes: (status.vertexes ?? []).map((v) =>
        v.error ? { ...v, error: redactSecrets(v.error, now) } : v,
      ),
    };
  };
}
