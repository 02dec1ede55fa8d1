// The effective concurrency a build bakes: cog.yaml's concurrency.max, else @cog.concurrent(max=N),
// refused above 1 on a run()/predict() that is not async; it reaches the ENV and run.cog.config.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { withEffectiveConcurrency } from '../../src/build/concurrency.js';
import { planInputFor } from '../../src/build/plan-input.js';
import { completeConfig, loadCompatData } from '../../src/config/index.js';
import type { CogConfig, CompletedConfig } from '../../src/config/index.js';
import { CogError } from '../../src/errors.js';
import { planBuild } from '../../src/plan/plan.js';
import type { PredictorMetadata } from '../../src/schema/index.js';

const compat = loadCompatData({});

function completed(extra: Partial<CogConfig> = {}): CompletedConfig {
  const r = completeConfig({
    config: { build: { python_version: '3.11' }, run: 'predict.py:Predictor', ...extra },
    configFile: 'cog.yaml',
    projectDir: '/project',
    requirements: { file: null, displayFile: null, lines: [] },
    compat,
    env: {},
    cwd: '/project',
  });
  assert.ok(r.completed !== undefined, JSON.stringify(r.errors));
  return r.completed;
}

function metadata(isAsync: boolean, concurrencyMax?: number): PredictorMetadata {
  return {
    mode: 'predict',
    file: 'predict.py',
    method: 'Predictor.predict',
    line: 6,
    isAsync,
    concurrencyMax,
  };
}

/** The baked ENV value and the run.cog.config label's concurrency of a build of `c`. */
function baked(c: CompletedConfig): { env: string | undefined; label: unknown } {
  const input = planInputFor(c, { cogVersion: '0.0.0-test', sourceExclude: [] });
  const env = planBuild(input)
    .steps.flatMap((s) => (s.kind === 'env' ? s.env : []))
    .find(([name]) => name === 'COG_MAX_CONCURRENCY')?.[1];
  const label = (JSON.parse(input.labels['run.cog.config'] ?? '{}') as { concurrency?: unknown }).concurrency;
  return { env, label };
}

test('the decorator is used when cog.yaml has no concurrency: baked as ENV and in run.cog.config', () => {
  const c = withEffectiveConcurrency(completed(), metadata(true, 4));
  assert.deepEqual(c.concurrency, { max: 4 });
  assert.deepEqual(baked(c), { env: '4', label: { max: 4 } });
});

test("cog.yaml's concurrency wins over the decorator", () => {
  const c = withEffectiveConcurrency(completed({ concurrency: { max: 2 } }), metadata(true, 8));
  assert.deepEqual(c.concurrency, { max: 2 });
  assert.deepEqual(baked(c), { env: '2', label: { max: 2 } });
});

test('no decorator and no cog.yaml concurrency, or an unread predictor: nothing is baked', () => {
  const plain = completed();
  assert.equal(withEffectiveConcurrency(plain, metadata(false)), plain);
  assert.equal(withEffectiveConcurrency(plain, undefined), plain);
  assert.deepEqual(baked(plain), { env: undefined, label: undefined });
});

test("cog.yaml's concurrency.max > 1 on a run()/predict() that is not async is refused, naming both", () => {
  assert.throws(
    () => withEffectiveConcurrency(completed({ concurrency: { max: 2 } }), metadata(false)),
    (e: unknown) => {
      assert.ok(e instanceof CogError);
      assert.equal(
        e.message,
        'cog.yaml: concurrency.max is 2, which requires an async run() or predict() method, but Predictor.predict() (predict.py:6) is not async',
      );
      assert.match(e.hint ?? '', /async def predict\(\.\.\.\)/);
      return true;
    },
  );
  // max 1 needs no async method, and an unread predictor leaves cog.yaml's value unchecked
  const one = completed({ concurrency: { max: 1 } });
  assert.equal(withEffectiveConcurrency(one, metadata(false)), one);
  const two = completed({ concurrency: { max: 2 } });
  assert.equal(withEffectiveConcurrency(two, undefined), two);
});

test('@concurrent(max > 1) on Python 3.10 is refused as cog.yaml concurrency is (it was baked)', () => {
  const old = completed({ build: { python_version: '3.10' } });
  assert.throws(
    () => withEffectiveConcurrency(old, metadata(true, 3)),
    (err: unknown) =>
      err instanceof CogError &&
      err.message ===
        'predict.py:6: @concurrent(max=3) on Predictor.predict() requires Python 3.11 or higher (build.python_version is 3.10)' &&
      /python_version: "3\.11"/.test(err.hint ?? ''),
  );
  // one at a time is fine there
  assert.equal(withEffectiveConcurrency(old, metadata(true, 1)).concurrency?.max, 1);
});
