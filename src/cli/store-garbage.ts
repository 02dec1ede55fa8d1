/** Removing the image store's unused blobs after a build moved a name. */
import type { DamagedImage, Descriptor, ImageStore } from '../image/store.js';
import { warningLine } from './prepare-build.js';

/** What a collection says of a damaged image it left in place, and how to remove it. */
export function damagedImageWarning(damaged: DamagedImage): string {
  const which = damaged.names.length > 0 ? `image ${damaged.names.join(', ')}` : 'an image';
  const remove =
    damaged.names.length > 0
      ? `remove it with \`cog image rm ${damaged.names.join(' ')}\`, then build again`
      : '`cog image ls` shows which name holds it: remove that name with `cog image rm`';
  return `${which} in the local image store is damaged (manifest ${damaged.digest} is unreadable: ${damaged.reason}); the blobs it may use were kept: ${remove}`;
}

/**
 * After a name moved to a new image, the blobs nothing names any more leave the store (a rebuilt
 * project would otherwise keep every earlier source layer). `replaced`: the image the name had before
 * (undefined for a new name). With a damaged image in the store, only the blobs `replaced` reached
 * that no other image may use go, and a warning names the damaged image, as `cog image rm` does. A
 * failure only warns: the image is built.
 */
export async function collectStoreGarbage(
  store: ImageStore,
  stderr: NodeJS.WritableStream,
  replaced: Descriptor | undefined,
): Promise<void> {
  try {
    const collected = await store.collectGarbage({ released: replaced ? [replaced] : [] });
    for (const damaged of collected.damaged ?? []) stderr.write(warningLine(damagedImageWarning(damaged)));
  } catch (err) {
    const reason = (err as Error).message;
    stderr.write(warningLine(`could not remove unused blobs from the image store ${store.root}: ${reason}`));
  }
}
