/**
 * Push an image (a manifest with its config and layers) or an index (with its child manifests) from an
 * OCI layout to a registry: every blob is HEAD-checked and skipped when present, mounted from a sibling
 * repository when the caller names candidates, else uploaded; `concurrency` blobs at a time. Child
 * manifests go up by digest, then the top one by tag. When a manifest is refused for a blob the registry
 * said it had (a lost blob, a mount not visible yet, a HEAD answered from a cache), the blobs this push
 * did not upload go up again without asking, and the manifests once more.
 */
import { CogError } from '../errors.js';
import { uploadBlob } from './blob-upload.js';
import { type BlobSource, type UploadSession, blobExists, cancelUpload, mountBlob } from './blobs.js';
import type { RegistryClient } from './client.js';
import { isBlobUnknownError } from './errors.js';
import { type Descriptor, OciLayout } from './layout.js';
import { isIndexMediaType, putManifest } from './manifests.js';
import { type Reference, formatReference } from './reference.js';
import { runLimited } from './run-limited.js';
import { pushChunkSize, pushConcurrency, pushMultipartThreshold } from './settings.js';

export type BlobState = 'waiting' | 'checking' | 'exists' | 'mounted' | 'uploading' | 'pushed';

export interface PushProgress {
  readonly blob: {
    readonly digest: string;
    readonly size: number;
    readonly done: number;
    readonly state: BlobState;
  };
  /**
   * all blobs: bytes present in the registry so far, of `size` (like `blob.done`, never goes back, even
   * when bytes are sent again after a resume); throughput of this push's uploads, new bytes only
   */
  readonly total: { readonly done: number; readonly size: number; readonly bytesPerSecond: number };
}

/** Mount sources: repositories for every blob, or the repositories that hold a given blob. */
export type MountSources = readonly string[] | ((blob: string) => readonly string[]);

/** Mount sources asked per blob before it is uploaded. */
const maxMountTries = 3;

/** How long deleting an unused upload session may take (the registry purges old ones anyway). */
const abandonMs = 5_000;

export interface PushOptions {
  readonly signal?: AbortSignal | undefined;
  /** blobs at once (default COG_PUSH_CONCURRENCY, else 5) */
  readonly concurrency?: number;
  /** preferred PATCH size (default COG_PUSH_DEFAULT_CHUNK_SIZE, else 96 MiB) */
  readonly chunkSize?: number;
  /** blobs up to this size go in one request (default COG_PUSH_MULTIPART_THRESHOLD, else 128 MiB) */
  readonly multipartThreshold?: number;
  /**
   * repositories on the same registry that may hold the blobs (the same for every blob, or per blob):
   * mounted from instead of uploaded, trying up to three in order
   */
  readonly mountFrom?: MountSources;
  readonly onProgress?: ((event: PushProgress) => void) | undefined;
  /** a line for the user, e.g. blobs uploaded again after the registry refused a manifest for them */
  readonly onNote?: ((line: string) => void) | undefined;
  /** where COG_PUSH_* are read from (default process.env) */
  readonly env?: NodeJS.ProcessEnv;
}

export interface PushResult {
  /** `registry/repo:tag@digest` */
  readonly reference: string;
  readonly digest: string;
  readonly mediaType: string;
  readonly size: number;
  readonly blobs: { readonly uploaded: number; readonly existed: number; readonly mounted: number };
  /** bytes of blobs uploaded (their sizes) and body bytes actually sent (retries included) */
  readonly bytesUploaded: number;
  readonly bytesSent: number;
  readonly resumes: number;
  readonly restarts: number;
  readonly seconds: number;
}

interface Plan {
  /** config and layer descriptors, each digest once */
  readonly blobs: Map<string, Descriptor>;
  /** child manifests to PUT by digest, children before parents */
  readonly manifests: { descriptor: Descriptor; bytes: Buffer }[];
}

