// The failure message of the reproducibility e2e (which layers, by step, and labels differ), and when it
// builds its pair again: a version drift only (a package release between the builds).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  type BuiltPair,
  type ImageFacts,
  buildPairRetryingDrift,
  imageDifference,
  versionDrift,
} from '../support/image-difference.js';

const a: ImageFacts = {
  layers: ['sha256:base', 'sha256:pip-1', 'sha256:cog-1'],
  steps: ['debootstrap', 'uv run pip install -r /tmp/requirements.txt', 'uv pip install cog'],
  labels: { 'run.cog.pip_freeze': 'certifi==2026.10.19.post1\nsix==1.17.0', 'run.cog.version': '0.23.1' },
};

test('the same layers and labels: no difference', () => {
  assert.equal(imageDifference(a, { ...a, labels: { ...a.labels } }), '');
});

test('a differing layer is named by its step; a differing pip freeze by the packages that changed', () => {
  const b: ImageFacts = {
    ...a,
    layers: ['sha256:base', 'sha256:pip-1', 'sha256:cog-2'],
    labels: { ...a.labels, 'run.cog.pip_freeze': 'certifi==2026.10.18\nsix==1.17.0' },
  };
  assert.equal(
    imageDifference(a, b),
    'layer 2 (uv pip install cog): sha256:cog-1 vs sha256:cog-2\n' +
      'run.cog.pip_freeze: certifi==2026.10.19.post1 vs certifi==2026.10.18 (the package index changed between the builds)',
  );
});

test('other labels and a different layer count are listed too', () => {
  const b: ImageFacts = {
    ...a,
    layers: a.layers.slice(0, 2),
    labels: { 'run.cog.pip_freeze': a.labels['run.cog.pip_freeze'] ?? '' },
  };
  assert.equal(imageDifference(a, b), 'layer count: 3 vs 2\nlabel run.cog.version: "0.23.1" vs absent');
});

describe('versionDrift', () => {
  const drifted: ImageFacts = {
    ...a,
    layers: ['sha256:base', 'sha256:pip-1', 'sha256:cog-2'],
    labels: { ...a.labels, 'run.cog.pip_freeze': 'certifi==2026.10.18\nsix==1.17.0' },
  };

  test('another version of a package, in the freeze and a pip install layer: a drift, with what changed', () => {
    assert.equal(
      versionDrift(a, drifted),
      'certifi 2026.10.19.post1 → 2026.10.18 in run.cog.pip_freeze; layer 2 (uv pip install cog)',
    );
  });

  test('two packages in two pip install layers, names spelled as pip normalizes them: a drift', () => {
    const b: ImageFacts = {
      ...a,
      layers: ['sha256:base', 'sha256:pip-2', 'sha256:cog-2'],
      labels: { ...a.labels, 'run.cog.pip_freeze': 'Certifi==2026.10.20\nsix==1.18.0' },
    };
    assert.equal(
      versionDrift(a, b),
      'certifi 2026.10.19.post1 → 2026.10.20, six 1.17.0 → 1.18.0 in run.cog.pip_freeze; layer 1 (uv run pip install -r /tmp/requirements.txt), layer 2 (uv pip install cog)',
    );
    const underscores = (facts: ImageFacts, freeze: string): ImageFacts => ({
      ...facts,
      labels: { ...facts.labels, 'run.cog.pip_freeze': freeze },
    });
    assert.match(
      versionDrift(
        underscores(a, 'typing_extensions==4.15.0'),
        underscores(drifted, 'typing-extensions==4.16.0'),
      ) ?? '',
      /^typing-extensions 4\.15\.0 → 4\.16\.0 /,
    );
  });

  const notDrift: [string, ImageFacts][] = [
    ['the same image', { ...a }],
    [
      'a layer that is no pip install differs too',
      { ...drifted, layers: ['sha256:base-2', ...drifted.layers.slice(1)] },
    ],
    [
      'the same freeze with another pip install layer (a nondeterministic build)',
      { ...drifted, labels: a.labels },
    ],
    ['another freeze with the same layers', { ...a, labels: drifted.labels }],
    ['another label differs too', { ...drifted, labels: { ...drifted.labels, 'run.cog.version': '0.24.0' } }],
    ['a label only one image has', { ...drifted, labels: { ...drifted.labels, extra: 'x' } }],
    [
      'a package added',
      {
        ...drifted,
        labels: { ...a.labels, 'run.cog.pip_freeze': `${a.labels['run.cog.pip_freeze']}\nidna==3.20` },
      },
    ],
    [
      'a package replaced by another',
      {
        ...drifted,
        labels: { ...a.labels, 'run.cog.pip_freeze': 'certifi2==2026.10.19.post1\nsix==1.17.0' },
      },
    ],
    [
      'a line that pins no version changed',
      {
        ...drifted,
        labels: { ...a.labels, 'run.cog.pip_freeze': 'certifi @ file:///wheels/certifi.whl\nsix==1.17.0' },
      },
    ],
    [
      'the same version spelled otherwise',
      { ...drifted, labels: { ...a.labels, 'run.cog.pip_freeze': 'CERTIFI==2026.10.19.post1\nsix==1.17.0' } },
    ],
    ['no freeze on one side', { ...drifted, labels: { 'run.cog.version': '0.23.1' } }],
    ['a layer fewer', { ...drifted, layers: drifted.layers.slice(0, 2), steps: drifted.steps.slice(0, 2) }],
    ['another step', { ...drifted, steps: [...drifted.steps.slice(0, 2), 'uv pip install cog==0.24'] }],
  ];
  for (const [what, b] of notDrift)
    test(`not a drift: ${what}`, () => {
      assert.equal(versionDrift(a, b), undefined);
    });
});

