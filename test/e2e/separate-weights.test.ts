// `cog build --separate-weights`: the weights land in a layer of their own below the source layer, a
// predict.py edit re-runs only the source copy (the weights layer keeps its digest), and a changed
// weight file re-runs only the weights copy.
import assert from 'node:assert/strict';
import { cp, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { ImageStore } from '../../src/image/store.js';
import { exec, execOk } from '../support/exec.js';
import { stepsFromPlainProgress } from '../support/plain-steps.js';
import { prng } from '../support/prng.js';
import { tempDirsRemovedAfterTests } from '../support/temp-dirs.js';
import { ensureTestbed, repoRoot, type Testbed } from '../support/testbed.js';

const cog = join(repoRoot, 'bin', 'cog');
const tempDir = tempDirsRemovedAfterTests();
let tb: Testbed;
let scratchDir: string;

before(async () => {
  tb = await ensureTestbed();
  scratchDir = await tempDir('cogts-weights-');
});

/** `size` pseudo-random bytes (incompressible, so the layer is as big as the file). */
function randomBytes(size: number, seed: number): Buffer {
  const next = prng(seed);
  const out = Buffer.alloc(size);
  for (let i = 0; i < size; i += 4) out.writeUInt32LE(Math.floor(next() * 2 ** 32), i);
  return out;
}

interface Layer {
  readonly digest: string;
  readonly files: readonly string[];
}

/** The layers of `name` in the store, each with the paths its tarball holds. */
async function layersOf(store: ImageStore, name: string): Promise<Layer[]> {
  const descriptor = await store.resolve(name);
  assert.ok(descriptor, `${name} is not in the store`);
  const manifest = JSON.parse((await store.readBlob(descriptor.digest)).toString('utf8')) as {
    layers: { digest: string }[];
  };
  const layers: Layer[] = [];
  for (const { digest } of manifest.layers) {
    const blob = join(store.root, 'blobs', 'sha256', digest.slice('sha256:'.length));
    const listing = (await execOk('tar', ['-tzf', blob])).stdout;
    layers.push({ digest, files: listing.split('\n').filter(Boolean) });
  }
  return layers;
}

function holding(layers: readonly Layer[], path: string): Layer[] {
  return layers.filter((l) => l.files.includes(path));
}

test('weights go to a layer of their own that a source edit leaves alone', { timeout: 600_000 }, async () => {
  const project = join(scratchDir, 'project');
  await cp(join(repoRoot, 'fixtures', 'models', 'hello'), project, { recursive: true });
  await mkdir(join(project, 'weights'));
  const weightFile = join(project, 'weights', 'model.bin');
  await writeFile(weightFile, randomBytes(11 * 1024 * 1024, Date.now()));
  const store = new ImageStore(join(scratchDir, 'store'));
  const name = 'separate-weights:test';

  const buildOnce = async () => {
    const out = await exec(cog, ['build', '-t', name, '--separate-weights', '--progress', 'plain'], {
      env: { ...tb.env, COG_IMAGE_STORE: store.root },
      cwd: project,
    });
    assert.equal(out.code, 0, out.stderr.slice(-3000));
    assert.match(out.stderr, /--separate-weights: weights\/ go to \/src in a layer of their own/);
    const layers = await layersOf(store, name);
    const weights = holding(layers, 'src/weights/model.bin');
    const source = holding(layers, 'src/predict.py');
    assert.equal(weights.length, 1, 'the weight file is in exactly one layer');
    assert.equal(source.length, 1, 'predict.py is in exactly one layer');
    const [weightsLayer, sourceLayer] = [weights[0], source[0]] as [Layer, Layer];
    assert.notEqual(weightsLayer.digest, sourceLayer.digest);
    // nothing but the weights in their layer, and the weights in no other
    assert.deepEqual(
      weightsLayer.files.filter((f) => !/^src\/?$|^src\/weights\/?$/.test(f)),
      ['src/weights/model.bin'],
    );
    assert.ok(!sourceLayer.files.some((f) => f.startsWith('src/weights')), sourceLayer.files.join(' '));
    // the weights layer sits below the source layer, as upstream's COPY --link before COPY . /src
    assert.ok(layers.indexOf(weightsLayer) < layers.indexOf(sourceLayer));
    return { steps: stepsFromPlainProgress(out.stderr), weightsLayer, sourceLayer };
  };

  const first = await buildOnce();
  assert.ok(
    first.steps.ran.includes('copy the weights to /src') ||
      first.steps.cached.includes('copy the weights to /src'),
  );

  const predictPy = join(project, 'predict.py');
  await writeFile(predictPy, `${await readFile(predictPy, 'utf8')}\n# an edit (${Date.now()})\n`);
  const edited = await buildOnce();
  assert.deepEqual(
    edited.steps.ran,
    ['copy the project to /src'],
    `after editing predict.py: ${edited.steps.ran.join(', ')}`,
  );
  assert.equal(edited.weightsLayer.digest, first.weightsLayer.digest);
  assert.notEqual(edited.sourceLayer.digest, first.sourceLayer.digest);

  await writeFile(weightFile, randomBytes(11 * 1024 * 1024, Date.now() + 1));
  const reweighted = await buildOnce();
  assert.deepEqual(
    reweighted.steps.ran,
    ['copy the weights to /src'],
    `after changing the weights: ${reweighted.steps.ran.join(', ')}`,
  );
  assert.notEqual(reweighted.weightsLayer.digest, edited.weightsLayer.digest);
  assert.equal(reweighted.sourceLayer.digest, edited.sourceLayer.digest);
});

/** Bytes from a push summary's "… uploaded in Ns" (formatSize's units). */
function uploadedBytes(stderr: string): number {
  const m = /\): ([\d.]+) (B|KiB|MiB|GiB) uploaded in/.exec(stderr);
  assert.ok(m?.[1] && m[2], `no push summary in:\n${stderr.slice(-2000)}`);
  const scale = { B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3 }[m[2] as 'B'];
  return Number(m[1]) * scale;
}

test(
  'cog push --separate-weights: after a code edit the weights are not uploaded again',
  { timeout: 600_000 },
  async () => {
    const project = join(scratchDir, 'push-project');
    await cp(join(repoRoot, 'fixtures', 'models', 'hello'), project, { recursive: true });
    await mkdir(join(project, 'weights'));
    await writeFile(join(project, 'weights', 'model.bin'), randomBytes(11 * 1024 * 1024, Date.now() + 7));
    const repo = `${tb.registry}/cogts-test/separate-weights-${Date.now().toString(36)}`;
    const pushOnce = async (tag: string) => {
      const out = await exec(cog, ['push', `${repo}:${tag}`, '--separate-weights', '--progress', 'plain'], {
        env: { ...tb.env, COG_IMAGE_STORE: join(scratchDir, 'push-store'), DOCKER_CONFIG: scratchDir },
        cwd: project,
      });
      assert.equal(out.code, 0, out.stderr.slice(-3000));
      return uploadedBytes(out.stderr);
    };
    // the first push to a new repository uploads the weights (11 MiB of random bytes)
    assert.ok((await pushOnce('v1')) >= 11 * 1024 * 1024);
    const predictPy = join(project, 'predict.py');
    await writeFile(predictPy, `${await readFile(predictPy, 'utf8')}\n# an edit (${Date.now()})\n`);
    // after a code edit only the small source layer, the config and the manifest go up
    const second = await pushOnce('v2');
    assert.ok(second < 1024 * 1024, `second push uploaded ${second} bytes`);
  },
);
