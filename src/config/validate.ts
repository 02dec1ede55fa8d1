// Semantic checks on a schema-valid cog.yaml. Pure: facts about the file system come in as arguments.
// Every problem is collected; deprecations are warnings.
import { compatibleCuDNNs } from './compat.js';
import type { CompatData } from './compat.js';
import { parseEnvironment } from './environment.js';
import { checkBareRepository } from './reference.js';
import type { CogConfig } from './types.js';
import { checkSdkVersion } from './wheels.js';
import type { PathIssue } from './issues.js';
import { validateWeights } from './weights.js';

export const MINIMUM_PYTHON = { major: 3, minor: 10 } as const;
export const MINIMUM_PYTHON_FOR_CONCURRENCY = { major: 3, minor: 11 } as const;
export const MINIMUM_CUDA_MAJOR = 11;

export interface ValidationFacts {
  compat: CompatData;
  /** what build.python_requirements names on disk; undefined if unchecked */
  requirementsFile?: RequirementsFileState;
}

/** A requirements file as found: readable, or why it cannot be read */
export type RequirementsFileState = 'file' | 'missing' | 'directory' | 'special' | 'unreadable';

const requirementsFileProblems: Readonly<Record<Exclude<RequirementsFileState, 'file'>, string>> = {
  missing: 'file does not exist (the path is relative to the directory of cog.yaml)',
  directory: 'is a directory; name the requirements file in it (e.g. requirements.txt)',
  special: 'is not a regular file (a FIFO, socket or device); name a requirements file',
  unreadable: 'file cannot be read (check its permissions)',
};

export interface ValidationResult {
  errors: PathIssue[];
  warnings: PathIssue[];
}

export function validateConfig(config: CogConfig, facts: ValidationFacts): ValidationResult {
  const errors: PathIssue[] = [];
  const warnings: PathIssue[] = [];
  checkRunRefs(config, errors);
  if (config.build !== undefined) checkBuild(config, facts, errors);
  checkConcurrency(config, errors);
  checkEnvironment(config, errors);
  checkModel(config, errors);
  if (config.weights !== undefined && config.weights.length > 0) {
    errors.push(...validateWeights(config.weights));
    if (config.model === undefined || config.model === '') {
      errors.push({
        path: ['weights'],
        message:
          config.image !== undefined && config.image !== ''
            ? "weights require 'model', not 'image' — rename 'image' to 'model'"
            : "weights require 'model' (the repository the weights are pushed to)",
      });
    }
  }
  checkDeprecations(config, warnings);
  return { errors, warnings };
}

/** "3.12" / "3.12.1" → [3, 12]; undefined without an integer major and minor. */
export function splitPythonVersion(version: string): [number, number] | undefined {
  const parts = version.trim().split('.');
  if (parts.length < 2) return undefined;
  const [major, minor] = [parts[0] ?? '', parts[1] ?? ''];
  if (!/^\d+$/.test(major) || !/^\d+$/.test(minor)) return undefined;
  return [Number(major), Number(minor)];
}

function checkRunRefs(config: CogConfig, errors: PathIssue[]): void {
  const hasRun = config.run !== undefined && config.run !== '';
  const hasPredict = config.predict !== undefined && config.predict !== '';
  if (hasRun && hasPredict) {
    errors.push({
      path: ['predict'],
      message: "only one of run or predict can be set; use 'run' (predict is deprecated)",
    });
  }
  const refs: [keyof CogConfig & ('run' | 'predict' | 'train'), string][] = [
    ['run', 'run.py:Runner'],
    ['predict', 'predict.py:Predictor'],
    ['train', 'train.py:Trainer'],
  ];
  for (const [key, example] of refs) {
    const ref = config[key];
    if (ref === undefined || ref === '') continue;
    if (ref.split('.py:').length !== 2) {
      errors.push({ path: [key], value: ref, message: `must be in the form '${example}'` });
    }
  }
}

