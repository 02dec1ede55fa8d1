/**
 * `cog build`: cog.yaml → plan → LLB → BuildKit, then the image goes to the local image store, a
 * registry (--push) or a tarball (--output). No Docker daemon anywhere.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import type { TlsFlags } from '../buildkit/tls.js';
import { type ExportSpec, exportsFor } from '../buildkit/filesend.js';
import { fileSyncService } from '../buildkit/filesync.js';
import { contentService, exportStoreId } from '../buildkit/content-store.js';
import { localCaches } from '../buildkit/local-cache.js';
import { readDockerignore } from '../buildkit/patterns.js';
import { type SecretSource, parseSecretFlag, secretsService } from '../buildkit/secrets.js';
import type { SessionService } from '../buildkit/session.js';
import { buildModel, platformId } from '../build/build-model.js';
import {
  checkBaseImageFlags,
  chooseCogBase,
  cogBasePatchWarning,
  isCogBaseProbe,
} from '../build/cog-base.js';
import { gitLabels, readCaCert, schemaOverride } from '../build/host-facts.js';
import { planInputFor } from '../build/plan-input.js';
import { secretKeysFor } from '../build/secret-keys.js';
import { findProjectWeights } from '../build/project-listing.js';
import { type LoadedConfig, formatIssue, loadConfig } from '../config/index.js';
import { defaultImageName } from '../config/reference.js';
import { CogError } from '../errors.js';
import { type Descriptor, ImageStore, imageStoreDir } from '../image/store.js';
import { wheelContext } from '../plan/plan.js';
import type { PlanInput } from '../plan/types.js';
import { type WeightsSplit, weightPaths, weightSizeThreshold } from '../plan/weights.js';
import { SchemaError, generateOpenApiSchema } from '../schema/index.js';
import { cogVersion } from '../version.js';
import type { SmokeOptions } from '../runtime/smoke.js';
import type { CommandIo } from './debug-solve.js';
import { parseOutputFlag } from './output-flag.js';
import { type Platform, findDockerfile, parsePlatforms } from './build-flags.js';
import { withBuildkit } from './buildkit-command.js';
import { finishRecording, fingerprintBuild, startRecording } from './build-recording.js';
import { builtLine } from './up-to-date.js';
import type { RecordedOutput } from '../build/build-record.js';
import type { ProbeTarget } from '../registry/open-probe.js';
import { probeTargetFor } from '../registry/probe-target.js';

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
  /** a predictor the schema cannot be read from: fail (default), or warn and go on without a schema */
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
  /** --dockerfile: the Dockerfile's directory (served as `dockerfile`) and name */
  readonly dockerfile?: { readonly path: string; readonly dir: string; readonly filename: string };
}

async function schemaFor(
  loaded: LoadedConfig,
  args: {
    openapiSchema: string | undefined;
    skipSchema?: boolean | undefined;
    schemaFailure?: 'fail' | 'warn';
  },
  env: NodeJS.ProcessEnv,
  warn: (message: string) => void,
) {
  const override = schemaOverride(args.openapiSchema, env);
  // upstream's order: a given schema file wins over skipping
  if (!override && args.skipSchema) return undefined;
  if (override) {
    try {
      return JSON.stringify(JSON.parse(await readFile(override.path, 'utf8')));
    } catch (err) {
      throw new CogError(`${override.named}: not a readable JSON file (${(err as Error).message})`, {
        hint: 'give the path of an OpenAPI schema in JSON, or leave it out to generate the schema',
      });
    }
  }
  const { predict, train } = loaded.completed;
  if (!predict && !train) return undefined;
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
  const loaded = loadConfig({ cwd, file: args.file, env: io.env });
  if (platforms.some((p) => p.architecture !== 'amd64') && loaded.completed.gpu) {
    throw new CogError(`--platform ${args.platform}: GPU models build for linux/amd64 only`, {
      hint: 'drop --platform, or set build.gpu: false for a CPU image',
    });
  }
  for (const warning of loaded.warnings) warn(formatIssue(warning));
  // a Dockerfile names its own base image
  const cogBase = dockerfile ? undefined : chooseCogBase(loaded.completed, baseFlags, io.env);
  const patchNote = cogBase && cogBasePatchWarning(loaded.completed.pythonVersion);
  if (patchNote) warn(patchNote);
  const secrets: Record<string, SecretSource> = Object.fromEntries((args.secrets ?? []).map(parseSecretFlag));
  const mountedSecrets = new Set(loaded.completed.runCommands.flatMap((r) => r.mounts.map((m) => m.id)));
  const [openapiSchema, caCert, sourceExclude, git, secretKeys] = await Promise.all([
    schemaFor(loaded, args, io.env, warn),
    readCaCert(io.env),
    readDockerignore(loaded.projectDir),
    gitLabels(loaded.projectDir, io.env),
    secretKeysFor(secrets, mountedSecrets, io.env),
  ]);
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
  return { loaded, input, platforms, imageName, secrets, git, ...(dockerfile ? { dockerfile } : {}) };
}

