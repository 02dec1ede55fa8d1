/**
 * `--filter` values of `cog cache du` / `cog cache prune`, checked before they reach buildkitd. The
 * daemon parses them as containerd filters (`FIELD`, `FIELD==VALUE`, `FIELD!=VALUE`, `FIELD~=REGEX`,
 * comma-separated clauses all of which must hold) but tests them against a fixed set of record fields:
 * a field it does not know is silently absent, so `bogus==x` matches nothing (an empty listing, a
 * prune that frees nothing) and `bogus!=x` matches every record (a prune of everything). Pure.
 */
import { CogError } from '../errors.js';
import { parseDuration } from './cache-usage.js';

/** The fields buildkitd's cache records answer to (`parent` on daemons before v0.12, `parents` after). */
export const cacheFilterFields = [
  'id',
  'type',
  'description',
  'inuse',
  'mutable',
  'immutable',
  'shared',
  'private',
  'parents',
  'parent',
] as const;

const fieldRune = /[A-Za-z0-9_]/;
/** Characters that open a quoted value (containerd's quote runes, old and new). */
const quoteRunes = new Set(['"', '/', '|']);

/**
 * The first field of each clause of a filter (`description~=x,inuse` → description, inuse), or
 * undefined when the text is not filter syntax; buildkitd then refuses it with its own message.
 */
export function filterFields(filter: string): string[] | undefined {
  const fields: string[] = [];
  let i = 0;
  const skipSpace = () => {
    while (i < filter.length && /\s/.test(filter[i] as string)) i++;
  };
  for (;;) {
    skipSpace();
    // the field path: FIELD(.FIELD)*, where a quoted part names the field verbatim
    const start = i;
    let first: string | undefined;
    for (;;) {
      let part: string;
      if (filter[i] === '"') {
        const end = quotedEnd(filter, i);
        if (end === undefined) return undefined;
        part = JSON.parse(filter.slice(i, end)) as string;
        i = end;
      } else {
        const from = i;
        while (i < filter.length && fieldRune.test(filter[i] as string)) i++;
        part = filter.slice(from, i);
        if (part === '') return undefined;
      }
      first ??= part;
      if (filter[i] !== '.') break;
      i++;
    }
    if (i === start) return undefined;
    fields.push(first);
    skipSpace();
    // a single `=` (Docker's key=value) is no operator of buildkitd's, but still names the field
    const operator = /^(==|!=|~=|=)/.exec(filter.slice(i))?.[0];
    if (operator) {
      i += operator.length;
      skipSpace();
      if (quoteRunes.has(filter[i] as string)) {
        const end = quotedEnd(filter, i);
        if (end === undefined) return undefined;
        i = end;
      } else {
        const from = i;
        while (i < filter.length && filter[i] !== ',' && !/\s/.test(filter[i] as string)) i++;
        if (i === from) return undefined;
      }
      skipSpace();
    }
    if (i === filter.length) return fields;
    if (filter[i] !== ',') return undefined;
    i++;
  }
}

/** Where the quoted text opening at `start` ends (just past its closing quote), backslash escapes skipped. */
function quotedEnd(text: string, start: number): number | undefined {
  const quote = text[start];
  for (let i = start + 1; i < text.length; i++) {
    if (text[i] === '\\') i++;
    else if (text[i] === quote) return i + 1;
  }
  return undefined;
}

/**
 * Refuses a filter naming a field cache records do not have, naming `--filter` and the fields there
 * are. Text that is not filter syntax is left for buildkitd to refuse.
 * @throws CogError
 */
