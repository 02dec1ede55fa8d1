/** Removing the image store's unused blobs after a build moved a name. */
import type { ImageStore } from '../image/store.js';
import { warningLine } from './prepare-build.js';

/**
 * After a name moved to a new image, the blobs nothing names any more leave the store (a rebuilt
 * project would otherwise keep every earlier source layer). A failure only warns: the image is built.
 */
export async function collectStoreGarbage(store: ImageStore, stderr: NodeJS.WritableStream): Promise<void> {
  try {
    await store.collectGarbage();
  } catch (err) {
    const reason = (err as Error).message;
    stderr.write(warningLine(`could not remove unused blobs from the image store ${store.root}: ${reason}`));
  }
}
