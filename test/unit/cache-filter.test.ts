// `cog cache du/prune --filter`: the fields a filter names are checked before buildkitd sees them (a
// field the daemon does not know matches nothing with == and everything with !=).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  checkCacheFilters,
  daemonFilter,
  filterFields,
  quotedSpacedValue,
  takeUntilFilter,
} from '../../src/buildkit/cache-filter.js';
import { CogError } from '../../src/errors.js';

test('the fields of each clause are read, whatever the operator and quoting', () => {
  assert.deepEqual(filterFields('type==exec.cachemount'), ['type']);
  assert.deepEqual(filterFields('description~=python:3.11-slim,inuse'), ['description', 'inuse']);
  assert.deepEqual(filterFields(' id != abc , private '), ['id', 'private']);
  assert.deepEqual(filterFields('description~="a,b c",type==regular'), ['description', 'type']);
  assert.deepEqual(filterFields('description~=/a,b/,shared'), ['description', 'shared']);
  assert.deepEqual(filterFields('labels.foo==x'), ['labels']);
  assert.deepEqual(filterFields('"bogus"==x'), ['bogus']);
  assert.deepEqual(filterFields('until=24h'), ['until']);
});

test('text that is not filter syntax is left to buildkitd', () => {
  for (const text of ['', 'description~~x', '==x', 'type==', 'a==b,', 'description~="open']) {
    assert.equal(filterFields(text), undefined, text);
  }
});

test('a field cache records do not have is refused, naming --filter and the fields there are', () => {
  assert.throws(
    () => checkCacheFilters(['type==regular', 'bogus==x']),
    (err: unknown) =>
      err instanceof CogError &&
      err.message === '--filter bogus==x: build cache records have no field "bogus"' &&
      /\bid, type, description, inuse, mutable, immutable, shared, private or parents\b/.test(
        err.hint ?? '',
      ) &&
      /--filter type==exec\.cachemount/.test(err.hint ?? ''),
  );
  // != on an unknown field would match every record: a prune of everything
  assert.throws(() => checkCacheFilters(['inuse,nosuch!=x']), /no field "nosuch"/);
  assert.throws(
    () => checkCacheFilters(['until=24h']),
    (err: unknown) => err instanceof CogError && /--keep-duration/.test(err.hint ?? ''),
  );
});

test('filters on known fields, and text buildkitd will judge, pass', () => {
  checkCacheFilters([]);
  checkCacheFilters([
    'type==exec.cachemount',
    'description~=pip,inuse',
    'id!=abc',
    'mutable',
    'immutable',
    'shared',
    'private',
    'parents~=x',
    'parent==x',
    'description~~x',
  ]);
});

test('the --filter flags go to buildkitd as one filter, so that a record must match all of them', () => {
  // as a list, buildkitd keeps a record matching any one: a prune would remove far more than asked
  assert.deepEqual(daemonFilter(['type==regular', 'description~=pip,inuse']), [
    'type==regular,description~=pip,inuse',
  ]);
  assert.deepEqual(daemonFilter(['id==x']), ['id==x']);
  assert.deepEqual(daemonFilter([]), []);
  assert.deepEqual(daemonFilter([' ', '']), []);
});

test("a prune's --filter until=DURATION (buildx's) is its keep duration, and leaves the other filters", () => {
  assert.deepEqual(takeUntilFilter(['until=24h'], undefined), { filter: [], keepDuration: '24h' });
  assert.deepEqual(takeUntilFilter(['type==regular', ' until == 1h30m '], undefined), {
    filter: ['type==regular'],
    keepDuration: '1h30m',
  });
  assert.deepEqual(takeUntilFilter(['type==regular'], '7d'), {
    filter: ['type==regular'],
    keepDuration: '7d',
  });
  assert.deepEqual(takeUntilFilter([], undefined), { filter: [], keepDuration: undefined });
  // the same length of time, however written, is no conflict
  assert.deepEqual(takeUntilFilter(['until=24h'], '1d'), { filter: [], keepDuration: '1d' });
  assert.deepEqual(takeUntilFilter(['until=60m', 'until=1h'], undefined), {
    filter: [],
    keepDuration: '60m',
  });
});

test('until with a different --keep-duration, a bad duration, or among other clauses is refused', () => {
  assert.throws(
    () => takeUntilFilter(['until=24h'], '7d'),
    (err: unknown) =>
      err instanceof CogError &&
      err.message === '--filter until=24h and --keep-duration 7d ask for different durations' &&
      /give one of them/.test(err.hint ?? ''),
  );
  assert.throws(
    () => takeUntilFilter(['until=1h', 'until=2h'], undefined),
    /--filter until=2h and --filter until=1h ask for different durations/,
  );
  assert.throws(
    () => takeUntilFilter(['until=yesterday'], undefined),
    (err: unknown) =>
      err instanceof CogError &&
      err.message === '--filter until=yesterday: "yesterday" is not a duration' &&
      /--filter until=24h/.test(err.hint ?? ''),
  );
  assert.throws(() => takeUntilFilter(['until='], undefined), /--filter until=: "" is not a duration/);
  assert.throws(
    () => takeUntilFilter(['type==regular,until=24h'], undefined),
    (err: unknown) =>
      err instanceof CogError &&
      /^--filter type==regular,until=24h: until cannot be combined/.test(err.message) &&
      /a --filter of its own/.test(err.hint ?? ''),
  );
  assert.throws(() => takeUntilFilter([], 'soon'), /--keep-duration "soon" is not a duration/);
});

test('a value with an unquoted space (which buildkitd ends at the space) is offered quoted in the hint', () => {
  assert.equal(quotedSpacedValue('description~=pulled from'), 'description~="pulled from"');
  assert.equal(quotedSpacedValue(' description == a "b" c '), 'description=="a \\"b\\" c"');
  assert.equal(quotedSpacedValue('description~=a\\.b c'), 'description~="a\\\\.b c"');
  assert.equal(quotedSpacedValue('description~="pulled from"'), undefined, 'already quoted');
  assert.equal(quotedSpacedValue('description~=pulled'), undefined, 'no space');
  assert.equal(quotedSpacedValue('description~=a b,inuse'), undefined, 'several clauses: not guessed');
});
