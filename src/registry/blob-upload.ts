/**
 * Uploading one blob the registry does not have. Blobs up to the multipart threshold go in one PUT;
 * larger ones in PATCH chunks that stream from the source (one chunk in flight, never held in memory).
 * After a failed chunk the upload resumes from the offset the registry reports (GET on the session), and
 * only when the session is gone does it start over. A registry that refuses a chunk (400 or 416) while
 * holding the offset we sent from does not take chunked uploads: the blob then goes in one PATCH without
 * Content-Range on a new session. A request refused as too large (413: a proxy's body limit) is sent
 * again in chunks half its size. Bytes are hashed as they stream; the digest is checked before the final
 * PUT commits the blob. An upload that fails or is cancelled asks the registry to drop its session.
 */
import { type Hash, createHash } from 'node:crypto';
import { Transform, pipeline } from 'node:stream';
import type { Dispatcher } from 'undici';
import { CogError } from '../errors.js';
import {
  type BlobSource,
  type UploadSession,
  blobExists,
  cancelUpload,
  sessionAfter,
  short,
  startUpload,
  uploadStatus,
} from './blobs.js';
import { pushScopes } from './challenge.js';
import {
  chooseChunkSize,
  contentRange,
  defaultChunkSize,
  defaultMultipartThreshold,
  parseUploadedRange,
} from './chunks.js';
import type { RegistryClient } from './client.js';
import { RegistryError, headerValue } from './errors.js';
import { DamagedBlobError } from '../image/damaged-blob.js';
import type { RepositoryRef } from './reference.js';
import { delayAfter, isRetryableError, sleep, withRetry } from './retry.js';

export interface UploadStats {
  /** body bytes sent to the registry, failed tries included */
  bytesSent: number;
  /** chunk failures resumed at the registry's offset */
  resumes: number;
  /** sessions lost and started again from byte 0 */
  restarts: number;
  /** whether the registry refused chunks and the blob went in one PATCH instead */
  wholeBlobFallback: boolean;
  /** requests refused as too large (413, e.g. a proxy's body limit): sent again in smaller chunks */
  tooLarge: number;
  /** after such refusals, the chunk size that got through */
  fittingChunk?: number;
}

export interface UploadOptions {
  readonly signal?: AbortSignal | undefined;
  /** preferred bytes per PATCH (default 96 MiB); a registry's stated limits win */
  readonly chunkSize?: number;
  /** blobs up to this many bytes go in one PUT, larger ones in chunks (default 128 MiB) */
  readonly multipartThreshold?: number;
  /**
   * an upload session already open, e.g. from a mount the registry declined (202), with the chunk limits
   * its answer stated
   */
  readonly session?: UploadSession | undefined;
  /**
   * sent as `OCI-Layer-Media-Type` when the blob is committed; upstream Cog sets it for weight layers only
   * (so r8.im skips its image-layer size limit for them)
   */
  readonly layerMediaType?: string | undefined;
  /**
   * the most bytes the registry has held so far: never goes back, so bytes sent again after a resume or
   * restart are not reported until they pass the earlier mark
   */
  readonly onProgress?: ((done: number, total: number) => void) | undefined;
}

/** How long a DELETE of an abandoned upload session may take (the registry purges old sessions anyway). */
const abandonTimeoutMs = 5_000;

/** The smallest chunk a 413 (request too large) halves the chunk size down to. */
const smallestChunk = 1024 * 1024;

/** The statuses that accept a chunk or a whole-blob PATCH. */
const accepted = (status: number) => status === 202 || status === 204 || status === 201;

/** A request refused for the size of its body (413), by the registry or a proxy in front of it. */
const isTooLarge = (err: unknown) => err instanceof RegistryError && err.status === 413;

/**
 * Uploads a blob the registry does not have yet: POST (or the given session), then one PUT for blobs up
 * to the multipart threshold, else PATCH chunks with resume (or one whole-blob PATCH when the registry
 * refuses chunks), then PUT ?digest=. Resolves with what it sent.
 */
export async function uploadBlob(
  client: RegistryClient,
  repo: RepositoryRef,
  source: BlobSource,
  options: UploadOptions = {},
): Promise<UploadStats> {
  const opened = options.session ?? (await startUpload(client, repo, options.signal));
  // absolute from here on: every later Location resolves against the URL it answers
  const session = { ...opened, location: client.resolveUrl(repo.registry, opened.location) };
  const upload = new BlobUpload(client, repo, source, options, session);
  try {
    return await upload.run();
  } catch (err) {
    // cancelled or failed: the registry need not keep a half-written upload until its own purge
    await upload.abandon();
    throw err;
  }
}

