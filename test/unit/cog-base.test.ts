// cog-base images: which one a config may use under --use-cog-base-image (auto / true / false), the
// labels of an image built on one, and how the build falls back when the daemon cannot resolve it.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { chooseBase } from '../../src/build/build-model.js';
import {
  chooseCogBase,
  cogBaseLabels,
  cogBasePatchWarning,
  cogBaseProbeName,
  isCogBaseProbe,
  onCogBase,
} from '../../src/build/cog-base.js';
import { planInputFor } from '../../src/build/plan-input.js';
import type { Gateway, ImageConfigResult } from '../../src/buildkit/gateway.js';
import { loadConfig } from '../../src/config/index.js';
import { CogError } from '../../src/errors.js';
import type { PlanInput } from '../../src/plan/types.js';
import { hidingVertices } from '../../src/progress/hide.js';

const made: string[] = [];
after(() => made.forEach((d) => rmSync(d, { recursive: true, force: true })));

function completedFor(cogYaml: string, requirements?: string) {
  const dir = mkdtempSync(join(tmpdir(), 'cog-base-unit-'));
  made.push(dir);
  writeFileSync(join(dir, 'cog.yaml'), cogYaml);
  if (requirements !== undefined) writeFileSync(join(dir, 'requirements.txt'), requirements);
  return loadConfig({ cwd: dir, env: {} }).completed;
}

const py312 = completedFor('build:\n  python_version: "3.12"\npredict: predict.py:Predictor\n');
const oldTorch = completedFor(
  'build:\n  python_version: "3.11"\n  python_requirements: requirements.txt\npredict: predict.py:Predictor\n',
  'torch==1.13.0\n',
);
const auto = { useCogBaseImage: undefined, useCudaBaseImage: undefined };

test('auto: the cog-base image of the config’s tag, on r8.im unless COG_REGISTRY_HOST names another registry', () => {
  assert.deepEqual(chooseCogBase(py312, auto, {}), { image: 'r8.im/cog-base:python3.12', required: false });
  assert.deepEqual(chooseCogBase(py312, auto, { COG_REGISTRY_HOST: '127.0.0.1:5055' }), {
    image: '127.0.0.1:5055/cog-base:python3.12',
    required: false,
  });
  // no published tag (torch 1.13.0): nothing to try, no error
  assert.equal(oldTorch.baseImages.cogBaseTag, null);
  assert.equal(chooseCogBase(oldTorch, auto, {}), undefined);
});

test('--use-cog-base-image=true requires it; =false never uses it', () => {
  assert.deepEqual(chooseCogBase(py312, { ...auto, useCogBaseImage: true }, {}), {
    image: 'r8.im/cog-base:python3.12',
    required: true,
  });
  assert.equal(chooseCogBase(py312, { ...auto, useCogBaseImage: false }, {}), undefined);
  assert.throws(
    () => chooseCogBase(oldTorch, { ...auto, useCogBaseImage: true }, {}),
    (err: unknown) =>
      err instanceof CogError &&
      /no cog-base image is published for python3\.11-torch1\.13\.0/.test(err.message) &&
      /--use-cog-base-image=false/.test(err.hint ?? ''),
  );
});

test('--use-cog-base-image=true without a fitting image: the hint names the images with the pinned torch', () => {
  const hintFor = (completed: ReturnType<typeof completedFor>) => {
    try {
      chooseCogBase(completed, { ...auto, useCogBaseImage: true }, {});
    } catch (err) {
      assert.ok(err instanceof CogError);
      return err.hint ?? '';
    }
    assert.fail('no error');
  };
  // torch 1.13.1 has cog-base images, for Python 3.10 only: Python 3.11 with it has none
  const py311 = completedFor(
    'build:\n  python_version: "3.11"\n  gpu: true\n  python_packages: ["torch==1.13.1"]\npredict: predict.py:Predictor\n',
  );
  assert.equal(py311.baseImages.cogBaseTag, null);
  assert.ok(py311.baseImages.cogBaseWithTorch.length > 0);
  for (const tag of py311.baseImages.cogBaseWithTorch) assert.match(tag, /python3\.10-torch1\.13\.1$/);
  const hint = hintFor(py311);
  assert.match(hint, /^the cog-base images with torch 1\.13\.1: \S*python3\.10-torch1\.13\.1/);
  assert.match(hint, /python3\.10-torch1\.13\.1; use --use-cog-base-image=false/);
  assert.doesNotMatch(hint, /python3\.11/);
  // the config's Python first
  const py312 = completedFor(
    'build:\n  python_version: "3.12"\n  gpu: true\n  cuda: "11.7"\n  python_packages: ["torch==2.7.0"]\npredict: predict.py:Predictor\n',
  );
  assert.ok(py312.baseImages.cogBaseWithTorch.length > 8);
  const listed = hintFor(py312);
  assert.match(
    listed,
    /^the cog-base images with torch 2\.7\.0: ((cuda[\d.]+-)?python3\.12-torch2\.7\.0, ){4}/,
  );
  assert.match(listed, / and \d+ more; use --use-cog-base-image=false/);
  // a torch no image has
  assert.deepEqual(oldTorch.baseImages.cogBaseWithTorch, []);
  assert.match(hintFor(oldTorch), /^no cog-base image has torch 1\.13\.0 \(they have torch ≥ 1\.13\.1\)/);
});

