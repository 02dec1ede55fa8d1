/**
 * `cog push [IMAGE]`: build the project into the local image store (as `cog build -t IMAGE` does; the
 * cache makes this quick when nothing changed), then push it from the store with our registry client,
 * not BuildKit's pusher, so blobs already in the registry are skipped, blobs pushed to a sibling
 * repository before are mounted, and uploads go in resumable chunks. stdout gets the pushed reference
 * with its digest; progress and messages go to stderr.
 *
 * With a model reference (cog.yaml `model:` or COG_MODEL*, see src/registry/model-ref.ts) the push is a
 * bundle, as upstream's: the image (labelled with a fresh run.cog.push_id) goes to `repo:cog-image.<tag>`
 * and an OCI index holding it to `repo:<tag>`.
 */
import { randomBytes } from 'node:crypto';
import { basename } from 'node:path';
import { loadConfig } from '../config/index.js';
import { CogError } from '../errors.js';
import { checkPushSettings, defaultReplicateHost } from '../registry/settings.js';
import type { LoadedConfig } from '../config/index.js';
import { formatSize } from '../image/inspect.js';
import { ImageStore, imageStoreDir } from '../image/store.js';
import { blobMountSources, readPushHistory, recordPush } from '../image/push-history.js';
import { resolveProgressMode } from '../progress/index.js';
import { retryLine } from './retry-line.js';
import { createPushProgress } from '../progress/push-progress.js';
import {
  DamagedBlobError,
  type PushResult,
  type Reference,
  RegistryClient,
  defaultRetryPolicy,
  formatReference,
  headManifest,
  pushFromLayout,
  putManifest,
} from '../registry/index.js';
import { buildBundleIndex, bundleTree, pushIdLabel, uuidV7 } from '../registry/bundle.js';
import {
  type ResolvedModelRef,
  bundleImageRef,
  checkBundleDestination,
  resolveModelRef,
} from '../registry/model-ref.js';
import { type BuildOutcome, buildImage } from './build.js';
import { type BuildArgs, warningLine } from './prepare-build.js';
import { parsePlatform } from './build-flags.js';
import type { CommandIo } from './debug-solve.js';
import { InterruptedError, withInterrupt } from './interrupt.js';
import { pushDestination } from './push-destination.js';
import { explainPushError } from './push-refusal.js';
import { checkPushRegistries } from './push-preflight.js';

export type PushArgs = Pick<
  BuildArgs,
  | 'file'
  | 'secrets'
  | 'noCache'
  | 'progress'
  | 'openapiSchema'
  | 'skipSchema'
  | 'useCudaBaseImage'
  | 'useCogBaseImage'
  | 'precompile'
  | 'strip'
  | 'timestamp'
  | 'platform'
  | 'tls'
  | 'separateWeights'
  | 'dockerfile'
> & {
  /** where to push; default: `image:` in cog.yaml; not allowed with a model reference */
  readonly image: string | undefined;
};

/** The name to push as (no model reference): IMAGE, else cog.yaml's `image:`. */
export function pushTarget(
  image: string | undefined,
  config: { image: string | null; configFile: string },
): { readonly name: string; readonly ref: Reference; readonly from: string } {
  const name = image ?? config.image ?? undefined;
  if (!name)
    throw new CogError('no image to push to: cog push needs an image name', {
      hint: "set the 'image' option in cog.yaml (e.g. `image: r8.im/your-username/your-model`) or pass one: cog push REGISTRY/REPO[:TAG]; or set 'model' to push a model bundle",
    });
  // a bad name fails before the build
  const from = image ? 'cog push IMAGE' : `'image' in ${basename(config.configFile)}`;
  const ref = pushDestination(name, from);
  return { name, ref, from };
}

/** Where a model reference came from, for messages: `'model' in cog.yaml`, COG_MODEL, COG_MODEL_REPO. */
function modelSource(model: ResolvedModelRef, configFile: string): string {
  return model.from === 'model'
    ? `'model' in ${configFile}`
    : model.from === 'COG_MODEL'
      ? 'COG_MODEL'
      : 'COG_MODEL_REPO';
}

