/**
 * What every command that builds reads before it talks to buildkitd: `cog build`'s arguments, and
 * cog.yaml with everything the plan needs from disk (schema, CA certificate, .dockerignore, git facts,
 * secret keys, weights). Kept apart from the build itself, so the source-only answer
 * (cli/source-entry.ts) loads no BuildKit client.
 */
import { readFile } from 'node:fs/promises';
import { basename, normalize } from 'node:path';
import type { TlsFlags } from '../buildkit/tls.js';
import { readDockerignore } from '../buildkit/patterns.js';
import { type SecretSource, checkSecretFiles, parseSecretFlag } from '../buildkit/secret-flags.js';
import {
  type CogBaseFlags,
  checkBaseImageFlags,
  checkBaseImageFlagsUnused,
  chooseCogBase,
  cogBasePatchWarning,
} from '../build/cog-base.js';
import { withEffectiveConcurrency } from '../build/concurrency.js';
import { gitLabels, readCaCert, schemaOverride } from '../build/host-facts.js';
import { openApiDocumentProblem } from '../build/openapi-document.js';
import { planInputFor } from '../build/plan-input.js';
import { excludedFileMessage, excludedReferencedFiles, referencedFiles } from '../build/predictor-files.js';
import { escapingLink, escapingLinkMessage } from '../build/predictor-links.js';
import { findProjectWeights } from '../build/project-listing.js';
import { secretKeysFor } from '../build/secret-keys.js';
import { unpassedSecretWarnings } from '../build/unpassed-secrets.js';
import { type LoadedConfig, formatIssue, isLegacySdk, loadConfig } from '../config/index.js';
import { defaultImageName } from '../config/reference.js';
import { CogError } from '../errors.js';
import type { PlanInput } from '../plan/types.js';
import { type WeightsSplit, weightPaths, weightSizeThreshold } from '../plan/weights.js';
import {
  type PredictorMetadata,
  SchemaError,
  generateOpenApiSchema,
  readPredictorMetadata,
} from '../schema/index.js';
import { parseReference } from '../registry/reference.js';
import { cogVersion } from '../version.js';
import { type Platform, findDockerfile, parsePlatforms } from './build-flags.js';
import type { CommandIo } from './debug-solve.js';

export interface BuildArgs {
  readonly file: string;
  readonly tag: string | undefined;
  readonly push: boolean;
  readonly outputs: readonly string[];
  readonly secrets: readonly string[];
  readonly noCache: boolean;
  readonly progress: string | undefined;
  readonly openapiSchema: string | undefined;
  /** hidden --skip-schema-validation: no schema at all (no label, no /src/.cog file), as upstream */
  readonly skipSchema?: boolean;
  /**
   * a predictor the schema cannot be read from, or that .dockerignore leaves out: fail (default), or
   * warn and go on (without a schema)
   */
  readonly schemaFailure?: 'fail' | 'warn';
  /** --use-cuda-base-image; undefined when not given (auto) */
  readonly useCudaBaseImage: string | undefined;
  /** --use-cog-base-image; undefined when not given (auto: use a cog-base image when one resolves) */
  readonly useCogBaseImage: boolean | undefined;
  readonly precompile: boolean;
  readonly strip: boolean;
  readonly smokeTest: boolean;
  readonly cacheFrom: readonly string[];
  readonly cacheTo: readonly string[];
  readonly timestamp: number | undefined;
  readonly metadataFile: string | undefined;
  /** linux/amd64 (default) or linux/arm64 (CPU models) */
  readonly platform: string | undefined;
  /** buildctl-style TLS flags for a tcp:// BUILDKIT_HOST */
  readonly tls?: TlsFlags;
  /** copy the weight files (see src/plan/weights.ts) in an image layer of their own */
  readonly separateWeights?: boolean;
  /** labels for the image config on top of cog's own (`cog push` adds run.cog.push_id) */
  readonly extraLabels?: Readonly<Record<string, string>>;
  /** --pull: solve even when a build record says nothing changed (the record is not written either) */
  readonly pull?: boolean;
  /** hidden --dockerfile: build this Dockerfile (context: the project) instead of the plan */
  readonly dockerfile?: string | undefined;
  /** `cog build`'s arguments as typed: the key of the build record this build writes (none without) */
  readonly recordArgv?: readonly string[];
}

