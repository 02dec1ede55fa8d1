// cog-base images on the test bed: with COG_REGISTRY_HOST at the test registry, a Python 3.13 model
// builds FROM the TEST-ONLY stand-in cog-base:python3.13 (scripts/testbed) and starts READY, and a GPU
// model pinning torch builds FROM the GPU stand-in cog-base:cuda12.4-python3.11-torch2.5.1; a required
// cog-base image that does not exist fails naming it; auto mode falls back with one warning.
import assert from 'node:assert/strict';
import { cp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { exec } from '../support/exec.js';
import { stepsFromPlainProgress } from '../support/plain-steps.js';
import { tempDirsRemovedAfterTests } from '../support/temp-dirs.js';
import { pushedConfig, pushedManifest } from '../support/pushed-image.js';
import { ensureTestbed, repoRoot, type Testbed } from '../support/testbed.js';

const cog = join(repoRoot, 'bin', 'cog');
const hello = join(repoRoot, 'fixtures', 'models', 'hello');
const tag = Date.now().toString(36);
const tempDir = tempDirsRemovedAfterTests();
let tb: Testbed;
let scratchDir: string;
let hello313: string;
let gpuTorch: string;

before(async () => {
  tb = await ensureTestbed();
  scratchDir = await tempDir('cogts-cog-base-');
  hello313 = join(scratchDir, 'hello-3.13');
  await cp(hello, hello313, { recursive: true });
  const yaml = await readFile(join(hello313, 'cog.yaml'), 'utf8');
  await writeFile(
    join(hello313, 'cog.yaml'),
    yaml.replace("python_version: '3.11'", "python_version: '3.13'"),
  );
  // the gpu fixture (gpu: true, Python 3.11) with torch pinned: CUDA 12.4 and that cog-base tag
  gpuTorch = join(scratchDir, 'gpu-torch');
  await cp(join(repoRoot, 'fixtures', 'models', 'gpu'), gpuTorch, { recursive: true });
  await writeFile(join(gpuTorch, 'requirements.txt'), 'torch==2.5.1\n');
  const gpuYaml = await readFile(join(gpuTorch, 'cog.yaml'), 'utf8');
  await writeFile(
    join(gpuTorch, 'cog.yaml'),
    gpuYaml.replace('build:\n', 'build:\n  python_requirements: requirements.txt\n'),
  );
});

/** The test bed's env with cog-base images looked up in the test registry. */
function env(): NodeJS.ProcessEnv {
  return { ...tb.env, COG_IMAGE_STORE: join(scratchDir, 'store'), COG_REGISTRY_HOST: tb.registry };
}

interface ImageConfig {
  config: { Labels?: Record<string, string>; Entrypoint?: string[] };
  rootfs: { diff_ids: string[] };
}

const configOf = (ref: string) => pushedConfig<ImageConfig>(ref);

/** `cog build --push --smoke-test` of the project in `cwd` to a new tag of `repository`; must succeed. */
async function buildAndPush(repository: string, cwd: string): Promise<{ ref: string; stderr: string }> {
  const ref = `${tb.registry}/cogts-test/${repository}:${tag}`;
  const out = await exec(cog, ['build', '-t', ref, '--push', '--smoke-test', '--progress', 'plain'], {
    env: env(),
    cwd,
  });
  assert.equal(out.code, 0, out.stderr.slice(-4000));
  return { ref, stderr: out.stderr };
}

test(
  'a Python 3.13 model builds FROM the cog-base stand-in, labelled, and starts READY',
  { timeout: 900_000 },
  async () => {
    const { ref, stderr } = await buildAndPush('cog-base-hello', hello313);
    assert.match(stderr, /^Smoke test: \/health-check READY; prediction succeeded, output "hello world"$/m);
    assert.doesNotMatch(stderr, /cog: warning/);
    // tini, the preamble and ldconfig come with the base
    const steps = stepsFromPlainProgress(stderr);
    const all = [...steps.ran, ...steps.cached];
    assert.ok(all.includes('copy uv'), all.join(', '));
    for (const name of ['install tini', 'register Python shared libraries'])
      assert.ok(!all.includes(name), name);

    const baseName = `${tb.registry}/cog-base:python3.13`;
    const [image, base] = await Promise.all([configOf(ref), configOf(baseName)]);
    const labels = image.config.Labels ?? {};
    // FROM the stand-in: its layers first, its label inherited
    assert.deepEqual(image.rootfs.diff_ids.slice(0, base.rootfs.diff_ids.length), base.rootfs.diff_ids);
    assert.equal(labels['org.cogts.testbed.standin'], 'cog-base');
    assert.equal(labels['run.cog.cog-base-image-name'], baseName);
    assert.equal(labels['run.cog.cog-base-image-last-layer-sha'], base.rootfs.diff_ids.at(-1));
    assert.equal(labels['run.cog.cog-base-image-last-layer-idx'], String(base.rootfs.diff_ids.length - 1));
    assert.deepEqual(image.config.Entrypoint, ['/sbin/tini', '--']);
    assert.equal(labels['run.cog.has_init'], 'true');
  },
);

test(
  'a GPU model pinning torch builds FROM the GPU cog-base stand-in, keeps its torch, and starts READY',
  { timeout: 900_000 },
  async () => {
    const { ref, stderr } = await buildAndPush('cog-base-gpu', gpuTorch);
    // the stand-in sets CUDA_VERSION as the real image does; the runner answers with it
    assert.match(stderr, /^Smoke test: .*READY; prediction succeeded, output "cuda base: 12\.4\.1"$/m);
    assert.doesNotMatch(stderr, /cog: warning/);
    // the nvidia/cuda fallback, looked up alongside and missing on the test bed, is not a failed step
    assert.doesNotMatch(stderr, /ERROR|^------$/m);
    const steps = stepsFromPlainProgress(stderr);
    const all = [...steps.ran, ...steps.cached];
    assert.ok(all.includes('install requirements'), all.join(', '));
    for (const name of ['install tini', 'install Python build tools', 'install Python 3.11 with uv'])
      assert.ok(!all.includes(name), name);

    const baseName = `${tb.registry}/cog-base:cuda12.4-python3.11-torch2.5.1`;
    const [image, base] = await Promise.all([configOf(ref), configOf(baseName)]);
    const labels = image.config.Labels ?? {};
    assert.deepEqual(image.rootfs.diff_ids.slice(0, base.rootfs.diff_ids.length), base.rootfs.diff_ids);
    assert.equal(labels['org.cogts.testbed.standin'], 'cog-base-gpu');
    assert.equal(labels['run.cog.cog-base-image-name'], baseName);
    // pip found the base's torch 2.5.1 (metadata only in the stand-in) and installed none: the layers
    // the build added are small, and pip freeze lists the base's torch
    assert.match(labels['run.cog.pip_freeze'] ?? '', /^torch==2\.5\.1$/m);
    const manifest = await pushedManifest<{ layers: { size: number }[] }>(ref);
    const added = manifest.layers.slice(base.rootfs.diff_ids.length).reduce((n, l) => n + l.size, 0);
    assert.ok(added < 100 * 2 ** 20, `the build added ${added} bytes of layers`);
    assert.equal(JSON.parse(labels['run.cog.config'] ?? '{}').build?.cuda, '12.4');
  },
);

test(
  '--use-cog-base-image=true fails, naming the image, when the registry has no such tag',
  { timeout: 300_000 },
  async () => {
    const out = await exec(cog, ['build', '-t', 'cog-base-required:dev', '--use-cog-base-image=true'], {
      env: env(),
      cwd: hello,
    });
    assert.notEqual(out.code, 0);
    assert.match(
      out.stderr,
      new RegExp(`cannot use the cog-base image ${tb.registry.replace(/\./g, '\\.')}/cog-base:python3\\.11`),
    );
    assert.match(out.stderr, /hint: .*COG_REGISTRY_HOST.*--use-cog-base-image=false/);
  },
);

test(
  'auto: a missing cog-base image is one warning and the python-slim build',
  { timeout: 600_000 },
  async () => {
    const out = await exec(cog, ['build', '-t', 'cog-base-fallback:dev', '--progress', 'plain'], {
      env: env(),
      cwd: hello,
    });
    assert.equal(out.code, 0, out.stderr.slice(-3000));
    const warnings = out.stderr.split('\n').filter((l) => l.startsWith('cog: warning:'));
    assert.equal(warnings.length, 1, warnings.join('\n'));
    assert.match(warnings[0] ?? '', /cog-base:python3\.11 .*building on python:3\.11-slim instead/);
    // the failed lookup is not shown as a failed step
    assert.doesNotMatch(out.stderr, /ERROR/);
    const steps = stepsFromPlainProgress(out.stderr);
    assert.ok([...steps.ran, ...steps.cached].includes('install tini'));

    const never = await exec(cog, ['build', '-t', 'cog-base-fallback:dev', '--use-cog-base-image=false'], {
      env: env(),
      cwd: hello,
    });
    assert.equal(never.code, 0, never.stderr.slice(-3000));
    assert.doesNotMatch(never.stderr, /cog: warning|cog-base:python/);
  },
);
