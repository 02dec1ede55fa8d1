// Completion: CUDA / cuDNN / base image from the framework pins, requirement rewriting, wheels, label.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  chooseWheels,
  completeConfig,
  configLabel,
  cudaBaseImageFor,
  cudasFromTorch,
  loadCompatData,
  parseWheelEnv,
} from '../../src/config/index.js';
import type { BuildConfig, CogConfig, CompletionResult } from '../../src/config/index.js';

const compat = loadCompatData({});

function complete(
  build: BuildConfig,
  requirements: string[],
  extra: Partial<CogConfig> = {},
  env = {},
): CompletionResult {
  return completeConfig({
    config: { build: { python_version: '3.12', ...build }, ...extra },
    configFile: 'cog.yaml',
    projectDir: '/project',
    requirements: {
      file: 'requirements.txt',
      displayFile: 'requirements.txt',
      lines: requirements.map((text, i) => ({ text, line: i + 1 })),
    },
    compat,
    env,
    cwd: '/project',
  });
}

interface CudaCase {
  name: string;
  build: BuildConfig;
  reqs: string[];
  cuda: string | null;
  cudnn: string | null;
  image: string | null;
  cogBase?: string | null;
  warning?: RegExp;
}

const CUDA_CASES: CudaCase[] = [
  {
    name: 'gpu + torch==2.0.1 → 11.8 / 8',
    build: { gpu: true },
    reqs: ['torch==2.0.1'],
    cuda: '11.8',
    cudnn: '8',
    image: 'nvidia/cuda:11.8.0-cudnn8-devel-ubuntu22.04',
  },
  {
    name: 'gpu + torch==2.7.0 → 12.8 / 9',
    build: { gpu: true },
    reqs: ['torch==2.7.0'],
    cuda: '12.8',
    cudnn: '9',
    // the matrix names the cuDNN 9 images "cudnn-devel"
    image: 'nvidia/cuda:12.8.1-cudnn-devel-ubuntu24.04',
    cogBase: 'cuda12.8-python3.12-torch2.7.0',
  },
  {
    name: 'gpu without a framework → default 11.8 / 8',
    build: { gpu: true },
    reqs: ['numpy==2.0.0'],
    cuda: '11.8',
    cudnn: '8',
    image: 'nvidia/cuda:11.8.0-cudnn8-devel-ubuntu22.04',
    cogBase: 'cuda11.8-python3.12',
  },
  {
    name: 'gpu + tensorflow==2.15.0 → 12.2 / 8',
    build: { gpu: true },
    reqs: ['tensorflow==2.15.0'],
    cuda: '12.2',
    cudnn: '8',
    image: 'nvidia/cuda:12.2.2-cudnn8-devel-ubuntu22.04',
  },
  {
    name: 'gpu + tensorflow==2.18.0 → 12.5 / 9',
    build: { gpu: true },
    reqs: ['tensorflow==2.18.0'],
    cuda: '12.5',
    cudnn: '9',
    image: 'nvidia/cuda:12.5.1-cudnn-devel-ubuntu22.04',
  },
  {
    name: 'tensorflow wins over torch',
    build: { gpu: true },
    reqs: ['torch==2.7.0', 'tensorflow==2.13.0'],
    cuda: '11.8',
    cudnn: '8',
    image: 'nvidia/cuda:11.8.0-cudnn8-devel-ubuntu22.04',
  },
  {
    name: 'torch +cu118 suffix picks that CUDA',
    build: { gpu: true },
    reqs: ['torch==2.3.1+cu118'],
    cuda: '11.8',
    cudnn: '8',
    image: 'nvidia/cuda:11.8.0-cudnn8-devel-ubuntu22.04',
    cogBase: 'cuda11.8-python3.12-torch2.3.1',
  },
  {
    name: 'torch major.minor matches every patch release',
    build: { gpu: true },
    reqs: ['torch==2.3'],
    cuda: '12.1',
    cudnn: '8',
    image: 'nvidia/cuda:12.1.1-cudnn8-devel-ubuntu22.04',
  },
  {
    name: 'torch>=2.0 uses the first specifier value',
    build: { gpu: true },
    reqs: ['torch>=2.0'],
    cuda: '11.8',
    cudnn: '8',
    image: 'nvidia/cuda:11.8.0-cudnn8-devel-ubuntu22.04',
  },
  {
    name: 'user cuda kept, cuDNN = latest for it',
    build: { gpu: true, cuda: '12.1' },
    reqs: ['torch==2.3.1'],
    cuda: '12.1',
    cudnn: '8',
    image: 'nvidia/cuda:12.1.1-cudnn8-devel-ubuntu22.04',
  },
  {
    name: 'user cuda torch does not list → warning only',
    build: { gpu: true, cuda: '12.4' },
    reqs: ['torch==2.7.0'],
    cuda: '12.4',
    cudnn: '9',
    image: 'nvidia/cuda:12.4.1-cudnn-devel-ubuntu22.04',
    warning: /Cog doesn't know if CUDA 12.4 is compatible with PyTorch 2.7.0.*Try 12.8 instead/,
  },
  {
    name: 'user cuda + cudnn',
    build: { gpu: true, cuda: '11.8', cudnn: '8' },
    reqs: [],
    cuda: '11.8',
    cudnn: '8',
    image: 'nvidia/cuda:11.8.0-cudnn8-devel-ubuntu22.04',
  },
  {
    name: 'torch 1.13.0 has no cog-base image',
    build: { gpu: true },
    reqs: ['torch==1.13.0'],
    cuda: '11.7',
    cudnn: '8',
    image: 'nvidia/cuda:11.7.1-cudnn8-devel-ubuntu22.04',
    cogBase: null,
  },
  {
    name: 'CPU: no CUDA at all',
    build: {},
    reqs: ['torch==2.7.0'],
    cuda: null,
    cudnn: null,
    image: null,
    cogBase: 'python3.12-torch2.7.0',
  },
];