export interface PreparedBuild {
  readonly loaded: LoadedConfig;
  /** the plan input of the first platform */
  readonly input: PlanInput;
  /** --platform: what to build for, in order; more than one makes a multi-platform image */
  readonly platforms: readonly Platform[];
  readonly imageName: string;
  /** the --secret flags, by id, for the session's secrets service */
  readonly secrets: Readonly<Record<string, SecretSource>>;
  /** the project's git revision/version as the labels have them */
  readonly git: { readonly revision?: string; readonly version?: string };
  /** a full build reads the schema from the built image (an SDK below 0.17); input.openapiSchema is unset */
  readonly schemaFromImage: boolean;
  /** --dockerfile: the Dockerfile's directory (served as `dockerfile`) and name */
  readonly dockerfile?: { readonly path: string; readonly dir: string; readonly filename: string };
}

/** The flags that say where the schema comes from, and what a predictor that cannot be read does. */
interface SchemaSource {
  readonly openapiSchema: string | undefined;
  readonly skipSchema?: boolean | undefined;
  readonly schemaFailure?: 'fail' | 'warn';
}

async function schemaFor(
  loaded: LoadedConfig,
  args: SchemaSource,
  env: NodeJS.ProcessEnv,
  warn: (message: string) => void,
  fromImage: boolean,
) {
  const override = schemaOverride(args.openapiSchema, env);
  // upstream's order: a given schema file wins over skipping
  if (!override && args.skipSchema) return undefined;
  if (override) {
    const hint = 'give the path of an OpenAPI schema in JSON, or leave it out to generate the schema';
    let doc: unknown;
    try {
      doc = JSON.parse(await readFile(override.path, 'utf8'));
    } catch (err) {
      throw new CogError(`${override.named}: not a readable JSON file (${(err as Error).message})`, { hint });
    }
    const problem = openApiDocumentProblem(doc);
    if (problem) throw new CogError(`${override.named}: ${problem}`, { hint });
    return JSON.stringify(doc);
  }
  const { predict, train } = loaded.completed;
  if (!predict && !train) return undefined;
  // the SDK below 0.17 builds its schema from pydantic models at run time: a full build reads it from the
  // image (legacy-schema.ts), as upstream does, where a static one would disagree with the model
  if (fromImage) return undefined;
  try {
    const schema = await generateOpenApiSchema({
      projectDir: loaded.projectDir,
      ...(predict ? { predict } : {}),
      ...(train ? { train } : {}),
      cogVersion: cogVersion(),
    });
    return JSON.stringify(schema);
  } catch (err) {
    if (args.schemaFailure !== 'warn' || !(err instanceof SchemaError)) throw err;
    warn(`no OpenAPI schema: ${err.message}; going on without one`);
    return undefined;
  }
}

/**
 * Whether a full build takes the schema from the built image (`python -m cog.command.openapi_schema`):
 * the SDK is pinned below 0.17, and neither a schema file nor skipping says otherwise. A --dockerfile
 * build keeps the static schema (its image's layout is the Dockerfile's).
 */
function schemaFromImage(
  loaded: LoadedConfig,
  args: SchemaSource,
  env: NodeJS.ProcessEnv,
  dockerfile: boolean,
): boolean {
  const { predict, train, sdk } = loaded.completed;
  return (
    !dockerfile &&
    (predict !== undefined || train !== undefined) &&
    isLegacySdk(sdk) &&
    args.skipSchema !== true &&
    schemaOverride(args.openapiSchema, env) === undefined
  );
}

/**
 * The predictor's async-ness and @cog.concurrent(max), read statically as upstream's build does. Its
 * errors are fatal when the schema is generated from the predictor, as the schema's are; with a given
 * schema file, --skip-schema-validation or schemaFailure 'warn', they leave it unknown (undefined).
 */
