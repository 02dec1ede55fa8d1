/**
 * `cog doctor`: checks the project and this machine for what would make a build or a model fail, as
 * upstream's command does, with BuildKit in place of Docker. Prints a report on stderr; exits 1 when it
 * found an error (warnings alone exit 0). --fix applies the fixes there are (see doctor/fixes.ts).
 */
import { wantsColor } from './color.js';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { realpath, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join, relative, resolve, sep } from 'node:path';
import { Writable } from 'node:stream';
import { platformsOfWorkers } from '../buildkit/client.js';
import { connectBuildkit } from '../buildkit/daemon.js';
import { dockerKeychain, envKeychain } from '../registry/keychain.js';
import { parseReference } from '../registry/reference.js';
import { type TlsFlags, withTls } from '../buildkit/tls.js';
import { findConfigFile, loadConfig } from '../config/load.js';
import { projectLoader } from '../schema/index.js';
import { formatIssue } from '../config/issues.js';
import { parseYamlSource } from '../config/source.js';
import { type BuildkitProbe, type DoctorContext, doctorChecks } from '../doctor/checks.js';
import type { FileEdits } from '../doctor/fixes.js';
import { formatReport, runChecks, tally } from '../doctor/report.js';
import { commandOutput } from '../command-output.js';
import { CogError } from '../errors.js';
import type { CommandIo } from './debug-solve.js';
import { ProcessExitError } from './exec.js';

export interface DoctorArgs {
  readonly file: string;
  readonly fix: boolean;
  readonly tls?: TlsFlags;
}

/**
 * The project's Python files, project-relative: hidden directories, `__pycache__`, `node_modules` and
 * virtualenvs (a directory with `pyvenv.cfg`) left out; at most `limit` files.
 */
export function projectPythonFiles(root: string, limit = 5000): string[] {
  const found: string[] = [];
  const walk = (dir: string) => {
    let entries;
    try {
      entries = readdirSync(join(root, dir), { withFileTypes: true });
    } catch {
      return;
    }
    for (const entry of entries) {
      if (found.length >= limit) return;
      const path = dir ? `${dir}/${entry.name}` : entry.name;
      if (entry.isFile() && entry.name.endsWith('.py')) found.push(path);
      else if (
        entry.isDirectory() &&
        !entry.name.startsWith('.') &&
        entry.name !== '__pycache__' &&
        entry.name !== 'node_modules' &&
        !existsSync(join(root, path, 'pyvenv.cfg'))
      )
        walk(path);
    }
  };
  walk('');
  return found;
}

/** A program's output, both streams (old Pythons print their version on stderr). */
async function output(program: string, args: readonly string[], env: NodeJS.ProcessEnv) {
  const printed = await commandOutput(program, args, { env });
  return printed && `${printed.stdout}${printed.stderr}`;
}

async function probeBuildkit(io: CommandIo, tls: TlsFlags | undefined): Promise<BuildkitProbe> {
  // a private daemon's notices are not part of the report
  const quiet = new Writable({ write: (_chunk, _encoding, done) => done() });
  let connection;
  try {
    connection = await connectBuildkit({ env: io.env, stderr: quiet, ...withTls(tls) });
  } catch (err) {
    return { ok: false, error: err instanceof Error ? err.message : String(err) };
  }
  try {
    const [info, workers] = await Promise.all([connection.client.info(), connection.client.listWorkers()]);
    const platforms = new Set(platformsOfWorkers(workers.record ?? []));
    const address = connection.privateDaemon
      ? 'a private daemon cog starts from PATH'
      : connection.client.address.display;
    return {
      ok: true,
      address,
      version: info.buildkitVersion?.version ?? 'unknown',
      platforms: [...platforms],
    };
  } catch (err) {
    return { ok: false, error: err instanceof Error ? err.message : String(err) };
  } finally {
    await connection.close();
  }
}

