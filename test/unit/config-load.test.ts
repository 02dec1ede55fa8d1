// Loading from disk: finding cog.yaml, warnings, compat overrides, `cog init` files.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { CogError } from '../../src/errors.js';
import {
  CompatDataError,
  ConfigError,
  findConfigFile,
  formatIssue,
  initTemplates,
  loadCompatData,
  loadConfig,
  writeInitFiles,
} from '../../src/config/index.js';

const FIXTURES = fileURLToPath(new URL('../../../fixtures/config/', import.meta.url));

const made: string[] = [];
after(() => made.forEach((d) => rmSync(d, { recursive: true, force: true })));

function tmp(): string {
  const dir = mkdtempSync(join(tmpdir(), 'cog-config-load-'));
  made.push(dir);
  return dir;
}

test('cog.yaml is found by walking up from a subdirectory', () => {
  const loaded = loadConfig({ cwd: join(FIXTURES, 'basic', 'src', 'nested'), env: {} });
  assert.equal(loaded.projectDir, join(FIXTURES, 'basic'));
  assert.equal(loaded.configPath, join(FIXTURES, 'basic', 'cog.yaml'));
  const c = loaded.completed;
  // unquoted 3.12 stays "3.12" (and 3.10 would stay "3.10")
  assert.equal(c.pythonVersion, '3.12');
  assert.deepEqual(c.requirements.lines, ['numpy==2.2.6', 'pillow==11.0.0']);
  assert.equal(c.requirements.text, 'numpy==2.2.6\npillow==11.0.0');
  assert.deepEqual(c.runCommands, [{ command: 'echo ready', mounts: [] }]);
  assert.deepEqual(c.environment, { HF_HOME: '/src/.cache/hf' });
  assert.equal(c.predict, 'predict.py:Predictor');
  assert.equal(c.image, 'my-model');
  assert.equal(c.baseImages.python, 'python:3.12-slim');
  assert.equal(c.baseImages.cuda, null);
  assert.equal(c.baseImages.cogBaseTag, 'python3.12');
});

test('the deprecated predict key is a warning in the upstream format', () => {
  const loaded = loadConfig({ cwd: join(FIXTURES, 'basic'), env: {} });
  const w = loaded.warnings.find((i) => i.field === 'predict');
  assert.ok(w !== undefined);
  assert.match(formatIssue(w), /^cog\.yaml:9:10: deprecated field "predict": use "run" instead/);
});

test('-f names another config file; configFile is relative to the project', () => {
  const loaded = loadConfig({ cwd: join(FIXTURES, 'basic', 'src'), file: 'other.yaml', env: {} });
  assert.equal(loaded.completed.configFile, 'other.yaml');
  assert.equal(loaded.completed.predict, 'run.py:Runner');
  assert.deepEqual(loaded.warnings, []);
});

test('no config file anywhere up the tree: the upstream message and a `cog init` hint', () => {
  const dir = tmp();
  assert.throws(
    () => findConfigFile(dir, 'no-such-cog.yaml'),
    (err) =>
      err instanceof CogError &&
      err.message === `no-such-cog.yaml not found in ${dir} (or in any parent directories)` &&
      /cog init/.test(err.hint ?? ''),
  );
});

test('a cog.yaml that is a link to nothing, or no regular file, stops the search naming it (a parent config is another project)', () => {
  const parent = tmp();
  writeFileSync(join(parent, 'cog.yaml'), 'build:\n  python_version: "3.12"\n');
  const child = join(parent, 'child');
  mkdirSync(child);
  symlinkSync('nowhere.yaml', join(child, 'cog.yaml'));
  for (const [cwd, file] of [
    [child, 'cog.yaml'],
    ['/', join(child, 'cog.yaml')],
  ] as const)
    assert.throws(
      () => findConfigFile(cwd, file),
      (err) =>
        err instanceof CogError &&
        /cog\.yaml(?: \(.*\))? is a link to nowhere\.yaml, which cannot be read/.test(err.message) &&
        /point the link at the config file/.test(err.hint ?? ''),
      cwd,
    );
  const fifoDir = join(parent, 'fifo');
  mkdirSync(fifoDir);
  execFileSync('mkfifo', [join(fifoDir, 'cog.yaml')]);
  assert.throws(
    () => findConfigFile(fifoDir),
    (err) =>
      err instanceof CogError &&
      err.message === `cog.yaml (${join(fifoDir, 'cog.yaml')}) is not a regular file`,
  );
});

