// Completion: a validated cog.yaml plus its requirements → everything the build plan needs.
// CUDA and cuDNN are chosen from the torch / tensorflow pins for GPU builds; requirements are
// rewritten for the chosen CUDA. Pure: requirement lines, compatibility data and env come in.
import { isAbsolute, posix, relative, resolve, sep } from 'node:path';
import {
  cogBaseTag,
  cogBaseTags,
  compatibleCuDNNs,
  cudaBaseImageFor,
  cudasFromTorch,
  latestCUDAFrom,
  latestCuDNNForCUDA,
  normaliseTorchVersion,
  tfCompatFor,
} from './compat.js';
import type { CompatData } from './compat.js';
import { parseEnvironment } from './environment.js';
import type { FieldPath, PathIssue } from './issues.js';
import { classifyRequirement, findPackageLine, findPackageVersion } from './requirements.js';
import type { RequirementLine } from './requirements.js';
import { removeSdkRequirements, rewriteRequirements } from './rewrite.js';
import type { CogConfig, CompletedConfig, LocalArtifact, RunItem } from './types.js';
import { equalMinor, majorMinor, parseLooseVersion } from './version.js';
import { chooseWheels, isCogletSdkWheel } from './wheels.js';

export const DEFAULT_CUDA = '11.8';

export interface CompletionInput {
  config: CogConfig;
  /** config file name relative to the project dir */
  configFile: string;
  projectDir: string;
  /** requirement lines from build.python_requirements (file set) or build.python_packages (file null) */
  requirements: { file: string | null; displayFile: string | null; lines: RequirementLine[] };
  compat: CompatData;
  env: Readonly<Record<string, string | undefined>>;
  /** for relative COG_SDK_WHEEL / COGLET_WHEEL paths */
  cwd: string;
}

export interface CompletionResult {
  /** undefined when there are errors */
  completed: CompletedConfig | undefined;
  errors: PathIssue[];
  warnings: PathIssue[];
}

interface CudaChoice {
  cuda: string;
  cudnn: string;
}