export function checkCacheFilters(filters: readonly string[]): void {
  const known: ReadonlySet<string> = new Set(cacheFilterFields);
  for (const filter of filters) {
    // empty (`--filter "$UNSET"`): no clause would be sent, and a prune would remove everything
    if (filter.trim() === '')
      throw new CogError('--filter is empty: a filter is FIELD==VALUE (or !=, ~=)', {
        hint: 'e.g. --filter type==exec.cachemount; leave --filter out to take every record (nothing was removed)',
      });
    const unknown = (filterFields(filter) ?? []).filter((field) => !known.has(field));
    if (unknown.length === 0) continue;
    // buildx's `until` filter is a prune's keep duration
    const timed = unknown.includes('until');
    throw new CogError(
      `--filter ${filter}: build cache records have no field ${unknown.map((f) => `"${f}"`).join(' or ')}`,
      {
        hint:
          'filter on id, type, description, inuse, mutable, immutable, shared, private or parents, ' +
          'e.g. --filter type==exec.cachemount or --filter description~=pip' +
          (timed
            ? '; to keep what was used recently, use cog cache prune --keep-duration 24h (or --filter until=24h on its own)'
            : ''),
      },
    );
  }
}

/**
 * The filters as buildkitd is sent them: one filter of all the flags' clauses, so that a record must
 * match every `--filter` (as buildx does). Sent as a list, the daemon keeps a record matching any of
 * them, and `prune --filter type==regular --filter description~=x` would remove every regular record.
 */
export function daemonFilter(filters: readonly string[]): string[] {
  const clauses = filters.map((f) => f.trim()).filter((f) => f !== '');
  return clauses.length === 0 ? [] : [clauses.join(',')];
}

/** A prune's filters, and its keep duration once buildx's `until` filter is taken out of them. */
export interface PruneFilters {
  readonly filter: string[];
  readonly keepDuration: string | undefined;
}

/**
 * Takes buildx's `--filter until=DURATION` (remove what was last used longer ago than DURATION) out of
 * a prune's filters: buildkitd has no such field, and it means what `--keep-duration DURATION` does.
 * Given with `--keep-duration` (or twice), both must name the same length of time. Pure.
 * @throws CogError for a bad duration, two different durations, or `until` inside a list of clauses
 */
export function takeUntilFilter(filters: readonly string[], keepDuration: string | undefined): PruneFilters {
  const rest: string[] = [];
  let until: { flag: string; value: string; ms: number } | undefined;
  if (keepDuration !== undefined)
    until = {
      flag: `--keep-duration ${keepDuration}`,
      value: keepDuration,
      ms: parseDuration('--keep-duration', keepDuration),
    };
  for (const filter of filters) {
    const match = /^\s*until\s*==?\s*(.*?)\s*$/.exec(filter);
    if (!match) {
      if ((filterFields(filter) ?? []).includes('until'))
        throw new CogError(
          `--filter ${filter}: until cannot be combined with other clauses in one --filter`,
          {
            hint: 'give it as a --filter of its own, e.g. --filter until=24h --filter type==regular',
          },
        );
      rest.push(filter);
      continue;
    }
    const value = match[1] as string;
    const ms = untilDuration(filter, value);
    if (until && until.ms !== ms)
      throw new CogError(`--filter ${filter} and ${until.flag} ask for different durations`, {
        hint: 'give one of them (--filter until=DURATION means --keep-duration DURATION: what was used more recently is kept)',
      });
    until ??= { flag: `--filter ${filter.trim()}`, value, ms };
  }
  return { filter: rest, keepDuration: until?.value };
}

/** An `until` filter's duration in milliseconds. @throws CogError naming the filter, with an example */
function untilDuration(filter: string, value: string): number {
  try {
    return parseDuration('until', value);
  } catch {
    throw new CogError(`--filter ${filter}: "${value}" is not a duration`, {
      hint: 'give numbers with units d, h, m, s or ms, e.g. --filter until=24h or --filter until=1h30m',
    });
  }
}

/** `FIELD~=a b` (buildkitd ends a value at a space) written as `FIELD~="a b"`; undefined for other filters. */
export function quotedSpacedValue(filter: string): string | undefined {
  const match = /^\s*([\w.]+)\s*(==|!=|~=)\s*(.*?)\s*$/.exec(filter);
  const [, field, operator, value] = match ?? [];
  if (!field || !operator || !value || !/\s/.test(value) || /^["'`/]|,/.test(value)) return undefined;
  return `${field}${operator}"${value.replace(/["\\]/g, '\\$&')}"`;
}
