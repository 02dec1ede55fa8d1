/**
 * A source-only rebuild without buildkitd. When the same `cog build` command ran before (its source
 * record, build/source-record.ts) and the graph below the source layer is the same now (same
 * belowSourceKey, planned on the recorded base), every layer below the source is what BuildKit would
 * make again. cog-ts then writes the new source layer itself (image/source-layer.ts), puts it on top of
 * the recorded image with the new config (build/source-image.ts), and stores or pushes the result: no
 * session, no solve, no export.
 *
 * Anything unexpected (the store or the registry lost a layer below, the project holds a device file)
 * declines with a reason, and the caller builds on buildkitd as usual; nothing half-made is named.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { OciImageConfig } from '../buildkit/gateway.js';
import { type Descriptor, type ImageStore } from '../image/store.js';
import { UnsupportedEntryError, writeSourceLayer } from '../image/source-layer.js';
import type { PlanInput } from '../plan/types.js';
import {
  type BlobSource,
  type UploadSession,
  cancelUpload,
  fileBlobSource,
  startUpload,
} from '../registry/blobs.js';
import { uploadBlob } from '../registry/blob-upload.js';
import { runLimited } from '../registry/run-limited.js';
import type { RegistryClient } from '../registry/client.js';
import { isBlobUnknownError } from '../registry/errors.js';
import { putManifest, sha256Digest } from '../registry/manifests.js';
import { parseReference } from '../registry/reference.js';
import { compileOnBase, inputOnBase } from './resolved-base.js';
import type { RecordedOutput } from './build-record.js';
import { type NextImage, type OciManifest, belowSourceKey, nextSourceImage } from './source-image.js';
import type { SourceRecord } from './source-record.js';

export type SourceRebuildTarget = { readonly kind: 'store'; readonly store: ImageStore } | PushTarget;

/**
 * Where a source-only rebuild pushes: the registry client, the image's reference, and the upload
 * sessions of the new layer and config, opened as soon as the target is (see openPushTarget).
 */
export interface PushTarget {
  readonly kind: 'push';
  readonly client: RegistryClient;
  readonly imageName: string;
  readonly sessions: Promise<readonly [UploadSession, UploadSession]>;
}

/**
 * The push target of `imageName`: the registry's ping and both upload sessions start now, so they are
 * open by the time the layer is written. The rebuild cancels them when it declines, and closes the
 * client in any case.
 */
export function openPushTarget(client: RegistryClient, imageName: string, signal?: AbortSignal): PushTarget {
  const ref = parseReference(imageName);
  const sessions = Promise.all([startUpload(client, ref, signal), startUpload(client, ref, signal)] as const);
  sessions.catch(() => undefined); // awaited when pushing; a failure there fails the push
  return { kind: 'push', client, imageName, sessions };
}

const closed = new WeakSet<PushTarget>();
/** targets whose sessions went to uploadBlob, which deletes a session itself when its upload fails */
const handedOver = new WeakSet<PushTarget>();

/**
 * Cancels the target's upload sessions (not used: a declined rebuild), best effort, and closes its
 * client (whose idle connections would otherwise keep the process alive); once.
 */
export async function closePushTarget(target: PushTarget, sessionsUsed = false): Promise<void> {
  if (closed.has(target)) return;
  closed.add(target);
  if (!sessionsUsed && !handedOver.has(target)) {
    const ref = parseReference(target.imageName);
    const sessions = await target.sessions.catch(() => []);
    await Promise.all(sessions.map((session) => cancelUpload(target.client, ref, session.location)));
  }
  await target.client.close();
}

export interface SourceRebuildRequest {
  readonly record: SourceRecord;
  readonly input: PlanInput;
  readonly projectDir: string;
  readonly imageName: string;
  readonly sharedKeyHint: string;
  readonly target: SourceRebuildTarget;
  readonly signal?: AbortSignal;
  /** how far the new layer is: its project bytes written, then (pushed) its bytes uploaded */
  readonly onProgress?: SourceRebuildProgress;
}

