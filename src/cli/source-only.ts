/**
 * `cog build`'s source-only answer (build/source-rebuild.ts): when only the project's files changed
 * since the same command last built, the new source layer is written by cog-ts and the image stored or
 * pushed without buildkitd. Also writes the source record after a build on buildkitd, so the next
 * source-only change can be answered this way.
 */
import type { BuiltModel } from '../build/build-model.js';
import type { InputFingerprint, RecordedOutput } from '../build/build-record.js';
import {
  type PushTarget,
  type SourceRebuildProgress,
  type SourceRebuildStep,
  closePushTarget,
  openPushTarget,
  rebuildSource,
} from '../build/source-rebuild.js';
import {
  type SourceRecord,
  readSourceRecord,
  sourceRecordFormat,
  sourceRecordsDir,
  writeSourceRecord,
} from '../build/source-record.js';
import type { Descriptor, ImageStore } from '../image/store.js';
import { fetchBlob } from '../registry/blobs.js';
import type { RegistryClient } from '../registry/client.js';
import type { Keychain } from '../registry/keychain.js';
import { getManifest } from '../registry/manifests.js';
import { parseReference } from '../registry/reference.js';
import type { BuildArgs, PreparedBuild } from './prepare-build.js';
import type { BuildOutcome } from './build.js';
import { type Recording, finishRecording, pushedOutput } from './build-recording.js';
import { collectStoreGarbage } from './store-garbage.js';
import { builtLine } from './up-to-date.js';
import { withInterrupt } from './interrupt.js';
import { type StepLines, type StepLinesTarget, createStepLines } from '../progress/step-lines.js';
import type { CommandIo } from './debug-solve.js';

/**
 * Whether a build may be answered source-only, and its source record written: a recorded build (see
 * build-recording.ts) of one platform from the plan (no --dockerfile), no smoke test (it runs the
 * image on buildkitd), no --timestamp (a reproducible image must not depend on which builder made its
 * source layer), no schema read from the image (an SDK below 0.17: it depends on the source, and its
 * layer sits above the source's), going to the store or pushed.
 */
export function sourceOnlyAllowed(args: BuildArgs, prepared: PreparedBuild): boolean {
  return (
    args.timestamp === undefined &&
    !args.smokeTest &&
    !prepared.dockerfile &&
    !prepared.schemaFromImage &&
    prepared.platforms.length === 1 &&
    args.outputs.length === 0
  );
}

/** The line that says the build was answered without buildkitd. */
export const sourceOnlyLine =
  "cog: nothing below the project's files changed since the last build: cog-ts wrote the source layer on the last image's layers, nothing was solved (--pull builds on buildkitd)\n";

export interface SourceOnlyRequest {
  readonly recording: Recording;
  /** the source record under the recording's key, when the caller has read it already */
  readonly record?: SourceRecord;
  readonly prepared: PreparedBuild;
  readonly sharedKeyHint: string;
  readonly target: { readonly kind: 'store'; readonly store: ImageStore } | PushOpening;
  readonly io: CommandIo;
  /** Ctrl-C: stops writing the layer (and pushing), and the answer fails (no build on buildkitd) */
  readonly signal?: AbortSignal;
  /** where the layer's progress goes when writing or pushing it takes a while (none: not shown) */
  readonly progress?: StepLinesTarget;
}

/** A push target being opened (see openPush); one is opened when the request has none. */
export interface PushOpening {
  readonly kind: 'push';
  readonly opening?: Promise<PushTarget>;
}

/**
 * Opens the push target of `imageName` (build/source-rebuild.ts: the registry's ping and the upload
 * sessions start at once). The registry client is loaded only to push: its module sets a V8 flag,
 * which would keep a process that loaded it from saving the CLI's code cache (cli/code-cache.ts).
 */
export async function openPush(imageName: string, env: NodeJS.ProcessEnv): Promise<PushTarget> {
  return openPushTarget(await registryClient(env), imageName);
}

