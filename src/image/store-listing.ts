/**
 * What the local image store holds, for `cog image ls`: each named image with its manifest digest,
 * the bytes its blobs take (shared layers counted in every image that has them, as `docker images`
 * does) and when it was created, plus what all blobs take on disk together.
 */
import { lstat } from 'node:fs/promises';
import { join } from 'node:path';
import { reachableDigests } from './store-gc.js';
import { type ImageStore, refNameAnnotation } from './store.js';

export interface StoredImageSummary {
  readonly name: string;
  readonly digest: string;
  /** bytes of the blobs the image reaches that are in the store */
  readonly size: number;
  /** the image config's `created`, when it has one */
  readonly created: string | undefined;
  /** why the image cannot be used, when its manifest is missing or not JSON */
  readonly damaged?: string;
}

export interface StoreListing {
  readonly root: string;
  readonly images: StoredImageSummary[];
  /** bytes of every blob in the store, each counted once */
  readonly diskBytes: number;
}

interface ManifestJson {
  config?: { digest?: string };
  manifests?: { digest?: string }[];
}

/** Sizes of the store's blobs by digest. */
async function blobSizes(store: ImageStore): Promise<Map<string, number>> {
  const sizes = new Map<string, number>();
  for (const digest of await store.blobDigests())
    sizes.set(
      digest,
      (await lstat(join(store.root, 'blobs', 'sha256', digest.slice('sha256:'.length)))).size,
    );
  return sizes;
}

/** The store's named images, sorted by name. */
export async function listStore(store: ImageStore): Promise<StoreListing> {
  const sizes = await blobSizes(store);
  // a blob that is missing or not JSON reaches nothing more: the listing still shows its name
  const readJson = async (digest: string): Promise<ManifestJson | undefined> => {
    if (!sizes.has(digest)) return undefined;
    try {
      return JSON.parse((await store.readBlob(digest)).toString('utf8')) as ManifestJson;
    } catch {
      return undefined;
    }
  };
  const images: StoredImageSummary[] = [];
  for (const entry of (await store.index()).manifests) {
    const name = entry.annotations?.[refNameAnnotation];
    if (name === undefined) continue;
    const reached = await reachableDigests([entry], readJson);
    let size = 0;
    for (const digest of reached) size += sizes.get(digest) ?? 0;
    const damaged = await manifestDamage(store, entry.digest, sizes);
    images.push({
      name,
      digest: entry.digest,
      size,
      created: await createdOf(entry.digest, readJson),
      ...(damaged ? { damaged } : {}),
    });
  }
  images.sort((a, b) => a.name.localeCompare(b.name));
  let diskBytes = 0;
  for (const size of sizes.values()) diskBytes += size;
  return { root: store.root, images, diskBytes };
}

/** `created` from the image's config; for an index, from its first image. */
async function createdOf(
  digest: string,
  readJson: (digest: string) => Promise<ManifestJson | undefined>,
): Promise<string | undefined> {
  const doc = await readJson(digest);
  const child = doc?.manifests?.[0]?.digest;
  if (child) return createdOf(child, readJson);
  const config = doc?.config?.digest ? await readJson(doc.config.digest) : undefined;
  const created = (config as { created?: unknown } | undefined)?.created;
  return typeof created === 'string' ? created : undefined;
}

/** Why the manifest `digest` a name points at is unusable: missing from the store, or not JSON. */
async function manifestDamage(
  store: ImageStore,
  digest: string,
  sizes: ReadonlyMap<string, number>,
): Promise<string | undefined> {
  if (!sizes.has(digest)) return `its manifest ${digest} is missing`;
  try {
    JSON.parse((await store.readBlob(digest)).toString('utf8'));
    return undefined;
  } catch {
    return `its manifest ${digest} is not JSON`;
  }
}
