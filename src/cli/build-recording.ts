/**
 * Writing the build record of a `cog build` that solved (see build/build-record.ts for what a record
 * is, cli/up-to-date.ts for how it is used). Only builds whose result is fully described by the image
 * they leave in the store or the registry are recorded: not --pull, --no-cache, --secret (a secret's
 * content is not fingerprinted), --output, --cache-to/--cache-from or --metadata-file.
 */
import { resolve } from 'node:path';
import { bundledCompatDir, COMPAT_DIR_ENV } from '../config/compat-load.js';
import {
  type BuildRecord,
  type InputFingerprint,
  type RecordedOutput,
  fingerprintInputs,
  recordFormat,
  recordsDir,
  writeRecord,
} from '../build/build-record.js';
import { caCertPath, schemaOverride } from '../build/host-facts.js';
import { packageRoot } from '../package-root.js';
import type { BuildArgs, PreparedBuild } from './prepare-build.js';
import type { CommandIo } from './debug-solve.js';
import { buildRecordKey } from './up-to-date.js';
import type { ProbeTarget } from '../registry/open-probe.js';
import { probeTargetFor } from '../registry/probe-target.js';

export interface Recording {
  readonly key: string;
  readonly startedAtNs: bigint;
  readonly env: NodeJS.ProcessEnv;
  /** the warnings (and smoke test result) the build printed, to be shown again when the record answers */
  readonly notes: string[];
}

/** Starts recording a build when it is recordable; call before the build reads anything. */
export function startRecording(args: BuildArgs, io: CommandIo, cwd: string): Recording | undefined {
  if (!args.recordArgv || args.pull || args.noCache) return undefined;
  if (args.secrets.length > 0 || args.outputs.length > 0) return undefined;
  if (args.cacheFrom.length > 0 || args.cacheTo.length > 0 || args.metadataFile) return undefined;
  let key: string | undefined;
  try {
    key = buildRecordKey(args.recordArgv, cwd, io.env);
  } catch {
    return undefined;
  }
  if (!key) return undefined;
  return { key, startedAtNs: BigInt(Date.now()) * 1_000_000n, env: io.env, notes: [] };
}

/** Everything outside the project tree a build may read, besides the environment. */
function externalInputs(prepared: PreparedBuild, args: BuildArgs, env: NodeJS.ProcessEnv) {
  const paths = [prepared.loaded.configPath, bundledCompatDir()];
  const root = packageRoot();
  if (root) paths.push(resolve(root, 'package.json'));
  const compatDir = env[COMPAT_DIR_ENV];
  // the paths as the build resolves them (wheel paths are absolute already)
  if (compatDir) paths.push(resolve(compatDir));
  const { sdk, coglet } = prepared.input;
  if (sdk.kind === 'file') paths.push(sdk.path);
  if (coglet?.kind === 'file') paths.push(coglet.path);
  const caCert = caCertPath(env);
  if (caCert) paths.push(resolve(caCert));
  const schema = schemaOverride(args.openapiSchema, env);
  if (schema) paths.push(schema.path);
  // the frontend reads the Dockerfile and, when there is one, its own ignore file beside it
  if (prepared.dockerfile) paths.push(prepared.dockerfile.path, `${prepared.dockerfile.path}.dockerignore`);
  return paths.map((path) => ({ path }));
}

/**
 * Fingerprints what the build read, right after it read it (before anything goes to buildkitd).
 * Undefined when something changed too recently to be sure which version the build saw.
 */
export function fingerprintBuild(
  recording: Recording,
  prepared: PreparedBuild,
  args: BuildArgs,
): InputFingerprint[] | undefined {
  try {
    return fingerprintInputs(
      [{ path: prepared.loaded.projectDir, project: true }, ...externalInputs(prepared, args, recording.env)],
      recording.startedAtNs,
    );
  } catch {
    return undefined;
  }
}

/** Writes the record of a build that succeeded; a failure to write only means no record. */
export function finishRecording(
  recording: Recording,
  inputs: readonly InputFingerprint[],
  prepared: PreparedBuild,
  made: { readonly imageName: string; readonly digest: string; readonly output: RecordedOutput },
): void {
  if (!made.digest) return;
  const record: BuildRecord = {
    format: recordFormat,
    key: recording.key,
    builtAt: new Date(Number(recording.startedAtNs / 1_000_000n)).toISOString(),
    imageName: made.imageName,
    digest: made.digest,
    output: made.output,
    inputs,
    git: prepared.git,
    notes: recording.notes,
  };
  try {
    writeRecord(recordsDir(recording.env), record);
  } catch {
    // a cache directory we cannot write is no reason to fail a build that succeeded
  }
}

/** The record of a push, with the target of the up-to-date check's probe where it may ask. */
export function pushedOutput(imageName: string, env: NodeJS.ProcessEnv): RecordedOutput {
  let probe: ProbeTarget | undefined;
  try {
    probe = probeTargetFor(imageName, env);
  } catch {
    probe = undefined; // the check then asks with the full client
  }
  return { kind: 'push', ref: imageName, ...(probe ? { probe } : {}) };
}