test('-f with a path from the root is not looked for upwards, and an empty -f is refused', () => {
  const missing = join(tmp(), 'missing.yaml');
  assert.throws(
    () => findConfigFile('/', missing),
    (err) =>
      err instanceof CogError && err.message === `${missing} not found` && /cog init/.test(err.hint ?? ''),
  );
  for (const empty of ['', ' '])
    assert.throws(() => findConfigFile(tmp(), empty), /^CogError: -f names no file \(it is empty\)$/);
});

test('-f naming a directory says so, and which file to pass instead', () => {
  const dir = tmp();
  const project = join(dir, 'project');
  mkdirSync(project);
  writeFileSync(join(project, 'cog.yaml'), 'build:\n  python_version: "3.12"\n');
  const isDirectory = (file: string, hint: RegExp) => (err: unknown) =>
    err instanceof CogError &&
    err.message.startsWith(`${file} is a directory`) &&
    err.message.endsWith('not a config file') &&
    hint.test(err.hint ?? '');
  // relative to the working directory, and absolute
  assert.throws(() => findConfigFile(dir, 'project'), isDirectory('project', /-f project\/cog\.yaml/));
  assert.throws(
    () => findConfigFile(dir, project),
    isDirectory(project, new RegExp(`-f ${project}/cog\\.yaml`)),
  );
  // a directory without a cog.yaml: the hint says what -f takes
  mkdirSync(join(dir, 'empty'));
  assert.throws(() => findConfigFile(dir, 'empty'), isDirectory('empty', /the path of a config file/));
});

test('-f with a trailing "/" after a file name says to drop the slash, rather than "not found"', () => {
  const dir = tmp();
  writeFileSync(join(dir, 'cog.yaml'), '');
  for (const file of ['cog.yaml/', `${join(dir, 'cog.yaml')}//`, 'missing.yaml/'])
    assert.throws(
      () => findConfigFile(dir, file),
      (err) =>
        err instanceof CogError &&
        err.message ===
          `-f ${file} ends in "/", so it names a directory, and there is no directory ${file.replace(/\/+$/, '')}` &&
        err.hint === `drop the trailing "/": -f ${file.replace(/\/+$/, '')}`,
    );
  // a directory written with its slash is still the directory message
  mkdirSync(join(dir, 'project'));
  assert.throws(() => findConfigFile(dir, 'project/'), /^CogError: project\/ is a directory/);
});

test('an empty cog.yaml is valid', () => {
  const dir = tmp();
  writeFileSync(join(dir, 'cog.yaml'), '');
  const loaded = loadConfig({ cwd: dir, env: {} });
  assert.equal(loaded.completed.pythonVersion, null);
  assert.deepEqual(loaded.config, {});
});

test('YAML syntax errors name file:line:column', () => {
  const dir = tmp();
  writeFileSync(join(dir, 'cog.yaml'), 'build:\n  python_version: "3.12\n');
  assert.throws(
    () => loadConfig({ cwd: dir, env: {} }),
    (err) =>
      err instanceof ConfigError &&
      /^failed to parse cog\.yaml:\n {2}- cog\.yaml:\d+:\d+: invalid YAML/.test(err.message),
  );
});

test('unknown keys are warnings naming the key, with a suggestion when one is close', () => {
  const dir = tmp();
  writeFileSync(
    join(dir, 'cog.yaml'),
    'build:\n  python_version: "3.12"\n  gpus: true\npython_packages: []\ntests: []\nrun: run.py:Runner\n',
  );
  const loaded = loadConfig({ cwd: dir, env: {} });
  assert.deepEqual(loaded.warnings.map(formatIssue), [
    'cog.yaml:3:3: unknown field "build.gpus" is ignored; did you mean "build.gpu"?',
    'cog.yaml:4:1: unknown field "python_packages" is ignored; did you mean "build.python_packages"?',
    'cog.yaml:5:1: unknown field "tests" is ignored',
  ]);
  assert.equal(loaded.completed.gpu, false);
  assert.deepEqual(loaded.completed.warnings, loaded.warnings);
});

