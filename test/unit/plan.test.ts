// The build plan follows upstream Cog's step order; the compiler turns it into a graph with the source
// step on its own branch.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compilePlan, expandEnv } from '../../src/plan/compile.js';
import { distroPython, parseOsRelease } from '../../src/plan/distro.js';
import { breaksSystemPackages, planBuild, shellQuote, systemPackagesToInstall } from '../../src/plan/plan.js';
import type { PlanInput } from '../../src/plan/types.js';
import { minimalPlanInput } from '../support/plan-inputs.js';

const cpuInput: PlanInput = {
  pythonVersion: '3.11',
  gpu: false,
  baseImage: 'python:3.11-slim',
  baseKind: 'python-slim',
  environment: [
    ['ZED', 'last'],
    ['ALPHA', 'first'],
  ],
  systemPackages: ['jq', 'libgl1'],
  requirements: 'six==1.16.0\n./wheels/tiny-0.1-py3-none-any.whl',
  localArtifacts: ['wheels/tiny-0.1-py3-none-any.whl'],
  sdk: { kind: 'pypi', version: '0.23.1' },
  runCommands: [{ command: ' echo hi ', secrets: [{ id: 'token', target: '/run/secrets/token' }] }],
  predict: 'predict.py:Predictor',
  concurrencyMax: 2,
  sourceExclude: ['.git'],
  openapiSchema: '{"openapi":"3.0.2"}',
  labels: { 'run.cog.version': '0.1.0' },
};

test('a CPU plan has upstream order: preamble, env, tini + apt, uv, requirements, SDK, ldconfig, run, stubs', () => {
  const plan = planBuild(cpuInput);
  assert.deepEqual(
    plan.steps.map((s) => s.name),
    [
      'preamble',
      'cog.yaml environment',
      'install tini and system packages',
      'copy uv',
      'uv uses the system Python',
      'copy local package artifacts',
      'requirements.txt',
      'optimise native builds',
      'install requirements',
      'reset CFLAGS',
      'keep the managed cog and coglet',
      'optimise native builds',
      'install cog==0.23.1',
      'reset CFLAGS',
      'register Python shared libraries',
      'build.run[0]: echo hi',
      'predictor',
    ],
  );
  const env = plan.steps.find((s) => s.name === 'cog.yaml environment');
  assert.deepEqual(env?.kind === 'env' && env.env, [
    ['ALPHA', 'first'],
    ['ZED', 'last'],
  ]);
  const install = plan.steps.find((s) => s.name === 'install requirements');
  assert.equal(
    install?.kind === 'run' && install.shell,
    'cd /tmp/local_package_artifacts && uv run pip install --cache-dir /root/.cache/pip -r /tmp/requirements.txt',
  );
  assert.deepEqual(plan.source.exclude, ['.cog', '.git']);
  assert.deepEqual(plan.image.entrypoint, ['/sbin/tini', '--']);
  assert.deepEqual(plan.image.cmd, ['python', '-m', 'cog.server.http']);
  const stubs = plan.steps.at(-1);
  assert.deepEqual(stubs?.kind === 'env' && stubs.env, [
    ['COG_PREDICT_TYPE_STUB', 'predict.py:Predictor'],
    ['COG_MAX_CONCURRENCY', '2'],
  ]);
});

test('a CUDA plan adds --break-system-packages and installs Python (uv or the distribution)', () => {
  const cuda: PlanInput = { ...cpuInput, baseKind: 'cuda', gpu: true, baseImage: 'nvidia/cuda:x' };
  const uv = planBuild(cuda);
  const uvPython = uv.steps.find((s) => s.name === 'install Python 3.11 with uv');
  assert.match(uvPython?.kind === 'run' ? uvPython.shell : '', /^uv python install 3\.11 /);
  const install = uv.steps.find((s) => s.name === 'install requirements');
  assert.match(install?.kind === 'run' ? install.shell : '', /pip install --break-system-packages/);
  const distro = planBuild({ ...cuda, cudaPython: 'distro' });
  assert.ok(distro.steps.some((s) => s.name === 'install Python 3.11 from the distribution'));
  assert.ok(!distro.steps.some((s) => s.name.includes('with uv')));
});

test('the CA certificate is added before anything reaches the network', () => {
  const plan = planBuild({
    ...cpuInput,
    caCert: '-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n',
  });
  const names = plan.steps.map((s) => s.name);
  assert.ok(names.indexOf('CA bundle') < names.indexOf('install tini and system packages'));
  const bundle = plan.steps.find((s) => s.name === 'CA bundle');
  assert.deepEqual(bundle?.kind === 'env' && bundle.env.map(([k]) => k), [
    'SSL_CERT_FILE',
    'REQUESTS_CA_BUNDLE',
  ]);
});

