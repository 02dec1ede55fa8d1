/**
 * Where a credential-free manifest probe (registry/open-probe.ts) may ask about a pushed image: only a
 * registry on this machine or on the COG_INSECURE_REGISTRIES list. Worked out when the build is
 * recorded, so that the up-to-date check loads nothing but the probe.
 */
import { manifestAccept } from './manifests.js';
import type { ProbeTarget } from './open-probe.js';
import { apiHost, manifestReference, parseReference } from './reference.js';
import { insecureRegistries, isInsecureHost } from './settings.js';

/** The probe target for `ref` (a pushed image reference), or undefined where only the full client may ask. */
export function probeTargetFor(ref: string, env: NodeJS.ProcessEnv): ProbeTarget | undefined {
  const parsed = parseReference(ref);
  const host = apiHost(parsed.registry);
  if (!isInsecureHost(host, insecureRegistries(env))) return undefined;
  return {
    host,
    repository: parsed.repository,
    reference: manifestReference(parsed),
    accept: manifestAccept,
  };
}