test('deprecated python_packages and pre_install are warnings and still used', () => {
  const dir = tmp();
  writeFileSync(
    join(dir, 'cog.yaml'),
    'build:\n  python_version: "3.12"\n  python_packages:\n    - numpy==2.0.0\n  pre_install:\n    - echo pre\n',
  );
  const loaded = loadConfig({ cwd: dir, env: {} });
  assert.deepEqual(
    loaded.warnings.map((w) => w.field),
    ['build.python_packages', 'build.pre_install'],
  );
  assert.match(
    loaded.warnings[0]?.message ?? '',
    /deprecated field "build.python_packages": use "build.python_requirements" instead/,
  );
  assert.equal(loaded.completed.requirements.text, 'numpy==2.0.0');
  assert.deepEqual(loaded.completed.runCommands, [{ command: 'echo pre', mounts: [] }]);
});

test('local artifacts inside the project load', () => {
  const loaded = loadConfig({ cwd: join(FIXTURES, 'artifacts'), env: {} });
  assert.deepEqual(loaded.completed.requirements.localArtifacts, [
    {
      requirement: './wheels/mypkg-1.0-py3-none-any.whl',
      relPath: 'wheels/mypkg-1.0-py3-none-any.whl',
      line: 2,
    },
  ]);
});

test('GPU fixture: torch 2.7.0 → CUDA 12.8, cu128 index', () => {
  const loaded = loadConfig({ cwd: join(FIXTURES, 'gpu-torch'), env: {} });
  assert.equal(loaded.completed.cuda, '12.8');
  assert.equal(loaded.completed.cudnn, '9');
  assert.equal(
    loaded.completed.requirements.text,
    '--extra-index-url https://download.pytorch.org/whl/cu128/\ntorch==2.7.0\ntorchvision==0.22.0',
  );
});

test('COG_SDK_WHEEL directory must hold exactly one cog wheel', () => {
  const dist = tmp();
  writeFileSync(join(dist, 'cog-0.17.0-py3-none-any.whl'), '');
  const loaded = loadConfig({ cwd: join(FIXTURES, 'gpu-torch'), env: { COG_SDK_WHEEL: dist } });
  assert.deepEqual(loaded.completed.sdk, {
    kind: 'file',
    path: join(dist, 'cog-0.17.0-py3-none-any.whl'),
    pre: false,
  });
  writeFileSync(join(dist, 'cog-0.18.0-py3-none-any.whl'), '');
  assert.throws(
    () => loadConfig({ cwd: join(FIXTURES, 'gpu-torch'), env: { COG_SDK_WHEEL: dist } }),
    /multiple wheels/,
  );
  assert.throws(
    () => loadConfig({ cwd: join(FIXTURES, 'gpu-torch'), env: { COG_SDK_WHEEL: join(dist, 'nope') } }),
    /COG_SDK_WHEEL: path not found/,
  );
});

test('COG_COMPAT_DIR replaces the matrices it holds; bad data names the file', () => {
  const dir = tmp();
  const bundled = loadCompatData({});
  // a torch matrix where 2.7.0 only exists for CUDA 12.6
  const torch = JSON.parse(
    readFileSync(join(FIXTURES, '..', '..', 'compat', 'torch_compatibility.json'), 'utf8'),
  ) as {
    Torch: string;
  }[];
  writeFileSync(
    join(dir, 'torch_compatibility.json'),
    JSON.stringify(torch.filter((r) => !r.Torch.startsWith('2.7.0') || r.Torch === '2.7.0+cu126')),
  );
  const loaded = loadConfig({ cwd: join(FIXTURES, 'gpu-torch'), env: { COG_COMPAT_DIR: dir } });
  assert.equal(loaded.completed.cuda, '12.6');
  assert.ok(loadCompatData({ COG_COMPAT_DIR: dir }).torch.length < bundled.torch.length);
  // the other two files still come from the bundle
  assert.equal(loadCompatData({ COG_COMPAT_DIR: dir }).cudaImages.length, bundled.cudaImages.length);

  const bad = tmp();
  writeFileSync(join(bad, 'cuda_compatibility.json'), '[{"Tag": 1}]');
  assert.throws(
    () => loadCompatData({ COG_COMPAT_DIR: bad }),
    (err) => err instanceof CompatDataError && err.message.includes(join(bad, 'cuda_compatibility.json')),
  );
  writeFileSync(join(bad, 'cuda_compatibility.json'), '{not json');
  assert.throws(
    () => loadCompatData({ COG_COMPAT_DIR: bad }),
    /invalid JSON in compatibility data .*cuda_compatibility\.json/,
  );
  assert.throws(
    () => loadCompatData({ COG_COMPAT_DIR: join(bad, 'missing') }),
    /COG_COMPAT_DIR=.*not a directory/,
  );
});

