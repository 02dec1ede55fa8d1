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

/** arm64 without a variant is v8 (as containerd and docker read it); other variants as written. */
const variantOf = (p: Partial<Platform>) => p.variant ?? (p.architecture === 'arm64' ? 'v8' : undefined);

/** Whether a manifest's platform is `want`; a `want` without a variant takes any variant. */
export function platformMatches(have: Partial<Platform> | undefined, want: Platform): boolean {
  if (!have || have.os !== want.os || have.architecture !== want.architecture) return false;
  return want.variant === undefined || variantOf(have) === variantOf(want);
}

export function formatPlatform(p: Partial<Platform>): string {
  return [p.os ?? '?', p.architecture ?? '?', ...(p.variant ? [p.variant] : [])].join('/');
}

/**
 * The child for `platform`; unless `exact`, else the first child with a real platform (a model
 * bundle's weight manifests say os `unknown`), else the first child.
 */
export function pickChild(index: IndexJson, platform: Platform, exact = false): string | undefined {
  const children = index.manifests ?? [];
  const match = children.find((c) => platformMatches(c.platform, platform));
  if (exact) return match?.digest;
  return (match ?? children.find((c) => c.platform?.os !== 'unknown') ?? children[0])?.digest;
}

/**
 * The child for `platform` (see pickChild); when `exact`, an index that has images but none for it is
 * an error naming `what` and listing what it has. Undefined for an empty index.
 */
export function childFor(
  what: string,
  index: IndexJson,
  platform: Platform,
  exact = false,
): string | undefined {
  const child = pickChild(index, platform, exact);
  if (!child && exact && index.manifests?.length) throw noImageFor(what, index, platform);
  return child;
}

/** The error for an index without an image for `platform`, listing what it has. */
export function noImageFor(what: string, index: IndexJson, platform: Platform): CogError {
  const have = (index.manifests ?? [])
    .map((c) => c.platform)
    .filter((p): p is Partial<Platform> => p !== undefined && p.os !== 'unknown')
    .map(formatPlatform);
  return new CogError(`${what} has no image for ${formatPlatform(platform)}`, {
    hint: have.length ? `it has ${have.join(', ')}; pick one with --platform` : 'drop --platform',
  });
}

/** Throws when a single image (its config's os, architecture, variant) is not for `platform`. */
export function checkImagePlatform(what: string, config: Record<string, unknown>, platform: Platform): void {
  const str = (v: unknown) => (typeof v === 'string' && v ? v : undefined);
  const os = str(config.os);
  const architecture = str(config.architecture);
  const variant = str(config.variant);
  const have = {
    ...(os ? { os } : {}),
    ...(architecture ? { architecture } : {}),
    ...(variant ? { variant } : {}),
  };
  if (!platformMatches(have, platform))
    throw new CogError(`${what} is an image for ${formatPlatform(have)}, not ${formatPlatform(platform)}`, {
      hint: 'drop --platform, or build the model for that platform (cog build --platform)',
    });
}

export async function fetchImage(
  client: RegistryClient,
  reference: Reference,
  options: {
    readonly signal?: AbortSignal;
    readonly platform?: Platform;
    /** fail rather than fall back to another platform's image */
    readonly exactPlatform?: boolean;
  } = {},
): Promise<RemoteImage> {
  const { signal } = options;
  const platform = options.platform ?? { os: 'linux', architecture: 'amd64' };
  let top = await getManifest(client, reference, manifestReference(reference), signal);
  let index: RemoteImage['index'];
  if (isIndexMediaType(top.mediaType)) {
    const json = parse<IndexJson>(top, 'index');
    index = { ...top, json };
    const child = childFor(formatReference(reference), json, platform, options.exactPlatform);
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
  if (options.exactPlatform && !index) checkImagePlatform(formatReference(reference), config, platform);
  return { reference, index, manifest: { ...top, json }, configDigest: json.config.digest, config };
}
