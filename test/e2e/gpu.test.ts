// GPUs reach a model run as CDI devices. The test bed's buildkitd has a stand-in device of NVIDIA's
// kind (scripts/testbed: nvidia.com/gpu=all, whose only edit sets COG_TESTBED_FAKE_GPU=all), so a
// model that reports that variable shows whether the run asked for the GPU and the daemon gave it.
import assert from 'node:assert/strict';
import { cp, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { exec, execOk } from '../support/exec.js';
import { tempDirsRemovedAfterTests } from '../support/temp-dirs.js';
import { ensureTestbed, repoRoot, type Testbed } from '../support/testbed.js';

const cog = join(repoRoot, 'bin', 'cog');
const fixtures = join(repoRoot, 'fixtures', 'models');
const tempDir = tempDirsRemovedAfterTests();
let tb: Testbed;
let project: string;

before(async () => {
  tb = await ensureTestbed();
  // the gpu fixture (build.gpu: true, CUDA stand-in base), answering with what the device injected
  project = await tempDir('cogts-gpu-');
  await cp(join(fixtures, 'gpu'), project, { recursive: true });
  await writeFile(
    join(project, 'run.py'),
    [
      'import os',
      'from cog import BaseRunner',
      '',
      'class Runner(BaseRunner):',
      '    def run(self) -> str:',
      '        return "gpu: " + os.environ.get("COG_TESTBED_FAKE_GPU", "none")',
      '',
    ].join('\n'),
  );
});

test('a build.gpu model runs with the worker’s nvidia.com/gpu device', { timeout: 900_000 }, async () => {
  const out = await execOk(cog, ['run'], { env: tb.env, cwd: project });
  assert.equal(out.stdout, 'gpu: all\n');
});

test('--gpus none runs it without the device', { timeout: 600_000 }, async () => {
  const out = await execOk(cog, ['run', '--gpus', 'none'], { env: tb.env, cwd: project });
  assert.equal(out.stdout, 'gpu: none\n');
});

test('asking for a GPU the worker lacks fails before anything runs, naming what is offered', async () => {
  const out = await exec(cog, ['run', '--gpus', 'device=5', '-i', 'name=x'], {
    env: tb.env,
    cwd: join(fixtures, 'hello'),
  });
  assert.equal(out.code, 1, out.stderr);
  assert.match(out.stderr, /--gpus device=5: the worker offers no device nvidia\.com\/gpu=5/);
  assert.match(out.stderr, /offered: nvidia\.com\/gpu=all/);
});