/**
 * The registry client of one `cog push`, shared by the check before the build and the push after it: a
 * credential helper is asked once, and the token fetched for the check serves the push. Its retry lines
 * go to stderr until the push's progress display takes them over.
 */
interface PushClient {
  readonly client: RegistryClient;
  /** retry lines go to `note` from now on */
  noteRetriesTo(note: (line: string) => void): void;
}

/** Runs `use` with a PushClient, closed after it. */
async function withPushClient<T>(io: CommandIo, use: (registry: PushClient) => Promise<T>): Promise<T> {
  let note = (line: string) => {
    io.stderr.write(`${line}\n`);
  };
  const client = new RegistryClient({
    env: io.env,
    retry: { ...defaultRetryPolicy, onRetry: (info) => note(retryLine(info)) },
  });
  try {
    return await use({
      client,
      noteRetriesTo: (to) => {
        note = to;
      },
    });
  } finally {
    await client.close();
  }
}

/**
 * Before the build: the registry answers and `ref`'s repository takes a push with our credentials
 * (a missing `cog login` fails now, not after the build).
 */
async function checkDestination(
  io: CommandIo,
  registry: PushClient,
  ref: Reference,
  from: string,
): Promise<void> {
  await checkPushRegistries([{ registry: ref.registry, repository: ref.repository, from }], {
    env: io.env,
    pusher: 'cog',
    registry: registry.client,
  });
}

/** What a bundle push refuses before building: IMAGE on the command line, managed weights, a bad destination. */
export function checkBundlePush(
  image: string | undefined,
  config: { configFile: string; model: string | null; weights: readonly unknown[] },
  model: ResolvedModelRef,
): void {
  const source = modelSource(model, config.configFile);
  if (image !== undefined)
    throw new CogError(
      `cog push IMAGE: ${source} makes this a model bundle push, which takes no IMAGE argument`,
      {
        hint: `drop "${image}"; the destination is ${formatReference(model.ref)} (${model.from === 'COG_MODEL' ? 'set COG_MODEL' : 'set COG_MODEL_TAG for another tag, or COG_MODEL'} for another reference)`,
      },
    );
  if (config.weights.length > 0)
    throw new CogError(`${config.configFile}: weights: managed weights are not supported by cog push yet`, {
      hint: `remove the 'weights' stanza to push the model bundle without managed weights`,
    });
  checkBundleDestination(model);
}

/** The model page for an r8.im image (`https://replicate.com/owner/model`), else undefined. */
export function replicateModelUrl(ref: Reference): string | undefined {
  return ref.registry === defaultReplicateHost ? `https://replicate.com/${ref.repository}` : undefined;
}

/** The closing summary on stderr: counts, bytes and time. */
export function pushSummary(result: PushResult): string {
  const { uploaded, existed, mounted } = result.blobs;
  const parts = [`${uploaded} uploaded`, `${existed} already there`, `${mounted} mounted`];
  const retries =
    result.resumes + result.restarts > 0 ? `, ${result.resumes} resumed, ${result.restarts} restarted` : '';
  return `Pushed ${uploaded + existed + mounted} blobs (${parts.join(', ')}${retries}): ${formatSize(result.bytesUploaded)} uploaded in ${result.seconds.toFixed(1)}s`;
}

/** Builds into the local store under `name`, with `extraLabels` in the image config. */
async function buildForPush(
  args: PushArgs,
  io: CommandIo,
  cwd: string,
  name: string,
  extraLabels?: Record<string, string>,
): Promise<BuildOutcome & { storeDir: string }> {
  const built = await buildImage(
    {
      ...args,
      tag: name,
      push: false,
      outputs: [],
      smokeTest: false,
      cacheFrom: [],
      cacheTo: [],
      metadataFile: undefined,
      ...(extraLabels ? { extraLabels } : {}),
    },
    io,
    cwd,
  );
  if (!built.storeDir) throw new CogError('the build did not write to the local image store');
  return { ...built, storeDir: built.storeDir };
}

