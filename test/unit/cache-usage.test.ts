// The build cache's numbers and the prune flags: records summed by type, sizes and durations read from
// flags, and the summary printed by `cog cache du`.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  type CacheRecord,
  cacheRecord,
  cacheUsage,
  parseByteSize,
  parseDuration,
} from '../../src/buildkit/cache-usage.js';
import { formatCacheUsage, pruneScope } from '../../src/cli/cache.js';
import { CogError } from '../../src/errors.js';

const MiB = 1024 * 1024;

const record = (over: Partial<CacheRecord>): CacheRecord => ({
  id: 'id',
  type: 'regular',
  description: '',
  size: 0,
  inUse: false,
  shared: false,
  lastUsed: undefined,
  ...over,
});

test('a wire record becomes numbers: int64 strings, timestamps, an empty type is regular', () => {
  const r = cacheRecord({
    ID: 'abc',
    Size: '3145728',
    InUse: true,
    Description: 'mount / from exec',
    RecordType: '',
    LastUsedAt: { seconds: '1795000000', nanos: 250_000_000 },
  });
  assert.deepEqual(r, {
    id: 'abc',
    type: 'regular',
    description: 'mount / from exec',
    size: 3 * MiB,
    inUse: true,
    shared: false,
    lastUsed: new Date(1795000000250).toISOString(),
  });
  // no last use: its creation time; neither: unknown
  assert.equal(
    cacheRecord({ CreatedAt: { seconds: 1795000000 } }).lastUsed,
    new Date(1795000000000).toISOString(),
  );
  assert.equal(cacheRecord({}).lastUsed, undefined);
  assert.equal(cacheRecord({}).size, 0);
});

test('usage sums per type, largest first; records in use are not reclaimable', () => {
  const usage = cacheUsage([
    record({ type: 'regular', size: 10 * MiB }),
    record({ type: 'regular', size: 5 * MiB, inUse: true }),
    record({ type: 'exec.cachemount', size: 20 * MiB }),
    record({ type: 'source.local', size: 1 * MiB }),
  ]);
  assert.equal(usage.records, 4);
  assert.equal(usage.bytes, 36 * MiB);
  assert.equal(usage.reclaimableBytes, 31 * MiB);
  assert.deepEqual(
    usage.kinds.map((k) => [k.type, k.records, k.bytes, k.reclaimableBytes]),
    [
      ['exec.cachemount', 1, 20 * MiB, 20 * MiB],
      ['regular', 2, 15 * MiB, 10 * MiB],
      ['source.local', 1, 1 * MiB, 1 * MiB],
    ],
  );
  assert.deepEqual(cacheUsage([]), { records: 0, bytes: 0, reclaimableBytes: 0, kinds: [] });
});

test('sizes: units are powers of 1024 in any spelling; plain numbers are bytes', () => {
  assert.equal(parseByteSize('--keep-storage', '2048'), 2048);
  assert.equal(parseByteSize('--keep-storage', '512mb'), 512 * MiB);
  assert.equal(parseByteSize('--keep-storage', '10GB'), 10 * 1024 * MiB);
  assert.equal(parseByteSize('--keep-storage', '1.5g'), 1.5 * 1024 * MiB);
  assert.equal(parseByteSize('--keep-storage', '3 KiB'), 3072);
  assert.equal(parseByteSize('--keep-storage', '1T'), 1024 ** 4);
  for (const bad of ['', 'lots', '10 GBs', '-5GB', '1e3']) {
    assert.throws(
      () => parseByteSize('--keep-storage', bad),
      (err: unknown) =>
        err instanceof CogError &&
        err.message === `--keep-storage "${bad}" is not a size` &&
        /e\.g\. --keep-storage 10GB/.test(err.hint ?? ''),
      bad,
    );
  }
});

test('durations: d, h, m, s, ms, combined', () => {
  assert.equal(parseDuration('--keep-duration', '24h'), 24 * 3_600_000);
  assert.equal(parseDuration('--keep-duration', '1h30m'), 90 * 60_000);
  assert.equal(parseDuration('--keep-duration', '7d'), 7 * 86_400_000);
  assert.equal(parseDuration('--keep-duration', '45s'), 45_000);
  assert.equal(parseDuration('--keep-duration', '1.5h'), 90 * 60_000);
  assert.equal(parseDuration('--keep-duration', '250ms'), 250);
  for (const bad of ['', '24', 'h', '1x', '1h 30m', '-1h']) {
    assert.throws(
      () => parseDuration('--keep-duration', bad),
      (err: unknown) =>
        err instanceof CogError && err.message === `--keep-duration "${bad}" is not a duration`,
      bad,
    );
  }
});

test('cog cache du prints a table per type and, verbose, the records largest first', () => {
  const records = [
    record({ id: 'small0123456789', size: 1 * MiB, description: 'local source for context' }),
    record({
      id: 'large0123456789',
      size: 300 * MiB,
      inUse: true,
      description: `pulled from docker.io/library/python:3.11-slim@sha256:${'a'.repeat(64)}`,
      lastUsed: '2026-11-23T12:48:05.000Z',
    }),
  ];
  const text = formatCacheUsage(cacheUsage(records), records, true, 'unix:///run/buildkit.sock');
  const lines = text.split('\n');
  assert.match(lines[0]!, /^TYPE\s+RECORDS\s+SIZE\s+RECLAIMABLE$/);
  assert.match(lines[1]!, /^regular\s+2\s+301\.0 MiB\s+1\.0 MiB$/);
  const large = lines.findIndex((l) => l.startsWith('large0123456'));
  const small = lines.findIndex((l) => l.startsWith('small0123456'));
  assert.ok(large > 0 && small > large, 'largest first, ids cut to 12 characters');
  assert.match(lines[large]!, /300\.0 MiB\s+yes\s+2026-11-23 12:48 UTC\s+pulled from docker\.io/);
  assert.ok(lines[large]!.endsWith('…') && lines[large]!.length < 140, 'long descriptions are cut');
  assert.match(
    text,
    /Total: 301\.0 MiB in 2 records; reclaimable: 1\.0 MiB \(buildkitd at unix:\/\/\/run\/buildkit\.sock\)\n$/,
  );
  assert.ok(!formatCacheUsage(cacheUsage(records), records, false, 'd').includes('large0123456'));
  assert.equal(
    formatCacheUsage(cacheUsage([]), [], false, 'tcp://b:1234'),
    'The build cache of buildkitd at tcp://b:1234 is empty.\n',
  );
  // a filter that matches nothing is not an empty cache
  assert.equal(
    formatCacheUsage(cacheUsage([]), [], false, 'tcp://b:1234', ['id==x', 'type==regular']),
    'No record of the build cache of buildkitd at tcp://b:1234 matches --filter id==x --filter type==regular.\n',
  );
});

test('the prune question says what goes', () => {
  assert.equal(
    pruneScope({ all: false, keepDuration: undefined, keepStorage: undefined, filter: [] }),
    'all unused build cache',
  );
  assert.equal(
    pruneScope({ all: true, keepDuration: '24h', keepStorage: '10GB', filter: ['type==exec.cachemount'] }),
    'all unused build cache (frontend and internal records too) matching type==exec.cachemount, keeping what was used in the last 24h, keeping up to 10GB',
  );
});
