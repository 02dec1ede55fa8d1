/**
 * Source records: what a `cog build` needs to answer the next build of the same command whose only
 * change is in the project's files without buildkitd (build/source-rebuild.ts). Kept beside the
 * build records, under the same key (the command line, directory, environment and cog-ts build):
 * the key of the graph below the source layer, the base image it was planned on, and the image made
 * (manifest and config bytes as stored or pushed).
 */
import { join } from 'node:path';
import type { ResolvedBase } from './resolved-base.js';
import { type RecordedOutput, readRecordFile, writeRecord } from './build-record.js';
import { userDir } from '../user-dirs.js';
import type { BuildArgs } from '../cli/prepare-build.js';

/** Bumped when the record's shape or meaning changes: older records are then ignored. */
export const sourceRecordFormat = 1;

export interface SourceRecord {
  readonly format: typeof sourceRecordFormat;
  readonly key: string;
  /** belowSourceKey of the image: everything under its source layer */
  readonly below: string;
  readonly base: ResolvedBase;
  readonly imageName: string;
  readonly output: RecordedOutput;
  /** the image's manifest and config, exactly as stored or pushed */
  readonly manifest: string;
  readonly config: string;
  /**
   * the warnings the build said after preparing (a cog-base fallback), said again by a rebuild, which
   * says its own preparing's warnings itself
   */
  readonly notes: readonly string[];
  /** the build's arguments as its command line parsed (the same command line has the same key) */
  readonly args: BuildArgs;
}

/** Where source records live: $XDG_CACHE_HOME/cog-ts/source-records, else ~/.cache/…. */
export function sourceRecordsDir(env: Readonly<Record<string, string | undefined>>): string {
  return join(userDir(env, 'cache'), 'cog-ts', 'source-records');
}

export function readSourceRecord(dir: string, key: string): SourceRecord | undefined {
  return readRecordFile<SourceRecord>(dir, key, sourceRecordFormat);
}

/** Stores a record atomically; a failure only means the next source-only change goes to buildkitd. */
export function writeSourceRecord(dir: string, record: SourceRecord): void {
  try {
    writeRecord(dir, record);
  } catch {
    // a cache directory we cannot write is no reason to fail a build that succeeded
  }
}
