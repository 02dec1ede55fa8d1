/**
 * The build plan: everything `cog build` will do, as plain JSON, before any BuildKit type appears.
 * `cog debug` prints it; the LLB compiler consumes it; golden tests pin it.
 */

import type { WeightsSplit } from './weights.js';

/** Where a Python package (the cog SDK, coglet) is installed from. */
export type WheelSource =
  | { readonly kind: 'pypi'; readonly version?: string; readonly pre?: boolean }
  | { readonly kind: 'url'; readonly url: string }
  /** a wheel on the client: project-relative or absolute path */
  | { readonly kind: 'file'; readonly path: string };

/** What the planner needs from the completed cog.yaml and the build flags. */
export interface PlanInput {
  /** "3.11" or "3.11.9" */
  readonly pythonVersion: string;
  readonly gpu: boolean;
  /** e.g. python:3.11-slim, nvidia/cuda:12.8.1-cudnn9-devel-ubuntu24.04 or r8.im/cog-base:python3.12 */
  readonly baseImage: string;
  /** cog-base images already hold tini, the preamble ENVs, common system packages and ldconfig */
  readonly baseKind: 'python-slim' | 'cuda' | 'cog-base';
  /**
   * A cog-base image to try first (the build resolves it through the daemon and, when it exists,
   * plans on it with baseKind 'cog-base'); baseImage/baseKind are then the fallback. The planner
   * ignores it.
   */
  readonly cogBase?: { readonly image: string; readonly required: boolean };
  /**
   * How a CUDA base gets Python: `uv` downloads a standalone build (upstream's way, needs GitHub);
   * `distro` installs the base distribution's python3 with apt, when that is the version asked for.
   */
  readonly cudaPython?: 'uv' | 'distro';
  /** resolved CUDA version, for the config label (and, on cog-base, the CUDA ≥ 13 rules) */
  readonly cuda?: string;
  /** PEM text of an extra CA certificate (COG_CA_CERT) */
  readonly caCert?: string;
  /** cog.yaml `environment`, in file order */
  readonly environment: readonly (readonly [string, string])[];
  readonly systemPackages: readonly string[];
  /** the rewritten requirements.txt text; absent or empty = no user requirements */
  readonly requirements?: string;
  /** project-relative paths of local wheels/sdists the requirements name */
  readonly localArtifacts?: readonly string[];
  readonly sdk: WheelSource;
  /** coglet is installed explicitly only when given; otherwise it comes with cog >= 0.17 */
  readonly coglet?: WheelSource;
  readonly runCommands: readonly {
    readonly command: string;
    readonly secrets: readonly { readonly id: string; readonly target: string }[];
  }[];
  readonly predict?: string;
  readonly train?: string;
  readonly concurrencyMax?: number;
  /** the config file's name relative to the project, when it is not cog.yaml */
  readonly configFileName?: string;
  /** .dockerignore patterns of the project */
  readonly sourceExclude: readonly string[];
  /** the OpenAPI schema JSON, written to /src/.cog/openapi_schema.json */
  readonly openapiSchema?: string;
  /** labels known before the build (version, config, schema, revision...) */
  readonly labels: Readonly<Record<string, string>>;
  readonly precompile?: boolean;
  readonly strip?: boolean;
  /** --timestamp: exported into every build step, so Python writes hash-checked .pyc files */
  readonly sourceDateEpoch?: number;
  readonly platform?: { readonly os: 'linux'; readonly architecture: 'amd64' | 'arm64' };
  /** the uv image the binaries are copied from */
  readonly uvImage?: string;
  /**
   * per secret id, a key derived from the secret's content (never the content): build.run steps that
   * mount the secret carry it, so BuildKit's cache re-runs them when the secret changes
   */
  readonly secretKeys?: Readonly<Record<string, string>>;
  /** --separate-weights: project weights (see weights.ts) copied in a layer of their own */
  readonly weights?: WeightsSplit;
}

export interface CacheMount {
  readonly target: string;
  readonly sharing: 'shared' | 'private' | 'locked';
  /** the cache's name in buildkitd (default: the target) */
  readonly id?: string;
}

export interface EmbeddedFile {
  readonly path: string;
  readonly content: string;
  readonly mode?: number;
}

/** One step, in the order upstream Cog's Dockerfile would run it. */
export type PlanStep =
  | { readonly kind: 'env'; readonly name: string; readonly env: readonly (readonly [string, string])[] }
  | { readonly kind: 'files'; readonly name: string; readonly files: readonly EmbeddedFile[] }
  /** files from a client directory (`context` = the project), copied to `dest` keeping relative paths */
  | {
      readonly kind: 'context-files';
      readonly name: string;
      readonly context: string;
      readonly paths: readonly string[];
      readonly dest: string;
    }
  /** files from another image, e.g. uv; independent of earlier steps, so it is built in parallel */
  | {
      readonly kind: 'image-files';
      readonly name: string;
      readonly image: string;
      readonly paths: readonly string[];
      readonly dest: string;
    }
  | {
      readonly kind: 'run';
      readonly name: string;
      readonly shell: string;
      readonly cache?: readonly CacheMount[];
      readonly secrets?: readonly { readonly id: string; readonly target: string }[];
      /**
       * derived from the content of the secrets the step mounts (see src/build/secret-keys.ts): set as
       * the step's COG_BUILD_SECRETS_KEY so that a changed secret re-runs the step
       */
      readonly secretsKey?: string;
      /**
       * later steps neither depend on this one nor write what it writes, up to the first step marked
       * `seesBranches`: it runs in a branch of its own beside them, and its layer keeps its place
       */
      readonly independent?: boolean;
      /** runs only after every independent step before it, on a filesystem that holds their results */
      readonly seesBranches?: boolean;
      /**
       * the last step that may change the installed Python packages: the pip freeze probe reads the
       * filesystem after it, beside the steps that follow
       */
      readonly packagesSettled?: boolean;
    };

export interface BuildPlan {
  readonly platform: { readonly os: 'linux'; readonly architecture: 'amd64' | 'arm64' };
  readonly base: string;
  readonly steps: readonly PlanStep[];
  /** the project copied to /src, with the schema file added in the same step */
  readonly source: { readonly exclude: readonly string[]; readonly files: readonly EmbeddedFile[] };
  /**
   * --separate-weights: these project paths go to /src in a layer of their own, below the source layer
   * and independent of every other step; the source copy excludes them
   */
  readonly weights?: {
    readonly dirs: readonly string[];
    readonly files: readonly string[];
    /** the .dockerignore patterns, which the weights transfer honours too */
    readonly exclude: readonly string[];
  };
  /** steps after the source copy (e.g. copying a renamed config file to cog.yaml) */
  readonly afterSource: readonly PlanStep[];
  /** extra environment for every build step (not the image), e.g. SOURCE_DATE_EPOCH */
  readonly stepEnv: Readonly<Record<string, string>>;
  /**
   * the command whose output becomes the run.cog.pip_freeze label; run beside the image, not in it, on
   * the filesystem after the step marked `packagesSettled`
   */
  readonly freezeCommand: string;
  readonly image: {
    readonly entrypoint: readonly string[];
    readonly cmd: readonly string[];
    readonly workdir: string;
    readonly exposedPorts: readonly string[];
    readonly labels: Readonly<Record<string, string>>;
  };
}
