/** The local image store, served over the session so the daemon can run images `cog build` kept there. */
import { contentService, ociStoreId } from '../buildkit/content-store.js';
import type { SessionService } from '../buildkit/session.js';
import { ImageStore, imageStoreDir } from '../image/store.js';

/** The store's id on the session (the daemon asks for content store `oci:cog-images`). */
export const imageStoreId = 'cog-images';

export interface LocalImages {
  readonly store: ImageStore;
  readonly storeId: string;
  /** serves the store read-only */
  readonly service: SessionService;
}

export function localImages(env: NodeJS.ProcessEnv): LocalImages {
  const store = new ImageStore(imageStoreDir(env));
  return {
    store,
    storeId: imageStoreId,
    service: contentService({ [ociStoreId(imageStoreId)]: { root: store.root, writable: false } }),
  };
}