/** Everything the checks read, gathered from the working directory up to the config file. */
export function doctorContext(args: DoctorArgs, io: CommandIo, cwd: string): DoctorContext {
  let projectDir = cwd;
  let configText: string | undefined;
  let display = args.file;
  let configMissing: DoctorContext['configMissing'];
  try {
    const found = findConfigFile(cwd, args.file);
    projectDir = found.projectDir;
    configText = readFileSync(found.configPath, 'utf8');
    display = relative(cwd, found.configPath) || args.file;
  } catch (err) {
    configText = undefined;
    if (err instanceof CogError) configMissing = { message: err.message, hint: err.hint };
  }
  const parseErrors =
    configText === undefined ? [] : parseYamlSource(configText, display).errors.map(formatIssue);
  let loadError: string | undefined;
  let config: DoctorContext['config'];
  if (configText !== undefined && parseErrors.length === 0) {
    try {
      const loaded = loadConfig({ cwd, file: args.file, env: io.env });
      const { completed } = loaded;
      config = {
        predict: completed.predict,
        train: completed.train,
        pythonVersion: completed.pythonVersion,
        gpu: completed.gpu,
        cuda: completed.cuda,
        torch: completed.requirements.torch,
        image: completed.image,
        model: completed.model,
        warnings: loaded.warnings.map((w) => ({ field: w.field, text: formatIssue(w) })),
      };
    } catch (err) {
      loadError = err instanceof Error ? err.message : String(err);
    }
  }
  return {
    configFile: display,
    configText,
    ...(configMissing ? { configMissing } : {}),
    parseErrors,
    loadError,
    config,
    env: io.env,
    readFile: projectLoader(projectDir),
    pythonFiles: () => projectPythonFiles(projectDir),
    probeBuildkit: () => probeBuildkit(io, args.tls),
    async localPythonVersion() {
      for (const python of ['python3', 'python']) {
        const text = await output(python, ['--version'], io.env);
        const version = text && /Python (\d+\.\d+(?:\.\d+)?)/.exec(text)?.[1];
        if (version) return version;
      }
      return undefined;
    },
    async pushCredentials() {
      const target = config?.image ?? config?.model;
      if (!target) return undefined;
      let registry: string;
      try {
        registry = parseReference(target).registry;
      } catch (err) {
        const field = config?.image ? 'image' : 'model';
        return { field, problem: err instanceof Error ? err.message : String(err) };
      }
      try {
        const fromEnv = await envKeychain(io.env).resolve(registry);
        if (fromEnv) return { registry, found: true, from: 'COG_REGISTRY_USERNAME/COG_REGISTRY_PASSWORD' };
        const stored = await dockerKeychain({ env: io.env }).resolve(registry);
        return { registry, found: stored !== undefined, ...(stored ? { from: 'the docker config' } : {}) };
      } catch (err) {
        return { registry, error: err instanceof Error ? err.message : String(err) };
      }
    },
    async gpuComputeCapabilities() {
      const text = await output('nvidia-smi', ['--query-gpu=compute_cap', '--format=csv,noheader'], io.env);
      return (text ?? '')
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => /^\d+\.\d+$/.test(l));
    },
  };
}

/** The project directory doctor works on: where the config file is, else the working directory. */
function projectDirFor(args: DoctorArgs, cwd: string): string {
  try {
    return findConfigFile(cwd, args.file).projectDir;
  } catch {
    return cwd;
  }
}

/**
 * Writes a fix's edits inside `root`: each file through a temporary file renamed over it (an edit is
 * whole or absent), new files with the mode of the file they replace, removals last.
 */
export async function applyEdits(root: string, edits: FileEdits): Promise<void> {
  const inside = (path: string) => {
    const full = resolve(root, path);
    if (!full.startsWith(`${resolve(root)}${sep}`))
      throw new CogError(`a fix tried to write ${path}, outside the project`, {
        hint: 'report this as a bug',
      });
    return full;
  };
  // every file is written beside its target first: one that cannot be leaves the project as it was
  const staged: { temp: string; target: string }[] = [];
  try {
    for (const { path, content, modeFrom } of edits.write) {
      // a linked file (a cog.yaml shared between projects) is written where the link points
      const target = await realpath(inside(path)).catch(() => inside(path));
      const mode = (await stat(modeFrom ? inside(modeFrom) : target).catch(() => undefined))?.mode ?? 0o644;
      const temp = `${target}.cog-doctor-${process.pid}.tmp`;
      staged.push({ temp, target });
      await writeFile(temp, content, { mode: mode & 0o7777 });
    }
  } catch (err) {
    await Promise.all(staged.map(({ temp }) => rm(temp, { force: true })));
    throw err;
  }
  for (const { temp, target } of staged) await rename(temp, target);
  for (const path of edits.remove) await rm(inside(path), { force: true });
}

export async function doctor(args: DoctorArgs, io: CommandIo, cwd = process.cwd()): Promise<void> {
  const root = projectDirFor(args, cwd);
  const outcomes = await runChecks(doctorChecks, () => doctorContext(args, io, cwd), {
    fix: args.fix,
    apply: (edits) => applyEdits(root, edits),
  });
  io.stderr.write(formatReport(outcomes, wantsColor(io.env, io.stderr), args.fix));
  // the report has said everything: exit 1 without another message
  if (tally(outcomes).errors > 0) throw new ProcessExitError(1);
}