async function metadataFor(
  loaded: LoadedConfig,
  args: SchemaSource,
  env: NodeJS.ProcessEnv,
): Promise<PredictorMetadata | undefined> {
  const { predict } = loaded.completed;
  if (!predict) return undefined;
  const lenient =
    schemaOverride(args.openapiSchema, env) !== undefined ||
    args.skipSchema === true ||
    args.schemaFailure === 'warn' ||
    isLegacySdk(loaded.completed.sdk);
  try {
    return await readPredictorMetadata(loaded.projectDir, predict, 'predict');
  } catch (err) {
    // schemaFor reports the same failure when it reads the predictor too
    if (lenient && err instanceof SchemaError) return undefined;
    throw err;
  }
}

/**
 * The key BuildKit shares a project's context transfers under (so they are incremental), and the hint
 * of its local sources in the graph: one per project directory.
 */
export const projectSharedKey = (projectDir: string) => `cog:${projectDir}`;

/** How a warning is printed. */
export const warningLine = (message: string) => `cog: warning: ${message}\n`;

/** prepareBuild's settings when a command has no build flags of its own (predict, debug). */
export const defaultBuildSettings = {
  file: 'cog.yaml',
  tag: undefined,
  openapiSchema: undefined,
  useCudaBaseImage: undefined,
  useCogBaseImage: undefined,
  precompile: false,
  strip: false,
  platform: undefined,
  timestamp: undefined,
} as const;

/**
 * The flags that shape the project's build, given with IMAGE: `cog run IMAGE --secret …` builds nothing
 * and reads no cog.yaml, so they would change nothing (refused, not ignored). `-f cog.yaml`, the
 * default, passes.
 */
export function checkBuildFlagsUnused(
  flags: { readonly secrets: readonly string[] | undefined; readonly file: string } & Partial<CogBaseFlags>,
  command: string,
): void {
  checkBaseImageFlagsUnused(flags, command);
  if ((flags.secrets ?? []).length > 0)
    throw new CogError(`--secret: \`${command} IMAGE\` runs an image that is built already`, {
      hint: 'drop --secret, or leave IMAGE out to build the project with it',
    });
  if (normalize(flags.file) !== 'cog.yaml')
    throw new CogError(`-f ${flags.file}: \`${command} IMAGE\` runs an image and reads no config file`, {
      hint: 'drop -f, or leave IMAGE out to build the project from that file',
    });
}

/**
 * IMAGE of `cog run`/`train`/`serve`, checked before anything runs: `NAME=VALUE` there is a missing
 * flag (`misuseHint` says which), and a malformed reference is named as one.
 * @throws CogError
 */
export function checkImageArgument(image: string | undefined, misuseHint: string): void {
  if (image === undefined) return;
  if (image.includes('=')) throw new CogError(`invalid image name "${image}"`, { hint: misuseHint });
  parseReference(image);
}

/** What --separate-weights found, for stderr. */
export function weightsNote(weights: WeightsSplit): string {
  const paths = weightPaths(weights);
  if (paths.length === 0)
    return `cog: --separate-weights: no weight files of ${weightSizeThreshold / 2 ** 20} MiB or more; the weights stay in the source layer\n`;
  return `cog: --separate-weights: ${paths.join(', ')} go to /src in a layer of their own\n`;
}