/** One upload's state: the current session, what was sent, and the hash of the bytes in order. */
class BlobUpload {
  readonly stats: UploadStats = {
    bytesSent: 0,
    resumes: 0,
    restarts: 0,
    wholeBlobFallback: false,
    tooLarge: 0,
  };
  private readonly hasher = new BlobHasher();
  private readonly what: string;
  private readonly scopes: readonly string[];
  private readonly signal: AbortSignal | undefined;
  private readonly commitHeaders: Record<string, string>;
  /** the most bytes reported to onProgress */
  private reported = 0;

  constructor(
    private readonly client: RegistryClient,
    private readonly repo: RepositoryRef,
    private readonly source: BlobSource,
    private readonly options: UploadOptions,
    private session: UploadSession,
  ) {
    this.what = `uploading blob ${short(source.digest)}`;
    this.scopes = pushScopes(repo.repository);
    this.signal = options.signal;
    this.commitHeaders = options.layerMediaType ? { 'oci-layer-media-type': options.layerMediaType } : {};
  }

  async run(): Promise<UploadStats> {
    const preferred = this.options.chunkSize ?? defaultChunkSize;
    let chunked = this.source.size > (this.options.multipartThreshold ?? defaultMultipartThreshold);
    if (!chunked) {
      try {
        await this.putInOne();
      } catch (err) {
        // a body limit in front of the registry: the same session takes the blob in chunks under it
        if (!isTooLarge(err) || this.source.size <= smallestChunk) throw err;
        this.stats.tooLarge++;
        chunked = true;
      }
    }
    if (chunked) {
      const fitting = this.stats.tooLarge > 0 ? Math.ceil(this.source.size / 2) : preferred;
      await this.patchInChunks(Math.min(preferred, fitting));
      await this.commit();
    }
    this.progress(this.source.size);
    return this.stats;
  }

  /** DELETE on the current session, whatever state the upload is in; never throws. */
  abandon(): Promise<void> {
    return cancelUpload(this.client, this.repo, this.session.location, AbortSignal.timeout(abandonTimeoutMs));
  }

  private progress(done: number): void {
    const at = Math.min(done, this.source.size);
    if (at <= this.reported) return;
    this.reported = at;
    this.options.onProgress?.(at, this.source.size);
  }

  /** Sends `start..end` of the blob (streamed from the source); resolves with the response. */
  private async send(
    method: 'PATCH' | 'PUT',
    url: string,
    start: number,
    end: number,
    extra: Record<string, string>,
  ): Promise<Dispatcher.ResponseData> {
    let sent = 0;
    const expected = end - start + 1;
    /** why the source could not give the bytes (the request then fails for a local reason) */
    let unreadable: unknown;
    try {
      return await this.client.send({
        registry: this.repo.registry,
        method,
        url,
        headers: {
          'content-type': 'application/octet-stream',
          'content-length': String(expected),
          ...extra,
        },
        // pipeline, not pipe: a failed request must close the file too
        // a body made again (a replay after a 401) counts from its start again
        body: () => {
          sent = 0;
          const from = this.source.open(start, end);
          from.once('error', (err) => {
            if (isReadFailure(err)) unreadable = err;
          });
          return pipeline(
            from,
            this.hasher.through(
              start,
              (n) => {
                sent += n;
                this.stats.bytesSent += n;
                this.progress(start + sent);
              },
              () => {
                if (sent < expected) unreadable = new Error(`it ended after ${sent} of ${expected} bytes`);
              },
            ),
            () => undefined,
          );
        },
        scopes: this.scopes,
        signal: this.signal,
      });
    } catch (err) {
      if (unreadable !== undefined) throw localReadError(this.source, unreadable);
      throw err;
    }
  }

  /** PUT ?digest= on the current session, with `start..end` of the blob as its body, or none. */
  private async putWithDigest(range: readonly [number, number] | undefined): Promise<void> {
    const url = withDigest(
      this.session.location,
      this.client.baseUrl(this.repo.registry),
      this.source.digest,
    );
    const res = range
      ? await this.send('PUT', url, range[0], range[1], this.commitHeaders)
      : await this.client.send({
          registry: this.repo.registry,
          method: 'PUT',
          url,
          headers: {
            'content-type': 'application/octet-stream',
            'content-length': '0',
            ...this.commitHeaders,
          },
          scopes: this.scopes,
          signal: this.signal,
        });
    if (res.statusCode !== 201 && res.statusCode !== 204)
      throw await this.client.repositoryError(res, this.repo, this.what, 'PUT', url);
    await res.body.dump();
  }