export function completeConfig(input: CompletionInput): CompletionResult {
  const { config, compat } = input;
  const build = config.build ?? {};
  const errors: PathIssue[] = [];
  const warnings: PathIssue[] = [];
  const reqPath: FieldPath =
    input.requirements.file !== null ? ['build', 'python_requirements'] : ['build', 'python_packages'];
  const at = (line: RequirementLine): Pick<PathIssue, 'location'> =>
    input.requirements.displayFile !== null && line.line > 0
      ? { location: { file: input.requirements.displayFile, line: line.line } }
      : {};

  // 1. requirement lines: local artifacts and forms Cog cannot install
  const localArtifacts: LocalArtifact[] = [];
  for (const line of input.requirements.lines) {
    const kind = classifyRequirement(line.text);
    if (kind.kind === 'rejected') {
      errors.push({ path: reqPath, message: `${kind.message}: ${line.text}`, ...at(line) });
    } else if (kind.kind === 'artifact') {
      const abs = resolve(input.projectDir, kind.path);
      const rel = relative(input.projectDir, abs);
      if (rel === '' || rel.startsWith('..') || isAbsolute(rel)) {
        errors.push({
          path: reqPath,
          message: `local package artifact ${kind.path} is outside the project directory; move it into the project`,
          ...at(line),
        });
      } else {
        localArtifacts.push({
          requirement: line.text,
          relPath: rel.split(sep).join(posix.sep),
          line: line.line,
        });
      }
    }
  }

  // 2. cog / coglet come from the SDK install, not from the user's requirements
  const { kept, warnings: sdkWarnings } = removeSdkRequirements(input.requirements.lines, {
    file: input.requirements.displayFile,
    path: reqPath,
  });
  warnings.push(...sdkWarnings);
  const torch = findPackageVersion(kept, 'torch');
  const torchvision = findPackageVersion(kept, 'torchvision');
  const tensorflow = findPackageVersion(kept, 'tensorflow');

  // 3. CUDA / cuDNN
  const gpu = build.gpu === true;
  let cuda: string | null = build.cuda ?? null;
  let cudnn: string | null = build.cudnn ?? null;
  if (gpu) {
    const choice = chooseCuda({ config, compat, kept, torch, tensorflow, reqPath, at, errors, warnings });
    if (choice !== undefined) ({ cuda, cudnn } = choice);
  }

  // 4. base images
  const pythonVersion = build.python_version?.trim() ?? null;
  let cudaImage: string | null = null;
  if (gpu && cuda !== null && cudnn !== null && errors.length === 0) {
    cudaImage = cudaBaseImageFor(compat, cuda, cudnn) ?? null;
    if (cudaImage === null) {
      errors.push({
        path: build.cudnn !== undefined ? ['build', 'cudnn'] : ['build', 'gpu'],
        message: `no matching base image for CUDA ${cuda} and CuDNN ${cudnn}`,
      });
    }
  }
  let cogBase: string | null = null;
  const publishedTags = cogBaseTags(compat);
  const torchForBase =
    torch !== undefined && torch !== '' ? (normaliseTorchVersion(compat, torch) ?? null) : null;
  if (pythonVersion !== null && majorMinor(pythonVersion) !== undefined) {
    if (torch === undefined || torch === '' || torchForBase !== null) {
      const tag = cogBaseTag({ cuda, python: pythonVersion, torch: torchForBase });
      if (publishedTags.has(tag)) cogBase = tag;
    }
  }
  const torchPart = torchForBase === null ? undefined : `-${cogBaseTag({ torch: torchForBase })}`;
  const cogBaseWithTorch = torchPart
    ? [...publishedTags].filter((tag) => tag.endsWith(torchPart)).sort()
    : [];

  // 5. requirements.txt for the image
  const rewritten = rewriteRequirements(kept, { gpu, cuda, compat });
  for (const w of rewritten.warnings) warnings.push({ path: reqPath, message: w });

  // 6. wheels
  const wheels = chooseWheels({ env: input.env, sdkVersion: build.sdk_version, cwd: input.cwd });
  for (const w of wheels.warnings) warnings.push({ path: ['build', 'sdk_version'], message: w });
  if (isCogletSdkWheel(wheels.sdk) && (pythonVersion === null || !/^\d+\.\d+$/.test(pythonVersion))) {
    errors.push({
      path: ['build', 'python_version'],
      message:
        'COG_SDK_WHEEL is a coglet wheel, which needs python_version as exactly major.minor (e.g. "3.12")',
      ...(pythonVersion === null ? {} : { value: pythonVersion }),
    });
  }

  if (errors.length > 0) return { completed: undefined, errors, warnings };

  const runCommands: RunItem[] = [
    ...(build.run ?? []).map((r) => ({ command: r.command.trim(), mounts: r.mounts.map((m) => ({ ...m })) })),
    ...(build.pre_install ?? []).map((c) => ({ command: c.trim(), mounts: [] })),
  ];
  const predict = nonEmpty(config.run) ?? nonEmpty(config.predict);
  const completed: CompletedConfig = {
    configFile: input.configFile,
    pythonVersion,
    gpu,
    cuda,
    cudnn,
    baseImages: {
      cuda: cudaImage,
      python: pythonVersion === null ? null : `python:${pythonVersion}-slim`,
      cogBaseTag: cogBase,
      cogBaseWithTorch,
    },
    requirements: {
      file: input.requirements.file,
      lines: kept.map((l) => l.text),
      text: rewritten.text,
      localArtifacts,
      torch: torch ?? null,
      torchvision: torchvision ?? null,
      tensorflow: tensorflow ?? null,
    },
    systemPackages: [...(build.system_packages ?? [])],
    runCommands,
    environment: parseEnvironment(config.environment ?? []).env,
    predict,
    train: nonEmpty(config.train),
    image: nonEmpty(config.image),
    model: nonEmpty(config.model),
    concurrency: config.concurrency === undefined ? null : { max: config.concurrency.max },
    weights: config.weights ?? [],
    sdk: wheels.sdk,
    coglet: wheels.coglet,
    warnings: [],
    config,
  };
  return { completed, errors, warnings };
}

function nonEmpty(s: string | undefined): string | null {
  return s === undefined || s === '' ? null : s;
}

interface CudaContext {
  config: CogConfig;
  compat: CompatData;
  kept: RequirementLine[];
  torch: string | undefined;
  tensorflow: string | undefined;
  reqPath: FieldPath;
  at: (line: RequirementLine) => Pick<PathIssue, 'location'>;
  errors: PathIssue[];
  warnings: PathIssue[];
}

