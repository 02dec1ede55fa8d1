/**
 * The read side `cog inspect` needs: a reference's manifest (an index resolved to linux/amd64, else its
 * first child) and the image config JSON.
 */
import { CogError } from '../errors.js';
import { fetchBlob } from './blobs.js';
import type { RegistryClient } from './client.js';
import { type FetchedManifest, getManifest, isIndexMediaType } from './manifests.js';
import { type Reference, formatReference, manifestReference } from './reference.js';

export interface Platform {
  readonly os: string;
  readonly architecture: string;
  readonly variant?: string;
}

interface IndexJson {
  manifests?: { digest: string; mediaType?: string; platform?: Partial<Platform> }[];
}
interface ManifestJson {
  config?: { digest: string; mediaType?: string; size?: number };
  layers?: { digest: string; mediaType?: string; size: number }[];
}

export interface RemoteImage {
  readonly reference: Reference;
  /** the index the reference named, when it named one */
  readonly index: (FetchedManifest & { readonly json: IndexJson }) | undefined;
  readonly manifest: FetchedManifest & { readonly json: ManifestJson };
  readonly configDigest: string;
  /** the image config: `config.Labels`, `config.Env`, `rootfs`, `history`, … */
  readonly config: Record<string, unknown>;
}

const parse = <T>(m: FetchedManifest, what: string): T => {
  try {
    return JSON.parse(m.bytes.toString('utf8')) as T;
  } catch {
    throw new CogError(`${what} ${m.digest} is not JSON`, { hint: 'the image in the registry is malformed' });
  }
};

/**
 * The child for `platform`, else the first child with a real platform (a model bundle's weight
 * manifests say os `unknown`), else the first child.
 */
export function pickChild(index: IndexJson, platform: Platform): string | undefined {
  const children = index.manifests ?? [];
  const match = children.find(
    (c) =>
      c.platform?.os === platform.os &&
      c.platform.architecture === platform.architecture &&
      (platform.variant === undefined || c.platform.variant === platform.variant),
  );
  return (match ?? children.find((c) => c.platform?.os !== 'unknown') ?? children[0])?.digest;
}

export async function fetchImage(
  client: RegistryClient,
  reference: Reference,
  options: { readonly signal?: AbortSignal; readonly platform?: Platform } = {},
): Promise<RemoteImage> {
  const { signal } = options;
  const platform = options.platform ?? { os: 'linux', architecture: 'amd64' };
  let top = await getManifest(client, reference, manifestReference(reference), signal);
  let index: RemoteImage['index'];
  if (isIndexMediaType(top.mediaType)) {
    const json = parse<IndexJson>(top, 'index');
    index = { ...top, json };
    const child = pickChild(json, platform);
    if (!child)
      throw new CogError(`${formatReference(reference)} is an empty index`, {
        hint: 'push an image to it first',
      });
    top = await getManifest(client, reference, child, signal);
  }
  const json = parse<ManifestJson>(top, 'manifest');
  if (!json.config?.digest)
    throw new CogError(`${formatReference(reference)} names a manifest without a config`, {
      hint: 'this is not a container image',
    });
  const configBytes = await fetchBlob(client, reference, json.config.digest, { signal });
  let config: Record<string, unknown>;
  try {
    config = JSON.parse(configBytes.toString('utf8')) as Record<string, unknown>;
  } catch {
    throw new CogError(`the config ${json.config.digest} of ${formatReference(reference)} is not JSON`, {
      hint: 'the image in the registry is malformed',
    });
  }
  return { reference, index, manifest: { ...top, json }, configDigest: json.config.digest, config };
}
