/**
 * The base image a build planned on, as it resolved (digest and config, the cog-base choice, how a
 * CUDA base gets its Python), and planning on it again without asking the daemon: what a source-only
 * rebuild (build/source-rebuild.ts) needs to compile the same graph as the build it follows.
 */
import type { OciImageConfig } from '../buildkit/gateway.js';
import { compilePlan } from '../plan/compile.js';
import { planBuild } from '../plan/plan.js';
import type { PlanInput } from '../plan/types.js';
import { cogBaseLabels, onCogBase, withoutCogBase } from './cog-base.js';

/** What the base image resolved to, as the build used it (a source-only rebuild plans on it again). */
export interface ResolvedBase {
  /** the plan input's base image after the cog-base choice */
  readonly image: string;
  readonly digest: string;
  readonly config: OciImageConfig;
  /** whether a cog-base image was chosen */
  readonly onCogBase: boolean;
  /** how a CUDA base gets its Python */
  readonly cudaPython?: NonNullable<PlanInput['cudaPython']>;
}

/** Plans and compiles `input` (already on `base`'s image) against the resolved base. Pure. */
export function compileOnBase(input: PlanInput, base: ResolvedBase, sharedKeyHint: string) {
  const plan = planBuild({ ...input, ...(base.cudaPython ? { cudaPython: base.cudaPython } : {}) });
  const compiled = compilePlan(plan, {
    baseConfig: base.config,
    baseDigest: base.digest,
    sharedKeyHint,
    ...(input.sourceDateEpoch !== undefined ? { sourceDateEpoch: input.sourceDateEpoch } : {}),
  });
  return { plan, compiled };
}

/**
 * `requested` with the cog-base choice a build made on `base` applied again, or undefined when that
 * choice does not fit this input (another cog-base candidate, another base image).
 */
export function inputOnBase(requested: PlanInput, base: ResolvedBase): PlanInput | undefined {
  const candidate = requested.cogBase;
  let input: PlanInput;
  if (base.onCogBase) {
    if (candidate?.image !== base.image) return undefined;
    input = onCogBase(requested, candidate.image, cogBaseLabels(candidate.image, base.config));
  } else {
    if (candidate?.required) return undefined;
    input = candidate ? withoutCogBase(requested) : requested;
  }
  return input.baseImage === base.image ? input : undefined;
}
