/** Manifests and indexes: GET, HEAD and PUT by tag or digest, in OCI and Docker media types. */
import { createHash } from 'node:crypto';
import { CogError } from '../errors.js';
import { pullScopes, pushScopes } from './challenge.js';
import type { RegistryClient } from './client.js';
import { headerValue } from './errors.js';
import type { RepositoryRef } from './reference.js';
import { withRetry } from './retry.js';

export const mediaTypes = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
} as const;

export const manifestAccept = [
  mediaTypes.ociManifest,
  mediaTypes.ociIndex,
  mediaTypes.dockerManifest,
  mediaTypes.dockerManifestList,
].join(', ');

const maxManifestBytes = 4 * 1024 * 1024;

export function isIndexMediaType(mediaType: string | undefined): boolean {
  return mediaType === mediaTypes.ociIndex || mediaType === mediaTypes.dockerManifestList;
}

export function sha256Digest(bytes: Buffer): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

export interface FetchedManifest {
  readonly mediaType: string;
  readonly digest: string;
  readonly bytes: Buffer;
}

export interface ManifestDescriptor {
  readonly mediaType: string;
  readonly digest: string;
  readonly size: number;
}

/** The media type in a manifest's own `mediaType` field, if it has one. */
function embeddedMediaType(bytes: Buffer): string | undefined {
  try {
    const json = JSON.parse(bytes.toString('utf8')) as { mediaType?: unknown; manifests?: unknown };
    if (typeof json.mediaType === 'string') return json.mediaType;
    return Array.isArray(json.manifests) ? mediaTypes.ociIndex : undefined;
  } catch {
    return undefined;
  }
}

/** `repo:tag` or `repo@digest`, for messages. */
function manifestName(repo: RepositoryRef, reference: string): string {
  return `${repo.repository}${reference.includes(':') ? '@' : ':'}${reference}`;
}

function contentType(value: string | undefined): string | undefined {
  return value?.split(';')[0]?.trim() || undefined;
}

/** GET /v2/<repo>/manifests/<tag|digest>; verifies the bytes when fetched by digest. */
export async function getManifest(
  client: RegistryClient,
  repo: RepositoryRef,
  reference: string,
  signal?: AbortSignal,
): Promise<FetchedManifest> {
  const url = `/v2/${repo.repository}/manifests/${reference}`;
  return withRetry(
    async () => {
      const res = await client.send({
        registry: repo.registry,
        method: 'GET',
        url,
        headers: { accept: manifestAccept },
        scopes: pullScopes(repo.repository),
        signal,
      });
      if (res.statusCode !== 200)
        throw await client.repositoryError(
          res,
          repo,
          `fetching manifest ${manifestName(repo, reference)}`,
          'GET',
          url,
        );
      const parts: Buffer[] = [];
      let size = 0;
      for await (const part of res.body as AsyncIterable<Buffer>) {
        size += part.length;
        if (size > maxManifestBytes) {
          res.body.destroy();
          throw new CogError(`the manifest ${repo.repository}:${reference} is over 4 MiB`, {
            hint: 'this is not an image manifest; check the reference',
          });
        }
        parts.push(part);
      }
      const bytes = Buffer.concat(parts);
      const digest = sha256Digest(bytes);
      if (reference.startsWith('sha256:') && digest !== reference)
        throw new CogError(`manifest ${reference} from ${repo.registry} arrived with content ${digest}`, {
          hint: 'the registry or a proxy altered the data; try again',
        });
      const mediaType = contentType(headerValue(res.headers, 'content-type'));
      return {
        mediaType:
          (mediaType && mediaType !== 'application/json' ? mediaType : embeddedMediaType(bytes)) ??
          mediaTypes.ociManifest,
        digest,
        bytes,
      };
    },
    { policy: client.retry, signal },
  );
}

/** HEAD /v2/<repo>/manifests/<tag|digest>: the descriptor, or undefined when there is none. */
export async function headManifest(
  client: RegistryClient,
  repo: RepositoryRef,
  reference: string,
  signal?: AbortSignal,
): Promise<ManifestDescriptor | undefined> {
  const url = `/v2/${repo.repository}/manifests/${reference}`;
  return withRetry(
    async () => {
      const res = await client.send({
        registry: repo.registry,
        method: 'HEAD',
        url,
        headers: { accept: manifestAccept },
        scopes: pullScopes(repo.repository),
        signal,
      });
      await res.body.dump();
      if (res.statusCode === 404) return undefined;
      const digest = headerValue(res.headers, 'docker-content-digest');
      if (res.statusCode === 200 && digest)
        return {
          digest,
          mediaType: contentType(headerValue(res.headers, 'content-type')) ?? mediaTypes.ociManifest,
          size: Number(headerValue(res.headers, 'content-length') ?? 0),
        };
      if (res.statusCode === 200)
        return (({ mediaType, digest, bytes }) => ({ mediaType, digest, size: bytes.length }))(
          await getManifest(client, repo, reference, signal),
        );
      throw await client.repositoryError(
        res,
        repo,
        `checking manifest ${manifestName(repo, reference)}`,
        'HEAD',
        url,
      );
    },
    { policy: client.retry, signal },
  );
}

/** PUT /v2/<repo>/manifests/<tag|digest>; resolves with the manifest's digest. */
export async function putManifest(
  client: RegistryClient,
  repo: RepositoryRef,
  reference: string,
  bytes: Buffer,
  mediaType: string,
  signal?: AbortSignal,
): Promise<string> {
  const url = `/v2/${repo.repository}/manifests/${reference}`;
  const digest = sha256Digest(bytes);
  return withRetry(
    async () => {
      const res = await client.send({
        registry: repo.registry,
        method: 'PUT',
        url,
        headers: { 'content-type': mediaType, 'content-length': String(bytes.length) },
        body: bytes,
        scopes: pushScopes(repo.repository),
        signal,
      });
      if (res.statusCode !== 201 && res.statusCode !== 200 && res.statusCode !== 202)
        throw await client.repositoryError(
          res,
          repo,
          `pushing manifest ${manifestName(repo, reference)}`,
          'PUT',
          url,
        );
      await res.body.dump();
      const answered = headerValue(res.headers, 'docker-content-digest');
      // a registry says 201 Created, or at least names what it stored: a 200 saying neither is a
      // server that takes anything (a web server), where nothing was stored
      if (res.statusCode !== 201 && !answered)
        throw new CogError(
          `${repo.registry} answered the manifest PUT for ${manifestName(repo, reference)} with HTTP ${res.statusCode} and no digest: it does not look like a registry, and the push cannot have landed`,
          { hint: `check the registry address: ${repo.registry} should serve the OCI distribution API` },
        );
      if (answered && answered !== digest)
        throw new CogError(`${repo.registry} stored manifest ${reference} as ${answered}, not ${digest}`, {
          hint: 'the registry rewrote the manifest; it may not support this media type',
        });
      return digest;
    },
    { policy: client.retry, signal },
  );
}