test('cog init writes the templates, skips existing files, and the result loads', () => {
  const dir = tmp();
  writeFileSync(join(dir, 'requirements.txt'), 'numpy==2.0.0\n');
  const result = writeInitFiles(dir);
  assert.deepEqual(result.written, ['cog.yaml', 'run.py', '.dockerignore']);
  assert.deepEqual(result.skipped, ['requirements.txt']);
  assert.equal(readFileSync(join(dir, 'requirements.txt'), 'utf8'), 'numpy==2.0.0\n');
  assert.match(readFileSync(join(dir, 'run.py'), 'utf8'), /class Runner\(BaseRunner\):/);
  const loaded = loadConfig({ cwd: dir, env: {} });
  assert.equal(loaded.completed.predict, 'run.py:Runner');
  assert.equal(loaded.completed.pythonVersion, '3.13');
  assert.deepEqual(loaded.warnings, []);
  assert.deepEqual(writeInitFiles(dir).written, []);
  assert.deepEqual(
    initTemplates().map((f) => f.path),
    ['cog.yaml', 'run.py', 'requirements.txt', '.dockerignore'],
  );
});

test('cog init leaves a directory or a link to nothing under a template name alone and reports it as blocked', () => {
  const dir = tmp();
  mkdirSync(join(dir, 'cog.yaml'));
  symlinkSync(join(dir, 'gone.py'), join(dir, 'run.py'));
  writeFileSync(join(dir, 'requirements.txt'), '');
  const result = writeInitFiles(dir);
  assert.deepEqual(result.written, ['.dockerignore']);
  assert.deepEqual(result.skipped, ['requirements.txt']);
  assert.deepEqual(result.blocked, [
    { path: 'cog.yaml', what: 'a directory' },
    { path: 'run.py', what: 'a link to nothing' },
  ]);
  assert.ok(statSync(join(dir, 'cog.yaml')).isDirectory());
  assert.equal(readlinkSync(join(dir, 'run.py')), join(dir, 'gone.py'));
});

test('cog init that cannot write a file fails naming it, and leaves none of its files behind', () => {
  const dir = tmp();
  assert.throws(
    () =>
      writeInitFiles(dir, [
        { path: 'cog.yaml', content: 'x' },
        { path: 'missing/run.py', content: 'y' },
      ]),
    (err) =>
      err instanceof CogError &&
      err.message === `cannot write missing/run.py in ${dir} (ENOENT); nothing was written` &&
      /a directory you can write to/.test(err.hint ?? ''),
  );
  assert.deepEqual(readdirSync(dir), []);
});

test('config file in a parent, requirements path relative to the project dir', () => {
  const dir = tmp();
  mkdirSync(join(dir, 'deep', 'er'), { recursive: true });
  writeFileSync(
    join(dir, 'cog.yaml'),
    'build:\n  python_version: "3.11"\n  python_requirements: reqs/r.txt\n',
  );
  mkdirSync(join(dir, 'reqs'));
  writeFileSync(join(dir, 'reqs', 'r.txt'), 'requests==2.32.3\n');
  const loaded = loadConfig({ cwd: join(dir, 'deep', 'er'), env: {} });
  assert.equal(loaded.completed.requirements.file, 'reqs/r.txt');
  assert.equal(loaded.completed.requirements.text, 'requests==2.32.3');
});