/** Pick CUDA and cuDNN for a GPU build (§2 of the fact sheet). Undefined after an error. */
function chooseCuda(ctx: CudaContext): CudaChoice | undefined {
  const { compat, errors, warnings } = ctx;
  const build = ctx.config.build ?? {};
  const userCuda = build.cuda !== undefined && build.cuda !== '' ? build.cuda : undefined;
  const userCudnn = build.cudnn !== undefined && build.cudnn !== '' ? build.cudnn : undefined;
  const frameworkIssue = (name: string, message: string): PathIssue => {
    const line = findPackageLine(ctx.kept, name);
    return { path: ctx.reqPath, message, ...(line === undefined ? {} : ctx.at(line)) };
  };
  const unsupported = (cuda: string): PathIssue => ({
    path: userCuda !== undefined ? ['build', 'cuda'] : ['build', 'gpu'],
    message: `CUDA ${cuda} is not supported by Cog (no CUDA base image offers it)`,
  });

  if (ctx.tensorflow !== undefined) {
    const tf = tfCompatFor(compat, ctx.tensorflow);
    let cuda: string;
    if (userCuda === undefined) {
      if (tf === undefined) {
        errors.push(
          frameworkIssue(
            'tensorflow',
            `cog doesn't know what CUDA version is compatible with tensorflow==${ctx.tensorflow}; set the 'cuda' option in cog.yaml (see https://www.tensorflow.org/install/source#gpu)`,
          ),
        );
        return undefined;
      }
      cuda = tf.CUDA;
    } else {
      cuda = userCuda;
      if (tf !== undefined && parseLooseVersion(tf.CUDA)?.major !== parseLooseVersion(cuda)?.major) {
        errors.push({
          path: ['build', 'cuda'],
          message: `TensorFlow ${ctx.tensorflow} is incompatible with CUDA ${cuda}: TensorFlow ${ctx.tensorflow} requires CUDA ${tf.CUDA}`,
        });
        return undefined;
      }
      if (tf === undefined || !equalMinor(tf.CUDA, cuda)) {
        warnings.push({
          path: ['build', 'cuda'],
          message: `Cog doesn't know if CUDA ${cuda} is compatible with TensorFlow ${ctx.tensorflow}. This might cause CUDA problems.${tf === undefined ? '' : ` Try ${tf.CUDA} instead?`}`,
        });
      }
    }
    let cudnn: string;
    if (userCudnn === undefined) {
      const latest = tf?.CuDNN ?? latestCuDNNForCUDA(compat, cuda);
      if (latest === undefined) {
        errors.push(unsupported(cuda));
        return undefined;
      }
      cudnn = latest;
    } else {
      cudnn = userCudnn;
      if (tf !== undefined && tf.CuDNN !== cudnn) {
        errors.push({
          path: ['build', 'cudnn'],
          value: cudnn,
          message: `the specified cuDNN version ${cudnn} is not compatible with tensorflow==${ctx.tensorflow}. Compatible cuDNN version is: ${tf.CuDNN}`,
        });
        return undefined;
      }
    }
    return { cuda, cudnn };
  }

  let cuda: string;
  if (ctx.torch !== undefined) {
    if (ctx.torch === '') {
      errors.push(
        frameworkIssue(
          'torch',
          'torch version must be specified when using CUDA (pin it, e.g. torch==2.7.0)',
        ),
      );
      return undefined;
    }
    const cudas = cudasFromTorch(compat, ctx.torch);
    if (userCuda === undefined) {
      const latest = latestCUDAFrom(cudas);
      if (latest === undefined) {
        errors.push(
          frameworkIssue(
            'torch',
            `cog doesn't know what CUDA version is compatible with torch==${ctx.torch}; set the 'cuda' option in cog.yaml (see https://pytorch.org/get-started/previous-versions/)`,
          ),
        );
        return undefined;
      }
      cuda = latest;
    } else {
      cuda = userCuda;
      if (!cudas.some((c) => equalMinor(c, cuda))) {
        const last = cudas.at(-1);
        warnings.push({
          path: ['build', 'cuda'],
          message: `Cog doesn't know if CUDA ${cuda} is compatible with PyTorch ${ctx.torch}. This might cause CUDA problems.${last === undefined ? '' : ` Try ${last} instead?`}`,
        });
      }
    }
  } else {
    cuda = userCuda ?? DEFAULT_CUDA;
  }
  if (userCudnn !== undefined) {
    if (compatibleCuDNNs(compat, cuda).length === 0) {
      errors.push(unsupported(cuda));
      return undefined;
    }
    return { cuda, cudnn: userCudnn };
  }
  const cudnn = latestCuDNNForCUDA(compat, cuda);
  if (cudnn === undefined) {
    errors.push(unsupported(cuda));
    return undefined;
  }
  return { cuda, cudnn };
}
