// --separate-weights: which project paths are weights (upstream's legacy rules), the patterns that
// split them from the source copy, and the graph that puts them in a layer of their own.
import assert from 'node:assert/strict';
import { mkdir, truncate, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { describe, test } from 'node:test';
import { findProjectWeights, listProject } from '../../src/build/project-listing.js';
import { weightsNote } from '../../src/cli/prepare-build.js';
import { formatPlan } from '../../src/cli/debug-plan.js';
import { compilePlan } from '../../src/plan/compile.js';
import { planBuild } from '../../src/plan/plan.js';
import { minimalPlanInput } from '../support/plan-inputs.js';
import {
  type ListedEntry,
  type WeightsSplit,
  findWeights,
  literalPattern,
  weightExcludes,
  weightIncludes,
} from '../../src/plan/weights.js';
import { tempDirsRemovedAfterTests } from '../support/temp-dirs.js';

const MiB = 1024 * 1024;
const big = 10 * MiB;

/** A listing from `path size` lines (a trailing `/` makes a directory). */
function listing(lines: readonly string[]): ListedEntry[] {
  return lines.map((line) => {
    const [path, size] = line.split(' ') as [string, string | undefined];
    return path.endsWith('/')
      ? { path: path.slice(0, -1), kind: 'dir', size: 0 }
      : { path, kind: 'file', size: Number(size ?? 0) };
  });
}

const cases: { name: string; entries: string[]; want: WeightsSplit }[] = [
  {
    name: 'a weights directory is split out whole; small files and code at the root stay',
    entries: [
      'predict.py 2000',
      'cog.yaml 100',
      'weights/',
      `weights/model.bin ${big}`,
      'weights/config.json 10',
    ],
    want: { dirs: ['weights'], files: [] },
  },
  {
    name: 'exactly 10 MiB counts, one byte less does not',
    entries: [`a/at.bin ${big}`, `b/below.bin ${big - 1}`],
    want: { dirs: ['a'], files: [] },
  },
  {
    name: 'large files at the root are listed one by one',
    entries: [`model.safetensors ${big}`, `b.ckpt ${2 * big}`, 'small.bin 5'],
    want: { dirs: [], files: ['b.ckpt', 'model.safetensors'] },
  },
  {
    name: 'code, wheels, logs, images, video and audio are never weights, whatever their size',
    entries: [
      `big.py ${big}`,
      `nb.ipynb ${big}`,
      `dist/x-1.0-py3-none-any.whl ${big}`,
      `logs/train.log ${big}`,
      `media/a.PNG ${big}`,
      `media/b.jpeg ${big}`,
      `media/c.mp4 ${big}`,
      `media/d.wav ${big}`,
      `media/e.flac ${big}`,
    ],
    want: { dirs: [], files: [] },
  },
  {
    name: '.git, .cog and __pycache__ are not looked into, at any depth',
    entries: [`.git/objects/pack/p.pack ${big}`, `.cog/cache/x ${big}`, `pkg/__pycache__/m.bin ${big}`],
    want: { dirs: [], files: [] },
  },
  {
    name: 'a directory holding code (at any depth) is a code directory and is not split out',
    entries: [`models/big.bin ${big}`, 'models/sub/net.py 10', `other/w.bin ${big}`],
    want: { dirs: ['other'], files: [] },
  },
  {
    name: 'a notebook makes a code directory too',
    entries: [`nb/w.bin ${big}`, 'nb/explore.ipynb 10'],
    want: { dirs: [], files: [] },
  },
  {
    name: 'nested weight directories collapse into the topmost one',
    entries: [
      `w/a.bin ${big}`,
      `w/x/b.bin ${big}`,
      `w/x/y/c.bin ${big}`,
      `m/sd/unet.bin ${big}`,
      `m/clip/t.bin ${big}`,
    ],
    want: { dirs: ['m/clip', 'm/sd', 'w'], files: [] },
  },
  {
    name: 'below a code directory, a weight directory without code is still split out',
    entries: ['src/app.py 10', `src/ckpt/model.bin ${big}`, `src/big.bin ${big}`],
    want: { dirs: ['src/ckpt'], files: [] },
  },
  {
    name: 'a code file in a skipped directory does not make a code directory',
    entries: [`w/m.bin ${big}`, 'w/__pycache__/x.py 10'],
    want: { dirs: ['w'], files: [] },
  },
  {
    name: 'directories are compared by whole path components',
    entries: [`weights/a.bin ${big}`, `weights2/b.bin ${big}`, 'weights2-code/c.py 1'],
    want: { dirs: ['weights', 'weights2'], files: [] },
  },
  {
    name: 'directory entries and small files alone change nothing',
    entries: ['empty/', 'data/', 'data/small.bin 100'],
    want: { dirs: [], files: [] },
  },
];

describe('findWeights', () => {
  for (const c of cases) {
    test(c.name, () => assert.deepEqual(findWeights(listing(c.entries)), c.want));
  }
});

test('weight paths become literal patterns: excluded from the source, included in their own transfer', () => {
  assert.equal(literalPattern('a*b/[x]?'), 'a\\*b/\\[x\\]\\?');
  assert.equal(literalPattern('!odd'), '\\!odd');
  const split = { dirs: ['weights', 'm/sd'], files: ['big.bin'] };
  assert.deepEqual(weightExcludes(split), ['weights', 'weights/**', 'm/sd', 'm/sd/**', 'big.bin']);
  assert.deepEqual(weightIncludes(split), ['weights', 'm/sd', 'big.bin']);
  assert.match(weightsNote(split), /weights\/, m\/sd\/, big\.bin go to \/src in a layer of their own/);
  assert.match(weightsNote({ dirs: [], files: [] }), /no weight files of 10 MiB or more/);
});

const input = minimalPlanInput({
  runCommands: [{ command: 'echo hi', secrets: [] }],
  predict: 'predict.py:Predictor',
  sourceExclude: ['*.log', '!keep.log'],
});

describe('the plan and graph with separate weights', () => {
  const plan = planBuild({ ...input, weights: { dirs: ['weights'], files: ['big.bin'] } });

  test('the source copy excludes the weights, after the .dockerignore patterns', () => {
    assert.deepEqual(plan.weights, {
      dirs: ['weights'],
      files: ['big.bin'],
      exclude: ['.cog', '*.log', '!keep.log'],
    });
    assert.deepEqual(plan.source.exclude, ['.cog', '*.log', '!keep.log', 'weights', 'weights/**', 'big.bin']);
    assert.match(formatPlan(plan), /^weights weights\/ big\.bin -> \/src {3}\[a layer of its own/m);
  });

  test('without weights found (or without the flag) the plan is the usual one', () => {
    const none = planBuild({ ...input, weights: { dirs: [], files: [] } });
    assert.equal(none.weights, undefined);
    assert.deepEqual(none, planBuild(input));
    assert.deepEqual(none.source.exclude, ['.cog', '*.log', '!keep.log']);
  });

  test('the weights layer hangs off scratch and merges between the dependencies and the source', () => {
    const compiled = compilePlan(plan, { baseConfig: {} });
    const { ops } = compiled.image.marshal();
    const named = (name: string) => {
      const op = ops.find((o) => o.metadata.description?.['llb.customname'] === name);
      assert.ok(op, `no op named ${name}`);
      return op;
    };
    const weightsCopy = named('copy the weights to /src');
    const sourceCopy = named('copy the project to /src');
    const lastRun = named('build.run[0]: echo hi');
    // the weights copy reads only the weights transfer: nothing above it can invalidate it
    assert.equal(weightsCopy.op.inputs?.length, 1);
    const load = ops.find((o) => o.digest === weightsCopy.op.inputs?.[0]?.digest);
    assert.equal(load?.op.source?.identifier, 'local://context');
    assert.deepEqual(JSON.parse(load?.op.source?.attrs?.['local.includepattern'] ?? '[]'), [
      'weights',
      'big.bin',
    ]);
    assert.deepEqual(JSON.parse(load?.op.source?.attrs?.['local.excludepatterns'] ?? '[]'), [
      '.cog',
      '*.log',
      '!keep.log',
    ]);
    assert.match(load?.op.source?.attrs?.['local.sharedkeyhint'] ?? '', /:weights$/);
    const copy = weightsCopy.op.file?.actions?.find((a) => a.copy)?.copy;
    assert.equal(copy?.src, '/');
    assert.equal(copy?.dest, '/src/');
    // one merge: the dependencies, then the weights, then the source (later layers on top)
    const merges = ops.filter(
      (o) => o.kind === 'merge' && o.op.inputs?.some((i) => i.digest === weightsCopy.digest),
    );
    assert.equal(merges.length, 1);
    assert.deepEqual(
      merges[0]?.op.inputs?.map((i) => i.digest),
      [lastRun.digest, weightsCopy.digest, sourceCopy.digest],
    );
    // pip freeze runs beside the weights: changing them does not re-run it
    const freezeOps = compiled.freeze.marshal().ops;
    assert.ok(!freezeOps.some((o) => o.digest === weightsCopy.digest));
  });
});

describe('listProject', () => {
  const tempDir = tempDirsRemovedAfterTests();

  test('lists what the source copy sends (.dockerignore applied) and finds the weights in it', async () => {
    const root = await tempDir('cogts-weights-');
    const sized = async (path: string, size: number) => {
      await mkdir(dirname(join(root, path)), { recursive: true });
      await writeFile(join(root, path), '');
      await truncate(join(root, path), size); // sparse: quick to make
    };
    await sized('predict.py', 10);
    await sized('weights/model.bin', big + 1);
    await sized('ignored/model.bin', big);
    await sized('.git/objects/pack.pack', big);
    await sized('cache/__pycache__/x.bin', big);
    await sized('root.safetensors', 2 * big);
    await writeFile(join(root, '.dockerignore'), 'ignored\n');
    const entries = await listProject(root, ['.cog', 'ignored']);
    assert.deepEqual(
      entries.map((e) => `${e.kind} ${e.path}`),
      [
        'file .dockerignore',
        'dir cache',
        'file predict.py',
        'file root.safetensors',
        'dir weights',
        'file weights/model.bin',
      ],
    );
    assert.equal(entries.find((e) => e.path === 'weights/model.bin')?.size, big + 1);
    assert.deepEqual(await findProjectWeights(root, ['ignored']), {
      dirs: ['weights'],
      files: ['root.safetensors'],
    });
  });
});
