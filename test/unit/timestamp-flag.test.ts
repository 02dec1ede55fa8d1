// `--timestamp` / SOURCE_DATE_EPOCH: whole seconds, -1 for none (upstream's default), anything else
// refused naming where it came from.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sourceDateEpoch } from '../../src/cli/timestamp-flag.js';
import { CogError } from '../../src/errors.js';

test('--timestamp takes whole seconds, and -1 rewrites nothing, SOURCE_DATE_EPOCH included', () => {
  assert.equal(sourceDateEpoch('0', {}), 0);
  assert.equal(sourceDateEpoch('1700000000', { SOURCE_DATE_EPOCH: '5' }), 1700000000, 'the flag first');
  assert.equal(sourceDateEpoch('-1', { SOURCE_DATE_EPOCH: '5' }), undefined);
  assert.equal(sourceDateEpoch(undefined, { SOURCE_DATE_EPOCH: '5' }), 5);
  assert.equal(sourceDateEpoch(undefined, { SOURCE_DATE_EPOCH: '' }), undefined, 'empty is unset');
  assert.equal(sourceDateEpoch(undefined, {}), undefined);
});

test('a timestamp that is not whole seconds is refused, naming the flag or the variable', () => {
  for (const bad of ['abc', '1.5', '', '-5', '1e30', '99999999999999999999', '0x10']) {
    assert.throws(
      () => sourceDateEpoch(bad, {}),
      (err: unknown) =>
        err instanceof CogError &&
        err.message === `--timestamp ${JSON.stringify(bad)} is not a time in whole seconds since 1970` &&
        /-1 to keep/.test(err.hint ?? ''),
    );
  }
  assert.throws(
    () => sourceDateEpoch(undefined, { SOURCE_DATE_EPOCH: 'abc' }),
    /^CogError: SOURCE_DATE_EPOCH "abc" is not a time in whole seconds since 1970$/,
  );
});
