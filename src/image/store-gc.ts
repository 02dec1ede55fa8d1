/**
 * Garbage collection for the local image store: which blobs the named images still reach, and
 * whether another cog process may be using the store right now (its lease). The walk is pure over a
 * blob reader; store.ts does the file work under the index lock.
 */
import { CogError } from '../errors.js';
import type { Descriptor } from './store.js';

/** Media types whose blobs list further descriptors (manifests and indexes, OCI and Docker). */
const manifestTypes = new Set([
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
]);

/** A manifest or index is unreadable: nothing may be collected, as what it reaches is unknown. */
export class UnreadableManifestError extends CogError {
  constructor(
    readonly digest: string,
    readonly reason: string,
    /** the names whose images reach it, when known */
    holders: readonly string[] = [],
  ) {
    super(
      `manifest ${digest} in the image store is unreadable (${reason}): it is damaged, and no unused blob was removed`,
      {
        hint:
          holders.length > 0
            ? `remove the images that use it (\`cog image rm ${holders.join(' ')}\`), then build again`
            : '`cog image ls` shows which name holds it: remove that name with `cog image rm`',
      },
    );
  }
}

/** The descriptors a manifest or index blob lists: config, layers, child manifests, blobs, subject. */
export function descriptorsIn(json: unknown): Descriptor[] {
  if (typeof json !== 'object' || json === null) return [];
  const doc = json as Record<string, unknown>;
  const found: Descriptor[] = [];
  const take = (value: unknown) => {
    if (typeof value === 'object' && value !== null && typeof (value as Descriptor).digest === 'string')
      found.push(value as Descriptor);
  };
  take(doc.config);
  take(doc.subject);
  for (const key of ['layers', 'manifests', 'blobs'])
    if (Array.isArray(doc[key])) for (const item of doc[key] as unknown[]) take(item);
  return found;
}

/**
 * Every digest reachable from `roots`: the roots, and through each manifest or index, what it lists.
 * `readJson` gives a blob's parsed JSON, or undefined when the blob is not in the store (a missing
 * manifest reaches nothing more). A blob that is there but is not JSON throws UnreadableManifestError;
 * with `onUnreadable`, it is passed there instead and the walk goes on (the blob itself is reached,
 * what it lists is unknown).
 */
export async function reachableDigests(
  roots: readonly Descriptor[],
  readJson: (digest: string) => Promise<unknown>,
  onUnreadable?: (err: UnreadableManifestError) => void,
  onReached?: (descriptor: Descriptor) => void,
): Promise<Set<string>> {
  const reached = new Set<string>();
  const pending = [...roots];
  for (let next = pending.pop(); next; next = pending.pop()) {
    if (reached.has(next.digest)) continue;
    reached.add(next.digest);
    onReached?.(next);
    if (!manifestTypes.has(next.mediaType)) continue;
    let json: unknown;
    try {
      json = await readJson(next.digest);
    } catch (err) {
      if (!onUnreadable || !(err instanceof UnreadableManifestError)) throw err;
      onUnreadable(err);
      continue;
    }
    if (json !== undefined) pending.push(...descriptorsIn(json));
  }
  return reached;
}

/**
 * The sha256 digests named in a damaged manifest's text, in order, once each: what it may still
 * reference (the part before a cut, or around spoiled bytes).
 */
export function digestsNamedIn(text: string): string[] {
  return [...new Set(text.match(/sha256:[0-9a-f]{64}/g) ?? [])];
}

/** What a lease file holds: the process using the store and the host it runs on. */
export interface LeaseHolder {
  pid: number;
  host: string;
  /** when the process started (clock ticks after boot, from /proc): tells a reused pid apart */
  start?: string;
}

/** How long a lease from another host counts as live (its process cannot be asked). */
export const foreignLeaseMs = 24 * 60 * 60 * 1000;

/**
 * Whether a lease still protects the store: a process on this host that is alive and started when the
 * lease says (a pid given to a later process does not hold it), or a lease from another host (a store
 * on a shared disk) younger than a day. `isAlive` asks the OS about a pid; `startOf` when it started
 * (undefined where /proc does not tell).
 */
export function leaseIsLive(
  holder: LeaseHolder,
  ageMs: number,
  here: {
    host: string;
    isAlive: (pid: number) => boolean;
    startOf?: (pid: number) => string | undefined;
  },
): boolean {
  if (holder.host !== here.host) return ageMs < foreignLeaseMs;
  if (!here.isAlive(holder.pid)) return false;
  const started = holder.start === undefined ? undefined : here.startOf?.(holder.pid);
  return started === undefined || started === holder.start;
}

/** Whether a pid names a running process (EPERM: it runs, as another user). */
export function processIsAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