/** A rebuild's steps: bytes through (`done` of `total`), and each step's end once it has succeeded. */
export interface SourceRebuildProgress {
  bytes(step: SourceRebuildStep, done: number, total: number): void;
  finished(step: SourceRebuildStep): void;
}

export type SourceRebuildStep = 'write' | 'upload';

export type SourceRebuild =
  | {
      readonly kind: 'rebuilt';
      readonly digest: string;
      /** the image the name had in the store before (undefined: pushed, or a new name) */
      readonly replaced?: Descriptor;
      /** the record of the image made, for the next rebuild */
      readonly record: SourceRecord;
    }
  | { readonly kind: 'declined'; readonly reason: string };

const declined = (reason: string): SourceRebuild => ({ kind: 'declined', reason });

/** Where the record's image went, compared with where this build sends it. */
function sameOutput(recorded: RecordedOutput, target: SourceRebuildTarget, imageName: string): boolean {
  if (target.kind === 'store') return recorded.kind === 'store' && recorded.root === target.store.root;
  return recorded.kind === 'push' && recorded.ref === imageName && target.imageName === imageName;
}

/** Rebuilds only the source layer when the record allows it; see the module comment. */
export async function rebuildSource(request: SourceRebuildRequest): Promise<SourceRebuild> {
  const { target } = request;
  if (target.kind === 'store') return rebuild(request);
  let result: SourceRebuild | undefined;
  try {
    result = await rebuild(request);
    return result;
  } finally {
    // the sessions of a declined (or failed) rebuild are cancelled
    await closePushTarget(target, result?.kind === 'rebuilt');
  }
}

async function rebuild(request: SourceRebuildRequest): Promise<SourceRebuild> {
  const { record, target, imageName } = request;
  if (record.imageName !== imageName || !sameOutput(record.output, target, imageName))
    return declined('the last build sent its image elsewhere');
  const input = inputOnBase(request.input, record.base);
  if (!input) return declined('the base image choice changed');
  const { plan, compiled } = compileOnBase(input, record.base, request.sharedKeyHint);
  const platform = {
    OS: compiled.config.os ?? 'linux',
    Architecture: compiled.config.architecture ?? 'amd64',
  };
  const key = compiled.belowSource && belowSourceKey(compiled.belowSource, platform);
  if (!key || key !== record.below) return declined('something below the source layer changed');
  const previous = {
    manifest: JSON.parse(record.manifest) as OciManifest,
    config: JSON.parse(record.config) as OciImageConfig,
  };
  const { source } = plan;
  const spec = { projectDir: request.projectDir, exclude: source.exclude, files: source.files };
  const settings = compiled.config.config ?? {};
  try {
    const made =
      target.kind === 'store'
        ? await intoStore(target.store, spec, previous, settings, imageName, request)
        : await toRegistry(target, spec, previous, settings, request);
    if (made.kind === 'declined') return made;
    const next: SourceRecord = {
      ...record,
      manifest: made.image.manifest.toString('utf8'),
      config: made.image.config.toString('utf8'),
    };
    return {
      kind: 'rebuilt',
      digest: sha256Digest(made.image.manifest),
      ...(made.replaced ? { replaced: made.replaced } : {}),
      record: next,
    };
  } catch (err) {
    if (err instanceof UnsupportedEntryError)
      return declined(`${err.message}, which only buildkitd's copy can carry`);
    throw err;
  }
}

type LayerSpec = Parameters<typeof writeSourceLayer>[0];
/** what a rebuild under way answers to: Ctrl-C, and who shows its progress */
type RebuildHooks = Pick<SourceRebuildRequest, 'signal' | 'onProgress'>;

/** The source layer written to `dest`, its progress (and its end) told to `onProgress`. */
async function writeLayer(spec: LayerSpec, dest: string, { signal, onProgress }: RebuildHooks) {
  const layer = await writeSourceLayer(spec, dest, {
    signal,
    ...(onProgress
      ? { onBytes: (done: number, total: number) => onProgress.bytes('write', done, total) }
      : {}),
  });
  onProgress?.finished('write');
  return layer;
}