async function plan(layout: OciLayout, top: Descriptor, topBytes: Buffer): Promise<Plan> {
  const blobs = new Map<string, Descriptor>();
  const manifests: Plan['manifests'] = [];
  const seen = new Set<string>();
  const visit = async (descriptor: Descriptor, bytes: Buffer, isTop: boolean) => {
    if (seen.has(descriptor.digest)) return;
    seen.add(descriptor.digest);
    const json = JSON.parse(bytes.toString('utf8')) as {
      mediaType?: string;
      config?: Descriptor;
      layers?: Descriptor[];
      manifests?: Descriptor[];
    };
    if (isIndexMediaType(descriptor.mediaType) || Array.isArray(json.manifests)) {
      for (const child of json.manifests ?? [])
        await visit(child, await layout.readBlob(child.digest), false);
    } else {
      if (!json.config)
        throw new CogError(`manifest ${descriptor.digest} in ${layout.root} has no config`, {
          hint: 'the image layout is corrupt; rebuild the image',
        });
      for (const blob of [json.config, ...(json.layers ?? [])]) blobs.set(blob.digest, blob);
    }
    if (!isTop) manifests.push({ descriptor, bytes });
  };
  await visit(top, topBytes, true);
  return { blobs, manifests };
}

/** Pushes the image `descriptor` names in `layout` to `target`; resolves with its digest and counts. */
export async function pushImage(
  client: RegistryClient,
  layout: OciLayout,
  descriptor: Descriptor,
  target: Reference,
  options: PushOptions = {},
): Promise<PushResult> {
  const env = options.env ?? process.env;
  const concurrency = options.concurrency ?? pushConcurrency(env);
  const chunkSize = options.chunkSize ?? pushChunkSize(env);
  const multipartThreshold = options.multipartThreshold ?? pushMultipartThreshold(env);
  if (!target.tag && target.digest !== descriptor.digest)
    throw new CogError(`cannot push ${descriptor.digest} to ${formatReference(target)}`, {
      hint: 'push to a tag, e.g. registry/repo:latest',
    });
  const started = Date.now();
  // one controller: Ctrl-C (the caller's signal) or the first failed blob stops every upload
  const controller = new AbortController();
  const outer = options.signal;
  const onOuterAbort = () => controller.abort(outer?.reason);
  if (outer?.aborted) onOuterAbort();
  outer?.addEventListener('abort', onOuterAbort, { once: true });
  const signal = controller.signal;

  try {
    const topBytes = await layout.readBlob(descriptor.digest);
    const { blobs, manifests } = await plan(layout, descriptor, topBytes);
    const sources = new Map<string, BlobSource>();
    for (const blob of blobs.values()) sources.set(blob.digest, await layout.blobSource(blob));

    const totalSize = [...blobs.values()].reduce((sum, b) => sum + b.size, 0);
    const doneBy = new Map<string, number>();
    let totalDone = 0;
    /** bytes that reached the registry through uploads (for throughput) */
    let uploadedBytes = 0;
    let uploadedBlobBytes = 0;
    const counts = { uploaded: 0, existed: 0, mounted: 0 };
    const sent = { bytesSent: 0, resumes: 0, restarts: 0 };
    /** reports a blob's state; `done` is held at the most reported so far, so no count goes back */
    const emit = (digest: string, size: number, reached: number, state: BlobState) => {
      const before = doneBy.get(digest) ?? 0;
      const done = Math.max(before, reached);
      totalDone += done - before;
      doneBy.set(digest, done);
      const seconds = Math.max(0.001, (Date.now() - started) / 1000);
      options.onProgress?.({
        blob: { digest, size, done, state },
        total: { done: totalDone, size: totalSize, bytesPerSecond: uploadedBytes / seconds },
      });
    };

    /** the chunk size that got through after a request was refused as too large (413) */
    let bodyLimitSeen: number | undefined;
    /** blobs this push took the registry's word for, and how */
    const notUploaded = new Map<string, 'existed' | 'mounted'>();
    /** `force`: upload without asking whether the registry has the blob or can mount it */
    const pushBlob = async (blob: Descriptor, force = false) => {
      const source = sources.get(blob.digest)!;
      let session: UploadSession | undefined;
      if (!force) {
        emit(blob.digest, blob.size, 0, 'checking');
        if (await blobExists(client, target, blob.digest, signal, blob.size)) {
          counts.existed++;
          notUploaded.set(blob.digest, 'existed');
          emit(blob.digest, blob.size, blob.size, 'exists');
          return;
        }
        const candidates =
          typeof options.mountFrom === 'function'
            ? options.mountFrom(blob.digest)
            : (options.mountFrom ?? []);
        // a declined mount's session that is not used: deleted (also when the push is cancelled)
        const letGo = (unused: UploadSession) =>
          cancelUpload(client, target, unused.location, AbortSignal.timeout(abandonMs));
        for (const from of candidates.slice(0, maxMountTries)) {
          if (from === target.repository) continue;
          const mounted = await mountBlob(client, target, blob.digest, from, signal).catch(
            async (err: unknown) => {
              if (!signal.aborted) return undefined; // no access to `from`, or no mount support: upload instead
              if (session) await letGo(session);
              throw err;
            },
          );
          if (mounted?.mounted) {
            if (session) await letGo(session);
            counts.mounted++;
            notUploaded.set(blob.digest, 'mounted');
            emit(blob.digest, blob.size, blob.size, 'mounted');
            return;
          }
          if (mounted) {
            // declined (202): the next source may hold it; the session opened by the last one uploads
            if (session) await letGo(session);
            session = mounted.session;
          }
        }
      }
      let before = 0;
      const fitting = bodyLimitSeen;
      const stats = await uploadBlob(client, target, source, {
        signal,
        // after a 413, the chunk size that passed serves every later blob, in chunks or whole
        chunkSize: fitting ?? chunkSize,
        multipartThreshold: Math.min(multipartThreshold, fitting ?? Infinity),
        session,
        onProgress: (done) => {
          // uploadBlob reports the most the registry has held: resent bytes do not count again
          if (done <= before) return;
          uploadedBytes += done - before;
          before = done;
          emit(blob.digest, blob.size, done, 'uploading');
        },
      });
      if (stats.fittingChunk !== undefined) {
        if (bodyLimitSeen === undefined)
          options.onNote?.(
            `cog: ${target.registry} refused a request as too large (HTTP 413, a body limit in front of it); blobs go up in chunks of ${(stats.fittingChunk / 2 ** 20).toFixed(1)} MiB from now on (COG_PUSH_DEFAULT_CHUNK_SIZE sets the size)`,
          );
        bodyLimitSeen = Math.min(bodyLimitSeen ?? Infinity, stats.fittingChunk);
      }
      sent.bytesSent += stats.bytesSent;
      sent.resumes += stats.resumes;
      sent.restarts += stats.restarts;
      counts.uploaded++;
      uploadedBlobBytes += blob.size;
      emit(blob.digest, blob.size, blob.size, 'pushed');
    };

    for (const blob of blobs.values()) emit(blob.digest, blob.size, 0, 'waiting');
    await runLimited(
      [...blobs.values()].map((blob) => () => pushBlob(blob)),
      concurrency,
      controller,
    );
    const putManifests = async () => {
      // a refused child manifest must not cancel the uploads a retry makes: its own controller
      await runLimited(
        manifests.map(({ descriptor: child, bytes }) => async () => {
          await putManifest(client, target, child.digest, bytes, child.mediaType, signal);
        }),
        concurrency,
        new AbortController(),
      );
      return putManifest(
        client,
        target,
        target.tag ?? descriptor.digest,
        topBytes,
        descriptor.mediaType,
        signal,
      );
    };
    let digest: string;
    try {
      digest = await putManifests();
    } catch (err) {
      const again = [...blobs.values()].filter((b) => notUploaded.has(b.digest));
      if (signal.aborted || !isBlobUnknownError(err) || again.length === 0) throw err;
      options.onNote?.(
        `cog: the registry refused the manifest for a blob it said it had; uploading ${again.length} blob${again.length === 1 ? '' : 's'} again`,
      );
      for (const blob of again) {
        counts[notUploaded.get(blob.digest)!]--;
        notUploaded.delete(blob.digest);
      }
      await runLimited(
        again.map((blob) => () => pushBlob(blob, true)),
        concurrency,
        controller,
      );
      digest = await putManifests();
    }
    if (digest !== descriptor.digest)
      throw new CogError(`manifest ${descriptor.digest} in ${layout.root} has the content of ${digest}`, {
        hint: 'the image layout is corrupt; rebuild the image',
      });
    return {
      reference: `${formatReference({ ...target, digest: undefined })}@${digest}`,
      digest,
      mediaType: descriptor.mediaType,
      size: topBytes.length,
      blobs: counts,
      bytesUploaded: uploadedBlobBytes,
      bytesSent: sent.bytesSent,
      resumes: sent.resumes,
      restarts: sent.restarts,
      seconds: (Date.now() - started) / 1000,
    };
  } finally {
    outer?.removeEventListener('abort', onOuterAbort);
  }
}

/** Pushes the image stored under `name` (or the only one) in the layout at `dir`. */
export async function pushFromLayout(
  client: RegistryClient,
  dir: string,
  name: string | undefined,
  target: Reference,
  options: PushOptions = {},
): Promise<PushResult> {
  const layout = new OciLayout(dir);
  return pushImage(client, layout, await layout.resolve(name), target, options);
}
