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
 * For each blob of the images pushed before to `registry` (other repositories than `repository`),
 * the repositories that got it, newest push first: the mount sources a blob is worth asking for. A
 * blob no earlier push had gets none, so it goes straight to upload instead of trying mounts that
 * cannot work. `blobsOf` lists the digests an image (a manifest or index digest) reaches, from the
 * local store; an image it no longer knows adds nothing.
 */
export async function blobMountSources(
  records: readonly PushRecord[],
  registry: string,
  repository: string,
  blobsOf: (image: string) => Promise<ReadonlySet<string>>,
): Promise<ReadonlyMap<string, readonly string[]>> {
  const newestFirst = records
    .filter((r) => r.registry === registry && r.repository !== repository)
    .sort((a, b) => b.at - a.at)
    .slice(0, recordsForMounts);
  const sources = new Map<string, string[]>();
  const reached = new Map<string, ReadonlySet<string>>();
  for (const record of newestFirst) {
    let blobs = reached.get(record.digest);
    if (!blobs) {
      blobs = await blobsOf(record.digest).catch(() => new Set<string>());
      reached.set(record.digest, blobs);
    }
    for (const blob of blobs) {
      const repos = sources.get(blob) ?? [];
      if (!repos.includes(record.repository)) repos.push(record.repository);
      sources.set(blob, repos);
    }
  }
  return sources;
}
