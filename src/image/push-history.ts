/**
 * Where images from the local store were pushed before (`<store>/pushes.json`), so that a push to a
 * new repository on the same registry can mount blobs from a repository that has them instead of
 * uploading them again. Best effort: an unreadable or unwritable history only costs uploads.
 */
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface PushRecord {
  readonly registry: string;
  readonly repository: string;
  /** the manifest (or index) digest pushed */
  readonly digest: string;
  /** ms since the epoch */
  readonly at: number;
}

interface HistoryFile {
  readonly version: 1;
  readonly pushes: PushRecord[];
}

/** Records kept: the newest ones. */
const maxRecords = 200;

export function pushHistoryPath(storeRoot: string): string {
  return join(storeRoot, 'pushes.json');
}

export async function readPushHistory(storeRoot: string): Promise<PushRecord[]> {
  try {
    const json = JSON.parse(await readFile(pushHistoryPath(storeRoot), 'utf8')) as Partial<HistoryFile>;
    return Array.isArray(json.pushes) ? json.pushes : [];
  } catch {
    return [];
  }
}

/** Adds a record (replacing one for the same registry, repository and digest). Pure. */
export function withPush(records: readonly PushRecord[], record: PushRecord): PushRecord[] {
  const kept = records.filter(
    (r) =>
      !(r.registry === record.registry && r.repository === record.repository && r.digest === record.digest),
  );
  return [...kept, record].slice(-maxRecords);
}

export async function recordPush(storeRoot: string, record: PushRecord): Promise<void> {
  try {
    const next: HistoryFile = { version: 1, pushes: withPush(await readPushHistory(storeRoot), record) };
    const temp = `${pushHistoryPath(storeRoot)}.${process.pid}.tmp`;
    await writeFile(temp, `${JSON.stringify(next, null, 2)}\n`);
    await rename(temp, pushHistoryPath(storeRoot));
  } catch {
    // best effort
  }
}

/** Records read for blob mount sources: the newest pushes to the registry. */
const recordsForMounts = 30;

/**
 * The mount sources worth asking for each blob, from the images pushed before to `registry` (other
 * repositories than `repository`), newest push first: the repositories whose images held the blob,
 * then those whose images the local store no longer knows (they may hold it; a rebuild collects the
 * old image's manifests). A repository whose image is known and lacks the blob is not asked, so a new
 * blob does not try mounts that cannot work. `blobsOf` lists the digests an image (a manifest or
 * index digest) reaches in the local store, empty when it does not have it.
 */
export async function blobMountSources(
  records: readonly PushRecord[],
  registry: string,
  repository: string,
  blobsOf: (image: string) => Promise<ReadonlySet<string>>,
): Promise<(blob: string) => readonly string[]> {
  const newestFirst = records
    .filter((r) => r.registry === registry && r.repository !== repository)
    .sort((a, b) => b.at - a.at)
    .slice(0, recordsForMounts);
  const holders = new Map<string, string[]>();
  const unknown: string[] = [];
  const reached = new Map<string, ReadonlySet<string>>();
  for (const record of newestFirst) {
    let blobs = reached.get(record.digest);
    if (!blobs) {
      blobs = await blobsOf(record.digest).catch(() => new Set<string>());
      reached.set(record.digest, blobs);
    }
    if (blobs.size === 0 && !unknown.includes(record.repository)) unknown.push(record.repository);
    for (const blob of blobs) {
      const repos = holders.get(blob) ?? [];
      if (!repos.includes(record.repository)) repos.push(record.repository);
      holders.set(blob, repos);
    }
  }
  return (blob) => {
    const known = holders.get(blob) ?? [];
    return [...known, ...unknown.filter((repo) => !known.includes(repo))];
  };
}
