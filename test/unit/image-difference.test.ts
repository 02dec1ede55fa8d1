// The failure message of the reproducibility e2e: which layers (by step) and labels differ.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { imageDifference, type ImageFacts } from '../support/image-difference.js';

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