type Previous = Parameters<typeof nextSourceImage>[0];
type Settings = Parameters<typeof nextSourceImage>[2];
type Made =
  | { readonly kind: 'made'; readonly image: NextImage; readonly replaced?: Descriptor }
  | { readonly kind: 'declined'; readonly reason: string };

async function intoStore(
  store: ImageStore,
  spec: LayerSpec,
  previous: Previous,
  settings: Settings,
  imageName: string,
  hooks: RebuildHooks,
): Promise<Made> {
  const below = previous.manifest.layers.slice(0, -1);
  // a copy cut short is no copy: the build on buildkitd then names it
  const missing = below.find((layer) => !store.hasBlob(layer.digest, layer.size));
  if (missing)
    return { kind: 'declined', reason: `the image store no longer holds layer ${missing.digest} whole` };
  const staged = await store.stagingPath();
  let image: NextImage;
  try {
    const layer = await writeLayer(spec, staged, hooks);
    image = nextSourceImage(previous, layer, settings, layer.sourceDate);
    await store.commitBlob(staged, layer.digest);
  } finally {
    await rm(staged, { force: true });
  }
  await store.putBlob(image.config);
  const digest = await store.putBlob(image.manifest);
  const platform = previous.config.os
    ? { os: previous.config.os, architecture: previous.config.architecture ?? 'amd64' }
    : undefined;
  const replaced = await store.tag(imageName, {
    mediaType: image.manifestMediaType,
    digest,
    size: image.manifest.length,
    ...(platform ? { platform } : {}),
  });
  return { kind: 'made', image, ...(replaced ? { replaced } : {}) };
}

function bufferBlobSource(bytes: Buffer, digest: string): BlobSource {
  return {
    digest,
    size: bytes.length,
    open: (start, end) => Readable.from([bytes.subarray(start, end + 1)]),
  };
}

async function toRegistry(
  target: PushTarget,
  spec: LayerSpec,
  previous: Previous,
  settings: Settings,
  hooks: RebuildHooks,
): Promise<Made> {
  const { signal, onProgress } = hooks;
  const { client } = target;
  const ref = parseReference(target.imageName);
  const dir = await mkdtemp(join(tmpdir(), 'cog-source-layer-'));
  try {
    const path = join(dir, 'layer.tar.gz');
    const layer = await writeLayer(spec, path, hooks);
    const image = nextSourceImage(previous, layer, settings, layer.sourceDate);
    const [forLayer, forConfig] = await target.sessions;
    handedOver.add(target);
    // both uploads end before the layer's directory is removed: a failed one cancels the other
    const uploads = new AbortController();
    const onAbort = () => uploads.abort(signal?.reason);
    if (signal?.aborted) onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      await runLimited(
        [
          () =>
            uploadBlob(client, ref, fileBlobSource(path, layer.digest, layer.size), {
              signal: uploads.signal,
              session: forLayer,
              ...(onProgress ? { onProgress: (done, total) => onProgress.bytes('upload', done, total) } : {}),
            }).then(() => undefined),
          () =>
            uploadBlob(client, ref, bufferBlobSource(image.config, image.configDescriptor.digest), {
              signal: uploads.signal,
              session: forConfig,
            }).then(() => undefined),
        ],
        2,
        uploads,
      );
      onProgress?.finished('upload');
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
    try {
      await putManifest(client, ref, ref.tag ?? 'latest', image.manifest, image.manifestMediaType, signal);
    } catch (err) {
      // a layer below is gone from the repository (deleted, collected): buildkitd pushes it again
      if (isBlobUnknownError(err))
        return { kind: 'declined', reason: `${ref.registry} no longer holds every layer of the last image` };
      throw err;
    }
    return { kind: 'made', image };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