function checkBuild(config: CogConfig, facts: ValidationFacts, errors: PathIssue[]): void {
  const build = config.build ?? {};
  const py = build.python_version;
  if (py === undefined || py.trim() === '') {
    errors.push({
      path: ['build', 'python_version'],
      message:
        'python_version is required. Add it to the build section of your cog.yaml, e.g. `python_version: "3.13"`',
    });
  } else {
    const parts = py.trim().split('.');
    const split = splitPythonVersion(py);
    if (parts.length < 2) {
      errors.push({
        path: ['build', 'python_version'],
        value: py,
        message: "must include major and minor version (e.g., '3.12')",
      });
    } else if (split === undefined) {
      errors.push({
        path: ['build', 'python_version'],
        value: py,
        message: 'major and minor version must be numbers',
      });
    } else if (
      split[0] < MINIMUM_PYTHON.major ||
      (split[0] === MINIMUM_PYTHON.major && split[1] < MINIMUM_PYTHON.minor)
    ) {
      errors.push({
        path: ['build', 'python_version'],
        value: py,
        message: `minimum supported Python version is ${MINIMUM_PYTHON.major}.${MINIMUM_PYTHON.minor}`,
      });
    }
  }

  const hasReqs = build.python_requirements !== undefined && build.python_requirements !== '';
  if (hasReqs && build.python_packages !== undefined && build.python_packages.length > 0) {
    errors.push({
      path: ['build', 'python_packages'],
      message: 'only one of python_packages or python_requirements can be set, not both',
    });
  }
  if (hasReqs && facts.requirementsFile !== undefined && facts.requirementsFile !== 'file') {
    errors.push({
      path: ['build', 'python_requirements'],
      value: build.python_requirements ?? '',
      message: requirementsFileProblems[facts.requirementsFile],
    });
  }

  (build.run ?? []).forEach((item, i) => {
    if (item.command.trim().includes('\n')) {
      errors.push({
        path: ['build', 'run', i],
        message:
          "the command contains a new line; each item in 'run' must be a single line (use one item per command, or join them with &&)",
      });
    }
    if (item.command.trim() === '')
      errors.push({ path: ['build', 'run', i], message: 'the command is empty' });
  });

  if (build.cuda !== undefined && build.cuda !== '') {
    const parts = build.cuda.split('.');
    if (parts.length < 2) {
      errors.push({
        path: ['build', 'cuda'],
        value: build.cuda,
        message: "must include both major and minor versions (e.g., '11.8')",
      });
    } else if (!parts.every((p) => /^\d+$/.test(p)) || parts.length > 3) {
      errors.push({
        path: ['build', 'cuda'],
        value: build.cuda,
        message: "must be a version like '12.8' or '12.8.1'",
      });
    } else if (Number(parts[0]) < MINIMUM_CUDA_MAJOR) {
      errors.push({
        path: ['build', 'cuda'],
        value: build.cuda,
        message: `minimum supported CUDA version is ${MINIMUM_CUDA_MAJOR}`,
      });
    } else if (build.gpu === true && build.cudnn !== undefined && build.cudnn !== '') {
      const compatible = compatibleCuDNNs(facts.compat, build.cuda);
      if (compatible.length > 0 && !compatible.includes(build.cudnn)) {
        errors.push({
          path: ['build', 'cudnn'],
          message: `CUDA ${build.cuda} is incompatible with CuDNN ${build.cudnn}: compatible CuDNN versions are: ${compatible.join(', ')}`,
        });
      }
    }
  }

  if (build.sdk_version !== undefined && build.sdk_version !== '') {
    const check = checkSdkVersion(build.sdk_version);
    if (!check.ok)
      errors.push({ path: ['build', 'sdk_version'], value: build.sdk_version, message: check.message });
  }
}

function checkConcurrency(config: CogConfig, errors: PathIssue[]): void {
  const max = config.concurrency?.max;
  if (max === undefined) return;
  if (max < 1)
    errors.push({ path: ['concurrency', 'max'], value: String(max), message: 'must be at least 1' });
  const split = splitPythonVersion(config.build?.python_version ?? '');
  const min = MINIMUM_PYTHON_FOR_CONCURRENCY;
  if (max > 1 && split !== undefined && split[0] === min.major && split[1] < min.minor) {
    errors.push({
      path: ['concurrency', 'max'],
      value: String(max),
      message: `concurrency requires Python ${min.major}.${min.minor} or higher`,
    });
  }
}

function checkEnvironment(config: CogConfig, errors: PathIssue[]): void {
  if (config.environment === undefined) return;
  for (const e of parseEnvironment(config.environment).errors) {
    errors.push({ path: ['environment', e.index], value: e.value, message: e.message });
  }
}

function checkModel(config: CogConfig, errors: PathIssue[]): void {
  const model = config.model;
  if (model === undefined || model === '') return;
  if (config.image !== undefined && config.image !== '') {
    errors.push({ path: ['model'], message: "'model' and 'image' cannot both be set" });
  }
  const check = checkBareRepository(model);
  if (!check.ok) errors.push({ path: ['model'], value: model, message: check.message });
}

function deprecated(path: PathIssue['path'], field: string, replacement: string, why: string): PathIssue {
  return { path, message: `deprecated field "${field}": use "${replacement}" instead (${why})` };
}

function checkDeprecations(config: CogConfig, warnings: PathIssue[]): void {
  if (config.predict !== undefined && config.predict !== '') {
    warnings.push(deprecated(['predict'], 'predict', 'run', 'same value, new name'));
  }
  const build = config.build;
  if (build?.python_packages !== undefined && build.python_packages.length > 0) {
    warnings.push(
      deprecated(
        ['build', 'python_packages'],
        'build.python_packages',
        'build.python_requirements',
        'use a requirements.txt file instead',
      ),
    );
  }
  if (build?.pre_install !== undefined && build.pre_install.length > 0) {
    warnings.push(
      deprecated(
        ['build', 'pre_install'],
        'build.pre_install',
        'build.run',
        'use build.run commands instead',
      ),
    );
  }
  if (config.concurrency !== undefined) {
    warnings.push(
      deprecated(
        ['concurrency'],
        'concurrency',
        '@cog.concurrent(max=...)',
        'declare concurrency on the run() method',
      ),
    );
  }
}
