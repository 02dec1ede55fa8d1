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
  /** why the image cannot be used, when its manifest or config is missing or not JSON */
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
  const read = async (digest: string): Promise<BlobRead> => {
    if (!sizes.has(digest)) return { problem: 'is missing' };
    try {
      return { json: JSON.parse((await store.readBlob(digest)).toString('utf8')) as ManifestJson };
    } catch {
      return { problem: 'is not JSON' };
    }
  };
  // a blob that is missing or not JSON reaches nothing more: the listing still shows its name
  const readJson = async (digest: string) => {
    const blob = await read(digest);
    return 'json' in blob ? blob.json : undefined;
  };
  const images: StoredImageSummary[] = [];
  for (const entry of (await store.index()).manifests) {
    const name = entry.annotations?.[refNameAnnotation];
    if (name === undefined) continue;
    const reached = await reachableDigests([entry], readJson);
    let size = 0;
    for (const digest of reached) size += sizes.get(digest) ?? 0;
    const damaged = await imageDamage(entry.digest, read);
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

/** A blob of the store read as JSON, or what is wrong with it. */
type BlobRead = { readonly json: ManifestJson } | { readonly problem: 'is missing' | 'is not JSON' };

/** Why the image whose manifest is `digest` is unusable: its manifest or config missing or not JSON. */
async function imageDamage(
  digest: string,
  read: (digest: string) => Promise<BlobRead>,
): Promise<string | undefined> {
  const manifest = await read(digest);
  if (!('json' in manifest)) return `its manifest ${digest} ${manifest.problem}`;
  const config = manifest.json.config?.digest;
  if (config === undefined) return undefined;
  const configRead = await read(config);
  return 'json' in configRead ? undefined : `its config ${config} ${configRead.problem}`;
}
