/**
 * Image references as the docker CLI reads them: `[registry/]repository[:tag][@digest]`. A name with no
 * registry is on Docker Hub (`docker.io`), and a one-part Hub name gains `library/`. A reference with
 * neither tag nor digest means `:latest`.
 */
import { CogError } from '../errors.js';
import { dockerHubHost, normalizeRegistryHost } from '../buildkit/docker-config.js';

export interface Reference {
  /** `host[:port]`, lower-case; every Docker Hub alias is `docker.io` */
  readonly registry: string;
  /** path inside the registry, e.g. `library/python` */
  readonly repository: string;
  readonly tag: string | undefined;
  /** `algorithm:hex` */
  readonly digest: string | undefined;
}

/** The part of a reference that names a repository (used for scopes and mounts). */
export type RepositoryRef = Pick<Reference, 'registry' | 'repository'>;

const hostComponent = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const hostPattern = new RegExp(
  `^(?:${hostComponent}(?:\\.${hostComponent})*|\\[[0-9a-fA-F:.]+\\])(?::[0-9]+)?$`,
);
const pathComponent = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const tagPattern = /^[\w][\w.-]{0,127}$/;
const digestPattern = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$/;
const maxNameLength = 255;

function invalid(input: string, problem: string): CogError {
  return new CogError(`invalid image reference "${input}": ${problem}`, {
    hint: 'write it as [registry/]repository[:tag][@digest], e.g. r8.im/user/model:latest',
  });
}

/** True when the first path part names a registry: it has a dot or port, is localhost, or has capitals. */
function looksLikeHost(part: string): boolean {
  return /[.:]/.test(part) || part === 'localhost' || part.toLowerCase() !== part;
}

/** Whether `host` is a registry address: a name or `[IPv6]`, with a port from 1 to 65535 if any. */
export function isRegistryHost(host: string): boolean {
  if (!hostPattern.test(host)) return false;
  const port = /:(\d+)$/.exec(host)?.[1];
  return port === undefined || (Number(port) >= 1 && Number(port) <= 65535);
}

/** Parses and normalises a reference; throws a CogError naming the input when it is malformed. */
export function parseReference(input: string): Reference {
  const text = input.trim();
  if (text === '') throw invalid(input, 'it is empty');
  if (/\s/.test(text)) throw invalid(input, 'it has a space in it');
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(text)?.[0];
  if (scheme) throw invalid(input, `a reference names no scheme: drop "${scheme}"`);

  let rest = text;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!digestPattern.test(digest)) throw invalid(input, `"${digest}" is not a digest`);
    if (digest.startsWith('sha256:') && !/^sha256:[0-9a-f]{64}$/.test(digest))
      throw invalid(input, 'a sha256 digest has 64 lower-case hex digits');
  }

  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!tagPattern.test(tag))
      throw invalid(
        input,
        `"${tag}" is not a valid tag (letters, digits, _ . -, up to 128, not starting with . or -)`,
      );
  }

  const slash = rest.indexOf('/');
  let registry = dockerHubHost;
  let repository = rest;
  if (slash >= 0 && looksLikeHost(rest.slice(0, slash))) {
    const host = rest.slice(0, slash);
    if (!isRegistryHost(host)) throw invalid(input, `"${host}" is not a valid registry host`);
    registry = normalizeRegistryHost(host);
    repository = rest.slice(slash + 1);
  }
  if (repository === '') throw invalid(input, 'the repository name is missing');
  if (repository.toLowerCase() !== repository) throw invalid(input, 'the repository name must be lower-case');
  for (const part of repository.split('/')) {
    if (!pathComponent.test(part))
      throw invalid(
        input,
        part === ''
          ? 'the repository name has an empty path component'
          : `"${part}" is not a valid repository path component (lower-case letters, digits and separators . _ __ -)`,
      );
  }
  if (registry === dockerHubHost && !repository.includes('/')) repository = `library/${repository}`;
  if (repository.length > maxNameLength)
    throw invalid(input, `the repository name is longer than ${maxNameLength} characters`);
  if (tag === undefined && digest === undefined) tag = 'latest';
  return { registry, repository, tag, digest };
}

/** `registry/repository[:tag][@digest]`, fully qualified. */
export function formatReference(ref: Reference): string {
  return `${ref.registry}/${ref.repository}${ref.tag ? `:${ref.tag}` : ''}${ref.digest ? `@${ref.digest}` : ''}`;
}

/** What goes after `/manifests/`: the digest when there is one, else the tag. */
export function manifestReference(ref: Reference): string {
  const id = ref.digest ?? ref.tag;
  if (!id) throw new CogError(`${formatReference(ref)} has neither tag nor digest`);
  return id;
}

/** The host that serves the distribution API for a registry name (Docker Hub's API lives elsewhere). */
export function apiHost(registry: string): string {
  return registry === dockerHubHost ? 'registry-1.docker.io' : registry;
}
