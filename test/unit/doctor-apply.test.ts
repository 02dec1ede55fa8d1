// How `cog doctor --fix` writes its edits (cli/doctor.ts applyEdits): through a linked file to where
// it points, and all or nothing when a file cannot be written.
import assert from 'node:assert/strict';
import { lstat, mkdir, mkdtemp, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { applyEdits } from '../../src/cli/doctor.js';

const dirs: string[] = [];
after(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'cogts-doctor-apply-'));
  dirs.push(dir);
  return dir;
}

test('a linked cog.yaml is written where the link points; the link stays a link', async () => {
  const dir = await tempDir();
  await mkdir(join(dir, 'shared'));
  await mkdir(join(dir, 'model'));
  await writeFile(join(dir, 'shared', 'cog.yaml'), 'predict: "predict.py:Predictor"\n');
  await symlink('../shared/cog.yaml', join(dir, 'model', 'cog.yaml'));
  await writeFile(join(dir, 'model', 'predict.py'), 'old\n');
  await applyEdits(join(dir, 'model'), {
    write: [
      { path: 'run.py', content: 'new\n', modeFrom: 'predict.py' },
      { path: 'cog.yaml', content: 'run: "run.py:Runner"\n' },
    ],
    remove: ['predict.py'],
  });
  assert.ok((await lstat(join(dir, 'model', 'cog.yaml'))).isSymbolicLink());
  assert.equal(await readFile(join(dir, 'shared', 'cog.yaml'), 'utf8'), 'run: "run.py:Runner"\n');
  assert.deepEqual((await readdir(join(dir, 'model'))).sort(), ['cog.yaml', 'run.py']);
  assert.deepEqual(await readdir(join(dir, 'shared')), ['cog.yaml']);
});

test('a file that cannot be written leaves every file as it was, and no temporary file', async () => {
  const dir = await tempDir();
  await writeFile(join(dir, 'cog.yaml'), 'predict: "predict.py:Predictor"\n');
  await writeFile(join(dir, 'predict.py'), 'old\n');
  await assert.rejects(
    applyEdits(dir, {
      write: [
        { path: 'cog.yaml', content: 'run: "run.py:Runner"\n' },
        { path: 'missing/run.py', content: 'new\n' },
      ],
      remove: ['predict.py'],
    }),
    /ENOENT/,
  );
  assert.equal(await readFile(join(dir, 'cog.yaml'), 'utf8'), 'predict: "predict.py:Predictor"\n');
  assert.deepEqual((await readdir(dir)).sort(), ['cog.yaml', 'predict.py']);
});
