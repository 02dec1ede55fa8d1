// The predictor and trainer cog.yaml names must reach /src: a .dockerignore pattern that leaves one out
// is found before the build (the image would build, and its server would fail to start), and `cog
// build`/`cog debug` refuse it naming .dockerignore, the file and the pattern.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  excludedFileMessage,
  excludedReferencedFiles,
  referencedFiles,
} from '../../src/build/predictor-files.js';
import { PatternMatcher } from '../../src/buildkit/patterns.js';
import { exec } from '../support/exec.js';
import { tempDirsRemovedAfterTests } from '../support/temp-dirs.js';
import { repoRoot } from '../support/testbed.js';

const cog = join(repoRoot, 'bin', 'cog');
const tempDir = tempDirsRemovedAfterTests();

test('the files run:/predict: and train: name, relative to the project', () => {
  assert.deepEqual(referencedFiles({ run: 'predict.py:Predictor', train: './src/train.py:train' }), [
    { key: 'run', file: 'predict.py' },
    { key: 'train', file: 'src/train.py' },
  ]);
  assert.deepEqual(referencedFiles({ predict: 'p.py:P' }), [{ key: 'predict', file: 'p.py' }]);
  // run wins over the deprecated predict; outside the project or malformed: nothing to check
  assert.deepEqual(referencedFiles({ run: 'a.py:A', predict: 'b.py:B' }), [{ key: 'run', file: 'a.py' }]);
  assert.deepEqual(referencedFiles({ run: '../up.py:P', train: 'no-colon' }), []);
});

test('the deciding pattern is the last that matches the file or a directory above it', () => {
  const matcher = new PatternMatcher(['*.py', '!predict.py', 'src']);
  assert.equal(matcher.decidingPattern('predict.py')?.toString(), '!predict.py');
  assert.equal(matcher.decidingPattern('other.py')?.toString(), '*.py');
  assert.equal(matcher.decidingPattern('src/deep/train.py')?.toString(), 'src');
  assert.equal(matcher.decidingPattern('README.md'), undefined);
});

test('excluded files are reported with the pattern; exceptions and other patterns are not', () => {
  const files = referencedFiles({ run: 'predict.py:Predictor', train: 'src/train.py:train' });
  assert.deepEqual(excludedReferencedFiles(files, ['*.py']), [
    { key: 'run', file: 'predict.py', pattern: '*.py' },
  ]);
  assert.deepEqual(excludedReferencedFiles(files, ['**/*.py', '!predict.py']), [
    { key: 'train', file: 'src/train.py', pattern: '**/*.py' },
  ]);
  assert.deepEqual(excludedReferencedFiles(files, ['*.md', 'weights', '.git']), []);
  assert.deepEqual(excludedReferencedFiles(files, ['[']), [], 'a malformed list is the build’s to refuse');
  const { message, hint } = excludedFileMessage(
    { key: 'run', file: 'predict.py', pattern: '*.py' },
    'cog.yaml',
  );
  assert.match(message, /^\.dockerignore leaves out predict\.py \(pattern "\*\.py"\)/);
  assert.match(message, /cog\.yaml names in run:/);
  assert.match(hint, /!predict\.py/);
});

test('cog build and cog debug refuse a project whose .dockerignore leaves out the predictor', async () => {
  const project = await tempDir('cogts-ignored-predictor-');
  await writeFile(
    join(project, 'cog.yaml'),
    'build:\n  python_version: "3.11"\nrun: "predict.py:Predictor"\n',
  );
  await writeFile(
    join(project, 'predict.py'),
    'from cog import BasePredictor\n\n\nclass Predictor(BasePredictor):\n    def predict(self) -> str:\n        return "x"\n',
  );
  await writeFile(join(project, '.dockerignore'), '# sources\n*.py\n');
  // refused while the project is read: no daemon is asked (BUILDKIT_HOST points nowhere)
  const env = { ...process.env, BUILDKIT_HOST: 'unix:///nonexistent/buildkitd.sock' };
  for (const args of [['build'], ['debug']]) {
    const out = await exec(cog, args, { cwd: project, env });
    assert.equal(out.code, 1, out.stderr);
    assert.match(out.stderr, /cog: error: \.dockerignore leaves out predict\.py \(pattern "\*\.py"\)/);
    assert.match(out.stderr, /hint: .*!predict\.py/);
  }
  await writeFile(join(project, '.dockerignore'), '*.py\n!predict.py\n');
  const kept = await exec(cog, ['debug'], { cwd: project, env });
  assert.equal(kept.code, 0, kept.stderr);
});
