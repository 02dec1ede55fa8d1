/**
 * Which GPUs a model run asks buildkitd for. BuildKit (0.20+) hands devices to an exec through CDI
 * (Container Device Interface): the worker lists the devices its CDI specs describe, and an exec op
 * names the ones it wants (`nvidia.com/gpu=all`, `nvidia.com/gpu=0`, …). A device the spec does not
 * mark auto-allowed also needs the `device` entitlement on the solve.
 *
 * `--gpus` takes docker's forms where they make sense here: `all`, a count (`2`), device indexes
 * (`0,1` or `device=0,1`), or `none`. Without the flag, a model with `build.gpu: true` gets all GPUs,
 * like upstream's `cog predict` passing `--gpus all` to docker.
 */
import { CogError } from '../errors.js';

/** What the worker offers (ListWorkers' WorkerRecord.CDIDevices). */
export interface OfferedDevice {
  readonly name: string;
  readonly autoAllow: boolean;
}

export interface GpuRequest {
  /** fully qualified CDI device names for the exec op */
  readonly devices: readonly string[];
  /** whether the solve must carry the `device` entitlement */
  readonly needsEntitlement: boolean;
}

const gpuKind = 'nvidia.com/gpu';
const noGpus: GpuRequest = { devices: [], needsEntitlement: false };

const missingHint =
  'generate a CDI spec for the GPUs on the buildkitd host (`nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml`) and restart buildkitd; `--gpus none` runs without a GPU';

/**
 * @param needsGpu `build.gpu` of the model's config
 * @param flag `--gpus`, when given
 */
export function gpuRequest(needsGpu: boolean, flag: string | undefined, offered: readonly OfferedDevice[]) {
  const wanted = parseGpusFlag(flag, needsGpu);
  if (wanted.kind === 'none') return noGpus;
  const gpus = offered.filter((d) => d.name.startsWith(`${gpuKind}=`));
  const why = flag === undefined ? 'the model needs a GPU (build.gpu: true in cog.yaml)' : `--gpus ${flag}`;
  if (gpus.length === 0) {
    throw new CogError(`${why}, but buildkitd's worker offers no ${gpuKind} CDI device`, {
      hint: missingHint,
    });
  }
  let chosen: OfferedDevice[];
  if (wanted.kind === 'all') {
    const all = gpus.find((d) => d.name === `${gpuKind}=all`);
    chosen = all ? [all] : gpus;
  } else if (wanted.kind === 'count') {
    const single = gpus.filter((d) => d.name !== `${gpuKind}=all`);
    if (single.length < wanted.count) {
      throw new CogError(`--gpus ${flag}: the worker offers ${single.length} single GPU device(s)`, {
        hint: `offered: ${gpus.map((d) => d.name).join(', ')}`,
      });
    }
    chosen = single.slice(0, wanted.count);
  } else {
    chosen = wanted.ids.map((id) => {
      const device = gpus.find((d) => d.name === `${gpuKind}=${id}`);
      if (!device) {
        throw new CogError(`--gpus ${flag}: the worker offers no device ${gpuKind}=${id}`, {
          hint: `offered: ${gpus.map((d) => d.name).join(', ')}`,
        });
      }
      return device;
    });
  }
  return { devices: chosen.map((d) => d.name), needsEntitlement: chosen.some((d) => !d.autoAllow) };
}

type Wanted =
  { kind: 'none' } | { kind: 'all' } | { kind: 'count'; count: number } | { kind: 'ids'; ids: string[] };

function parseGpusFlag(flag: string | undefined, needsGpu: boolean): Wanted {
  if (flag === undefined) return needsGpu ? { kind: 'all' } : { kind: 'none' };
  const value = flag.trim().replace(/^"(.*)"$/, '$1');
  if (value === 'none' || value === '0' || value === '') return { kind: 'none' };
  if (value === 'all') return { kind: 'all' };
  if (/^[1-9]\d*$/.test(value)) return { kind: 'count', count: Number(value) };
  const ids = value.replace(/^device=/, '').split(',');
  if (ids.every((id) => /^[A-Za-z0-9_.:-]+$/.test(id))) return { kind: 'ids', ids };
  throw new CogError(`--gpus ${flag}: not a GPU request`, {
    hint: 'use all, a count (2), device indexes (0,1 or device=0,1), or none',
  });
}

/** The CDI devices the daemon's workers offer. */
export function offeredDevices(
  workers: readonly {
    CDIDevices?: readonly { Name?: string | undefined; AutoAllow?: boolean | undefined }[] | undefined;
  }[],
): OfferedDevice[] {
  return workers.flatMap((w) =>
    (w.CDIDevices ?? []).map((d) => ({ name: d.Name ?? '', autoAllow: d.AutoAllow === true })),
  );
}

/** Whether an image's run.cog.config label says `build.gpu: true`. */
export function imageNeedsGpu(labels: Readonly<Record<string, string>> | undefined): boolean {
  try {
    const config = JSON.parse(labels?.['run.cog.config'] ?? '{}') as { build?: { gpu?: unknown } };
    return config.build?.gpu === true;
  } catch {
    return false;
  }
}