/** A registry client, its module loaded now (see openPush); `keychain`: the command's, when it has one. */
async function registryClient(env: NodeJS.ProcessEnv, keychain?: Keychain): Promise<RegistryClient> {
  const { RegistryClient } = await import('../registry/client.js');
  return new RegistryClient({ env, ...(keychain ? { keychain } : {}) });
}

/**
 * `cog build` answered source-only when it can be (see answerSourceOnly): the image stored (holding a
 * lease on the store, so no collection removes its blobs meanwhile) or pushed, the records written, the
 * closing line printed. Undefined: build on buildkitd. Ctrl-C stops it (said on `live`) and
 * rejects with InterruptedError: the command ends, no build follows.
 */
export async function buildSourceOnly(request: {
  readonly recording: Recording;
  readonly recordInputs: readonly InputFingerprint[] | undefined;
  readonly prepared: PreparedBuild;
  readonly sharedKeyHint: string;
  readonly store: ImageStore;
  readonly toStore: boolean;
  /** the source record under the recording's key, when the caller has read it already */
  readonly record?: SourceRecord;
  /** the push target, opening since before the build was prepared */
  readonly push?: Promise<PushTarget>;
  readonly io: CommandIo;
  /**
   * stderr as it is, for what must show at once (`io.stderr` may be held back): the Ctrl-C line, and the
   * layer's progress when writing or pushing it takes a while, in the build's progress mode
   */
  readonly live: StepLinesTarget;
}): Promise<BuildOutcome | undefined> {
  const { recording, prepared, store, toStore, io } = request;
  const { imageName } = prepared;
  const lease = toStore ? await store.lease() : undefined;
  let answered;
  try {
    answered = await withInterrupt(request.live.stream, (signal) =>
      answerSourceOnly({
        recording,
        ...(request.record ? { record: request.record } : {}),
        prepared,
        sharedKeyHint: request.sharedKeyHint,
        target: toStore
          ? { kind: 'store', store }
          : { kind: 'push', ...(request.push ? { opening: request.push } : {}) },
        io,
        signal,
        progress: request.live,
      }),
    );
  } finally {
    await lease?.release();
  }
  if (!answered) return undefined;
  if (toStore && answered.replaced?.digest !== answered.digest)
    await collectStoreGarbage(store, io.stderr, answered.replaced);
  const output: RecordedOutput = toStore
    ? { kind: 'store', root: store.root }
    : pushedOutput(imageName, io.env);
  if (request.recordInputs)
    finishRecording(recording, request.recordInputs, prepared, {
      imageName,
      digest: answered.digest,
      output,
    });
  io.stderr.write(builtLine(imageName, answered.digest, output));
  return { imageName, digest: answered.digest, storeDir: toStore ? store.root : undefined };
}

/**
 * Answers the build source-only when its record allows; resolves with the new image's digest (and the
 * one the name had in the store before), or undefined when the build must go to buildkitd.
 */
export async function answerSourceOnly(
  request: SourceOnlyRequest,
): Promise<{ digest: string; replaced?: Descriptor } | undefined> {
  const { recording, prepared, io } = request;
  const dir = sourceRecordsDir(recording.env);
  const record = request.record ?? readSourceRecord(dir, recording.key);
  if (!record) {
    if (request.target.kind === 'push') await closeUnused(request.target.opening);
    return undefined;
  }
  let result;
  try {
    const target =
      request.target.kind === 'store'
        ? request.target
        : await (request.target.opening ?? openPush(prepared.imageName, io.env));
    result = await rebuildSource({
      record,
      input: prepared.input,
      projectDir: prepared.loaded.projectDir,
      imageName: prepared.imageName,
      sharedKeyHint: request.sharedKeyHint,
      target,
      ...(request.signal ? { signal: request.signal } : {}),
      ...(request.progress ? { onProgress: layerProgress(request.progress) } : {}),
    });
  } catch (err) {
    // interrupted: no build on buildkitd follows
    if (request.signal?.aborted) throw err;
    // buildkitd can still make the image: a failure here costs the time, not the build
    const reason = err instanceof Error ? err.message : String(err);
    io.stderr.write(`cog: warning: the source-only rebuild failed (${reason}); building on buildkitd\n`);
    return undefined;
  }
  if (result.kind === 'declined') return undefined;
  for (const note of record.notes) {
    recording.notes.push(note);
    io.stderr.write(note);
  }
  writeSourceRecord(dir, result.record);
  io.stderr.write(sourceOnlyLine);
  return { digest: result.digest, ...(result.replaced ? { replaced: result.replaced } : {}) };
}

