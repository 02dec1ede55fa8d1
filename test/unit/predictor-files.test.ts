// The predictor and trainer cog.yaml names must reach /src: a .dockerignore pattern that leaves one out
// is found before the build (the image would build, and its server would fail to start), and `cog
// build`/`cog debug` refuse it naming .dockerignore, the file and the pattern.
import assert from 'node:assert/strict';
import { mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import {
  excludedFileMessage,
  excludedReferencedFiles,
  type ReferencedFile,
  referencedFiles,
} from '../../src/build/predictor-files.js';
import { walkContext } from '../../src/buildkit/filesync.js';
import { ContextFilter } from '../../src/buildkit/patterns.js';
import { exec } from '../support/exec.js';
import { tempDirsRemovedAfterTests, writeFiles } from '../support/temp-dirs.js';
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

test('a file is left out as the context walk leaves it out, naming the pattern that matched it', () => {
  const files = referencedFiles({ run: 'src/predict.py:Predictor', train: 'src/deep/train.py:train' });
  // `*` comes after `!src/predict.py` has un-matched src/predict.py below the matched src: the walk
  // does not try `*` on src (already matched) and `*` does not match src/predict.py itself
  assert.deepEqual(excludedReferencedFiles(files, ['src/', '!src/predict.py', '*']), [
    { key: 'train', file: 'src/deep/train.py', pattern: 'src' },
  ]);
  // `!src` does not bring back what `src/*` matched below src
  assert.deepEqual(excludedReferencedFiles(files, ['src/*', '!src']), [
    { key: 'run', file: 'src/predict.py', pattern: 'src/*' },
    { key: 'train', file: 'src/deep/train.py', pattern: 'src/*' },
  ]);
  // a skipped directory names the pattern that matched the directory
  assert.deepEqual(excludedReferencedFiles(files, ['*.py', 'src']), [
    { key: 'run', file: 'src/predict.py', pattern: 'src' },
    { key: 'train', file: 'src/deep/train.py', pattern: 'src' },
  ]);
  assert.deepEqual(excludedReferencedFiles(files, ['src', '!src/deep/train.py']), [
    { key: 'run', file: 'src/predict.py', pattern: 'src' },
  ]);
});

test('the check agrees with the context walk on every list of up to three patterns from a set', async () => {
  const project = await tempDir('cogts-ignored-walk-');
  const paths = ['predict.py', 'src/predict.py', 'src/deep/train.py', 'src/deep/x/train.py'];
  for (const p of paths) {
    await mkdir(dirname(join(project, p)), { recursive: true });
    await writeFile(join(project, p), '');
  }
  const files: ReferencedFile[] = paths.map((file) => ({ key: 'run', file }));
  const pool = ['*', '*.py', '!*.py', 'src', 'src/', '!src', 'src/*', '!src/*', '**/*.py', '!src/predict.py'];
  const pool2 = ['src/deep', '!src/deep', 'src/**', '!**/train.py', 's*', '!s*/deep/*', 'predict.py'];
  const lists: string[][] = [];
  for (const a of [...pool, ...pool2]) {
    lists.push([a]);
    for (const b of pool) {
      lists.push([a, b]);
      for (const c of pool) lists.push([a, b, c]);
    }
  }
  let disagreements = 0;
  for (const exclude of lists) {
    const sent = new Set<string>();
    for await (const entry of walkContext(project, new ContextFilter({ exclude }))) sent.add(entry.path);
    const walked = paths.filter((p) => !sent.has(p));
    const checked = excludedReferencedFiles(files, exclude).map((e) => e.file);
    if (checked.join() !== walked.join()) {
      disagreements++;
      assert.deepEqual({ exclude, checked }, { exclude, checked: walked });
    }
  }
  assert.equal(disagreements, 0);
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
  await writeFiles(project, {
    'cog.yaml': 'build:\n  python_version: "3.11"\nrun: "predict.py:Predictor"\n',
    'predict.py':
      'from cog import BasePredictor\n\n\nclass Predictor(BasePredictor):\n    def predict(self) -> str:\n        return "x"\n',
    '.dockerignore': '# sources\n*.py\n',
  });
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

test('a predictor reached through a link out of the project is refused (the image got a dangling link)', async () => {
  const outside = await tempDir('cogts-outside-predictor-');
  const predictor =
    'from cog import BasePredictor\n\n\nclass Predictor(BasePredictor):\n    def predict(self) -> str:\n        return "x"\n';
  await writeFiles(outside, { 'predict.py': predictor });
  const env = { ...process.env, BUILDKIT_HOST: 'unix:///nonexistent/buildkitd.sock' };
  const cases: [string, Record<string, string>, string, RegExp][] = [
    // [what, links (path -> target), predictor path, message]
    ['absolute', { 'predict.py': join(outside, 'predict.py') }, 'predict.py', /an absolute path/],
    [
      'climbing',
      { 'predict.py': `../${outside.split('/').pop()}/predict.py` },
      'predict.py',
      /outside the project/,
    ],
    ['directory', { src: outside }, 'src/predict.py', /^cog: error: src is a link to /m],
  ];
  for (const [what, links, file, message] of cases) {
    const project = await tempDir('cogts-linked-predictor-');
    await writeFiles(project, { 'cog.yaml': `build:\n  python_version: "3.11"\nrun: "${file}:Predictor"\n` });
    for (const [path, target] of Object.entries(links)) await symlink(target, join(project, path));
    for (const args of [['build'], ['debug']]) {
      const out = await exec(cog, args, { cwd: project, env });
      assert.equal(out.code, 1, `${what}: ${out.stderr}`);
      assert.match(out.stderr, message, what);
      assert.match(out.stderr, /would be a dangling link in the image's \/src/, what);
      assert.match(out.stderr, /hint: copy the file into the project in place of the link/, what);
    }
  }
  // a link that stays inside the project is what the image gets too: accepted
  const inside = await tempDir('cogts-inside-link-');
  await writeFiles(inside, {
    'cog.yaml': 'build:\n  python_version: "3.11"\nrun: "predict.py:Predictor"\n',
  });
  await mkdir(join(inside, 'models'));
  await writeFile(join(inside, 'models', 'real.py'), predictor);
  await symlink('models/real.py', join(inside, 'predict.py'));
  const kept = await exec(cog, ['debug'], { cwd: inside, env });
  assert.equal(kept.code, 0, kept.stderr);
});

test('a .dockerignore the builder would refuse fails before the build, naming the line; one that is a directory is named', async () => {
  const project = await tempDir('cogts-bad-dockerignore-');
  await writeFiles(project, {
    'cog.yaml': 'build:\n  python_version: "3.11"\nrun: "predict.py:Predictor"\n',
    'predict.py':
      'from cog import BasePredictor\n\n\nclass Predictor(BasePredictor):\n    def predict(self) -> str:\n        return "x"\n',
    '.dockerignore': '*.pyc\nfoo[\n',
  });
  const env = { ...process.env, BUILDKIT_HOST: 'unix:///nonexistent/buildkitd.sock' };
  for (const args of [['build'], ['debug']]) {
    const out = await exec(cog, args, { cwd: project, env });
    assert.equal(out.code, 1, out.stderr);
    assert.match(
      out.stderr,
      /^cog: error: \.dockerignore:2: invalid pattern "foo\[": syntax error in pattern$/m,
    );
  }
  await rm(join(project, '.dockerignore'));
  await mkdir(join(project, '.dockerignore'));
  const dir = await exec(cog, ['debug'], { cwd: project, env });
  assert.equal(dir.code, 1, dir.stderr);
  assert.match(dir.stderr, /^cog: error: \.dockerignore is a directory$/m);
  assert.doesNotMatch(dir.stderr, /internal error/);
});
