// --use-cog-base-image and --use-cuda-base-image on the commands that build the project before they run
// it (run/predict/train, serve, exec), as `cog build` takes them; with IMAGE nothing is built, so they
// are refused there. Driven through bin/cog: every case is decided before buildkitd is asked.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { checkBaseImageFlagsUnused } from '../../src/build/cog-base.js';
import { CogError } from '../../src/errors.js';
import { exec } from '../support/exec.js';
import { tempDirsRemovedAfterTests } from '../support/temp-dirs.js';
import { repoRoot } from '../support/testbed.js';

const cog = join(repoRoot, 'bin', 'cog');
const tempDir = tempDirsRemovedAfterTests();
// no daemon: a command that got as far as connecting would fail differently
const env = { ...process.env, BUILDKIT_HOST: 'unix:///nonexistent/buildkitd.sock' };
let project: string;

before(async () => {
  // torch 1.13.0: no cog-base image is published for it, so --use-cog-base-image=true fails at once
  project = await tempDir('cogts-base-flags-');
  await writeFile(
    join(project, 'cog.yaml'),
    'build:\n  python_version: "3.11"\n  python_requirements: requirements.txt\nrun: "predict.py:Predictor"\n',
  );
  await writeFile(join(project, 'requirements.txt'), 'torch==1.13.0\n');
  await writeFile(
    join(project, 'predict.py'),
    'from cog import BasePredictor\n\n\nclass Predictor(BasePredictor):\n    def predict(self) -> str:\n        return "x"\n',
  );
});

const commands = [['run'], ['predict'], ['train'], ['serve'], ['exec', 'python', '-V']];

test('the commands that build the project take the flags and build as cog build would', async () => {
  for (const command of commands) {
    const [name, ...rest] = command as [string, ...string[]];
    const required = await exec(cog, [name, '--use-cog-base-image=true', ...rest], { cwd: project, env });
    assert.equal(required.code, 1, `${name}: ${required.stderr}`);
    assert.match(
      required.stderr,
      /--use-cog-base-image=true: no cog-base image is published for python3\.11-torch1\.13\.0/,
      name,
    );
    // the hint says what is published instead (here: nothing with that torch)
    assert.match(
      required.stderr,
      /^hint: no cog-base image has torch 1\.13\.0 \(they have torch ≥ 1\.13\.1\)/m,
      name,
    );
    const both = await exec(
      cog,
      [name, '--use-cog-base-image=false', '--use-cuda-base-image', 'false', ...rest],
      { cwd: project, env },
    );
    assert.equal(both.code, 1, `${name}: ${both.stderr}`);
    assert.match(both.stderr, /--use-cog-base-image and --use-cuda-base-image are mutually exclusive/, name);
  }
});

test('with IMAGE the flags are refused: nothing is built', async () => {
  for (const name of ['run', 'serve']) {
    const out = await exec(cog, [name, 'r8.im/some/model', '--use-cog-base-image=false'], {
      cwd: project,
      env,
    });
    assert.equal(out.code, 1, `${name}: ${out.stderr}`);
    assert.match(out.stderr, new RegExp(`--use-cog-base-image: \`cog ${name} IMAGE\` runs an image`));
    assert.match(out.stderr, /hint: drop --use-cog-base-image, or leave IMAGE out/);
  }
  assert.throws(
    () => checkBaseImageFlagsUnused({ useCudaBaseImage: 'false' }, 'cog train'),
    (err: unknown) =>
      err instanceof CogError && /^--use-cuda-base-image: `cog train IMAGE`/.test(err.message),
  );
  checkBaseImageFlagsUnused({}, 'cog run');
});

test('--use-cuda-base-image takes auto, true or false: an IMAGE after it is not taken for its value', async () => {
  for (const args of [
    ['build', '--use-cuda-base-image=bogus'],
    ['run', '--use-cuda-base-image', 'r.example/some/model'],
  ]) {
    const out = await exec(cog, args, { cwd: project, env });
    assert.equal(out.code, 1, out.stderr);
    assert.match(
      out.stderr,
      /^cog: error: --use-cuda-base-image takes auto, true or false, not "(bogus|r\.example\/some\/model)"$/m,
    );
    assert.match(out.stderr, /^hint: write it as --use-cuda-base-image=false/m);
  }
  for (const value of ['auto', 'true', 'false']) {
    const out = await exec(cog, ['build', `--use-cuda-base-image=${value}`], { cwd: project, env });
    assert.doesNotMatch(out.stderr, /takes auto, true or false/, value);
  }
});
