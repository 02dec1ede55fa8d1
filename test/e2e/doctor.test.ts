// `cog doctor` through bin/cog: a sound fixture passes against the test bed's buildkitd (its version in
// the report); a broken project gets every finding with file:line and exits 1; --fix migrates the
// starter predictor and the migrated model still runs.
import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
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

/** A project directory holding `files` (path → text). */
async function project(prefix: string, files: Record<string, string>): Promise<string> {
  const dir = join(await tempDir(prefix), 'model');
  await mkdir(dir, { recursive: true });
  for (const [path, text] of Object.entries(files)) await writeFile(join(dir, path), text);
  return dir;
}

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

test('a broken project: each finding with its place, and errors exit 1', async () => {
  const dir = await project('cogts-doctor-', {
    'cog.yaml':
      'build:\n  python_version: "3.11"\npredict: "predict.py:Predictor"\ntrain: "train.py:Trainer"\n',
    'predict.py': [
      'from cog import BasePredictor',
      'from cog.types import ExperimentalFeatureWarning',
      '',
      'class Predictor(BasePredictor):',
      '    def predict(self, name: str):',
      '        return name',
      '',
    ].join('\n'),
  });
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
  assert.match(out.stderr, /^Found 2 errors, 3 warnings\. Run "cog doctor --fix" to auto-fix\.$/m);
  assert.doesNotMatch(out.stderr, /cog: error/, 'the report says it all');

  const invalid = join(dir, 'invalid.yaml');
  await writeFile(invalid, 'build:\n  python_version: "3.9"\nrun: "predict.py:Predictor"\n');
  const bad = await exec(cog, ['doctor', '-f', 'invalid.yaml'], { env: tb.env, cwd: dir });
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /^ ✗ Config schema$/m);
  assert.match(bad.stderr, /invalid\.yaml validation failed: .*python_version/s);

  // -f naming a directory: said as cog build says it, not "not found" with a cog init remedy
  const directory = await exec(cog, ['doctor', '-f', dir], { env: tb.env, cwd: dir });
  assert.equal(directory.code, 1);
  assert.match(
    directory.stderr,
    new RegExp(`^ {2}${dir.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} is a directory, not a config file$`, 'm'),
  );
  assert.doesNotMatch(directory.stderr, /cog init/);
});

test(
  '--fix migrates predict.py:Predictor to run.py:Runner, drops a removed import and the pydantic workaround; the model runs',
  { timeout: 600_000 },
  async () => {
    const dir = await project('cogts-doctor-fix-', {
      'cog.yaml': 'build:\n  python_version: "3.11"\npredict: "predict.py:Predictor"\n',
      'predict.py': [
        'import warnings',
        'from cog import BasePredictor, Input',
        'from cog.types import ExperimentalFeatureWarning',
        'from pydantic import BaseModel, ConfigDict',
        '',
        'warnings.filterwarnings("ignore", category=ExperimentalFeatureWarning)',
        '',
        '',
        'class Greeting(BaseModel):',
        '    model_config = ConfigDict(arbitrary_types_allowed=True)',
        '    text: str',
        '',
        '',
        'class Predictor(BasePredictor):',
        '    def predict(self, name: str = Input(default="world")) -> str:',
        '        return "fixed " + name',
        '',
      ].join('\n'),
    });
    const fix = await exec(cog, ['doctor', '--fix'], { env: tb.env, cwd: dir });
    assert.equal(fix.code, 0, fix.stderr);
    assert.match(fix.stderr, /^Running cog doctor --fix\.\.\.$/m);
    assert.match(fix.stderr, /^ ✔ Fixed: Deprecated predict interface names$/m);
    assert.match(fix.stderr, /^ ✔ Fixed: Deprecated imports$/m);
    assert.match(fix.stderr, /^ ✔ Fixed: Pydantic BaseModel workaround$/m);
    assert.match(fix.stderr, /^ ✔ Fixed 4 issues\.$/m);
    assert.deepEqual((await readdir(dir)).sort(), ['cog.yaml', 'run.py']);
    assert.match(await readFile(join(dir, 'cog.yaml'), 'utf8'), /^run: "run\.py:Runner"$/m);
    const run = await readFile(join(dir, 'run.py'), 'utf8');
    assert.match(run, /^class Runner\(BaseRunner\):$/m);
    assert.doesNotMatch(run, /ExperimentalFeatureWarning|pydantic|arbitrary_types_allowed/);
    // only the dropped filterwarnings line used it
    assert.doesNotMatch(run, /^import warnings$/m);
    assert.match(run, /^from cog import BaseRunner, Input, BaseModel$/m);

    const again = await exec(cog, ['doctor'], { env: tb.env, cwd: dir });
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, / ✔ no issues found\n$/);
    // the migrated model runs under the official cog runtime
    const predicted = await exec(cog, ['run', '-i', 'name=doctor', '--progress', 'quiet'], {
      env: tb.env,
      cwd: dir,
    });
    assert.equal(predicted.code, 0, predicted.stderr.slice(-3000));
    assert.match(predicted.stdout, /fixed doctor/);
  },
);