/**
 * Pushes the image stored under `built.imageName` to `ref` with progress on stderr, then runs `then`
 * with the same client (e.g. to PUT an index); Ctrl-C and registry refusals come out as CogErrors.
 */
async function pushStored<T>(
  args: PushArgs,
  io: CommandIo,
  registry: PushClient,
  built: BuildOutcome & { storeDir: string },
  ref: Reference,
  then: (client: RegistryClient, result: PushResult, signal: AbortSignal) => Promise<T>,
): Promise<{ result: PushResult; extra: T }> {
  const mode = resolveProgressMode(args.progress, io.env, io.stderr.isTTY === true);
  const progress = createPushProgress(mode, io.stderr, { target: formatReference(ref) });
  const { client } = registry;
  registry.noteRetriesTo((line) => progress.note(line));
  const store = new ImageStore(built.storeDir);
  const mountFrom = await blobMountSources(
    await readPushHistory(built.storeDir),
    ref.registry,
    ref.repository,
    (image) => store.blobsOf(image),
  );
  let pushed: { result: PushResult; extra: T };
  try {
    pushed = await withInterrupt(
      io.stderr,
      async (signal) => {
        const result = await pushFromLayout(client, built.storeDir, built.imageName, ref, {
          signal,
          mountFrom,
          onProgress: progress.onProgress,
          onNote: (line) => progress.note(line),
          env: io.env,
        });
        return { result, extra: await then(client, result, signal) };
      },
      () => 'cancelling the push',
    );
  } catch (err) {
    await progress.close();
    if (err instanceof InterruptedError)
      throw new CogError(`interrupted (${err.signal}): the push was cancelled`, {
        hint: 'run cog push again; blobs that reached the registry are not uploaded again',
        exitCode: err.exitCode,
      });
    // a damaged blob in the store: name the images to remove (a build alone keeps the copy)
    if (err instanceof DamagedBlobError) {
      // the pushed image first: its own image cannot be read when the damaged blob is its manifest
      const usedBy = [...new Set([built.imageName, ...(await store.namesUsing(err.digest).catch(() => []))])];
      throw new DamagedBlobError(err.digest, err.message, { cause: err, usedBy });
    }
    throw explainPushError(err, ref, await client.hasCredentials(ref.registry), io.env);
  }
  await progress.close();
  await recordPush(built.storeDir, {
    registry: ref.registry,
    repository: ref.repository,
    digest: pushed.result.digest,
    at: Date.now(),
  });
  io.stderr.write(`${pushSummary(pushed.result)}\n`);
  return pushed;
}

export async function push(args: PushArgs, io: CommandIo, cwd = process.cwd()): Promise<PushResult> {
  // the image is read from the store until it is pushed: no other cog may collect its blobs meanwhile
  return new ImageStore(imageStoreDir(io.env)).whileLeased(() => buildAndPush(args, io, cwd));
}

async function buildAndPush(args: PushArgs, io: CommandIo, cwd: string): Promise<PushResult> {
  checkPushSettings(io.env); // a bad COG_PUSH_* fails in a second, not after the build (image or bundle)
  const loaded = loadConfig({ cwd, file: args.file, env: io.env });
  const { completed } = loaded;
  const model = resolveModelRef({
    model: completed.model,
    image: completed.image,
    configFile: completed.configFile,
    env: io.env,
    now: new Date(),
  });
  if (model?.ignored)
    io.stderr.write(
      warningLine(
        `${model.ignored.join(', ')} ${model.ignored.length > 1 ? 'are' : 'is'} not used: COG_MODEL names the whole reference (${formatReference(model.ref)}); put the tag in COG_MODEL, or unset COG_MODEL`,
      ),
    );
  if (model) return pushBundle(args, io, cwd, loaded, model);

  const { name: target, ref, from } = pushTarget(args.image, completed);
  const { result } = await withPushClient(io, async (registry) => {
    await checkDestination(io, registry, ref, from);
    const built = await buildForPush(args, io, cwd, target);
    return pushStored(args, io, registry, built, ref, async () => undefined);
  });
  const url = replicateModelUrl(ref);
  if (url) io.stderr.write(`Run your model on Replicate: ${url}\n`);
  io.stdout.write(`${result.reference}\n`);
  return result;
}

