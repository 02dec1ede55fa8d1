/**
 * `cog build`: cog.yaml → plan → LLB → BuildKit, then the image goes to the local image store, a
 * registry (--push) or a tarball (--output). No Docker daemon anywhere.
 */
import { resolveProgressMode } from '../progress/mode.js';
import { writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { type ExportSpec, exportsFor } from '../buildkit/filesend.js';
import { fileSyncService } from '../buildkit/filesync.js';
import { contentService, exportStoreId } from '../buildkit/content-store.js';
import { localCaches } from '../buildkit/local-cache.js';
import { secretsService } from '../buildkit/secrets.js';
import type { SessionService } from '../buildkit/session.js';
import { buildModel, platformId } from '../build/build-model.js';
import { isCogBaseProbe } from '../build/cog-base.js';
import { CogError } from '../errors.js';
import { type Descriptor, ImageStore, imageStoreDir } from '../image/store.js';
import { wheelContext } from '../plan/plan.js';
import type { SmokeOptions } from '../runtime/smoke.js';
import type { CommandIo } from './debug-solve.js';
import { isTrue, outputPushesImage, parseOutputFlag } from './output-flag.js';
import { withBuildkit } from './buildkit-command.js';
import { type BuildArgs, prepareBuild, projectSharedKey, warningLine } from './prepare-build.js';
import { finishRecording, fingerprintBuild, pushedOutput, startRecording } from './build-recording.js';
import { imageDestination, imageNameSource, pushDestination } from './push-destination.js';
import { type PushTarget, checkPushRegistries } from './push-preflight.js';
import { sessionKeychain } from '../registry/keychain.js';
import { checkOutputFile, refuseBareOutput, refuseSharedOutputFiles } from './output-files.js';
import { retryLine } from './retry-line.js';
import { buildMetadata } from './build-metadata.js';
import { type WrittenFile, builtLine } from './up-to-date.js';
import { buildSourceOnly, recordSourceImage, sourceOnlyAllowed } from './source-only.js';
import { collectStoreGarbage } from './store-garbage.js';
import type { RecordedOutput } from '../build/build-record.js';

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

export async function build(args: BuildArgs, io: CommandIo, cwd = process.cwd()): Promise<void> {
  await buildImage(args, io, cwd);
}

/** `cog build`, telling the caller what it made (`cog push` builds into the store with this). */
export async function buildImage(args: BuildArgs, io: CommandIo, cwd = process.cwd()): Promise<BuildOutcome> {
  // a --progress that is no mode is refused before anything, also when the build is answered without
  // buildkitd (which renders no progress: the mode then says whether its own progress lines show)
  const progressMode = resolveProgressMode(args.progress, io.env, io.stderr.isTTY === true);
  const recording = startRecording(args, io, cwd);
  const warn = (message: string) => {
    const line = warningLine(message);
    recording?.notes.push(line);
    io.stderr.write(line);
  };
  const prepared = await prepareBuild(args, io, cwd, warn);
  // what preparing said (config deprecations) is said again by preparing; the build's own notes follow
  const preparedNotes = recording?.notes.length ?? 0;
  const { loaded, input, imageName, secrets } = prepared;
  const recordInputs = recording && fingerprintBuild(recording, prepared, args);

  const specs: ExportSpec[] = [];
  // names and output files are checked now: BuildKit would find a bad one only after the build
  const nameFrom = imageNameSource(args.tag, loaded.completed, loaded.completed.configFile);
  /** the repositories BuildKit pushes to, asked before the build whether they answer and take a push */
  const pushTargets: PushTarget[] = [];
  /** the registry --push sends to: COG_REGISTRY_USERNAME/PASSWORD answer buildkitd for it alone */
  let pushRegistry: string | undefined;
  // --push pushes the build's own name when -t or cog.yaml gives one; else an
  // --output type=image,name=REF,push=true must be there to say where the image goes
  const pushesOwnName = args.push && Boolean(args.tag || loaded.completed.image || loaded.completed.model);
  if (args.push && !pushesOwnName && !outputPushesImage(args.outputs))
    throw new CogError(`--push needs a destination: cog.yaml names no image, and no -t was given`, {
      hint: "name one with -t REGISTRY/REPO[:TAG] or -o type=image,name=REGISTRY/REPO[:TAG],push=true, or set 'image' in cog.yaml",
    });
  if (pushesOwnName) {
    const destination = pushDestination(imageName, nameFrom);
    pushRegistry = destination.registry;
    pushTargets.push({ registry: pushRegistry, repository: destination.repository, from: nameFrom });
    specs.push({ type: 'image', attrs: { name: imageName, push: 'true' } });
  } else imageDestination(imageName, nameFrom);
  /** the files the build writes on the client, by flag (`-` = stdout): no two may be the same */
  const outputFiles: { flag: string; path: string; type: WrittenFile['type'] }[] = [];
  for (const value of args.outputs) {
    refuseBareOutput(value);
    const spec = parseOutputFlag(value);
    const flag = `--output "${value}"`;
    if (spec.type === 'image') {
      const pushes = isTrue(spec.attrs.push);
      // the exporter takes several names, comma-separated
      for (const name of (spec.attrs.name ?? '').split(',')) {
        const ref = pushes ? pushDestination(name, flag) : imageDestination(name, flag);
        if (pushes) pushTargets.push({ registry: ref.registry, repository: ref.repository, from: flag });
      }
      specs.push({ type: 'image', attrs: spec.attrs });
    } else if (spec.type === 'local')
      throw new CogError('--output type=local is not supported by cog build', {
        hint: 'use type=oci or type=docker with dest=FILE',
      });
    else {
      // the exporter takes several names, comma-separated: checked now, not after the build
      for (const name of (spec.attrs.name ?? '').split(',')) if (name) imageDestination(name, flag);
      if (spec.dest === '-' && (io.stdout as { readonly isTTY?: boolean }).isTTY === true)
        throw new CogError(`${flag}: dest=- writes a tarball to standard output, which is a terminal`, {
          hint: `redirect it (… > image.tar, or | tar t), or write a file: --output type=${spec.type},dest=image.tar`,
        });
      if (spec.dest !== '-')
        await checkOutputFile(
          {
            flag,
            path: spec.dest as string,
            example: (file) => `--output type=${spec.type},dest=${file}`,
            suggestedName: 'image.tar',
          },
          cwd,
        );
      outputFiles.push({ flag, path: spec.dest as string, type: spec.type });
      specs.push({
        type: spec.type,
        output: spec.dest === '-' ? (io.stdout as never) : (spec.dest as string),
        attrs: { name: imageName, ...spec.attrs },
      });
    }
  }
  if (args.metadataFile)
    await checkOutputFile(
      {
        flag: '--metadata-file',
        path: args.metadataFile,
        example: (file) => `--metadata-file ${file}`,
        suggestedName: 'metadata.json',
      },
      cwd,
    );
  // (the metadata file as an absolute path: `--metadata-file -` is a file named -, not stdout)
  const metadataPath = args.metadataFile
    ? [{ flag: '--metadata-file', path: resolve(cwd, args.metadataFile) }]
    : [];
  await refuseSharedOutputFiles([...outputFiles, ...metadataPath], cwd);
  if (prepared.platforms.length > 1 && specs.some((s) => s.type === 'docker'))
    throw new CogError(
      `--output type=docker holds one platform, not ${prepared.platforms.map(platformId).join(' and ')}`,
      {
        hint: 'use --output type=oci,dest=FILE for a multi-platform image (podman load and crane take it), or build one platform',
      },
    );
  const store = new ImageStore(imageStoreDir(io.env));
  const toStore = specs.length === 0;
  // a store whose index cannot be read fails now, not after the build wrote its blobs there
  if (toStore) await store.index();
  /**
   * The names the image goes out under: --push's, and `--output type=image,name=A,B`'s (not the store's
   * name, which nothing writes then); for a tarball or the store, the build's own name.
   */
  const exportedNames = specs
    .filter((s) => s.type === 'image')
    .flatMap((s) => (s.attrs?.name ?? '').split(','))
    .filter((n) => n !== '');
  const shownName = exportedNames[0] ?? imageName;
  const sharedKeyHint = projectSharedKey(loaded.projectDir);
  const sourceOnly = recording && sourceOnlyAllowed(args, prepared) ? recording : undefined;
  if (sourceOnly) {
    const answered = await buildSourceOnly({
      recording: sourceOnly,
      recordInputs,
      prepared,
      sharedKeyHint,
      store,
      toStore,
      io,
      live: { stream: io.stderr, mode: progressMode },
    });
    if (answered) return answered;
  }
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
  // BuildKit's pusher would wait for ever on a registry that takes connections and never answers, and
  // find missing credentials only after the build
  // the credentials buildkitd will be given, for the check, the session and the source record read
  // back after the push: one keychain, so a credential helper runs once per registry
  // COG_REGISTRY_USERNAME/PASSWORD go to every registry the build pushes to (-t with --push, -o image names)
  const keychain = sessionKeychain([...new Set(pushTargets.map((t) => t.registry))], { env: io.env });
  await checkPushRegistries(pushTargets, {
    env: io.env,
    keychain,
    onRetry: (info) => io.stderr.write(`${retryLine(info)}\n`),
    onUnreachable: (target, err) =>
      io.stderr.write(
        warningLine(
          `${target.from}: ${err instanceof Error ? err.message : String(err)} from this machine; the build goes on, as buildkitd pushes from its own network`,
        ),
      ),
  });
  // local caches are directories the session serves as content stores
  const caches = await localCaches(
    args.cacheFrom.map((v) => cacheEntry('--cache-from', v)),
    args.cacheTo.map((v) => cacheEntry('--cache-to', v)),
    { cwd, warn },
  );
  const services: SessionService[] = [
    fileSyncService(dirs),
    secretsService(secrets, io.env),
    exports.service,
  ];
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
        sharedKey: sharedKeyHint,
        // a cog-base probe that fails is a fallback with a warning, not a failed step
        hideSteps: isCogBaseProbe,
        secretFlag: true,
        keychain,
      },
      ({ client, session, ref, signal, onStatus }) =>
        buildModel(client, {
          input,
          session,
          ref,
          exporters: exports.exporters,
          cacheImports: caches.imports,
          cacheExports: caches.exports,
          sharedKeyHint,
          warn,
          noCache: args.noCache,
          signal,
          onStatus,
          ...(args.smokeTest ? { smoke: smokeOptions(input.openapiSchema) } : {}),
          ...(prepared.dockerfile ? { dockerfile: { filename: prepared.dockerfile.filename } } : {}),
          schemaFromImage: prepared.schemaFromImage,
          platforms: prepared.platforms,
        }),
    );
    await caches.finish(built.exporterResponse);
    const digest = built.exporterResponse['containerimage.digest'] ?? '';
    if (toStore) {
      const manifest = exportedManifest(built.exporterResponse);
      const previous = await store.tag(imageName, manifest);
      if (previous?.digest !== manifest.digest) await collectStoreGarbage(store, io.stderr, previous);
    }
    if (args.metadataFile) {
      await writeFile(
        args.metadataFile,
        `${JSON.stringify(buildMetadata(built.exporterResponse, { imageName: exportedNames.length > 0 ? exportedNames.join(',') : imageName, buildRef: built.ref }), null, 2)}\n`,
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
      : pushesOwnName
        ? pushedOutput(imageName, io.env)
        : undefined;
    if (recording && recordInputs && output)
      finishRecording(recording, recordInputs, prepared, { imageName, digest, output });
    if (sourceOnly && output)
      await recordSourceImage(args, sourceOnly, preparedNotes, prepared, built, output, store, io, keychain);
    const files = outputFiles.map((f) => ({ type: f.type, dest: f.path }));
    io.stderr.write(builtLine(shownName, digest, output, files));
    return { imageName, digest, storeDir: toStore ? store.root : undefined };
  } finally {
    await lease?.release();
  }
}
