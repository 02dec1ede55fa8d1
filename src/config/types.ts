// The shapes of cog.yaml after schema checking (CogConfig, keys as written in the file) and after
// completion (CompletedConfig, what the build plan consumes). Both are plain JSON-able data.
import type { ConfigIssue } from './issues.js';

export interface SecretMount {
  type: 'secret';
  id: string;
  target: string;
}

export interface RunItem {
  command: string;
  mounts: SecretMount[];
}

export interface BuildConfig {
  gpu?: boolean;
  /** always text: an unquoted 3.10 in YAML is kept as "3.10", not 3.1 */
  python_version?: string;
  python_requirements?: string;
  /** deprecated: use python_requirements */
  python_packages?: string[];
  system_packages?: string[];
  run?: RunItem[];
  /** deprecated: use build.run */
  pre_install?: string[];
  cuda?: string;
  cudnn?: string;
  sdk_version?: string;
}

export interface WeightSource {
  uri: string;
  include?: string[];
  exclude?: string[];
}

export interface WeightConfig {
  name: string;
  target: string;
  /** a single object in the file is normalised to a one-element list */
  source: WeightSource[];
}

export interface ConcurrencyConfig {
  max: number;
  default_target?: number;
}

export interface CogConfig {
  build?: BuildConfig;
  run?: string;
  /** deprecated alias of run */
  predict?: string;
  train?: string;
  image?: string;
  model?: string;
  concurrency?: ConcurrencyConfig;
  environment?: string[];
  weights?: WeightConfig[];
}

export type ConfigWarning = ConfigIssue;

/** How to install the cog SDK or coglet. `pre` adds --pre to the pip install. */
export type WheelSpec =
  | { kind: 'pypi'; package: 'cog' | 'coglet'; version: string | null; pre: boolean }
  | { kind: 'url'; url: string; pre: boolean }
  | { kind: 'file'; path: string; pre: boolean };

export interface LocalArtifact {
  /** the requirement line as written, e.g. "./wheels/foo-1.0-py3-none-any.whl" */
  requirement: string;
  /** path relative to the project directory, "/"-separated */
  relPath: string;
  /** 1-based line in the requirements file (0 for python_packages entries) */
  line: number;
}

export interface CompletedConfig {
  /** config file name relative to the project dir ("cog.yaml" unless -f says otherwise) */
  configFile: string;
  /** null when cog.yaml has no build section */
  pythonVersion: string | null;
  gpu: boolean;
  /** resolved for GPU builds; the user's value otherwise (may be null) */
  cuda: string | null;
  cudnn: string | null;
  baseImages: {
    /** nvidia/cuda:<tag> for GPU builds */
    cuda: string | null;
    /** python:<version>-slim, when the Python version is known */
    python: string | null;
    /** cog-base tag (e.g. "cuda11.8-python3.10-torch2.0.1") when the combination is one cog-base publishes */
    cogBaseTag: string | null;
    /**
     * the cog-base tags published with the build's torch (as cogBaseTag would name it), sorted: what a
     * build that needs a cog-base image could use instead when none fits; empty without a torch pin
     */
    cogBaseWithTorch: readonly string[];
  };
  requirements: {
    /** path of the requirements file relative to the project dir, or null (python_packages or none) */
    file: string | null;
    /** the user's requirement lines after removing cog/coglet, before rewriting */
    lines: string[];
    /** the requirements.txt to install: --find-links, --extra-index-url, then packages; "" when none */
    text: string;
    localArtifacts: LocalArtifact[];
    torch: string | null;
    torchvision: string | null;
    tensorflow: string | null;
  };
  systemPackages: string[];
  /** build.run items then pre_install items, commands trimmed */
  runCommands: RunItem[];
  /** cog.yaml `environment`, in file order */
  environment: Record<string, string>;
  /** run: (or the deprecated predict:) reference, e.g. "run.py:Runner" */
  predict: string | null;
  train: string | null;
  image: string | null;
  model: string | null;
  concurrency: { max: number } | null;
  weights: WeightConfig[];
  sdk: WheelSpec;
  /** null: coglet arrives as a dependency of cog */
  coglet: WheelSpec | null;
  warnings: ConfigWarning[];
  /** the validated cog.yaml, for the run.cog.config label */
  config: CogConfig;
}
