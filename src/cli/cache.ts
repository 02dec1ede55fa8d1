/**
 * `cog cache du` and `cog cache prune`: what buildkitd's build cache holds, and freeing it. Without a
 * Docker daemon there is no `docker builder prune`; builds, cache mounts (pip, apt) and transferred
 * contexts fill the daemon's disk until its own GC policy runs, so the cache needs a command of its own.
 * The cache belongs to the daemon: on a shared buildkitd a prune frees other clients' cache too.
 */
import {
  type CacheRecord,
  type CacheUsage,
  cacheRecord,
  cacheUsage,
  parseByteSize,
  parseDuration,
} from '../buildkit/cache-usage.js';
import {
  checkCacheFilters,
  daemonFilter,
  quotedSpacedValue,
  takeUntilFilter,
} from '../buildkit/cache-filter.js';
import type { BuildkitClient } from '../buildkit/client.js';
import { connectBuildkit } from '../buildkit/daemon.js';
import { type TlsFlags, withTls } from '../buildkit/tls.js';
import { CogError } from '../errors.js';
import { formatSize } from '../image/inspect.js';
import type { CommandIo } from './debug-solve.js';
import { type PromptInput, isInteractive, readLine } from './prompt.js';
import { alignColumns, utcMinute } from './text-table.js';

export interface CacheUsageArgs {
  readonly json: boolean;
  /** also list the records, largest first */
  readonly verbose: boolean;
  /** BuildKit record filters, e.g. type==exec.cachemount */
  readonly filter: readonly string[];
  readonly tls?: TlsFlags;
}

export interface CachePruneArgs {
  /** also frontend and internal records */
  readonly all: boolean;
  /** keep records used within this long (e.g. 24h) */
  readonly keepDuration: string | undefined;
  /** keep up to this much of the cache (e.g. 10GB) */
  readonly keepStorage: string | undefined;
  readonly filter: readonly string[];
  /** no question asked */
  readonly force: boolean;
  readonly json: boolean;
  readonly tls?: TlsFlags;
}

/** The summary per record type, then (verbose) the records largest first. */
export function formatCacheUsage(
  usage: CacheUsage,
  records: readonly CacheRecord[],
  verbose: boolean,
  daemon: string,
  filter: readonly string[] = [],
): string {
  if (usage.records === 0)
    return filter.length > 0
      ? `No record of the build cache of buildkitd at ${daemon} matches --filter ${filter.join(' --filter ')}.\n`
      : `The build cache of buildkitd at ${daemon} is empty.\n`;
  const lines = alignColumns(
    [
      ['TYPE', 'RECORDS', 'SIZE', 'RECLAIMABLE'],
      ...usage.kinds.map((k) => [
        k.type,
        String(k.records),
        formatSize(k.bytes),
        formatSize(k.reclaimableBytes),
      ]),
    ],
    new Set([1, 2, 3]),
  );
  if (verbose) {
    const largest = [...records].sort((a, b) => b.size - a.size);
    lines.push(
      '',
      ...alignColumns(
        [
          ['ID', 'SIZE', 'IN USE', 'LAST USED', 'DESCRIPTION'],
          ...largest.map((r) => [
            r.id.slice(0, 12),
            formatSize(r.size),
            r.inUse ? 'yes' : '',
            r.lastUsed ? utcMinute(r.lastUsed) : '-',
            r.description.length > 60 ? `${r.description.slice(0, 59)}…` : r.description,
          ]),
        ],
        new Set([1]),
      ),
    );
  }
  lines.push(
    '',
    `Total: ${formatSize(usage.bytes)} in ${usage.records} record${usage.records === 1 ? '' : 's'}; ` +
      `reclaimable: ${formatSize(usage.reclaimableBytes)} (buildkitd at ${daemon})`,
  );
  return `${lines.join('\n')}\n`;
}

/** BuildKit refuses a filter it cannot parse; the error then names the flag and the syntax. */
function explainFilterError(err: unknown, filter: readonly string[]): unknown {
  if (filter.length === 0 || !(err instanceof Error) || !/filter/i.test(err.message)) return err;
  const quoted = filter.map(quotedSpacedValue).find((q) => q !== undefined);
  return new CogError(`--filter ${filter.join(' --filter ')}: buildkitd refused it (${err.message})`, {
    hint: quoted
      ? `a value with spaces is quoted inside the filter: --filter '${quoted}'`
      : 'a filter is FIELD==VALUE, FIELD~=REGEX or FIELD!=VALUE on id, type, description, inuse, mutable, immutable, shared, private or parents, e.g. --filter type==exec.cachemount',
    cause: err,
  });
}