/** Loads cog.yaml and everything the plan needs from disk; shared by build, push and debug. */
export async function prepareBuild(
  args: Pick<
    BuildArgs,
    | 'platform'
    | 'timestamp'
    | 'file'
    | 'tag'
    | 'openapiSchema'
    | 'skipSchema'
    | 'schemaFailure'
    | 'useCudaBaseImage'
    | 'useCogBaseImage'
    | 'precompile'
    | 'strip'
    | 'separateWeights'
    | 'extraLabels'
    | 'dockerfile'
  > & {
    /** --secret values: build.run steps that mount one are keyed by its content */
    readonly secrets?: readonly string[];
  },
  io: CommandIo,
  cwd: string,
  /** prints a warning (default: `cog: warning: MESSAGE` on stderr) */
  warn: (message: string) => void = (message) => io.stderr.write(warningLine(message)),
): Promise<PreparedBuild> {
  const baseFlags = { useCogBaseImage: args.useCogBaseImage, useCudaBaseImage: args.useCudaBaseImage };
  checkBaseImageFlags(baseFlags);
  const dockerfile = args.dockerfile !== undefined ? await findDockerfile(args, cwd) : undefined;
  const platforms = parsePlatforms(args.platform);
  const [platform = { os: 'linux', architecture: 'amd64' }] = platforms;
  const read = loadConfig({ cwd, file: args.file, env: io.env });
  if (platforms.some((p) => p.architecture !== 'amd64') && read.completed.gpu) {
    throw new CogError(`--platform ${args.platform}: GPU models build for linux/amd64 only`, {
      hint: 'drop --platform, or set build.gpu: false for a CPU image',
    });
  }
  for (const warning of read.warnings) warn(formatIssue(warning));
  const loaded: LoadedConfig = {
    ...read,
    completed: withEffectiveConcurrency(read.completed, await metadataFor(read, args, io.env)),
  };
  // a Dockerfile names its own base image
  const fromImage = schemaFromImage(loaded, args, io.env, dockerfile !== undefined);
  const cogBase = dockerfile ? undefined : chooseCogBase(loaded.completed, baseFlags, io.env);
  const patchNote = cogBase && cogBasePatchWarning(loaded.completed.pythonVersion);
  if (patchNote) warn(patchNote);
  const secrets: Record<string, SecretSource> = Object.fromEntries(
    (args.secrets ?? []).map((v) => parseSecretFlag(v, io.env)),
  );
  await checkSecretFiles(secrets);
  const mountedSecrets = new Set(loaded.completed.runCommands.flatMap((r) => r.mounts.map((m) => m.id)));
  // a Dockerfile's steps are its own; cog.yaml's run steps run without a secret nobody passed
  if (!dockerfile) {
    const passed = new Set(Object.keys(secrets));
    const configName = basename(loaded.configPath);
    for (const note of unpassedSecretWarnings(loaded.completed.runCommands, passed, configName)) warn(note);
  }
  const [openapiSchema, caCert, sourceExclude, git, secretKeys] = await Promise.all([
    schemaFor(loaded, args, io.env, warn, fromImage),
    readCaCert(io.env),
    readDockerignore(loaded.projectDir),
    gitLabels(loaded.projectDir, io.env),
    secretKeysFor(secrets, mountedSecrets, io.env),
  ]);
  // a Dockerfile copies what it wants where it wants: only the build cog.yaml describes is checked
  if (!dockerfile) {
    const files = referencedFiles(loaded.config);
    const problems = excludedReferencedFiles(files, sourceExclude).map((excluded) =>
      excludedFileMessage(excluded, basename(loaded.configPath)),
    );
    for (const file of files) {
      const escape = await escapingLink(loaded.projectDir, file.file);
      if (escape) problems.push(escapingLinkMessage(file, escape, basename(loaded.configPath)));
    }
    for (const { message, hint } of problems) {
      if (args.schemaFailure === 'warn') warn(`${message} (${hint})`);
      else throw new CogError(message, { hint });
    }
  }
  const weights = args.separateWeights
    ? await findProjectWeights(loaded.projectDir, ['.cog', ...sourceExclude])
    : undefined;
  if (weights) io.stderr.write(weightsNote(weights));
  const input = planInputFor(loaded.completed, {
    cogVersion: cogVersion(),
    sourceExclude,
    ...(caCert ? { caCert } : {}),
    ...(openapiSchema ? { openapiSchema } : {}),
    ...git,
    useCudaBaseImage: args.useCudaBaseImage !== 'false',
    ...(cogBase ? { cogBase } : {}),
    precompile: args.precompile,
    strip: args.strip,
    platform,
    ...(args.timestamp !== undefined ? { sourceDateEpoch: args.timestamp } : {}),
    ...(weights ? { weights } : {}),
    ...(args.extraLabels ? { extraLabels: args.extraLabels } : {}),
    ...(Object.keys(secretKeys).length > 0 ? { secretKeys } : {}),
  });
  const imageName =
    args.tag ??
    loaded.completed.image ??
    loaded.completed.model ??
    defaultImageName(basename(loaded.projectDir));
  return {
    loaded,
    input,
    platforms,
    imageName,
    secrets,
    git,
    schemaFromImage: fromImage,
    ...(dockerfile ? { dockerfile } : {}),
  };
}