for (const c of CUDA_CASES) {
  test(`completion: ${c.name}`, () => {
    const r = complete(c.build, c.reqs);
    assert.deepEqual(r.errors, []);
    const done = r.completed;
    assert.ok(done !== undefined);
    assert.equal(done.cuda, c.cuda);
    assert.equal(done.cudnn, c.cudnn);
    assert.equal(done.baseImages.cuda, c.image);
    assert.equal(done.baseImages.python, 'python:3.12-slim');
    if (c.cogBase !== undefined) assert.equal(done.baseImages.cogBaseTag, c.cogBase);
    if (c.warning !== undefined)
      assert.ok(
        r.warnings.some((w) => c.warning?.test(w.message)),
        JSON.stringify(r.warnings),
      );
    else assert.deepEqual(r.warnings, []);
  });
}

interface ErrorCase {
  name: string;
  build: BuildConfig;
  reqs: string[];
  message: RegExp;
  path: string;
  line?: number;
}

const ERROR_CASES: ErrorCase[] = [
  {
    name: 'gpu with unpinned torch',
    build: { gpu: true },
    reqs: ['numpy', 'torch'],
    message: /torch version must be specified when using CUDA/,
    path: 'build,python_requirements',
    line: 2,
  },
  {
    name: 'gpu with a torch the matrix does not know',
    build: { gpu: true },
    reqs: ['torch==0.4.0'],
    message: /doesn't know what CUDA version is compatible with torch==0.4.0/,
    path: 'build,python_requirements',
    line: 1,
  },
  {
    name: 'gpu with an unknown tensorflow and no cuda',
    build: { gpu: true },
    reqs: ['tensorflow==1.0.0'],
    message: /doesn't know what CUDA version is compatible with tensorflow==1.0.0/,
    path: 'build,python_requirements',
    line: 1,
  },
  {
    name: 'tensorflow with a cuDNN it was not built for',
    build: { gpu: true, cudnn: '9' },
    reqs: ['tensorflow==2.15.0'],
    message: /cuDNN version 9 is not compatible with tensorflow==2.15.0.*Compatible cuDNN version is: 8/,
    path: 'build,cudnn',
  },
  {
    name: 'tensorflow with a CUDA of another major',
    build: { gpu: true, cuda: '11.8' },
    reqs: ['tensorflow==2.15.0'],
    message: /TensorFlow 2.15.0 requires CUDA 12.2/,
    path: 'build,cuda',
  },
  {
    name: 'a CUDA no base image offers',
    build: { gpu: true, cuda: '12.99' },
    reqs: [],
    message: /CUDA 12.99 is not supported by Cog/,
    path: 'build,cuda',
  },
  {
    name: 'local file URL requirement',
    build: {},
    reqs: ['file:///tmp/x.whl'],
    message: /local file URL requirements are not supported/,
    path: 'build,python_requirements',
    line: 1,
  },
  {
    name: 'artifact outside the project',
    build: {},
    reqs: ['numpy', '../elsewhere/pkg-1.0-py3-none-any.whl'],
    message: /outside the project directory/,
    path: 'build,python_requirements',
    line: 2,
  },
];

for (const c of ERROR_CASES) {
  test(`completion error: ${c.name}`, () => {
    const r = complete(c.build, c.reqs);
    assert.equal(r.completed, undefined);
    const err = r.errors.find((e) => c.message.test(e.message));
    assert.ok(err !== undefined, JSON.stringify(r.errors));
    assert.equal(err.path.join(','), c.path);
    if (c.line !== undefined) assert.deepEqual(err.location, { file: 'requirements.txt', line: c.line });
  });
}

