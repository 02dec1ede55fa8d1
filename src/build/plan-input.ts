/** CompletedConfig (+ build flags and facts read from disk) → PlanInput. Pure. */
import { configLabel } from '../config/label.js';
import type { CompletedConfig, WheelSpec } from '../config/types.js';
import { CogError } from '../errors.js';
import type { PlanInput, WheelSource } from '../plan/types.js';
import type { WeightsSplit } from '../plan/weights.js';

export interface PlanExtras {
  /** the cog-ts version, for run.cog.version */
  readonly cogVersion: string;
  /** .dockerignore patterns */
  readonly sourceExclude: readonly string[];
  readonly caCert?: string;
  /** the OpenAPI schema JSON text */
  readonly openapiSchema?: string;
  /** org.opencontainers.image.revision / version, when known */
  readonly revision?: string;
  readonly version?: string;
  /** --use-cuda-base-image=false builds GPU models on python:X-slim */
  readonly useCudaBaseImage?: boolean;
  /** a cog-base image to try first (chooseCogBase) */
  readonly cogBase?: PlanInput['cogBase'];
  readonly precompile?: boolean;
  readonly strip?: boolean;
  readonly platform?: PlanInput['platform'];
  readonly sourceDateEpoch?: number;
  /** --separate-weights: the project's weights, copied in a layer of their own */
  readonly weights?: WeightsSplit;
  /** per secret id, a key derived from its content (src/build/secret-keys.ts) */
  readonly secretKeys?: Readonly<Record<string, string>>;
  /** labels added on top of cog's own (e.g. run.cog.push_id from `cog push`); they win over cog's */
  readonly extraLabels?: Readonly<Record<string, string>>;
}

function wheelSource(spec: WheelSpec): WheelSource {
  switch (spec.kind) {
    case 'pypi':
      return { kind: 'pypi', ...(spec.version ? { version: spec.version } : {}), pre: spec.pre };
    case 'url':
      return { kind: 'url', url: spec.url };
    case 'file':
      return { kind: 'file', path: spec.path };
  }
}

export function planInputFor(completed: CompletedConfig, extras: PlanExtras): PlanInput {
  const python = completed.pythonVersion;
  if (!python) {
    throw new CogError(`${completed.configFile}: build.python_version is not set`, {
      hint: 'add a build section with python_version, e.g.\nbuild:\n  python_version: "3.12"',
    });
  }
  const useCuda = completed.gpu && extras.useCudaBaseImage !== false && completed.baseImages.cuda !== null;
  const baseImage = useCuda ? completed.baseImages.cuda : completed.baseImages.python;
  if (!baseImage) {
    throw new CogError(`${completed.configFile}: no base image for Python ${python}`, {
      hint: 'check build.python_version',
    });
  }
  const labels: Record<string, string> = {
    'run.cog.version': extras.cogVersion,
    'run.cog-ts.version': extras.cogVersion,
    'run.cog.config': JSON.stringify(configLabel(completed)),
    'run.cog.has_init': 'true',
  };
  if (extras.openapiSchema) labels['run.cog.openapi_schema'] = extras.openapiSchema;
  if (extras.revision) labels['org.opencontainers.image.revision'] = extras.revision;
  if (extras.version) labels['org.opencontainers.image.version'] = extras.version;
  Object.assign(labels, extras.extraLabels);

  return {
    pythonVersion: python,
    gpu: completed.gpu,
    baseImage,
    baseKind: useCuda ? 'cuda' : 'python-slim',
    ...(extras.cogBase ? { cogBase: extras.cogBase } : {}),
    ...(completed.cuda ? { cuda: completed.cuda } : {}),
    ...(extras.caCert ? { caCert: extras.caCert } : {}),
    environment: Object.entries(completed.environment),
    systemPackages: completed.systemPackages,
    requirements: completed.requirements.text,
    localArtifacts: completed.requirements.localArtifacts.map((a) => a.relPath),
    sdk: wheelSource(completed.sdk),
    ...(completed.coglet ? { coglet: wheelSource(completed.coglet) } : {}),
    runCommands: completed.runCommands.map((r) => ({
      command: r.command,
      secrets: r.mounts.map((m) => ({ id: m.id, target: m.target })),
    })),
    ...(completed.predict ? { predict: completed.predict } : {}),
    ...(completed.train ? { train: completed.train } : {}),
    ...(completed.concurrency ? { concurrencyMax: completed.concurrency.max } : {}),
    configFileName: completed.configFile,
    sourceExclude: extras.sourceExclude,
    ...(extras.openapiSchema ? { openapiSchema: extras.openapiSchema } : {}),
    labels,
    ...(extras.precompile ? { precompile: true } : {}),
    ...(extras.strip ? { strip: true } : {}),
    ...(extras.platform ? { platform: extras.platform } : {}),
    ...(extras.sourceDateEpoch !== undefined ? { sourceDateEpoch: extras.sourceDateEpoch } : {}),
    ...(extras.weights ? { weights: extras.weights } : {}),
    ...(extras.secretKeys ? { secretKeys: extras.secretKeys } : {}),
  };
}
