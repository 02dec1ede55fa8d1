// cog-base images on the test bed: with COG_REGISTRY_HOST at the test registry, a Python 3.13 model
// builds FROM the TEST-ONLY stand-in cog-base:python3.13 (scripts/testbed) and starts READY; a required
// cog-base image that does not exist fails naming it; auto mode falls back with one warning.
import assert from 'node:assert/strict';
import { cp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { exec, execOk } from '../support/exec.js';
import { stepsFromPlainProgress } from '../support/plain-steps.js';
import { tempDirsRemovedAfterTests } from '../support/temp-dirs.js';
import { ensureTestbed, repoRoot, type Testbed } from '../support/testbed.js';

const cog = join(repoRoot, 'bin', 'cog');
const hello = join(repoRoot, 'fixtures', 'models', 'hello');
const tag = Date.now().toString(36);
const tempDir = tempDirsRemovedAfterTests();
let tb: Testbed;
let scratchDir: string;
let hello313: string;

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
});

/** The test bed's env with cog-base images looked up in the test registry. */
function env(): NodeJS.ProcessEnv {
  return { ...tb.env, COG_IMAGE_STORE: join(scratchDir, 'store'), COG_REGISTRY_HOST: tb.registry };
}

interface ImageConfig {
  config: { Labels?: Record<string, string>; Entrypoint?: string[] };
  rootfs: { diff_ids: string[] };
}

async function configOf(ref: string): Promise<ImageConfig> {
  const out = await execOk('skopeo', ['inspect', '--config', '--tls-verify=false', `docker://${ref}`]);
  return JSON.parse(out.stdout) as ImageConfig;
}

test(
  'a Python 3.13 model builds FROM the cog-base stand-in, labelled, and starts READY',
  { timeout: 900_000 },
  async () => {
    const ref = `${tb.registry}/cogts-test/cog-base-hello:${tag}`;
    const out = await exec(cog, ['build', '-t', ref, '--push', '--smoke-test', '--progress', 'plain'], {
      env: env(),
      cwd: hello313,
    });
    assert.equal(out.code, 0, out.stderr.slice(-4000));
    assert.match(
      out.stderr,
      /^Smoke test: \/health-check READY; prediction succeeded, output "hello world"$/m,
    );
    assert.doesNotMatch(out.stderr, /cog: warning/);
    // tini, the preamble and ldconfig come with the base
    const steps = stepsFromPlainProgress(out.stderr);
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
