/**
 * Blob operations: exists (HEAD), cross-repository mount, and upload. Blobs up to the multipart threshold
 * go in one PUT; larger ones in PATCH chunks that stream from the source (one chunk in flight, never held
 * in memory). After a failed chunk the upload resumes from the offset the registry reports (GET on the
 * session), and only when the session is gone does it start over. A registry that refuses a chunk (400 or
 * 416) while holding the offset we sent from does not take chunked uploads: the blob then goes in one
 * PATCH without Content-Range on a new session. Bytes are hashed as they stream; the digest is checked
 * before the final PUT commits the blob.
 */
import { type Hash, createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { Transform, type Readable, pipeline } from 'node:stream';
import type { Dispatcher } from 'undici';
import { CogError } from '../errors.js';
import { pullScopes, pushScopes } from './challenge.js';
import {
  chooseChunkSize,
  contentRange,
  defaultChunkSize,
  defaultMultipartThreshold,
  parseLength,
  parseUploadedRange,
} from './chunks.js';
import type { RegistryClient } from './client.js';
import { headerValue } from './errors.js';
import type { RepositoryRef } from './reference.js';
import { delayAfter, isRetryableError, sleep, withRetry } from './retry.js';

export interface BlobSource {
  readonly digest: string;
  readonly size: number;
  /** a stream of bytes start..end (inclusive) */
  open(start: number, end: number): Readable;
}

/** A blob in a file; opened afresh for every chunk and every retry. */
export function fileBlobSource(path: string, digest: string, size: number): BlobSource {
  return {
    digest,
    size,
    open: (start, end) => createReadStream(path, { start, end, highWaterMark: 1 << 20 }),
  };
}

export interface UploadStats {
  /** body bytes sent to the registry, failed tries included */
  bytesSent: number;
  /** chunk failures resumed at the registry's offset */
  resumes: number;
  /** sessions lost and started again from byte 0 */
  restarts: number;
  /** whether the registry refused chunks and the blob went in one PATCH instead */
  wholeBlobFallback: boolean;
}

export interface UploadOptions {
  readonly signal?: AbortSignal | undefined;
  /** preferred bytes per PATCH (default 96 MiB); registry limits win */
  readonly chunkSize?: number;
  /** blobs up to this many bytes go in one PUT, larger ones in chunks (default 128 MiB) */
  readonly multipartThreshold?: number;
  /** an upload session already open, e.g. from a mount the registry declined (202) */
  readonly location?: string | undefined;
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

const short = (digest: string) => digest.replace(/^sha256:/, '').slice(0, 12);

/** HEAD /v2/<repo>/blobs/<digest>: true when the registry has it. */
export async function blobExists(
  client: RegistryClient,
  repo: RepositoryRef,
  digest: string,
  signal?: AbortSignal,
): Promise<boolean> {
  const url = `/v2/${repo.repository}/blobs/${digest}`;
  return withRetry(
    async () => {
      const res = await client.send({
        registry: repo.registry,
        method: 'HEAD',
        url,
        scopes: pullScopes(repo.repository),
        signal,
      });
      await res.body.dump();
      if (res.statusCode === 200) return true;
      if (res.statusCode === 404) return false;
      throw await client.repositoryError(res, repo, `checking blob ${short(digest)}`, 'HEAD', url);
    },
    { policy: client.retry, signal },
  );
}

export interface UploadSession {
  readonly location: string;
  readonly minChunk: number | undefined;
  readonly maxChunk: number | undefined;
}

function sessionFrom(res: Dispatcher.ResponseData, fallback?: string): UploadSession | undefined {
  const location = headerValue(res.headers, 'location') ?? fallback;
  if (!location) return undefined;
  return {
    location,
    minChunk: parseLength(headerValue(res.headers, 'oci-chunk-min-length')),
    maxChunk: parseLength(headerValue(res.headers, 'oci-chunk-max-length')),
  };
}

/** POST /v2/<repo>/blobs/uploads/: a new upload session. */
export async function startUpload(
  client: RegistryClient,
  repo: RepositoryRef,
  signal?: AbortSignal,
): Promise<UploadSession> {
  const url = `/v2/${repo.repository}/blobs/uploads/`;
  return withRetry(
    async () => {
      const res = await client.send({
        registry: repo.registry,
        method: 'POST',
        url,
        headers: { 'content-length': '0' },
        scopes: pushScopes(repo.repository),
        signal,
      });
      if (res.statusCode !== 202)
        throw await client.repositoryError(res, repo, 'starting a blob upload', 'POST', url);
      await res.body.dump();
      const session = sessionFrom(res);
      if (!session)
        throw new CogError(`${repo.registry} opened an upload session without a Location`, {
          hint: 'the registry does not follow the distribution spec; contact its operator',
        });
      return session;
    },
    { policy: client.retry, signal },
  );
}

export type MountResult =
  { readonly mounted: true } | { readonly mounted: false; readonly session: UploadSession };

/**
 * Asks the registry to link a blob from another repository of the same registry. 201: done. 202: the
 * registry declined but opened an upload session, which the caller uses to upload.
 */
export async function mountBlob(
  client: RegistryClient,
  repo: RepositoryRef,
  digest: string,
  from: string,
  signal?: AbortSignal,
): Promise<MountResult> {
  const url = `/v2/${repo.repository}/blobs/uploads/?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(from)}`;
  return withRetry(
    async () => {
      const res = await client.send({
        registry: repo.registry,
        method: 'POST',
        url,
        headers: { 'content-length': '0' },
        scopes: pushScopes(repo.repository, from),
        signal,
      });
      if (res.statusCode === 201) {
        await res.body.dump();
        return { mounted: true };
      }
      if (res.statusCode === 202) {
        await res.body.dump();
        const session = sessionFrom(res);
        if (session) return { mounted: false, session };
      }
      throw await client.repositoryError(
        res,
        repo,
        `mounting blob ${short(digest)} from ${from}`,
        'POST',
        url,
      );
    },
    { policy: client.retry, signal },
  );
}

/**
 * Hashes the bytes of the blob in order, whatever order the chunks are (re)sent in: bytes below
 * `hashed` were seen already, since a position always holds the same byte.
 */
class BlobHasher {
  private readonly hash: Hash = createHash('sha256');
  hashed = 0;

  /** A pass-through for a stream that starts at `start`; counts every byte through `onBytes`. */
  through(start: number, onBytes: (n: number) => void): Transform {
    let at = start;
    return new Transform({
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
    for await (const chunk of source.open(this.hashed, to - 1) as AsyncIterable<Buffer>) {
      this.hash.update(chunk);
      this.hashed += chunk.length;
    }
  }

  digest(): string {
    return `sha256:${this.hash.digest('hex')}`;
  }
}

/** Appends `digest=` to an upload URL, keeping its query (distribution keeps state there). */
function withDigest(location: string, base: string, digest: string): string {
  const url = new URL(location, base);
  url.searchParams.set('digest', digest);
  return url.toString();
}

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
  const { signal } = options;
  const stats: UploadStats = { bytesSent: 0, resumes: 0, restarts: 0, wholeBlobFallback: false };
  const what = `uploading blob ${short(source.digest)}`;
  let reported = 0;
  const progress = (done: number) => {
    const at = Math.min(done, source.size);
    if (at <= reported) return;
    reported = at;
    options.onProgress?.(at, source.size);
  };
  let session: UploadSession =
    options.location !== undefined
      ? { location: options.location, minChunk: undefined, maxChunk: undefined }
      : await startUpload(client, repo, signal);
  const chunk = chooseChunkSize(options.chunkSize ?? defaultChunkSize, {
    min: session.minChunk,
    max: session.maxChunk,
  });
  const hasher = new BlobHasher();
  const commitHeaders: Record<string, string> = options.layerMediaType
    ? { 'oci-layer-media-type': options.layerMediaType }
    : {};
  const scopes = pushScopes(repo.repository);
  let committed = false;
  try {
    await upload();
    committed = true;
    return stats;
  } finally {
    // cancelled or failed: the registry need not keep a half-written upload until its own purge
    if (!committed) await cancelUpload(client, repo, session.location, AbortSignal.timeout(abandonTimeoutMs));
  }

  async function upload(): Promise<void> {
    /** Sends `start..end` of the blob (streamed from the source); resolves with the response. */
    const send = (
      method: 'PATCH' | 'PUT',
      url: string,
      start: number,
      end: number,
      extra: Record<string, string>,
    ) => {
      let sent = 0;
      return client.send({
        registry: repo.registry,
        method,
        url,
        headers: {
          'content-type': 'application/octet-stream',
          'content-length': String(end - start + 1),
          ...extra,
        },
        // pipeline, not pipe: a failed request must close the file too
        body: () =>
          pipeline(
            source.open(start, end),
            hasher.through(start, (n) => {
              sent += n;
              stats.bytesSent += n;
              progress(start + sent);
            }),
            () => undefined,
          ),
        scopes,
        signal,
      });
    };

    if (source.size <= (options.multipartThreshold ?? defaultMultipartThreshold)) {
      // one request: PUT with the whole body and the digest
      await withRetry(
        async (attempt) => {
          if (attempt > 1) {
            if (await blobExists(client, repo, source.digest, signal)) return;
            session = await startUpload(client, repo, signal);
          }
          const url = withDigest(session.location, client.baseUrl(repo.registry), source.digest);
          const res =
            source.size === 0
              ? await client.send({
                  registry: repo.registry,
                  method: 'PUT',
                  url,
                  headers: {
                    'content-type': 'application/octet-stream',
                    'content-length': '0',
                    ...commitHeaders,
                  },
                  scopes,
                  signal,
                })
              : await send('PUT', url, 0, source.size - 1, commitHeaders);
          if (res.statusCode !== 201 && res.statusCode !== 204)
            throw await client.repositoryError(res, repo, what, 'PUT', url);
          await res.body.dump();
        },
        { policy: client.retry, signal },
      );
      progress(source.size);
      return;
    }

    /** A new session and ONE PATCH with the whole blob and no Content-Range, for registries without chunks. */
    const uploadWhole = () =>
      withRetry(
        async () => {
          const fresh = await startUpload(client, repo, signal);
          const res = await send('PATCH', fresh.location, 0, source.size - 1, {});
          if (res.statusCode !== 202 && res.statusCode !== 204 && res.statusCode !== 201)
            throw await client.repositoryError(res, repo, what, 'PATCH', fresh.location);
          await res.body.dump();
          session = sessionFrom(res, fresh.location) ?? fresh;
        },
        { policy: client.retry, signal },
      );

    let offset = 0;
    let failures = 0;
    while (offset < source.size) {
      const end = Math.min(offset + chunk, source.size) - 1;
      let error: unknown;
      let refused = false;
      try {
        const res = await send('PATCH', session.location, offset, end, {
          'content-range': contentRange(offset, end),
        });
        if (res.statusCode === 202 || res.statusCode === 204 || res.statusCode === 201) {
          await res.body.dump();
          session = sessionFrom(res, session.location) ?? session;
          const held = parseUploadedRange(headerValue(res.headers, 'range'));
          offset = held !== undefined && held > offset && held <= end + 1 ? held : end + 1;
          failures = 0;
          progress(offset);
          continue;
        }
        // 400/416: either our offset is not the registry's, or it takes no chunks; the session tells which
        refused = res.statusCode === 416 || res.statusCode === 400;
        error = await client.repositoryError(res, repo, what, 'PATCH', session.location);
      } catch (err) {
        error = err;
      }
      if (signal?.aborted) throw signal.reason ?? error;
      failures++;
      if (refused) {
        const status = await uploadStatus(client, repo, session.location, signal).catch((err: unknown) => {
          if (signal?.aborted) throw err;
          return undefined; // no status either: treat as a registry without chunked uploads
        });
        if (status && status.offset !== offset && failures < client.retry.attempts) {
          session = { ...session, location: status.location ?? session.location };
          offset = status.offset;
          stats.resumes++;
          continue;
        }
        // the registry holds what we sent from, yet refuses the chunk: upload the blob in one PATCH
        await cancelUpload(client, repo, session.location, signal);
        await uploadWhole();
        stats.wholeBlobFallback = true;
        break;
      }
      if (!isRetryableError(error) || failures >= client.retry.attempts) throw error;
      await sleep(delayAfter(error, failures, client.retry), signal);
      const status = await uploadStatus(client, repo, session.location, signal);
      if (status) {
        session = { ...session, location: status.location ?? session.location };
        offset = status.offset;
        stats.resumes++;
      } else {
        session = await startUpload(client, repo, signal);
        offset = 0;
        stats.restarts++;
      }
      progress(offset);
    }

    await hasher.catchUp(source, source.size);
    const actual = hasher.digest();
    if (actual !== source.digest) {
      throw new CogError(`blob ${source.digest} has the content of ${actual}`, {
        hint: 'the file changed while it was being pushed, or the image store is corrupt; rebuild the image',
      });
    }
    await withRetry(
      async (attempt) => {
        if (attempt > 1 && (await blobExists(client, repo, source.digest, signal))) return;
        const url = withDigest(session.location, client.baseUrl(repo.registry), source.digest);
        const res = await client.send({
          registry: repo.registry,
          method: 'PUT',
          url,
          headers: { 'content-type': 'application/octet-stream', 'content-length': '0', ...commitHeaders },
          scopes,
          signal,
        });
        if (res.statusCode !== 201 && res.statusCode !== 204)
          throw await client.repositoryError(res, repo, what, 'PUT', url);
        await res.body.dump();
      },
      { policy: client.retry, signal },
    );
  }
}

/** GET on an upload session: how many bytes the registry holds. Undefined when the session is gone. */
export async function uploadStatus(
  client: RegistryClient,
  repo: RepositoryRef,
  location: string,
  signal?: AbortSignal,
): Promise<{ offset: number; location: string | undefined } | undefined> {
  return withRetry(
    async () => {
      const res = await client.send({
        registry: repo.registry,
        method: 'GET',
        url: location,
        scopes: pushScopes(repo.repository),
        signal,
      });
      if (res.statusCode === 204 || res.statusCode === 200) {
        await res.body.dump();
        return {
          offset: parseUploadedRange(headerValue(res.headers, 'range')) ?? 0,
          location: headerValue(res.headers, 'location'),
        };
      }
      if (res.statusCode === 404 || res.statusCode === 400) {
        await res.body.dump();
        return undefined;
      }
      throw await client.repositoryError(res, repo, 'checking an upload session', 'GET', location);
    },
    { policy: client.retry, signal },
  );
}

/** DELETE on an upload session, best effort. */
export async function cancelUpload(
  client: RegistryClient,
  repo: RepositoryRef,
  location: string,
  signal?: AbortSignal,
): Promise<void> {
  try {
    const res = await client.send({
      registry: repo.registry,
      method: 'DELETE',
      url: location,
      scopes: pushScopes(repo.repository),
      signal,
    });
    await res.body.dump();
  } catch {
    // the registry drops abandoned sessions on its own
  }
}

/** GET a blob into memory (configs, manifests' siblings); follows redirects without credentials. */
export async function fetchBlob(
  client: RegistryClient,
  repo: RepositoryRef,
  digest: string,
  options: { readonly signal?: AbortSignal | undefined; readonly maxBytes?: number } = {},
): Promise<Buffer> {
  const { signal } = options;
  const maxBytes = options.maxBytes ?? 16 * 1024 * 1024;
  return withRetry(
    async () => {
      let url = `/v2/${repo.repository}/blobs/${digest}`;
      let res = await client.send({
        registry: repo.registry,
        method: 'GET',
        url,
        scopes: pullScopes(repo.repository),
        signal,
      });
      for (let hops = 0; [301, 302, 303, 307, 308].includes(res.statusCode) && hops < 5; hops++) {
        const next = headerValue(res.headers, 'location');
        await res.body.dump();
        if (!next) break;
        url = new URL(next, client.resolveUrl(repo.registry, url)).toString();
        // another origin (a CDN): client.send only adds credentials for the registry's own origin
        res = await client.send({ registry: repo.registry, method: 'GET', url, scopes: [], signal });
      }
      if (res.statusCode !== 200)
        throw await client.repositoryError(res, repo, `fetching blob ${short(digest)}`, 'GET', url);
      const chunks: Buffer[] = [];
      let size = 0;
      const hash = createHash('sha256');
      for await (const part of res.body as AsyncIterable<Buffer>) {
        size += part.length;
        if (size > maxBytes) {
          res.body.destroy();
          throw new CogError(`blob ${short(digest)} is larger than ${maxBytes} bytes`, {
            hint: 'this blob is not a config or manifest; the image is malformed',
          });
        }
        hash.update(part);
        chunks.push(part);
      }
      const actual = `sha256:${hash.digest('hex')}`;
      if (digest.startsWith('sha256:') && actual !== digest)
        throw new CogError(`blob ${digest} from ${repo.registry} arrived with content ${actual}`, {
          hint: 'the registry or a proxy altered the data; try again',
        });
      return Buffer.concat(chunks);
    },
    { policy: client.retry, signal },
  );
}