describe('buildPairRetryingDrift', () => {
  const facts: Record<string, ImageFacts> = {
    same: a,
    drifted: {
      ...a,
      layers: ['sha256:base', 'sha256:pip-1', 'sha256:cog-2'],
      labels: { ...a.labels, 'run.cog.pip_freeze': 'certifi==2026.10.18\nsix==1.17.0' },
    },
    other: { ...a, layers: ['sha256:base-2', ...a.layers.slice(1)] },
  };
  /** A builder whose pair `attempt` is `pairs[attempt - 1]`: the second image's facts, or 'same'. */
  const run = async (pairs: string[]) => {
    const attempts: number[] = [];
    const logged: string[] = [];
    const result = await buildPairRetryingDrift(
      async (attempt): Promise<BuiltPair> => {
        attempts.push(attempt);
        const second = pairs[attempt - 1] ?? 'missing';
        return {
          digests: ['sha256:one', second === 'same' ? 'sha256:one' : `sha256:${second}`],
          refs: ['same', second],
        };
      },
      async (ref) => facts[ref] ?? assert.fail(`no facts for ${ref}`),
      (line) => logged.push(line),
    );
    return { ...result, built: attempts, logged };
  };

  test('the same digests: one pair, nothing logged', async () => {
    const r = await run(['same']);
    assert.deepEqual([r.built, r.why, r.logged], [[1], '', []]);
  });

  test('a version drift: logged, with why, and the pair built again, whose result counts', async () => {
    const r = await run(['drifted', 'same']);
    assert.deepEqual(r.built, [1, 2]);
    assert.equal(r.why, '');
    assert.deepEqual(r.logged, [
      'the two builds differ only by a package release between them (certifi 2026.10.19.post1 → 2026.10.18 in run.cog.pip_freeze; layer 2 (uv pip install cog)); building the pair again',
    ]);
  });

  test('any other difference fails at once: no second pair', async () => {
    const r = await run(['other', 'same']);
    assert.deepEqual([r.built, r.logged], [[1], []]);
    assert.match(r.why, /^layer 0 \(debootstrap\): sha256:base vs sha256:base-2$/);
  });

  test('a drift again in the second pair is not retried a third time', async () => {
    const r = await run(['drifted', 'drifted', 'same']);
    assert.deepEqual(r.built, [1, 2]);
    assert.equal(r.logged.length, 1);
    assert.match(r.why, /the package index changed between the builds/);
  });

  test('a drift, then another difference: that difference is the result', async () => {
    const r = await run(['drifted', 'other']);
    assert.deepEqual(r.built, [1, 2]);
    assert.match(r.why, /^layer 0 /);
  });
});