/**
 * The bundle push (upstream's BundlePusher, without managed weights): build with a fresh
 * run.cog.push_id, push the image as `repo:cog-image.<tag>`, HEAD it for the descriptor the registry
 * serves, PUT an index holding it at `repo:<tag>`. stderr gets the tree, stdout `repo:tag@<index digest>`.
 */
async function pushBundle(
  args: PushArgs,
  io: CommandIo,
  cwd: string,
  loaded: LoadedConfig,
  model: ResolvedModelRef,
): Promise<PushResult> {
  checkBundlePush(args.image, loaded.completed, model);
  const platform = parsePlatform(args.platform, 'a model bundle push');
  const modelRef = model.ref;
  const imageRef = bundleImageRef(modelRef);
  const repository = `${modelRef.registry}/${modelRef.repository}`;
  const pushId = uuidV7(Date.now(), randomBytes(10));
  // a generated timestamp tag names the registry's copy only: the local store files the newest build
  // of the repository as :latest rather than gaining an entry per push
  const storeName = formatReference(model.timestampTag ? { ...modelRef, tag: 'latest' } : modelRef);
  const { result, extra: index } = await withPushClient(io, async (registry) => {
    await checkDestination(io, registry, modelRef, modelSource(model, loaded.completed.configFile));
    const built = await buildForPush(args, io, cwd, storeName, { [pushIdLabel]: pushId });
    return pushStored(args, io, registry, built, imageRef, async (client, pushed, signal) => {
      const head = await headManifest(client, imageRef, imageRef.tag!, signal);
      if (!head)
        throw new CogError(`${formatReference(imageRef)} is missing right after it was pushed`, {
          hint: 'the registry did not keep the manifest; push again',
        });
      if (head.digest !== pushed.digest)
        throw new CogError(
          `${formatReference(imageRef)} is ${head.digest}, not the ${pushed.digest} just pushed (another push to the same tag?)`,
          // COG_MODEL_TAG is ignored when COG_MODEL names the reference
          {
            hint: `push again, with a tag of its own (${model.from === 'COG_MODEL' ? 'a tag in COG_MODEL' : 'COG_MODEL_TAG'})`,
          },
        );
      // a registry that answers HEAD without a length: the bytes just pushed have the same digest
      const image = head.size > 0 ? head : { ...head, size: pushed.size };
      const bundle = buildBundleIndex(image, platform);
      await putManifest(client, modelRef, modelRef.tag!, bundle.bytes, bundle.mediaType, signal).catch(
        (err: unknown) => {
          // the image is in the registry under its own tag by now: say what the failure left there
          if (!(err instanceof CogError) || signal.aborted) throw err;
          throw new CogError(
            `${err.message}; the image landed as ${formatReference(imageRef)}@${pushed.digest}, but ${formatReference(modelRef)} was not written`,
            { ...(err.hint ? { hint: err.hint } : {}), exitCode: err.exitCode, cause: err },
          );
        },
      );
      return bundle;
    });
  });
  for (const line of bundleTree(repository, index.digest, result.digest)) io.stderr.write(`${line}\n`);
  const url = replicateModelUrl(modelRef);
  if (url) io.stderr.write(`Run your model on Replicate: ${url}\n`);
  const reference = `${formatReference(modelRef)}@${index.digest}`;
  io.stdout.write(`${reference}\n`);
  return {
    ...result,
    reference,
    digest: index.digest,
    mediaType: index.mediaType,
    size: index.bytes.length,
  };
}