  /** The whole blob in one PUT with its digest; a retry first asks whether an earlier try landed. */
  private putInOne(): Promise<void> {
    const { client, repo, source, signal } = this;
    return withRetry(
      async (attempt) => {
        if (attempt > 1) {
          if (await blobExists(client, repo, source.digest, signal, source.size)) return;
          this.session = await startUpload(client, repo, signal);
        }
        try {
          await this.putWithDigest(source.size === 0 ? undefined : [0, source.size - 1]);
        } catch (err) {
          // the registry found other bytes than the digest says: if they are what the store holds, the
          // store's copy is damaged, and no retry or rebuild mends it
          if (
            err instanceof RegistryError &&
            err.codes.includes('DIGEST_INVALID') &&
            this.hasher.hashed === source.size
          ) {
            const actual = this.hasher.digest();
            if (actual !== source.digest) throw damagedBlobError(source.digest, actual, err);
          }
          throw err;
        }
      },
      { policy: client.retry, signal },
    );
  }

  /** The empty PUT that commits a chunked upload, once the bytes the registry holds hash to the digest. */
  private async commit(): Promise<void> {
    const { client, repo, source, signal } = this;
    await this.hasher.catchUp(source, source.size);
    const actual = this.hasher.digest();
    if (actual !== source.digest) throw damagedBlobError(source.digest, actual);
    await withRetry(
      async (attempt) => {
        if (attempt > 1 && (await blobExists(client, repo, source.digest, signal, source.size))) return;
        await this.putWithDigest(undefined);
      },
      { policy: client.retry, signal },
    );
  }

  /** A new session and ONE PATCH with the whole blob and no Content-Range, for registries without chunks. */
  private patchWhole(): Promise<void> {
    const { client, repo, source, signal } = this;
    return withRetry(
      async () => {
        const fresh = await startUpload(client, repo, signal);
        this.session = fresh;
        const res = await this.send('PATCH', fresh.location, 0, source.size - 1, {});
        if (!accepted(res.statusCode))
          throw await client.repositoryError(res, repo, this.what, 'PATCH', fresh.location);
        await res.body.dump();
        this.session = sessionAfter(res, fresh.location, fresh) ?? fresh;
      },
      { policy: client.retry, signal },
    );
  }

  /**
   * PATCH chunks of about `preferred` bytes in order. A failed chunk resumes at the offset the registry
   * reports, or starts over on a new session when the registry lost the session (404 on the PATCH or on
   * asking its status, after it took chunks of it); one refused as too large (413) is sent again in
   * halves; a refused one (400/416) at the registry's own offset means no chunked uploads there, and the
   * blob goes in one PATCH instead.
   */
  private async patchInChunks(preferred: number): Promise<void> {
    const { client, repo, source, signal } = this;
    let chunk = chooseChunkSize(preferred, { min: this.session.minChunk, max: this.session.maxChunk });
    let offset = 0;
    let failures = 0;
    /** chunks the current session took: a registry that took one takes chunks */
    let taken = 0;
    while (offset < source.size) {
      const end = Math.min(offset + chunk, source.size) - 1;
      let error: unknown;
      let refused = false;
      let gone = false;
      try {
        const res = await this.send('PATCH', this.session.location, offset, end, {
          'content-range': contentRange(offset, end),
        });
        if (accepted(res.statusCode)) {
          await res.body.dump();
          this.session = sessionAfter(res, this.session.location, this.session) ?? this.session;
          taken++;
          const held = parseUploadedRange(headerValue(res.headers, 'range'));
          offset = held !== undefined && held > offset && held <= end + 1 ? held : end + 1;
          failures = 0;
          this.progress(offset);
          continue;
        }
        const halved = Math.max(smallestChunk, Math.ceil(chunk / 2), this.session.minChunk ?? 0);
        if (res.statusCode === 413 && halved < chunk) {
          // a body limit in front of the registry, which saw nothing of this chunk: the same offset, halved
          await res.body.dump();
          chunk = halved;
          this.stats.tooLarge++;
          continue;
        }
        // 400/416: either our offset is not the registry's, or it takes no chunks; the session tells which
        refused = res.statusCode === 416 || res.statusCode === 400;
        // 404 (BLOB_UPLOAD_UNKNOWN): the session expired, or the registry lost it
        gone = res.statusCode === 404;
        error = await client.repositoryError(res, repo, this.what, 'PATCH', this.session.location);
      } catch (err) {
        error = err;
      }
      if (signal?.aborted) throw signal.reason ?? error;
      failures++;
      if (refused) {
        const status = await uploadStatus(client, repo, this.session.location, signal).catch(
          (err: unknown) => {
            if (signal?.aborted) throw err;
            return 'unknown' as const; // no status either: treat as a registry without chunked uploads
          },
        );
        if (status === undefined && taken > 0) {
          gone = true; // it took chunks of this session before, and has lost it since
        } else if (
          status !== 'unknown' &&
          status &&
          status.offset !== offset &&
          failures < client.retry.attempts
        ) {
          offset = this.resumeFrom(status);
          continue;
        } else {
          // the registry holds what we sent from, yet refuses the chunk: upload the blob in one PATCH
          await cancelUpload(client, repo, this.session.location, signal);
          await this.patchWhole();
          this.stats.wholeBlobFallback = true;
          return;
        }
      }
      if (gone && failures < client.retry.attempts) {
        await this.startOver(error);
        offset = 0;
        taken = 0;
        continue;
      }
      if (!isRetryableError(error) || failures >= client.retry.attempts) throw error;
      await sleep(delayAfter(error, failures, client.retry), signal);
      const status = await uploadStatus(client, repo, this.session.location, signal);
      if (status) {
        offset = this.resumeFrom(status);
      } else {
        await this.startOver(error);
        offset = 0;
        taken = 0;
      }
      this.progress(offset);
    }
    if (this.stats.tooLarge > 0) this.stats.fittingChunk = chunk;
  }