test('--fix leaves predict.py alone when cog.yaml or another file still needs it, saying where', async () => {
  const predict = [
    'from cog import BasePredictor',
    '',
    '',
    'class Predictor(BasePredictor):',
    '    def predict(self, name: str = "x") -> str:',
    '        return name',
    '',
    '',
    'def train(n: int = 1) -> str:',
    '    return "t"',
    '',
  ].join('\n');
  const cases = [
    {
      files: {
        'cog.yaml':
          'build:\n  python_version: "3.11"\npredict: "predict.py:Predictor"\ntrain: "predict.py:train"\n',
      },
      says: /cog\.yaml:4 also refers to predict\.py, which the migration removes/,
    },
    {
      files: {
        'cog.yaml': 'build:\n  python_version: "3.11"\npredict: "predict.py:Predictor"\n',
        'util.py': 'from predict import Predictor\n',
      },
      says: /util\.py:1 imports predict, which the migration removes/,
    },
  ];
  for (const { files, says } of cases) {
    const dir = await project('cogts-doctor-refuse-', { ...files, 'predict.py': predict });
    const fix = await exec(cog, ['doctor', '--fix'], {
      env: { ...tb.env, COG_SKIP_BUILDKIT_CHECK: '1' },
      cwd: dir,
    });
    assert.equal(fix.code, 1, fix.stderr);
    assert.match(fix.stderr, says);
    assert.equal(await readFile(join(dir, 'predict.py'), 'utf8'), predict);
    assert.equal(await readFile(join(dir, 'cog.yaml'), 'utf8'), files['cog.yaml']);
    assert.ok(!(await readdir(dir)).includes('run.py'), 'no run.py written');
  }
});

test('registry credentials: read from the docker config for the image in cog.yaml, never printed', async () => {
  const dir = await project('cogts-doctor-creds-', {
    'cog.yaml': 'build:\n  python_version: "3.11"\nrun: "run.py:Runner"\nimage: r8.im/someone/model\n',
    'run.py':
      'from cog import BaseRunner\n\nclass Runner(BaseRunner):\n    def run(self) -> str:\n        return "x"\n',
  });
  const dockerConfig = join(dir, '..', 'docker');
  await mkdir(dockerConfig, { recursive: true });
  const env = { ...tb.env, DOCKER_CONFIG: dockerConfig, COG_SKIP_BUILDKIT_CHECK: '1' };
  const without = await exec(cog, ['doctor'], { env, cwd: dir });
  assert.equal(without.code, 0, without.stderr);
  assert.match(without.stderr, /^ {2}no credentials for r8\.im: cog push will be refused$/m);
  const secret = 'not-a-real-token-xyz';
  await writeFile(
    join(dockerConfig, 'config.json'),
    JSON.stringify({ auths: { 'r8.im': { auth: Buffer.from(`someone:${secret}`).toString('base64') } } }),
  );
  const withCreds = await exec(cog, ['doctor'], { env, cwd: dir });
  assert.equal(withCreds.code, 0, withCreds.stderr);
  assert.match(
    withCreds.stderr,
    /^ ✔ Registry credentials \(credentials for r8\.im from the docker config\)$/m,
  );
  assert.doesNotMatch(withCreds.stderr, new RegExp(secret));
});
