// Loading a project's config: find cog.yaml (walking up from cwd), read it and its requirements file,
// validate, complete. This is the file-system layer over the pure modules next to it.
import { existsSync, lstatSync, readFileSync, readlinkSync, realpathSync, statSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { CogError } from '../errors.js';
import type { CompatData } from './compat.js';
import { loadCompatData } from './compat-load.js';
import { completeConfig } from './complete.js';
import { ConfigError, fieldName } from './issues.js';
import type { ConfigIssue, PathIssue } from './issues.js';
import { parseRequirementsText, requirementsFromList } from './requirements.js';
import type { RequirementLine } from './requirements.js';
import { checkSchema } from './schema.js';
import { locate, parseYamlSource, scalarSourceText } from './source.js';
import type { YamlSource } from './source.js';
import type { CogConfig, CompletedConfig } from './types.js';
import { findUnknownKeys } from './unknown-keys.js';
import { validateConfig } from './validate.js';
import type { RequirementsFileState } from './validate.js';
import { COGLET_WHEEL_ENV, SDK_WHEEL_ENV } from './wheels.js';
import { resolveWheelFile } from './wheel-files.js';

export const DEFAULT_CONFIG_FILE = 'cog.yaml';
export const MAX_PARENT_LEVELS = 100;

export interface LoadConfigOptions {
  /** where to start looking; default process.cwd() */
  cwd?: string;
  /** config file name (-f/--file); default cog.yaml. An absolute path is used as is. */
  file?: string;
  /** environment for COG_SDK_WHEEL, COGLET_WHEEL and COG_COMPAT_DIR; default process.env */
  env?: Readonly<Record<string, string | undefined>>;
  /** compatibility data; default loaded with loadCompatData(env) */
  compat?: CompatData;
}

export interface LoadedConfig {
  projectDir: string;
  configPath: string;
  config: CogConfig;
  completed: CompletedConfig;
  warnings: ConfigIssue[];
}

/** Walk up from `cwd` (at most 100 levels) to the directory holding `file`. */
export function findConfigFile(
  cwd: string,
  file: string = DEFAULT_CONFIG_FILE,
): { projectDir: string; configPath: string } {
  if (file.trim() === '')
    throw new CogError('-f names no file (it is empty)', {
      hint: `pass -f the path of a config file, or leave -f out for ${DEFAULT_CONFIG_FILE}`,
    });
  if (file.endsWith('/') && !isDirectory(resolve(cwd, file))) {
    // `cog.yaml/` names no file (the system reads it as a directory): say so, not "not found"
    const bare = file.replace(/\/+$/, '');
    throw new CogError(`-f ${file} ends in "/", so it names a directory, and there is no directory ${bare}`, {
      hint: `drop the trailing "/": -f ${bare}`,
    });
  }
  if (isAbsolute(file)) {
    if (existsSync(file) && statSync(file).isFile()) return { projectDir: dirname(file), configPath: file };
    if (isDirectory(file)) throw aDirectory(file, file);
    throw unusableEntry(file, file) ?? notFound(file);
  }
  let dir = resolve(cwd);
  for (let i = 0; i < MAX_PARENT_LEVELS; i++) {
    const candidate = join(dir, file);
    if (existsSync(candidate) && statSync(candidate).isFile())
      return { projectDir: dir, configPath: candidate };
    if (isDirectory(candidate)) throw aDirectory(file, candidate);
    // something by that name that is no file stops the search: a parent's config is another project's
    const unusable = unusableEntry(file, candidate);
    if (unusable) throw unusable;
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  throw notFound(file, resolve(cwd));
}

const isDirectory = (path: string) => existsSync(path) && statSync(path).isDirectory();

/** The config file named (-f) is a directory: the project's, most likely. */
function aDirectory(file: string, path: string): CogError {
  const inside = join(file, DEFAULT_CONFIG_FILE);
  return new CogError(`${file} is a directory${path === file ? '' : ` (${path})`}, not a config file`, {
    hint: existsSync(join(path, DEFAULT_CONFIG_FILE))
      ? `pass the config file in it: -f ${inside}, or run cog in that directory`
      : `pass -f the path of a config file (e.g. -f ${inside}), or run cog in the project's directory`,
  });
}

/**
 * The error for a config path that names something, but no file to read: a link to nothing (or a link
 * loop), a FIFO, a socket, a device; undefined when nothing is there.
 */
function unusableEntry(file: string, path: string): CogError | undefined {
  const entry = lstatSync(path, { throwIfNoEntry: false });
  if (!entry) return undefined;
  const where = path === file ? '' : ` (${path})`;
  if (entry.isSymbolicLink()) {
    const target = readlinkSync(path);
    return new CogError(
      `${file}${where} is a link to ${target}, which cannot be read (it does not exist, or the links loop)`,
      {
        hint: `point the link at the config file, or replace ${file} with the file itself`,
      },
    );
  }
  return new CogError(`${file}${where} is not a regular file`, {
    hint: `replace ${file} with the config file itself, or pass -f the path of one`,
  });
}

/** `searched`: the directory looked in, then its parents (not for a path from the root) */
function notFound(file: string, searched?: string): CogError {
  const where = searched === undefined ? '' : ` in ${searched} (or in any parent directories)`;
  return new CogError(`${file} not found${where}`, {
    hint: 'run `cog init` to create one, or pass -f <file> to name another config file',
  });
}

/** A path as shown in messages: relative to cwd when it is inside, else absolute. */
export function displayPath(cwd: string, path: string): string {
  const rel = relative(cwd, path);
  return rel === '' || rel.startsWith('..') || isAbsolute(rel) ? path : rel;
}

/** Find, parse, validate and complete the config. Throws ConfigError listing every problem. */
export function loadConfig(options: LoadConfigOptions = {}): LoadedConfig {
  const cwd = resolve(options.cwd ?? process.cwd());
  const env = options.env ?? process.env;
  const { projectDir, configPath } = findConfigFile(cwd, options.file ?? DEFAULT_CONFIG_FILE);
  const display = displayPath(cwd, configPath);
  const text = readFileSync(configPath, 'utf8');
  const compat = options.compat ?? loadCompatData(env);

  const { source, errors: syntax } = parseYamlSource(text, display);
  if (syntax.length > 0)
    throw new ConfigError(syntax, {
      heading: `failed to parse ${display}`,
      hint: 'fix the YAML syntax at the position shown',
    });
  // shown with any error below: a misspelt required key is reported missing, and this says why
  const unknownKeys = findUnknownKeys(source);
  const warnings: ConfigIssue[] = [...unknownKeys];

  const data = decode(source);
  const schema = checkSchema(data);
  const rootName = basename(configPath);
  const locateAll = (issues: readonly PathIssue[]): ConfigIssue[] =>
    issues.map((i) => located(source, rootName, i));
  if (schema.config === undefined) {
    throw new ConfigError(
      sortIssues(locateAll(schema.issues.map((i) => ({ path: i.path, message: i.message })))),
      {
        heading: `${display} is not valid`,
        notes: unknownKeys,
      },
    );
  }
  const config = schema.config;

  // requirements: from the file, or from the deprecated python_packages list
  const reqSetting = config.build?.python_requirements;
  let requirementsFile: RequirementsFileState | undefined;
  let requirements: { file: string | null; displayFile: string | null; lines: RequirementLine[] } = {
    file: null,
    displayFile: null,
    lines: requirementsFromList(config.build?.python_packages ?? []),
  };
  if (reqSetting !== undefined && reqSetting !== '') {
    const reqPath = isAbsolute(reqSetting) ? reqSetting : join(projectDir, reqSetting);
    const read = readRequirementsFile(reqPath);
    requirementsFile = read.state;
    requirements = {
      file: reqSetting,
      displayFile: displayPath(cwd, reqPath),
      lines: read.text === undefined ? [] : parseRequirementsText(read.text),
    };
  }

  const validation = validateConfig(config, {
    compat,
    ...(requirementsFile === undefined ? {} : { requirementsFile }),
  });
  warnings.push(...locateAll(validation.warnings));
  if (validation.errors.length > 0) {
    throw new ConfigError(sortIssues(locateAll(validation.errors)), {
      heading: `${display} is not valid`,
      notes: unknownKeys,
    });
  }

  const result = completeConfig({
    config,
    configFile: relative(projectDir, configPath).split(sep).join('/'),
    projectDir,
    requirements,
    compat,
    env,
    cwd,
  });
  warnings.push(...locateAll(result.warnings));
  const errors = [...result.errors];
  if (result.completed !== undefined) {
    errors.push(...checkArtifactFiles(projectDir, result.completed, requirements.displayFile));
  }
  if (errors.length > 0 || result.completed === undefined) {
    throw new ConfigError(sortIssues(locateAll(errors)), {
      heading: `${display} is not valid`,
      notes: unknownKeys,
    });
  }
  const completed = result.completed;
  completed.sdk = resolveWheelFile(completed.sdk, 'cog', SDK_WHEEL_ENV);
  if (completed.coglet !== null)
    completed.coglet = resolveWheelFile(completed.coglet, 'coglet', COGLET_WHEEL_ENV);
  completed.warnings = warnings;
  return { projectDir, configPath, config, completed, warnings };
}

/**
 * YAML → plain data. Scalars of the string fields that YAML reads as numbers keep their source
 * text (python_version: 3.10 is "3.10").
 */
function decode(source: YamlSource): unknown {
  const data: unknown = source.doc.toJS({ maxAliasCount: 1000 });
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return data;
  const build = (data as Record<string, unknown>)['build'];
  if (typeof build === 'object' && build !== null && !Array.isArray(build)) {
    for (const key of ['python_version', 'cuda', 'cudnn', 'sdk_version']) {
      const text = scalarSourceText(source, ['build', key]);
      if (text !== undefined) (build as Record<string, unknown>)[key] = text;
    }
  }
  return data;
}

function located(source: YamlSource, rootName: string, issue: PathIssue): ConfigIssue {
  const out: ConfigIssue = {
    field: issue.path.length === 0 ? rootName : fieldName(issue.path),
    message: issue.message,
  };
  if (issue.value !== undefined) out.value = issue.value;
  const loc = issue.location ?? locate(source, issue.path);
  if (loc !== undefined) out.location = loc;
  return out;
}

/** Stable sort by file position; issues without one keep their order, after the rest. */
function sortIssues(issues: ConfigIssue[]): ConfigIssue[] {
  const files: string[] = [];
  for (const i of issues)
    if (i.location !== undefined && !files.includes(i.location.file)) files.push(i.location.file);
  const key = (i: ConfigIssue): number[] =>
    i.location === undefined
      ? [Infinity]
      : [files.indexOf(i.location.file), i.location.line, i.location.column ?? 0];
  return issues
    .map((issue, index) => ({ issue, index, k: key(issue) }))
    .sort((a, b) => {
      for (let j = 0; j < 3; j++) {
        const d = (a.k[j] ?? 0) - (b.k[j] ?? 0);
        if (d !== 0 && !Number.isNaN(d)) return d;
      }
      return a.index - b.index;
    })
    .map((x) => x.issue);
}

/** Each local artifact must be a regular file inside the project, after following symlinks. */
function checkArtifactFiles(
  projectDir: string,
  completed: CompletedConfig,
  displayFile: string | null,
): PathIssue[] {
  const issues: PathIssue[] = [];
  if (completed.requirements.localArtifacts.length === 0) return issues;
  const root = realpathSync(projectDir);
  const path =
    completed.requirements.file !== null ? ['build', 'python_requirements'] : ['build', 'python_packages'];
  for (const artifact of completed.requirements.localArtifacts) {
    const issue = (message: string): PathIssue => ({
      path,
      message: `${message}: ${artifact.requirement}`,
      ...(displayFile !== null && artifact.line > 0
        ? { location: { file: displayFile, line: artifact.line } }
        : {}),
    });
    let real: string;
    try {
      real = realpathSync(join(projectDir, artifact.relPath));
    } catch {
      issues.push(issue('local package artifact not found'));
      continue;
    }
    const rel = relative(root, real);
    if (rel === '' || rel.startsWith('..') || isAbsolute(rel)) {
      issues.push(issue('local package artifact resolves (through a symlink) outside the project directory'));
    } else if (!statSync(real).isFile()) {
      issues.push(issue('local package artifact is not a regular file'));
    }
  }
  return issues;
}

/** build.python_requirements's file: its text, or why there is none (validation names the reason). */
function readRequirementsFile(path: string): { state: RequirementsFileState; text?: string } {
  let stat;
  try {
    stat = statSync(path, { throwIfNoEntry: false });
  } catch (err) {
    // under a file (ENOTDIR) nothing is there; a directory on the way that cannot be entered, unreadable
    return { state: (err as NodeJS.ErrnoException).code === 'ENOTDIR' ? 'missing' : 'unreadable' };
  }
  if (stat === undefined) return { state: 'missing' };
  if (stat.isDirectory()) return { state: 'directory' };
  if (!stat.isFile()) return { state: 'special' }; // a FIFO would block the read
  try {
    return { state: 'file', text: readFileSync(path, 'utf8') };
  } catch {
    return { state: 'unreadable' };
  }
}