  /** Goes on with the session as its status reports it; resolves with the offset to send from. */
  private resumeFrom(status: { offset: number; location: string | undefined }): number {
    this.session = { ...this.session, location: status.location ?? this.session.location };
    this.stats.resumes++;
    return status.offset;
  }

  /**
   * A new session for a lost one: the upload starts over from byte 0. A registry that loses every session
   * it is given (after a chunk or two: the count of failures in a row starts again with each chunk it
   * takes) gets as many sessions as the retry policy has attempts, and then the upload fails with `error`.
   */
  private async startOver(error: unknown): Promise<void> {
    if (this.stats.restarts >= this.client.retry.attempts - 1)
      throw new CogError(
        `${this.repo.registry} lost the upload session of blob ${short(this.source.digest)} ${this.stats.restarts + 1} times; the upload was given up`,
        {
          hint: 'the registry forgets uploads mid-way (sessions expiring fast, or replicas behind a load balancer without shared upload state); try again later, or ask its operator',
          cause: error,
        },
      );
    this.session = await startUpload(this.client, this.repo, this.signal);
    this.stats.restarts++;
  }
}

/**
 * Hashes the bytes of the blob in order, whatever order the chunks are (re)sent in: bytes below
 * `hashed` were seen already, since a position always holds the same byte.
 */
class BlobHasher {
  private readonly hash: Hash = createHash('sha256');
  hashed = 0;

  /** A pass-through for a stream that starts at `start`; counts every byte through `onBytes`. */
  through(start: number, onBytes: (n: number) => void, onEnd: () => void): Transform {
    let at = start;
    return new Transform({
      flush: (callback) => {
        onEnd();
        callback();
      },
      transform: (chunk: Buffer, _encoding, callback) => {
        const end = at + chunk.length;
        if (end > this.hashed && at <= this.hashed) {
          this.hash.update(chunk.subarray(this.hashed - at));
          this.hashed = end;
        }
        at = end;
        onBytes(chunk.length);
        callback(null, chunk);
      },
    });
  }

  /** Hashes bytes `hashed..to-1` from the source (when the registry holds bytes we did not stream). */
  async catchUp(source: BlobSource, to: number): Promise<void> {
    if (to <= this.hashed) return;
    try {
      for await (const chunk of source.open(this.hashed, to - 1) as AsyncIterable<Buffer>) {
        this.hash.update(chunk);
        this.hashed += chunk.length;
      }
    } catch (err) {
      throw isReadFailure(err) ? localReadError(source, err) : err;
    }
  }

  digest(): string {
    return `sha256:${this.hash.digest('hex')}`;
  }
}

/**
 * A file system error of the source's (a file that is gone or unreadable: these carry the path), not a
 * network error passed back to the source when the request fails.
 */
function isReadFailure(err: unknown): boolean {
  return typeof (err as { path?: unknown } | null)?.path === 'string';
}

/** The blob's bytes hash to another digest than its name: the local copy is damaged (or changed). */
function damagedBlobError(digest: string, actual: string, cause?: unknown): CogError {
  return new DamagedBlobError(
    digest,
    `blob ${digest} in the local image store has the content of ${actual}: it is damaged`,
    cause === undefined ? {} : { cause },
  );
}

/** Reading the blob to upload it failed: a local problem, which retrying the request does not mend. */
function localReadError(source: BlobSource, cause: unknown): CogError {
  const said = cause instanceof Error ? cause.message : String(cause);
  return new CogError(`reading blob ${short(source.digest)} to upload it failed: ${said}`, {
    hint: 'the local image store changed during the push (an image removed or pruned meanwhile?); build the image again, then push',
    cause,
  });
}

/** Appends `digest=` to an upload URL, keeping its query (distribution keeps state there). */
function withDigest(location: string, base: string, digest: string): string {
  const url = new URL(location, base);
  url.searchParams.set('digest', digest);
  return url.toString();
}