test('file wheels are copied from their own context and pre-releases add --pre', () => {
  const plan = planBuild({
    ...cpuInput,
    sdk: { kind: 'file', path: '/dist/cog-0.24.0a1-py3-none-any.whl' },
    coglet: { kind: 'pypi', version: '0.24.0a1', pre: true },
  });
  const names = plan.steps.map((s) => s.name);
  assert.ok(names.indexOf('install coglet==0.24.0a1') < names.indexOf('copy the cog wheel'));
  const cog = plan.steps.find((s) => s.name.startsWith('install cog from'));
  assert.equal(
    cog?.kind === 'run' && cog.shell,
    'uv pip install --pre --no-cache /tmp/cog-0.24.0a1-py3-none-any.whl',
  );
  const copy = plan.steps.find((s) => s.name === 'copy the cog wheel');
  assert.equal(copy?.kind === 'context-files' && copy.context, 'cog-wheel');
});

test('every step that runs uv mounts uv’s cache, so no uv cache entry lands in a layer', () => {
  // uv's interpreter entry holds the ctime of Python in buildkitd's snapshot: in a layer, it made two
  // --timestamp builds of the same project differ whenever that snapshot changed between them
  const uvSteps = (input: PlanInput) =>
    planBuild(input).steps.flatMap((s) => (s.kind === 'run' && /(^|[\s&|;(])uv\s/.test(s.shell) ? [s] : []));
  const cuda: PlanInput = {
    ...cpuInput,
    baseKind: 'cuda',
    gpu: true,
    baseImage: 'nvidia/cuda:x',
    cuda: '12.8',
  };
  const steps = [...uvSteps(cpuInput), ...uvSteps(cuda)];
  const names = steps.map((s) => s.name);
  for (const expected of [
    'install requirements',
    'keep the managed cog and coglet',
    'install Python 3.11 with uv',
  ])
    assert.ok(names.includes(expected), `${expected} runs uv (found: ${names.join(', ')})`);
  for (const step of steps)
    assert.ok(
      (step.cache ?? []).some((c) => c.target === '/root/.cache/uv'),
      `${step.name} runs uv without its cache mount`,
    );

  // compiled: the requirements install is an exec with both caches mounted (BuildKit cache mounts)
  const compiled = compilePlan(
    planBuild(minimalPlanInput({ requirements: 'six==1.17.0', sourceDateEpoch: 1 })),
    {
      baseConfig: {},
    },
  );
  const install = compiled.image
    .marshal()
    .ops.find((o) => o.metadata.description?.['llb.customname'] === 'install requirements')?.op.exec;
  assert.ok(install);
  assert.deepEqual(
    (install.mounts ?? []).filter((m) => m.mountType === 3).map((m) => m.dest),
    ['/root/.cache/pip', '/root/.cache/uv'],
  );
  assert.ok(install.meta?.env?.includes('SOURCE_DATE_EPOCH=1'));
});

test('the compiled graph keeps the source copy off the dependency chain', () => {
  const plan = planBuild(cpuInput);
  const compiled = compilePlan(plan, {
    baseConfig: {
      config: { Env: ['PATH=/usr/local/bin:/usr/bin', 'LANG=C.UTF-8'], Labels: { base: 'yes' } },
    },
    baseDigest: `sha256:${'a'.repeat(64)}`,
  });
  const env = compiled.config.config?.Env ?? [];
  assert.equal(env[0], 'PATH=/usr/local/bin:/usr/bin');
  assert.ok(
    env.includes('LD_LIBRARY_PATH=:/usr/lib/x86_64-linux-gnu:/usr/local/nvidia/lib64:/usr/local/nvidia/bin'),
  );
  assert.ok(env.includes('CFLAGS='));
  assert.ok(env.includes('COG_PREDICT_TYPE_STUB=predict.py:Predictor'));
  assert.deepEqual(compiled.config.config?.Labels, { base: 'yes', 'run.cog.version': '0.1.0' });
  assert.deepEqual(compiled.config.config?.ExposedPorts, { '5000/tcp': {} });
  assert.equal(compiled.config.config?.WorkingDir, '/src');

  const marshalled = compiled.image.marshal();
  const kinds = marshalled.ops.map((o) => o.kind);
  assert.ok(kinds.includes('merge'));
  // the source copy's only input is the local context: editing the project cannot invalidate the deps
  const copy = marshalled.ops.find(
    (o) => o.metadata.description?.['llb.customname'] === 'copy the project to /src',
  );
  assert.ok(copy);
  assert.equal(copy.op.inputs?.length, 1);
  const sourceOp = marshalled.ops.find(
    (o) => o.op.source?.identifier === 'local://context' && o.op.source.attrs?.['local.excludepatterns'],
  );
  assert.ok(sourceOp);
  assert.equal(copy.op.inputs?.[0]?.digest, sourceOp.digest);
  // the base is pinned by digest
  assert.ok(marshalled.ops.some((o) => o.op.source?.identifier?.endsWith(`@sha256:${'a'.repeat(64)}`)));
});

test('env expansion and shell quoting', () => {
  const env = new Map([['A', 'x']]);
  assert.equal(expandEnv('$A:${A}:$B', env), 'x:x:');
  assert.equal(shellQuote('libgl1'), 'libgl1');
  assert.equal(shellQuote("it's"), `'it'"'"'s'`);
});

test('the distribution python3 from os-release', () => {
  assert.equal(distroPython('ID=debian\nVERSION_ID="12"\n'), '3.11');
  assert.equal(distroPython('ID=ubuntu\nVERSION_ID="24.04"\n'), '3.12');
  assert.equal(distroPython('ID=alpine\nVERSION_ID=3.20\n'), undefined);
  assert.equal(parseOsRelease("PRETTY_NAME='Debian 12'").get('PRETTY_NAME'), 'Debian 12');
});

test('run.cog.version follows the installed cog SDK', async () => {
  const { freezeLabels } = await import('../../src/build/freeze-labels.js');
  assert.deepEqual(freezeLabels('coglet==0.23.1\ncog==0.23.1\nsix==1.17.0'), {
    'run.cog.pip_freeze': 'coglet==0.23.1\ncog==0.23.1\nsix==1.17.0',
    'run.cog.version': '0.23.1',
  });
  assert.deepEqual(freezeLabels('cog @ file:///tmp/cog.whl'), {
    'run.cog.pip_freeze': 'cog @ file:///tmp/cog.whl',
  });
});

test('a cog-base plan leaves preamble, tini and ldconfig to the base image (golden step list)', () => {
  const plan = planBuild({
    ...cpuInput,
    baseKind: 'cog-base',
    baseImage: 'r8.im/cog-base:python3.11',
    systemPackages: ['jq', 'libgl1'],
  });
  assert.equal(plan.base, 'r8.im/cog-base:python3.11');
  assert.deepEqual(
    plan.steps.map((s) => s.name),
    [
      'cog.yaml environment',
      'install system packages',
      'copy uv',
      'uv uses the system Python',
      'copy local package artifacts',
      'requirements.txt',
      'optimise native builds',
      'install requirements',
      'reset CFLAGS',
      'keep the managed cog and coglet',
      'optimise native builds',
      'install cog==0.23.1',
      'reset CFLAGS',
      'build.run[0]: echo hi',
      'predictor',
    ],
  );
  // libgl1 is in every cog-base image; jq is not
  const apt = plan.steps.find((s) => s.name === 'install system packages');
  assert.match(apt?.kind === 'run' ? apt.shell : '', /apt-get install -qqy jq &&/);
  const install = plan.steps.find((s) => s.name === 'install requirements');
  assert.doesNotMatch(install?.kind === 'run' ? install.shell : '', /break-system-packages/);
  assert.deepEqual(plan.image.entrypoint, ['/sbin/tini', '--']);
});

test('on cog-base, system_packages the base already holds are skipped, and no apt step is left when none remain', () => {
  const cogBase: PlanInput = { ...cpuInput, baseKind: 'cog-base', baseImage: 'r8.im/cog-base:python3.11' };
  assert.deepEqual(systemPackagesToInstall({ ...cogBase, systemPackages: ['ffmpeg', 'jq', 'git', 'htop'] }), [
    'jq',
    'htop',
  ]);
  assert.deepEqual(systemPackagesToInstall({ ...cpuInput, systemPackages: ['ffmpeg', 'jq'] }), [
    'ffmpeg',
    'jq',
  ]);
  const plan = planBuild({ ...cogBase, systemPackages: ['ffmpeg', 'libgl1', 'zstd'] });
  assert.ok(!plan.steps.some((s) => s.name === 'install system packages'));
});

test('--break-system-packages: nvidia/cuda always, cog-base only with CUDA ≥ 13 (which also links python)', () => {
  assert.equal(breaksSystemPackages({ baseKind: 'python-slim', cuda: '12.8' }), false);
  assert.equal(breaksSystemPackages({ baseKind: 'cuda', cuda: '12.8' }), true);
  assert.equal(breaksSystemPackages({ baseKind: 'cog-base' }), false);
  assert.equal(breaksSystemPackages({ baseKind: 'cog-base', cuda: '12.8' }), false);
  assert.equal(breaksSystemPackages({ baseKind: 'cog-base', cuda: '13.0' }), true);
  const cuda13: PlanInput = {
    ...cpuInput,
    gpu: true,
    cuda: '13.0',
    baseKind: 'cog-base',
    baseImage: 'r8.im/cog-base:cuda13.0-python3.12',
  };
  const plan = planBuild(cuda13);
  const names = plan.steps.map((s) => s.name);
  assert.equal(names.indexOf('python on PATH'), names.indexOf('uv uses the system Python') + 1);
  for (const name of ['install requirements', 'keep the managed cog and coglet', 'install cog==0.23.1']) {
    const step = plan.steps.find((s) => s.name === name);
    assert.match(step?.kind === 'run' ? step.shell : '', / --break-system-packages /, name);
  }
  assert.ok(!planBuild({ ...cuda13, cuda: '12.8' }).steps.some((s) => s.name === 'python on PATH'));
});

test('tini installs beside the Python steps, up to the first later step that uses apt or is the user’s', () => {
  const marks = (input: PlanInput) =>
    planBuild(input).steps.flatMap((s) =>
      s.kind !== 'run'
        ? []
        : [
            ...(s.independent ? [`${s.name}: independent`] : []),
            ...(s.seesBranches ? [`${s.name}: sees branches`] : []),
          ],
    );
  assert.deepEqual(marks(minimalPlanInput({ requirements: 'six==1.16.0' })), ['install tini: independent']);
  // with system packages tini shares their apt step: nothing runs beside it
  assert.deepEqual(marks(minimalPlanInput({ systemPackages: ['ffmpeg'] })), []);
  // a user command waits for tini (it may use apt or tini); the Python steps before it do not
  assert.deepEqual(
    marks(minimalPlanInput({ runCommands: [{ command: 'apt-get install -y curl', secrets: [] }] })),
    ['install tini: independent', 'build.run[0]: apt-get install -y curl: sees branches'],
  );

  // compiled: the tini layer sits where upstream has it, below the layers built beside it
  const compiled = compilePlan(planBuild(minimalPlanInput({ requirements: 'six==1.16.0' })), {
    baseConfig: {},
  });
  const ops = compiled.image.marshal().ops;
  const named = (name: string) => ops.find((o) => o.metadata.description?.['llb.customname'] === name);
  const tini = named('install tini');
  const install = named('install requirements');
  assert.ok(tini && install);
  const chainOf = (digest: string): string[] => {
    const op = ops.find((o) => o.digest === digest);
    const input = op?.op.inputs?.[0]?.digest;
    return input ? [digest, ...chainOf(input)] : [digest];
  };
  assert.ok(!chainOf(install.digest).includes(tini.digest), 'the installs do not wait for tini');
  const merged = named('install tini: layer put back in place');
  assert.ok(merged);
  const inputs = (merged.op.inputs ?? []).map((i) => ops.find((o) => o.digest === i.digest));
  assert.deepEqual(
    inputs.map((o) => o?.metadata.description?.['llb.customname'] ?? o?.kind),
    [
      inputs[0]?.metadata.description?.['llb.customname'] ?? inputs[0]?.kind,
      '[internal] the layer of install tini',
      '[internal] the layers built beside install tini',
    ],
  );
  assert.equal(inputs.length, 3, 'the base, then the tini layer, then the later layers');

  // the pip freeze probe reads what pip installed: it runs beside tini too, after the installs
  const freezeOps = compiled.freeze.marshal().ops;
  const freeze = freezeOps.find((o) => o.metadata.description?.['llb.customname'] === 'pip freeze');
  assert.ok(freeze);
  const freezeNames = freezeOps.map((o) => o.metadata.description?.['llb.customname']);
  assert.ok(freezeNames.includes('install requirements'), 'the freeze sees the installed requirements');
  assert.ok(!freezeNames.includes('install tini'), 'the freeze does not wait for tini');

  // a user command runs on the joined filesystem: tini (and its dpkg entry) are there
  const withRun = compilePlan(
    planBuild(minimalPlanInput({ runCommands: [{ command: 'which tini', secrets: [] }] })),
    { baseConfig: {} },
  ).image.marshal().ops;
  const run = withRun.find((o) => o.metadata.description?.['llb.customname'] === 'build.run[0]: which tini');
  const joined = withRun.find(
    (o) => o.metadata.description?.['llb.customname'] === 'install tini: layer put back in place',
  );
  assert.ok(run && joined);
  assert.equal(run.op.inputs?.[0]?.digest, joined.digest, 'the user command starts from the joined state');
});

test('the apt installs before Python share one step: one update, upstream’s install order and flags', () => {
  const aptSteps = (input: PlanInput) =>
    planBuild(input).steps.filter((s) => s.kind === 'run' && s.shell.includes('apt-get update'));
  const updates = (shell: string) => shell.split('apt-get update').length - 1;

  // tini alone keeps its own step (it runs beside the Python steps)
  const [tiniOnly, ...none] = aptSteps(minimalPlanInput({}));
  assert.deepEqual(none, []);
  assert.equal(tiniOnly?.name, 'install tini');

  const [withPackages, ...more] = aptSteps(minimalPlanInput({ systemPackages: ['jq', 'libgl1'] }));
  assert.deepEqual(more, [], 'one apt step for tini and the system packages');
  assert.equal(withPackages?.name, 'install tini and system packages');
  const shell = withPackages?.kind === 'run' ? withPackages.shell : '';
  assert.equal(updates(shell), 1);
  assert.match(
    shell,
    /^apt-get update -qq && apt-get install -qqy --no-install-recommends tini && apt-get install -qqy jq libgl1 && rm -f .* && ln -sf \/usr\/bin\/tini \/sbin\/tini$/,
  );

  // a CUDA base adds the Python build tools, after the system packages as upstream, without recommends
  const cuda: PlanInput = { ...minimalPlanInput({ systemPackages: ['jq'] }), baseKind: 'cuda', gpu: true };
  const [all, ...rest] = aptSteps(cuda);
  assert.deepEqual(rest, []);
  assert.equal(all?.name, 'install tini, system packages and Python build tools');
  const cudaShell = all?.kind === 'run' ? all.shell : '';
  assert.equal(updates(cudaShell), 1);
  assert.ok(
    cudaShell.indexOf('install -qqy jq') <
      cudaShell.indexOf('install -qqy --no-install-recommends wget curl xz-utils git ca-certificates'),
  );
  const [tools] = aptSteps({ ...cuda, systemPackages: [] });
  assert.equal(tools?.name, 'install tini and Python build tools');

  // the step stands after the cog.yaml environment, where upstream's system packages step is
  const names = planBuild(minimalPlanInput({ systemPackages: ['jq'], environment: [['A', 'b']] })).steps.map(
    (s) => s.name,
  );
  assert.ok(names.indexOf('cog.yaml environment') < names.indexOf('install tini and system packages'));
  // on cog-base there is no tini to install: the system packages' step keeps its name
  const cogBase = aptSteps({ ...minimalPlanInput({ systemPackages: ['jq'] }), baseKind: 'cog-base' });
  assert.deepEqual(
    cogBase.map((s) => s.name),
    ['install system packages'],
  );
});

test('pip freeze reads the filesystem after the last step that installs packages, beside the steps after it', () => {
  const freezeNames = (input: PlanInput) =>
    compilePlan(planBuild(input), { baseConfig: {} })
      .freeze.marshal()
      .ops.map((o) => o.metadata.description?.['llb.customname']);
  const plain = freezeNames(minimalPlanInput({ requirements: 'six==1.16.0' }));
  assert.ok(plain.includes('install requirements'));
  assert.ok(
    plain.some((n) => n?.startsWith('install cog')),
    plain.join(', '),
  );
  assert.ok(!plain.includes('register Python shared libraries'), 'ldconfig runs beside the freeze');
  // a user command may pip install: the freeze comes after it (and the ldconfig before it)
  const withRun = freezeNames(
    minimalPlanInput({ runCommands: [{ command: 'pip install six', secrets: [] }] }),
  );
  assert.ok(withRun.includes('build.run[0]: pip install six'));
  assert.ok(withRun.includes('register Python shared libraries'));
  const marked = planBuild(minimalPlanInput({})).steps.filter((s) => s.kind === 'run' && s.packagesSettled);
  assert.equal(marked.length, 1);
  assert.match(marked[0]?.name ?? '', /^install cog/);
});
