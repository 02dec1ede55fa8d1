// `cog doctor` through bin/cog: a sound fixture passes against the test bed's buildkitd (its version in
// the report); a broken project gets every finding with file:line and exits 1; --fix is refused.
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { exec } from '../support/exec.js';
import { tempDirsRemovedAfterTests } from '../support/temp-dirs.js';
import { ensureTestbed, repoRoot, type Testbed } from '../support/testbed.js';

const cog = join(repoRoot, 'bin', 'cog');
const tempDir = tempDirsRemovedAfterTests();
let tb: Testbed;

before(async () => {
  tb = await ensureTestbed();
});

test('a sound project: every check passes, BuildKit answers with its version, exit 0', async () => {
  const out = await exec(cog, ['doctor'], {
    env: tb.env,
    cwd: join(repoRoot, 'fixtures', 'models', 'hello'),
  });
  assert.equal(out.code, 0, out.stderr);
  assert.match(out.stderr, /^ ✔ Config schema$/m);
  assert.match(out.stderr, /^ ✔ Predict reference$/m);
  assert.match(out.stderr, /^ ✔ BuildKit \(buildkitd v0\.32\.\d+ at unix:\/\/.*; platforms .*linux\/amd64/m);
  assert.match(out.stderr, / ✔ no issues found\n$/);
});

test('a broken project: each finding with its place, errors exit 1, and --fix is refused', async () => {
  const dir = join(await tempDir('cogts-doctor-'), 'model');
  await mkdir(dir, { recursive: true });
  await writeFile(
    join(dir, 'cog.yaml'),
    'build:\n  python_version: "3.11"\npredict: "predict.py:Predictor"\ntrain: "train.py:Trainer"\n',
  );
  await writeFile(
    join(dir, 'predict.py'),
    [
      'from cog import BasePredictor',
      'from cog.types import ExperimentalFeatureWarning',
      '',
      'class Predictor(BasePredictor):',
      '    def predict(self, name: str):',
      '        return name',
      '',
    ].join('\n'),
  );
  const out = await exec(cog, ['doctor'], { env: tb.env, cwd: dir });
  assert.equal(out.code, 1, out.stderr);
  assert.match(out.stderr, /^ ⚠ Deprecated predict interface names$/m);
  assert.match(
    out.stderr,
    /^ {2}cog\.yaml:3 — predict in cog\.yaml is deprecated; use run with run\.py:Runner$/m,
  );
  assert.match(out.stderr, /^ ✗ Predict reference$/m);
  assert.match(out.stderr, /^ {2}train\.py not found$/m);
  assert.match(out.stderr, /^ {2}predict\.py:2 — ExperimentalFeatureWarning was removed in cog 0\.17/m);
  assert.match(
    out.stderr,
    /^ {2}predict\.py:5 — Predictor\.predict\(\) is missing a return type annotation$/m,
  );
  assert.match(out.stderr, /^Found 2 errors, 3 warnings\.$/m);
  assert.doesNotMatch(out.stderr, /cog: error/, 'the report says it all');

  const invalid = join(dir, 'invalid.yaml');
  await writeFile(invalid, 'build:\n  python_version: "3.9"\nrun: "predict.py:Predictor"\n');
  const bad = await exec(cog, ['doctor', '-f', 'invalid.yaml'], { env: tb.env, cwd: dir });
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /^ ✗ Config schema$/m);
  assert.match(bad.stderr, /invalid\.yaml validation failed: .*python_version/s);

  const fix = await exec(cog, ['doctor', '--fix'], { env: tb.env, cwd: dir });
  assert.notEqual(fix.code, 0);
  assert.match(fix.stderr, /cog doctor --fix is not available in cog-ts/);
});