/**
 * Runs `work` with a client of the configured buildkitd (Ctrl-C ends the process: nothing to undo but
 * a private daemon, which daemon.ts stops on the way out).
 */
async function withDaemon<T>(
  io: CommandIo,
  tls: TlsFlags | undefined,
  filter: readonly string[],
  work: (client: BuildkitClient) => Promise<T>,
): Promise<T> {
  const connection = await connectBuildkit({ env: io.env, stderr: io.stderr, ...withTls(tls) });
  try {
    return await work(connection.client);
  } catch (err) {
    throw explainFilterError(err, filter);
  } finally {
    await connection.close();
  }
}

export async function showCacheUsage(args: CacheUsageArgs, io: CommandIo): Promise<void> {
  checkCacheFilters(args.filter);
  await withDaemon(io, args.tls, args.filter, async (client) => {
    const response = await client.diskUsage({ filter: daemonFilter(args.filter) });
    const records = (response.record ?? []).map(cacheRecord);
    const usage = cacheUsage(records);
    io.stdout.write(
      args.json
        ? `${JSON.stringify({ daemon: client.address.display, ...usage, ...(args.verbose ? { entries: records } : {}) }, null, 2)}\n`
        : formatCacheUsage(usage, records, args.verbose, client.address.display, args.filter),
    );
  });
}

/** What the prune will remove, in words, for its question. */
export function pruneScope(
  args: Pick<CachePruneArgs, 'all' | 'keepDuration' | 'keepStorage' | 'filter'>,
): string {
  const what = args.all
    ? 'all unused build cache (frontend and internal records too)'
    : 'all unused build cache';
  const parts = [args.filter.length > 0 ? `${what} matching ${args.filter.join(' and ')}` : what];
  if (args.keepDuration) parts.push(`keeping what was used in the last ${args.keepDuration}`);
  if (args.keepStorage) parts.push(`keeping up to ${args.keepStorage}`);
  return parts.join(', ');
}

export async function pruneCache(flags: CachePruneArgs, io: CommandIo): Promise<void> {
  // the flags are read before anything is asked or removed; buildx's --filter until=D is --keep-duration D
  const args = { ...flags, ...takeUntilFilter(flags.filter, flags.keepDuration) };
  checkCacheFilters(args.filter);
  // a value written empty (`--keep-storage "$UNSET"`) is refused, not read as 0: that would prune everything
  const keepDurationMs =
    args.keepDuration === undefined ? 0 : parseDuration('--keep-duration', args.keepDuration);
  const keepBytes = args.keepStorage === undefined ? 0 : parseByteSize('--keep-storage', args.keepStorage);
  await withDaemon(io, args.tls, args.filter, async (client) => {
    const scope = pruneScope(args);
    if (!args.force) {
      const stdin = io.stdin as PromptInput;
      if (!isInteractive(stdin))
        throw new CogError('cog cache prune asks before removing anything, and stdin is not a terminal', {
          hint: 'add --force to prune without the question (nothing was removed)',
        });
      const answer = await readLine(
        stdin,
        io.stderr,
        `This removes ${scope} from buildkitd at ${client.address.display}` +
          ' (every client of that daemon loses it). Continue? [y/N] ',
      );
      if (!/^y(es)?$/i.test(answer.trim())) {
        io.stderr.write('Nothing was removed.\n');
        return;
      }
    }
    let records = 0;
    let bytes = 0;
    await client.prune(
      {
        filter: daemonFilter(args.filter),
        all: args.all,
        keepDuration: keepDurationMs * 1_000_000,
        reservedSpace: keepBytes,
      },
      (record) => {
        records++;
        bytes += cacheRecord(record).size;
      },
    );
    if (args.json) {
      io.stdout.write(`${JSON.stringify({ daemon: client.address.display, records, bytes }, null, 2)}\n`);
    } else {
      io.stderr.write(
        `Removed ${records} build cache record${records === 1 ? '' : 's'}, ` +
          `freed ${formatSize(bytes)} (buildkitd at ${client.address.display})\n`,
      );
    }
  });
}
