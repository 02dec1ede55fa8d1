/**
 * `cog image ls` and `cog image rm NAME…`: what the local image store holds, and taking names out of
 * it. Without a Docker daemon the store is where `cog build -t` keeps images, so it needs its own
 * listing and removal; removing a name also removes the blobs no other name reaches.
 */
import { CogError } from '../errors.js';
import { matchStoredImage } from '../image/find.js';
import { formatSize } from '../image/inspect.js';
import { type StoreListing, listStore } from '../image/store-listing.js';
import { type Descriptor, ImageStore, imageStoreDir, refNameAnnotation } from '../image/store.js';
import type { CommandIo } from './debug-solve.js';
import { warningLine } from './prepare-build.js';
import { damagedImageWarning } from './store-garbage.js';
import { alignColumns, utcMinute } from './text-table.js';

/** The listing as a table: name, short digest, size, creation time (UTC, to the minute). */
export function formatStoreListing(listing: StoreListing): string {
  if (listing.images.length === 0) return `No images in the local image store (${listing.root}).\n`;
  const rows = listing.images.map((i) => [
    i.name,
    i.digest.slice(0, 19),
    formatSize(i.size),
    i.damaged ? 'damaged' : i.created ? utcMinute(i.created) : '-',
  ]);
  const lines = alignColumns([['NAME', 'DIGEST', 'SIZE', 'CREATED'], ...rows]);
  const count = `${listing.images.length} image${listing.images.length === 1 ? '' : 's'}`;
  lines.push(
    '',
    `${count}; the store's blobs take ${formatSize(listing.diskBytes)} (shared layers once): ${listing.root}`,
  );
  for (const i of listing.images)
    if (i.damaged)
      lines.push(`${i.name} is damaged (${i.damaged}): remove it with \`cog image rm ${i.name}\``);
  return `${lines.join('\n')}\n`;
}

export async function listImages(args: { json: boolean }, io: CommandIo): Promise<void> {
  const listing = await listStore(new ImageStore(imageStoreDir(io.env)));
  io.stdout.write(args.json ? `${JSON.stringify(listing, null, 2)}\n` : formatStoreListing(listing));
}

/**
 * Removes each name from the store, then the blobs nothing else reaches. Every name is checked
 * first: one that is not there fails the command before anything is removed.
 */
export async function removeImages(args: { names: readonly string[] }, io: CommandIo): Promise<void> {
  const store = new ImageStore(imageStoreDir(io.env));
  const stored: string[] = [];
  for (const name of args.names) {
    // exactly as stored first; a name whose blobs went missing can be removed too
    const found = (await store.resolve(name)) ? { name } : await matchStoredImage(store, name);
    if (!found)
      throw new CogError(`no image named ${name} in the local image store (${store.root})`, {
        hint: '`cog image ls` lists the names; nothing was removed',
      });
    if (!stored.includes(found.name)) stored.push(found.name);
  }
  // the removed images' manifests: with a damaged image in the store, only what they reached may go
  const released = (await store.index()).manifests.filter((m) =>
    stored.includes(m.annotations?.[refNameAnnotation] ?? ''),
  );
  await store.untag(stored);
  for (const name of stored) io.stdout.write(`Removed ${name}\n`);
  await collect(store, io, released);
}

/** `cog image prune`: removes the blobs no name reaches, now. */
export async function pruneImages(io: CommandIo): Promise<void> {
  await collect(new ImageStore(imageStoreDir(io.env)), io);
}

async function collect(store: ImageStore, io: CommandIo, released?: readonly Descriptor[]): Promise<void> {
  const collected = await store.collectGarbage(released ? { released } : {});
  for (const damaged of collected.damaged ?? []) io.stderr.write(warningLine(damagedImageWarning(damaged)));
  if (collected.skipped) {
    const who = collected.heldBy?.length ? ` (${collected.heldBy.join(', ')})` : '';
    io.stderr.write(
      `cog: another cog is using the image store${who}; unused blobs stay until \`cog image prune\` finds it free\n`,
    );
  } else io.stderr.write(`Freed ${formatSize(collected.bytes)} (${collected.blobs} blobs)\n`);
}