/**
 * The layer's progress as step lines (progress/step-lines.ts): "writing the source layer", then, when it
 * is pushed, "pushing the source layer"; a step's closing line comes when it has succeeded, none when it
 * failed.
 */
function layerProgress(target: StepLinesTarget): SourceRebuildProgress {
  const what = { write: 'writing the source layer', upload: 'pushing the source layer' } as const;
  const lines = new Map<SourceRebuildStep, StepLines>();
  return {
    bytes(step, done, total) {
      let shown = lines.get(step);
      if (!shown) lines.set(step, (shown = createStepLines(target, what[step], total)));
      shown.update(done);
    },
    finished: (step) => lines.get(step)?.end(),
  };
}

/**
 * After a build on buildkitd: the source record of the image it made (its manifest and config read
 * back from the store or the registry), when the graph below its source layer has a key.
 */
export async function recordSourceImage(
  args: BuildArgs,
  recording: Recording,
  /** how many of the recording's notes preparing the build said (the rebuild prepares again) */
  preparedNotes: number,
  prepared: PreparedBuild,
  built: BuiltModel,
  output: RecordedOutput,
  store: ImageStore,
  io: CommandIo,
  /** the credentials the build pushed with (one keychain: a credential helper is asked once) */
  keychain?: Keychain,
): Promise<void> {
  const [image] = built.images;
  const digest = built.exporterResponse['containerimage.digest'];
  if (!image?.below || !digest || built.images.length !== 1) return;
  try {
    const { manifest, config } =
      output.kind === 'store'
        ? await fromStore(store, digest)
        : await fromRegistry(prepared.imageName, digest, io.env, keychain);
    const record: SourceRecord = {
      format: sourceRecordFormat,
      key: recording.key,
      below: image.below.key,
      base: image.below.base,
      imageName: prepared.imageName,
      output,
      manifest: manifest.toString('utf8'),
      config: config.toString('utf8'),
      notes: recording.notes.slice(preparedNotes),
      args,
    };
    writeSourceRecord(sourceRecordsDir(recording.env), record);
  } catch {
    // no record: the next source-only change builds on buildkitd, as without one
  }
}

const configDigestOf = (manifest: Buffer) =>
  (JSON.parse(manifest.toString('utf8')) as { config: { digest: string } }).config.digest;

async function fromStore(store: ImageStore, digest: string) {
  const manifest = await store.readBlob(digest);
  return { manifest, config: await store.readBlob(configDigestOf(manifest)) };
}

/** A push target opened for nothing: its sessions cancelled, its client closed (best effort). */
export async function closeUnused(opening: Promise<PushTarget> | undefined): Promise<void> {
  const target = await opening?.catch(() => undefined);
  if (target) await closePushTarget(target);
}

async function fromRegistry(
  imageName: string,
  digest: string,
  env: NodeJS.ProcessEnv,
  keychain: Keychain | undefined,
) {
  const ref = parseReference(imageName);
  const client = await registryClient(env, keychain);
  try {
    const manifest = (await getManifest(client, ref, digest)).bytes;
    return { manifest, config: await fetchBlob(client, ref, configDigestOf(manifest)) };
  } finally {
    await client.close();
  }
}