function cacheEntry(flag: string, value: string) {
  const attrs: Record<string, string> = {};
  for (const part of value.split(',')) {
    const eq = part.indexOf('=');
    if (eq <= 0)
      throw new CogError(`${flag} "${value}": "${part}" is not key=value`, {
        hint: `e.g. ${flag} type=registry,ref=registry/repo:cache`,
      });
    attrs[part.slice(0, eq)] = part.slice(eq + 1);
  }
  const { type, ...rest } = attrs;
  if (!type || !['registry', 'inline', 'local'].includes(type)) {
    throw new CogError(`${flag} "${value}": type must be registry, local or inline`, {
      hint: `e.g. ${flag} type=registry,ref=REGISTRY/REPO:cache or type=local,${flag === '--cache-to' ? 'dest' : 'src'}=DIR`,
    });
  }
  return { Type: type, Attrs: rest };
}

/** The smoke test also runs one prediction with default inputs when the model needs none. */
export function smokeOptions(schemaJson: string | undefined): SmokeOptions {
  const options: SmokeOptions = { setupTimeout: 300 };
  if (!schemaJson) return options;
  const schema = JSON.parse(schemaJson) as {
    paths?: Record<string, unknown>;
    components?: { schemas?: { Input?: { required?: string[] } } };
  };
  const predicts = schema.paths !== undefined && '/predictions' in schema.paths;
  const required = schema.components?.schemas?.Input?.required ?? [];
  return predicts && required.length === 0 ? { ...options, input: {} } : options;
}

/** What a build made: the name, the manifest digest, and the store it went to (undefined: pushed or a file). */
export interface BuildOutcome {
  readonly imageName: string;
  readonly digest: string;
  readonly storeDir: string | undefined;
}

/** The manifest descriptor an oci export reports (base64 JSON in containerimage.descriptor). */
function exportedManifest(response: Readonly<Record<string, string>>): Descriptor {
  const encoded = response['containerimage.descriptor'];
  if (!encoded) throw new CogError('buildkitd did not report the exported image’s manifest');
  return JSON.parse(Buffer.from(encoded, 'base64').toString('utf8')) as Descriptor;
}

/** The record of a push, with the target of the up-to-date check's probe where it may ask. */
function pushedOutput(imageName: string, env: NodeJS.ProcessEnv): RecordedOutput {
  let probe: ProbeTarget | undefined;
  try {
    probe = probeTargetFor(imageName, env);
  } catch {
    probe = undefined; // the check then asks with the full client
  }
  return { kind: 'push', ref: imageName, ...(probe ? { probe } : {}) };
}

export async function build(args: BuildArgs, io: CommandIo, cwd = process.cwd()): Promise<void> {
  await buildImage(args, io, cwd);
}