test('--use-cog-base-image and --use-cuda-base-image together are refused, whatever their values', () => {
  for (const flags of [
    { useCogBaseImage: false, useCudaBaseImage: 'auto' },
    { useCogBaseImage: true, useCudaBaseImage: 'false' },
  ]) {
    assert.throws(() => chooseCogBase(py312, flags, {}), /mutually exclusive/);
  }
  assert.equal(
    chooseCogBase(py312, { useCogBaseImage: undefined, useCudaBaseImage: 'false' }, {})?.required,
    false,
  );
});

test('labels name the image and its last layer by DiffID and index; an image without layers is refused', () => {
  assert.deepEqual(
    cogBaseLabels('r8.im/cog-base:python3.12', {
      rootfs: { type: 'layers', diff_ids: ['sha256:aa', 'sha256:bb'] },
    }),
    {
      'run.cog.cog-base-image-name': 'r8.im/cog-base:python3.12',
      'run.cog.cog-base-image-last-layer-sha': 'sha256:bb',
      'run.cog.cog-base-image-last-layer-idx': '1',
    },
  );
  assert.throws(() => cogBaseLabels('x/cog-base:y', {}), /no layers/);
});

test('the plan input carries the candidate; resolving it switches base, kind and labels', () => {
  const input = planInputFor(py312, {
    cogVersion: '0.1.0',
    sourceExclude: [],
    cogBase: { image: 'r8.im/cog-base:python3.12', required: false },
  });
  assert.equal(input.baseImage, 'python:3.12-slim');
  assert.deepEqual(input.cogBase, { image: 'r8.im/cog-base:python3.12', required: false });
  const on = onCogBase(input, 'r8.im/cog-base:python3.12', { 'run.cog.cog-base-image-name': 'n' });
  assert.equal(on.baseKind, 'cog-base');
  assert.equal(on.baseImage, 'r8.im/cog-base:python3.12');
  assert.equal(on.cogBase, undefined);
  assert.equal(on.labels['run.cog.cog-base-image-name'], 'n');
  assert.equal(on.labels['run.cog.version'], '0.1.0');
});

/** A gateway whose lookups settle when the test says so, recording what was asked and in what order. */
function fakeGateway(known: Record<string, ImageConfigResult>) {
  const asked: { ref: string; logName: string | undefined }[] = [];
  const pending: (() => void)[] = [];
  const gw = {
    resolveImageConfig(ref: string, options?: { logName?: string }) {
      asked.push({ ref, logName: options?.logName });
      return new Promise<ImageConfigResult>((resolve, reject) => {
        pending.push(() => {
          const found = known[ref];
          if (found) resolve(found);
          else reject(new Error(`${ref}: not found`));
        });
      });
    },
  } as unknown as Gateway;
  const settleAll = async () => {
    await new Promise((r) => setImmediate(r));
    while (pending.length > 0) pending.shift()?.();
  };
  return { gw, asked, settleAll };
}

const cogBaseRef = '127.0.0.1:5055/cog-base:python3.12';
const fallbackRef = 'docker.io/library/python:3.12-slim';
const baseResult = (ref: string): ImageConfigResult => ({
  ref,
  digest: `sha256:${'1'.repeat(64)}`,
  config: { rootfs: { type: 'layers', diff_ids: ['sha256:aa', 'sha256:bb', 'sha256:cc'] } },
});
const input: PlanInput = planInputFor(py312, {
  cogVersion: '0.1.0',
  sourceExclude: [],
  cogBase: { image: cogBaseRef, required: false },
});

