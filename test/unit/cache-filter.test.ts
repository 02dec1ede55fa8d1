// `cog cache du/prune --filter`: the fields a filter names are checked before buildkitd sees them (a
// field the daemon does not know matches nothing with == and everything with !=).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkCacheFilters, daemonFilter, filterFields } from '../../src/buildkit/cache-filter.js';
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
