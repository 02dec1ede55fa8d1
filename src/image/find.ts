/** Finding an image by name in the local image store, the way `docker run` finds local images. */
import { normalizeImageRef } from '../llb/index.js';
import { type Descriptor, type ImageStore, refNameAnnotation } from './store.js';

export interface StoredImage {
  /** the name the image is stored under */
  readonly name: string;
  readonly manifest: Descriptor;
}

function normalized(ref: string): string | undefined {
  try {
    return normalizeImageRef(ref);
  } catch {
    return undefined;
  }
}

/**
 * The stored image `ref` names: stored under exactly `ref`, else under a name that normalises to the
 * same reference (`hello` and `docker.io/library/hello:latest` are one image). A reference pinned by
 * digest matches only the image with that manifest digest.
 */
export async function findStoredImage(store: ImageStore, ref: string): Promise<StoredImage | undefined> {
  const [name, digest] = ref.split('@') as [string, string | undefined];
  const wanted = normalized(name);
  const candidates = (await store.index()).manifests.flatMap((manifest) => {
    const stored = manifest.annotations?.[refNameAnnotation];
    return stored === undefined ? [] : [{ name: stored, manifest }];
  });
  const matches = (c: StoredImage) => !digest || c.manifest.digest === digest;
  const exact = candidates.find((c) => c.name === name && matches(c));
  const found =
    exact ?? candidates.find((c) => wanted !== undefined && normalized(c.name) === wanted && matches(c));
  // a name whose blobs went missing is not usable: fall back to the registry
  return found && store.hasBlob(found.manifest.digest) ? found : undefined;
}