test('auto: cog-base and fallback are looked up at once; the cog-base image wins when it resolves', async () => {
  const { gw, asked, settleAll } = fakeGateway({
    [cogBaseRef]: baseResult(cogBaseRef),
    [fallbackRef]: baseResult(fallbackRef),
  });
  const warnings: string[] = [];
  const chosen = chooseBase(gw, input, (m) => warnings.push(m));
  await new Promise((r) => setImmediate(r));
  // both asked before either answered
  assert.deepEqual(asked.map((a) => a.ref).sort(), [cogBaseRef, fallbackRef].sort());
  // both hidden from the progress display: the fallback's outcome does not matter here
  assert.ok(isCogBaseProbe(asked.find((a) => a.ref === cogBaseRef)?.logName ?? ''));
  assert.ok(isCogBaseProbe(asked.find((a) => a.ref === fallbackRef)?.logName ?? ''));
  assert.ok(!isCogBaseProbe(`[internal] load metadata for ${fallbackRef}`));
  await settleAll();
  const result = await chosen;
  assert.equal(result.input.baseKind, 'cog-base');
  assert.equal(result.input.baseImage, cogBaseRef);
  assert.equal(result.input.labels['run.cog.cog-base-image-last-layer-idx'], '2');
  assert.equal(result.input.labels['run.cog.cog-base-image-last-layer-sha'], 'sha256:cc');
  assert.deepEqual(warnings, []);
});

test('auto: a cog-base image that does not resolve is one warning naming it, and the fallback base', async () => {
  const { gw, settleAll } = fakeGateway({ [fallbackRef]: baseResult(fallbackRef) });
  const warnings: string[] = [];
  const chosen = chooseBase(gw, input, (m) => warnings.push(m));
  await settleAll();
  const result = await chosen;
  assert.equal(result.input.baseKind, 'python-slim');
  assert.equal(result.input.baseImage, 'python:3.12-slim');
  assert.equal(result.input.cogBase, undefined);
  assert.equal(result.input.labels['run.cog.cog-base-image-name'], undefined);
  assert.equal(result.base.ref, fallbackRef);
  assert.equal(warnings.length, 1);
  assert.match(
    warnings[0] ?? '',
    /127\.0\.0\.1:5055\/cog-base:python3\.12 \(.*not found\).*python:3\.12-slim/,
  );
});

test('required: a cog-base image that does not resolve fails, naming it; the fallback is not looked up', async () => {
  const { gw, asked, settleAll } = fakeGateway({ [fallbackRef]: baseResult(fallbackRef) });
  const chosen = chooseBase(gw, { ...input, cogBase: { image: cogBaseRef, required: true } }, () => {
    throw new Error('no warning expected');
  });
  await settleAll();
  await assert.rejects(
    chosen,
    (err: unknown) =>
      err instanceof CogError &&
      err.message.includes(cogBaseRef) &&
      /COG_REGISTRY_HOST/.test(err.hint ?? '') &&
      /--use-cog-base-image=false/.test(err.hint ?? ''),
  );
  assert.deepEqual(
    asked.map((a) => a.ref),
    [cogBaseRef],
  );
});

test('the progress display hides the auto-mode probe, with its statuses and logs', () => {
  const visible = hidingVertices(isCogBaseProbe);
  const shown = visible({
    vertexes: [
      { digest: 'sha256:probe', name: cogBaseProbeName(cogBaseRef), error: 'not found' },
      { digest: 'sha256:other', name: '[internal] load metadata for python:3.12-slim' },
    ],
    logs: [{ vertex: 'sha256:probe' }, { vertex: 'sha256:other' }],
  });
  assert.deepEqual(
    shown.vertexes?.map((v) => v.digest),
    ['sha256:other'],
  );
  assert.deepEqual(
    shown.logs?.map((l) => l.vertex),
    ['sha256:other'],
  );
  // a later message about the probe (its completion) names only its digest
  assert.deepEqual(visible({ statuses: [{ vertex: 'sha256:probe' }] }).statuses, []);
});

test('a python_version with a patch number gets a warning naming the minor image', () => {
  assert.match(
    cogBasePatchWarning('3.11.4') ?? '',
    /python_version 3\.11\.4 looks for the python3\.11 image/,
  );
  assert.equal(cogBasePatchWarning('3.11'), undefined);
  assert.equal(cogBasePatchWarning(null), undefined);
});
