/**
 * Upstream Cog's cog-base images (`<registry>/cog-base:<tag>`): which one a build may use, what the
 * --use-cog-base-image / --use-cuda-base-image flags mean for it, and the labels an image built on one
 * carries. Pure: whether the image exists is asked of the daemon by the caller (build-model.ts).
 */
import type { OciImageConfig } from '../buildkit/gateway.js';
import { cogBaseTag } from '../config/compat.js';
import type { CompletedConfig } from '../config/types.js';
import { CogError } from '../errors.js';
import { defaultRegistryHost } from '../registry/settings.js';
import type { PlanInput } from '../plan/types.js';

/** A cog-base image to try before the python-slim / nvidia/cuda base. */
export interface CogBaseCandidate {
  /** e.g. r8.im/cog-base:python3.13 */
  readonly image: string;
  /** --use-cog-base-image=true: failing to resolve it fails the build instead of falling back */
  readonly required: boolean;
}

export interface CogBaseFlags {
  /** --use-cog-base-image: undefined when not given (auto) */
  readonly useCogBaseImage: boolean | undefined;
  /** --use-cuda-base-image: undefined when not given */
  readonly useCudaBaseImage: string | undefined;
}

/** `<registry>/cog-base:<tag>`, the registry being COG_REGISTRY_HOST, else r8.im. */
export function cogBaseImageName(tag: string, env: NodeJS.ProcessEnv): string {
  return `${defaultRegistryHost(env)}/cog-base:${tag}`;
}

/**
 * Upstream refuses both flags given explicitly, whatever their values; --use-cuda-base-image takes
 * auto, true or false.
 * @throws CogError when both are given, or the CUDA flag has another value
 */
export function checkBaseImageFlags(flags: CogBaseFlags): void {
  const cuda = flags.useCudaBaseImage;
  if (cuda !== undefined && !['auto', 'true', 'false'].includes(cuda))
    throw new CogError(`--use-cuda-base-image takes auto, true or false, not ${JSON.stringify(cuda)}`, {
      hint: 'write it as --use-cuda-base-image=false (a word after a space is taken as its value, e.g. an IMAGE)',
    });
  if (flags.useCogBaseImage !== undefined && cuda !== undefined) {
    throw new CogError('the flags --use-cog-base-image and --use-cuda-base-image are mutually exclusive', {
      hint: 'give at most one of them',
    });
  }
}

/**
 * The flags shape the build of the project: a command given IMAGE builds nothing, so a flag given
 * with it would be ignored without a word.
 * @throws CogError naming the flag
 */
export function checkBaseImageFlagsUnused(flags: Partial<CogBaseFlags>, command: string): void {
  const given =
    flags.useCogBaseImage !== undefined
      ? '--use-cog-base-image'
      : flags.useCudaBaseImage !== undefined
        ? '--use-cuda-base-image'
        : undefined;
  if (given)
    throw new CogError(`${given}: \`${command} IMAGE\` runs an image that is built already`, {
      hint: `drop ${given}, or leave IMAGE out to build the project with it`,
    });
}

/**
 * The cog-base image the flags allow for this config, or undefined (flag false, or auto and no
 * cog-base tag fits).
 * @throws CogError when both flags are given, or when --use-cog-base-image=true and no tag fits
 */
export function chooseCogBase(
  completed: CompletedConfig,
  flags: CogBaseFlags,
  env: NodeJS.ProcessEnv,
): CogBaseCandidate | undefined {
  checkBaseImageFlags(flags);
  if (flags.useCogBaseImage === false) return undefined;
  const required = flags.useCogBaseImage === true;
  const tag = completed.baseImages.cogBaseTag;
  if (tag === null) {
    if (!required) return undefined;
    const wanted = cogBaseTag({
      cuda: completed.cuda,
      python: completed.pythonVersion,
      torch: completed.requirements.torch,
    });
    throw new CogError(
      `--use-cog-base-image=true: no cog-base image is published for ${wanted} (${completed.configFile}: Python ${completed.pythonVersion ?? 'unset'}${completed.cuda ? `, CUDA ${completed.cuda}` : ''}${completed.requirements.torch ? `, torch ${completed.requirements.torch}` : ''})`,
      {
        hint: `${publishedNearby(completed)}; use --use-cog-base-image=false to build on python:X-slim or nvidia/cuda`,
      },
    );
  }
  return { image: cogBaseImageName(tag, env), required };
}