test('requirements rewriting: GPU torch gets the CUDA index of the chosen CUDA', () => {
  const r = complete({ gpu: true }, ['torch==2.7.0', 'torchvision==0.22.0', 'numpy==2.2.6']);
  assert.equal(
    r.completed?.requirements.text,
    [
      '--extra-index-url https://download.pytorch.org/whl/cu128/',
      'torch==2.7.0',
      'torchvision==0.22.0',
      'numpy==2.2.6',
    ].join('\n'),
  );
});

test('requirements rewriting: GPU torch 2.0.1 → cu118 index; +cu118 suffix dropped', () => {
  assert.equal(
    complete({ gpu: true }, ['torch==2.0.1+cu118']).completed?.requirements.text,
    '--extra-index-url https://download.pytorch.org/whl/cu118/\ntorch==2.0.1',
  );
});

test('requirements rewriting: user cuda below the newest picks the highest CUDA not above it', () => {
  assert.equal(
    complete({ gpu: true, cuda: '12.6' }, ['torch==2.7.0']).completed?.requirements.text,
    '--extra-index-url https://download.pytorch.org/whl/cu126/\ntorch==2.7.0',
  );
});

test('requirements rewriting: CPU torch uses the +cpu wheel from the cpu index', () => {
  assert.equal(
    complete({}, ['torch==2.7.0', 'pillow']).completed?.requirements.text,
    '--extra-index-url https://download.pytorch.org/whl/cpu/\ntorch==2.7.0+cpu\npillow',
  );
});

test('requirements rewriting: lines with their own index keep it; unpinned and remote lines pass through', () => {
  const r = complete({ gpu: true }, [
    'torch==2.7.0 --extra-index-url=https://example.com/simple',
    'transformers>=4',
    'git+https://github.com/org/repo.git#egg=repo',
  ]);
  assert.equal(
    r.completed?.requirements.text,
    [
      '--extra-index-url https://example.com/simple',
      'torch==2.7.0',
      'transformers>=4',
      'git+https://github.com/org/repo.git#egg=repo',
    ].join('\n'),
  );
});

test('cog and coglet lines are removed from the requirements with a warning naming the line', () => {
  const r = complete({}, ['cog==0.9.0', 'numpy==2.0.0', 'coglet[extra]>=0.1', 'cog-tools==1.0']);
  assert.deepEqual(r.completed?.requirements.lines, ['numpy==2.0.0', 'cog-tools==1.0']);
  assert.equal(r.warnings.length, 2);
  assert.deepEqual(r.warnings[0]?.location, { file: 'requirements.txt', line: 1 });
  assert.match(r.warnings[0]?.message ?? '', /ignoring requirement "cog==0.9.0"/);
  assert.deepEqual(r.warnings[1]?.location, { file: 'requirements.txt', line: 3 });
});

test('local artifacts inside the project are collected with their line', () => {
  const r = complete({}, ['./wheels/pkg-1.0-py3-none-any.whl', 'numpy']);
  assert.deepEqual(r.completed?.requirements.localArtifacts, [
    { requirement: './wheels/pkg-1.0-py3-none-any.whl', relPath: 'wheels/pkg-1.0-py3-none-any.whl', line: 1 },
  ]);
});

test('completed config carries run commands, env, refs and concurrency', () => {
  const r = complete(
    {
      system_packages: ['ffmpeg'],
      run: [{ command: '  echo hi  ', mounts: [{ type: 'secret', id: 'tok', target: '/run/tok' }] }],
      pre_install: ['echo pre'],
    },
    [],
    {
      run: 'run.py:Runner',
      train: 'train.py:Trainer',
      environment: ['A=1', 'B=x=y'],
      concurrency: { max: 4 },
    },
  );
  const c = r.completed;
  assert.ok(c !== undefined);
  assert.deepEqual(c.runCommands, [
    { command: 'echo hi', mounts: [{ type: 'secret', id: 'tok', target: '/run/tok' }] },
    { command: 'echo pre', mounts: [] },
  ]);
  assert.deepEqual(c.environment, { A: '1', B: 'x=y' });
  assert.equal(c.predict, 'run.py:Runner');
  assert.equal(c.train, 'train.py:Trainer');
  assert.deepEqual(c.concurrency, { max: 4 });
  assert.deepEqual(c.systemPackages, ['ffmpeg']);
  // plain JSON: survives a round trip unchanged
  assert.deepEqual(JSON.parse(JSON.stringify(c)), c);
});

