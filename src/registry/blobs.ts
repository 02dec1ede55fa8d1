/**
 * Blob operations against a registry: exists (HEAD), upload sessions (start, status, cancel),
 * cross-repository mount, and reading small blobs. The upload itself is in blob-upload.ts.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { CogError } from '../errors.js';
import { pullScopes, pushScopes } from './challenge.js';
import { parseLength, parseUploadedRange } from './chunks.js';
import type { RegistryClient } from './client.js';
import { headerValue } from './errors.js';
import type { RepositoryRef } from './reference.js';
import { withRetry } from './retry.js';

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

const redirects: readonly number[] = [301, 302, 303, 307, 308];

export const short = (digest: string) => digest.replace(/^sha256:/, '').slice(0, 12);

/**
 * HEAD /v2/<repo>/blobs/<digest>: true when the registry has it. A registry whose blobs live in object
 * storage (S3, GCS, Azure) answers a HEAD for a blob it holds with a redirect to the storage, as it
 * does a GET: the redirect says it found the blob, so it is not followed.
 */
export async function blobExists(
  client: RegistryClient,
  repo: RepositoryRef,
  digest: string,
  signal?: AbortSignal,
  size?: number,
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
      if (res.statusCode === 200) {
        // a registry states the blob's digest or length; another digest or length (a web server
        // answering every path) is not this blob, which then goes up (and such a server refuses it)
        const said = headerValue(res.headers, 'docker-content-digest');
        const length = headerValue(res.headers, 'content-length');
        if (said !== undefined && said !== digest) return false;
        if (said === undefined && size !== undefined && length !== undefined && Number(length) !== size)
          return false;
        return true;
      }
      if (res.statusCode === 404) return false;
      if (redirects.includes(res.statusCode) && headerValue(res.headers, 'location')) return true;
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

/**
 * The upload session a response leaves: its Location resolved against the URL of the request it answers
 * (a relative Location is relative to that URL, which for an upload on another host is not the
 * registry's root), else `previous`'s; the chunk limits the response states, else `previous`'s.
 * Undefined when there is no location at all.
 */
export function sessionAfter(
  res: Dispatcher.ResponseData,
  requestUrl: string,
  previous?: UploadSession,
): UploadSession | undefined {
  const header = headerValue(res.headers, 'location');
  const location = header !== undefined ? new URL(header, requestUrl).toString() : previous?.location;
  if (!location) return undefined;
  return {
    location,
    minChunk: parseLength(headerValue(res.headers, 'oci-chunk-min-length')) ?? previous?.minChunk,
    maxChunk: parseLength(headerValue(res.headers, 'oci-chunk-max-length')) ?? previous?.maxChunk,
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
      if (res.statusCode >= 200 && res.statusCode < 300 && res.statusCode !== 202) {
        await res.body.dump();
        throw new CogError(
          `${repo.registry} answered the start of a blob upload with HTTP ${res.statusCode}, not 202 and an upload session: it does not look like a registry`,
          { hint: `check the registry address: ${repo.registry} should serve the OCI distribution API` },
        );
      }
      if (res.statusCode !== 202)
        throw await client.repositoryError(res, repo, 'starting a blob upload', 'POST', url);
      await res.body.dump();
      const session = sessionAfter(res, client.resolveUrl(repo.registry, url));
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
        const session = sessionAfter(res, client.resolveUrl(repo.registry, url));
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
        const next = headerValue(res.headers, 'location');
        return {
          offset: parseUploadedRange(headerValue(res.headers, 'range')) ?? 0,
          location:
            next === undefined
              ? undefined
              : new URL(next, client.resolveUrl(repo.registry, location)).toString(),
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
      for (let hops = 0; redirects.includes(res.statusCode) && hops < 5; hops++) {
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