/** `cog build`, telling the caller what it made (`cog push` builds into the store with this). */
export async function buildImage(args: BuildArgs, io: CommandIo, cwd = process.cwd()): Promise<BuildOutcome> {
  const recording = startRecording(args, io, cwd);
  const warn = (message: string) => {
    const line = warningLine(message);
    recording?.notes.push(line);
    io.stderr.write(line);
  };
  const prepared = await prepareBuild(args, io, cwd, warn);
  const { loaded, input, imageName, secrets } = prepared;
  const recordInputs = recording && fingerprintBuild(recording, prepared, args);

  const specs: ExportSpec[] = [];
  if (args.push) specs.push({ type: 'image', attrs: { name: imageName, push: 'true' } });
  for (const value of args.outputs) {
    const spec = parseOutputFlag(value);
    if (spec.type === 'image') specs.push({ type: 'image', attrs: spec.attrs });
    else if (spec.type === 'local')
      throw new CogError('--output type=local is not supported by cog build', {
        hint: 'use type=oci or type=docker with dest=FILE',
      });
    else
      specs.push({
        type: spec.type,
        output: spec.dest === '-' ? (io.stdout as never) : (spec.dest as string),
        attrs: { name: imageName, ...spec.attrs },
      });
  }
  if (prepared.platforms.length > 1 && specs.some((s) => s.type === 'docker'))
    throw new CogError(
      `--output type=docker holds one platform, not ${prepared.platforms.map(platformId).join(' and ')}`,
      {
        hint: 'use --output type=oci,dest=FILE for a multi-platform image (podman load and crane take it), or build one platform',
      },
    );
  const store = new ImageStore(imageStoreDir(io.env));
  const toStore = specs.length === 0;
  // into the store blob by blob: the daemon writes only the blobs the store lacks
  if (toStore) specs.push({ type: 'oci-store', attrs: { name: imageName } });
  const timestampAttrs =
    args.timestamp !== undefined
      ? { 'source-date-epoch': String(args.timestamp), 'rewrite-timestamp': 'true' }
      : {};
  const exports = exportsFor(
    specs.map((s) => ({ ...s, attrs: { ...(s.attrs ?? {}), ...timestampAttrs } }) as ExportSpec),
  );

  const dirs: Record<string, string> = { context: loaded.projectDir };
  if (prepared.dockerfile) dirs.dockerfile = prepared.dockerfile.dir;
  if (input.sdk.kind === 'file') dirs[wheelContext('cog')] = dirname(resolve(cwd, input.sdk.path));
  if (input.coglet?.kind === 'file') dirs[wheelContext('coglet')] = dirname(resolve(cwd, input.coglet.path));
  // local caches are directories the session serves as content stores
  const caches = await localCaches(
    args.cacheFrom.map((v) => cacheEntry('--cache-from', v)),
    args.cacheTo.map((v) => cacheEntry('--cache-to', v)),
    { cwd, warn },
  );
  const services: SessionService[] = [fileSyncService(dirs), secretsService(secrets), exports.service];
  // one content service for every store the daemon may use: local caches, and the image store
  const stores = {
    ...caches.stores,
    ...(toStore ? { [exportStoreId]: { root: store.root, writable: true } } : {}),
  };
  if (Object.keys(stores).length > 0) services.push(contentService(stores));
  // while this build writes into the store, no other cog removes blobs from it
  const lease = toStore ? await store.lease() : undefined;
  try {
    const built = await withBuildkit(
      io,
      {
        progress: args.progress,
        tls: args.tls,
        services,
        sharedKey: `cog:${loaded.projectDir}`,
        // a cog-base probe that fails is a fallback with a warning, not a failed step
        hideSteps: isCogBaseProbe,
      },
      ({ client, session, ref, signal, onStatus }) =>
        buildModel(client, {
          input,
          session,
          ref,
          exporters: exports.exporters,
          cacheImports: caches.imports,
          cacheExports: caches.exports,
          sharedKeyHint: `cog:${loaded.projectDir}`,
          warn,
          noCache: args.noCache,
          signal,
          onStatus,
          ...(args.smokeTest ? { smoke: smokeOptions(input.openapiSchema) } : {}),
          ...(prepared.dockerfile ? { dockerfile: { filename: prepared.dockerfile.filename } } : {}),
          platforms: prepared.platforms,
        }),
    );
    await caches.finish(built.exporterResponse);
    const digest = built.exporterResponse['containerimage.digest'] ?? '';
    if (toStore) {
      const manifest = exportedManifest(built.exporterResponse);
      const previous = await store.tag(imageName, manifest);
      if (previous?.digest !== manifest.digest) await collectStoreGarbage(store, io.stderr);
    }
    if (args.metadataFile) {
      await writeFile(
        args.metadataFile,
        `${JSON.stringify({ ...built.exporterResponse, 'image.name': imageName, 'cog.build.ref': built.ref }, null, 2)}\n`,
      );
    }
    for (const { smoke, platform } of built.images) {
      if (!smoke) continue;
      const prediction = smoke.prediction
        ? `; prediction ${smoke.prediction.status ?? '?'}, output ${JSON.stringify(smoke.prediction.output)}`
        : '';
      const where = built.images.length > 1 ? ` (${platformId(platform)})` : '';
      const line = `Smoke test${where}: /health-check ${smoke.health?.status ?? '?'}${prediction}\n`;
      // the same image passes the same test: an up-to-date answer shows its result again
      recording?.notes.push(line);
      io.stderr.write(line);
    }
    const output: RecordedOutput | undefined = toStore
      ? { kind: 'store', root: store.root }
      : args.push
        ? pushedOutput(imageName, io.env)
        : undefined;
    if (recording && recordInputs && output)
      finishRecording(recording, recordInputs, prepared, { imageName, digest, output });
    io.stderr.write(builtLine(imageName, digest, output));
    return { imageName, digest, storeDir: toStore ? store.root : undefined };
  } finally {
    await lease?.release();
  }
}

/**
 * After a name moved to a new image, the blobs nothing names any more leave the store (a rebuilt
 * project would otherwise keep every earlier source layer). A failure only warns: the image is built.
 */
async function collectStoreGarbage(store: ImageStore, stderr: NodeJS.WritableStream): Promise<void> {
  try {
    await store.collectGarbage();
  } catch (err) {
    const reason = (err as Error).message;
    stderr.write(warningLine(`could not remove unused blobs from the image store ${store.root}: ${reason}`));
  }
}