test('configLabel: upstream keys, resolved CUDA, run ref under "predict", empty values omitted', () => {
  const r = complete({ gpu: true, system_packages: [] }, ['torch==2.0.1'], {
    run: 'run.py:Runner',
    environment: ['A=1'],
    concurrency: { max: 2, default_target: 1 },
  });
  assert.ok(r.completed !== undefined);
  const label = configLabel({
    ...r.completed,
    config: {
      ...r.completed.config,
      build: { ...r.completed.config.build, python_requirements: 'requirements.txt' },
    },
  });
  assert.deepEqual(label, {
    build: {
      gpu: true,
      python_version: '3.12',
      python_requirements: 'requirements.txt',
      cuda: '11.8',
      cudnn: '8',
    },
    predict: 'run.py:Runner',
    concurrency: { max: 2 },
    environment: ['A=1'],
  });
  assert.deepEqual(Object.keys(label), ['build', 'predict', 'concurrency', 'environment']);
});

test('wheels: default is the latest cog from PyPI, coglet comes with it', () => {
  const w = chooseWheels({ env: {}, sdkVersion: undefined, cwd: '/p' });
  assert.deepEqual(w.sdk, { kind: 'pypi', package: 'cog', version: null, pre: false });
  assert.equal(w.coglet, null);
});

test('wheels: sdk_version pins cog; pre-releases (semver or PEP 440) add --pre to both installs', () => {
  assert.deepEqual(chooseWheels({ env: {}, sdkVersion: '0.17.0', cwd: '/p' }).sdk, {
    kind: 'pypi',
    package: 'cog',
    version: '0.17.0',
    pre: false,
  });
  const pre = chooseWheels({ env: { COGLET_WHEEL: 'pypi:0.1.0' }, sdkVersion: '0.18.0-alpha1', cwd: '/p' });
  assert.deepEqual(pre.sdk, { kind: 'pypi', package: 'cog', version: '0.18.0a1', pre: true });
  assert.deepEqual(pre.coglet, { kind: 'pypi', package: 'coglet', version: '0.1.0', pre: true });
  const sentinel = chooseWheels({ env: {}, sdkVersion: 'prerelease', cwd: '/p' });
  assert.deepEqual(sentinel.sdk, { kind: 'pypi', package: 'cog', version: null, pre: true });
  assert.equal(sentinel.warnings.length, 1);
});

test('wheels: COG_SDK_WHEEL beats sdk_version; url, file and pypi forms', () => {
  assert.deepEqual(parseWheelEnv('PyPI:0.17.0rc1', 'cog', '/p'), {
    kind: 'pypi',
    package: 'cog',
    version: '0.17.0rc1',
    pre: true,
  });
  assert.deepEqual(parseWheelEnv('pypi', 'cog', '/p'), {
    kind: 'pypi',
    package: 'cog',
    version: null,
    pre: false,
  });
  assert.deepEqual(parseWheelEnv('https://x/cog.whl', 'cog', '/p'), {
    kind: 'url',
    url: 'https://x/cog.whl',
    pre: false,
  });
  assert.deepEqual(parseWheelEnv('dist/cog.whl', 'cog', '/p'), {
    kind: 'file',
    path: '/p/dist/cog.whl',
    pre: false,
  });
  const w = chooseWheels({ env: { COG_SDK_WHEEL: 'https://x/cog.whl' }, sdkVersion: '0.17.0', cwd: '/p' });
  assert.equal(w.sdk.kind, 'url');
});

test('wheels: coglet is explicit only when pinned, a file or a URL; skipped for a legacy SDK', () => {
  assert.equal(
    chooseWheels({ env: { COGLET_WHEEL: 'pypi' }, sdkVersion: undefined, cwd: '/p' }).coglet,
    null,
  );
  assert.equal(
    chooseWheels({ env: { COGLET_WHEEL: 'https://x/coglet.whl' }, sdkVersion: undefined, cwd: '/p' }).coglet
      ?.kind,
    'url',
  );
  const legacy = chooseWheels({ env: { COGLET_WHEEL: 'pypi:0.1.0' }, sdkVersion: '0.16.5', cwd: '/p' });
  assert.equal(legacy.coglet, null);
  assert.match(legacy.warnings.join('\n'), /Skipping coglet install for legacy SDK/);
});

test('compat helpers: cudasFromTorch and cudaBaseImageFor', () => {
  assert.deepEqual(cudasFromTorch(compat, '2.0.1'), ['11.7', '11.8']);
  assert.deepEqual(cudasFromTorch(compat, '2.3.1+cu118'), ['11.8']);
  assert.equal(cudaBaseImageFor(compat, '11.8', '8'), 'nvidia/cuda:11.8.0-cudnn8-devel-ubuntu22.04');
  assert.equal(cudaBaseImageFor(compat, '11.8', '9'), undefined);
  // cu102 rows are dropped: no CUDA 10.2 base image
  assert.ok(!compat.torch.some((r) => r.CUDA === '10.2'));
});
