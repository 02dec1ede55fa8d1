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

/**
 * Repositories on `registry` to mount from when pushing `digest` to `repository`: those that got the
 * same image first, then the others, newest first; at most `limit`. Pure.
 */
export function mountCandidates(
  records: readonly PushRecord[],
  registry: string,
  repository: string,
  digest: string,
  limit = 3,
): string[] {
  const onRegistry = records.filter((r) => r.registry === registry && r.repository !== repository);
  const newestFirst = [...onRegistry].sort((a, b) => b.at - a.at);
  const ordered = [
    ...newestFirst.filter((r) => r.digest === digest),
    ...newestFirst.filter((r) => r.digest !== digest),
  ];
  return [...new Set(ordered.map((r) => r.repository))].slice(0, limit);
}