/** What cog-base publishes near a config none fits: the images with its torch, when it pins one. */
function publishedNearby(completed: CompletedConfig): string {
  const torch = completed.requirements.torch;
  const tags = completed.baseImages.cogBaseWithTorch;
  if (!torch) return 'cog-base images exist for Python ≥ 3.10, alone, with a CUDA, or with a torch ≥ 1.13.1';
  if (tags.length === 0) return `no cog-base image has torch ${torch} (they have torch ≥ 1.13.1)`;
  // the config's Python first: the likeliest fix is the CUDA
  const python = completed.pythonVersion?.split('.').slice(0, 2).join('.');
  const samePython = (tag: string) => (python !== undefined && tag.includes(`python${python}-`) ? 0 : 1);
  const shown = [...tags]
    .sort((a, b) => samePython(a) - samePython(b))
    .slice(0, 8)
    .join(', ');
  return `the cog-base images with torch ${torch}: ${shown}${tags.length > 8 ? ` and ${tags.length - 8} more` : ''}`;
}

/**
 * cog-base images exist per minor Python version: a python_version with a patch number (3.11.4) is
 * built on the 3.11 image, whose patch level may differ. Upstream warns the same way; undefined when
 * there is nothing to say.
 */
export function cogBasePatchWarning(pythonVersion: string | null): string | undefined {
  const parts = pythonVersion?.split('.') ?? [];
  if (parts.length < 3) return undefined;
  const minor = parts.slice(0, 2).join('.');
  return `cog-base images are made per minor Python version: python_version ${pythonVersion} looks for the python${minor} image, whose patch version may differ (--use-cog-base-image=false builds on python:${pythonVersion}-slim)`;
}

const probePrefix = '[internal] look for the cog-base image ';
const fallbackPrefix = '[internal] look for the base image to use without cog-base ';

/** The progress name of the auto-mode lookup, which the progress display hides (its failure is a warning). */
export function cogBaseProbeName(image: string): string {
  return `${probePrefix}${image}`;
}

/**
 * The progress name of the fallback base's lookup, made alongside the cog-base one in auto mode and
 * hidden too: when the cog-base image resolves, its outcome does not matter (a failure would show as a
 * failed step of a build that succeeded); when the build falls back, the warning names the base.
 */
export function fallbackProbeName(image: string): string {
  return `${fallbackPrefix}${image}`;
}

/** Whether a progress vertex is one of auto mode's lookups (see the two names above). */
export function isCogBaseProbe(vertexName: string): boolean {
  return vertexName.startsWith(probePrefix) || vertexName.startsWith(fallbackPrefix);
}

/** The error for a required cog-base image the daemon could not resolve. */
export function cogBaseUnavailable(image: string, why: string): CogError {
  return new CogError(`--use-cog-base-image=true: cannot use the cog-base image ${image}: ${why}`, {
    hint: 'set COG_REGISTRY_HOST to a registry that has cog-base images, or build without one: --use-cog-base-image=false',
  });
}

/** The warning printed once when auto mode falls back from a cog-base image. */
export function cogBaseFallbackWarning(image: string, why: string, fallback: string): string {
  return `could not use the cog-base image ${image} (${why}); building on ${fallback} instead (--use-cog-base-image=false skips this check)`;
}

/**
 * run.cog.cog-base-image-name, -last-layer-sha (the DiffID of the base's last layer) and
 * -last-layer-idx, from the resolved image config.
 * @throws Error when the config lists no layers
 */
export function cogBaseLabels(image: string, config: OciImageConfig): Record<string, string> {
  const diffIds = config.rootfs?.diff_ids ?? [];
  const last = diffIds.at(-1);
  if (last === undefined) throw new Error('its image config lists no layers');
  return {
    'run.cog.cog-base-image-name': image,
    'run.cog.cog-base-image-last-layer-sha': last,
    'run.cog.cog-base-image-last-layer-idx': String(diffIds.length - 1),
  };
}

/** The plan input for building on a resolved cog-base image. */
export function onCogBase(input: PlanInput, image: string, labels: Record<string, string>): PlanInput {
  return {
    ...withoutCogBase(input),
    baseImage: image,
    baseKind: 'cog-base',
    labels: { ...input.labels, ...labels },
  };
}

/** The plan input for building on the python-slim / nvidia/cuda base (no cog-base). */
export function withoutCogBase(input: PlanInput): PlanInput {
  const rest = { ...input };
  delete rest.cogBase;
  return rest;
}
