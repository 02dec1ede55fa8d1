// Invalid cog.yaml files: each error names the field and, where it has one, file:line:column.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, test } from 'node:test';
import { ConfigError, formatIssue, loadConfig } from '../../src/config/index.js';
import type { ConfigIssue } from '../../src/config/index.js';

/** A throwaway project directory holding `files`. */
const made: string[] = [];
after(() => made.forEach((d) => rmSync(d, { recursive: true, force: true })));

function project(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'cog-config-'));
  made.push(dir);
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, name)), { recursive: true });
    writeFileSync(join(dir, name), content);
  }
  return dir;
}

function issuesOf(files: Record<string, string>): ConfigIssue[] {
  const dir = project(files);
  try {
    loadConfig({ cwd: dir, env: {} });
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    assert.ok(err.hint !== undefined && err.hint !== '');
    return [...err.issues];
  }
  assert.fail('expected the config to be rejected');
}

interface Case {
  name: string;
  yaml: string;
  files?: Record<string, string>;
  field: string;
  message: RegExp;
  /** expected line (in cog.yaml unless file says otherwise) */
  line?: number;
  file?: string;
}

const REQS = { 'requirements.txt': 'numpy==2.0.0\n' };

const CASES: Case[] = [
  {
    name: 'gpu is not a boolean',
    yaml: 'build:\n  python_version: "3.12"\n  gpu: "yes"\n',
    field: 'build.gpu',
    message: /must be a boolean/,
    line: 3,
  },
  {
    name: 'python_version is a list',
    yaml: 'build:\n  python_version: [3, 12]\n',
    field: 'build.python_version',
    message: /must be a string or number/,
    line: 2,
  },
  {
    name: 'system_packages is a string',
    yaml: 'build:\n  python_version: "3.12"\n  system_packages: ffmpeg\n',
    field: 'build.system_packages',
    message: /must be a list/,
    line: 3,
  },
  {
    name: 'run is a mapping',
    yaml: 'run:\n  file: run.py\n',
    field: 'run',
    message: /must be a string/,
    line: 2,
  },
  {
    name: 'build is a list',
    yaml: 'build:\n  - gpu\n',
    field: 'build',
    message: /must be a mapping/,
    line: 2,
  },
  { name: 'root is a list', yaml: '- build\n', field: 'cog.yaml', message: /must be a mapping/, line: 1 },
  {
    name: 'build.run item has a non-string command',
    yaml: 'build:\n  python_version: "3.12"\n  run:\n    - command: 12\n',
    field: 'build.run[0].command',
    message: /must be a string/,
    line: 4,
  },
  {
    name: 'mount of an unsupported type',
    yaml: 'build:\n  python_version: "3.12"\n  run:\n    - command: ls\n      mounts:\n        - {type: cache, id: x, target: /x}\n',
    field: 'build.run[0].mounts[0].type',
    message: /must be "secret"/,
    line: 6,
  },
  {
    name: 'secret mount with an empty id',
    yaml: 'build:\n  python_version: "3.12"\n  run:\n    - command: ls\n      mounts:\n        - type: secret\n          id: ""\n          target: /run/secrets/x\n',
    field: 'build.run[0].mounts[0].id',
    message: /must name the secret, as `cog build --secret id=NAME,\.\.\.` does/,
    line: 7,
  },
  {
    name: 'secret mount with a relative target',
    yaml: 'build:\n  python_version: "3.12"\n  run:\n    - command: ls\n      mounts:\n        - type: secret\n          id: x\n          target: relative\n',
    field: 'build.run[0].mounts[0].target',
    message: /must be an absolute path in the build/,
    line: 8,
  },
  {
    name: 'concurrency without max',
    yaml: 'concurrency:\n  default_target: 2\n',
    field: 'concurrency.max',
    message: /is required/,
    line: 1,
  },
  {
    name: 'python 3.9',
    yaml: 'build:\n  python_version: "3.9"\n',
    field: 'build.python_version',
    message: /minimum supported Python version is 3\.10/,
    line: 2,
  },
  {
    name: 'python without minor',
    yaml: 'build:\n  python_version: "3"\n',
    field: 'build.python_version',
    message: /must include major and minor/,
    line: 2,
  },
  {
    name: 'build without python_version',
    yaml: 'build:\n  gpu: false\n',
    field: 'build.python_version',
    message: /python_version is required/,
    line: 1,
  },
  {
    name: 'both run and predict',
    yaml: 'run: run.py:Runner\npredict: predict.py:Predictor\n',
    field: 'predict',
    message: /only one of run or predict/,
    line: 2,
  },
  {
    name: 'bad run reference',
    yaml: 'run: run:Runner\n',
    field: 'run',
    message: /must be in the form 'run\.py:Runner'/,
    line: 1,
  },
  {
    name: 'bad train reference',
    yaml: 'train: train.py\n',
    field: 'train',
    message: /must be in the form 'train\.py:Trainer'/,
    line: 1,
  },
  {
    name: 'reserved env PATH',
    yaml: 'environment:\n  - PATH=/x\n',
    field: 'environment[0]',
    message: /"PATH" is not allowed: reserved/,
    line: 2,
  },
  {
    name: 'reserved env prefix CUDA_',
    yaml: 'environment:\n  - A=1\n  - CUDA_HOME=/cuda\n',
    field: 'environment[1]',
    message: /"CUDA_HOME" is not allowed/,
    line: 3,
  },
  {
    name: 'reserved env prefix R8_',
    yaml: 'environment:\n  - R8_X=1\n',
    field: 'environment[0]',
    message: /"R8_X" is not allowed/,
    line: 2,
  },
  {
    name: 'duplicate env',
    yaml: 'environment:\n  - A=1\n  - A=2\n',
    field: 'environment[1]',
    message: /"A" is already defined/,
    line: 3,
  },
  {
    name: 'malformed env entry',
    yaml: 'environment:\n  - 1A=2\n',
    field: 'environment[0]',
    message: /must be NAME=value/,
    line: 2,
  },
  {
    name: 'cuda 10.2',
    yaml: 'build:\n  python_version: "3.12"\n  gpu: true\n  cuda: "10.2"\n',
    field: 'build.cuda',
    message: /minimum supported CUDA version is 11/,
    line: 4,
  },
  {
    name: 'cuda "12"',
    yaml: 'build:\n  python_version: "3.12"\n  gpu: true\n  cuda: "12"\n',
    field: 'build.cuda',
    message: /must include both major and minor/,
    line: 4,
  },
  {
    name: 'cudnn incompatible with cuda',
    yaml: 'build:\n  python_version: "3.12"\n  gpu: true\n  cuda: "11.8"\n  cudnn: "9"\n',
    field: 'build.cudnn',
    message: /CUDA 11\.8 is incompatible with CuDNN 9: compatible CuDNN versions are: 8/,
    line: 5,
  },
  {
    name: 'newline in build.run',
    yaml: 'build:\n  python_version: "3.12"\n  run:\n    - "echo a\\necho b"\n',
    field: 'build.run[0]',
    message: /contains a new line/,
    line: 4,
  },
  {
    name: 'missing requirements file',
    yaml: 'build:\n  python_version: "3.12"\n  python_requirements: reqs.txt\n',
    field: 'build.python_requirements',
    message: /file does not exist \(the path is relative to the directory of cog\.yaml\)/,
    line: 3,
  },
  {
    name: 'requirements path that is a directory',
    yaml: 'build:\n  python_version: "3.12"\n  python_requirements: deps\n',
    files: { 'deps/requirements.txt': 'numpy\n' },
    field: 'build.python_requirements',
    message: /is a directory; name the requirements file in it/,
    line: 3,
  },
  {
    name: 'python_packages with python_requirements',
    yaml: 'build:\n  python_version: "3.12"\n  python_requirements: requirements.txt\n  python_packages:\n    - numpy\n',
    files: REQS,
    field: 'build.python_packages',
    message: /only one of python_packages or python_requirements/,
    line: 5,
  },
  {
    name: 'concurrency 0',
    yaml: 'build:\n  python_version: "3.12"\nconcurrency:\n  max: 0\n',
    field: 'concurrency.max',
    message: /must be at least 1/,
    line: 4,
  },
  {
    name: 'concurrency > 1 on python 3.10',
    yaml: 'build:\n  python_version: "3.10"\nconcurrency:\n  max: 4\n',
    field: 'concurrency.max',
    message: /requires Python 3\.11 or higher/,
    line: 4,
  },
  {
    name: 'concurrency.max not an integer',
    yaml: 'concurrency:\n  max: 1.5\n',
    field: 'concurrency.max',
    message: /must be an integer/,
    line: 2,
  },
  {
    name: 'image and model',
    yaml: 'image: r8.im/a/b\nmodel: r8.im/a/b\n',
    field: 'model',
    message: /'model' and 'image' cannot both be set/,
    line: 2,
  },
  {
    name: 'model with a tag',
    yaml: 'model: r8.im/acme/model:v1\n',
    field: 'model',
    message: /must be a bare repository/,
    line: 1,
  },
  {
    name: 'model with a digest',
    yaml: 'model: r8.im/acme/model@sha256:abc\n',
    field: 'model',
    message: /tags and digests are not allowed/,
    line: 1,
  },
  {
    name: 'model with upper case',
    yaml: 'model: r8.im/Acme/model\n',
    field: 'model',
    message: /invalid repository/,
    line: 1,
  },
  {
    name: 'weights without model',
    yaml: 'image: x\nweights:\n  - name: w\n    target: /weights\n    source: {uri: hf://org/repo}\n',
    field: 'weights',
    message: /weights require 'model', not 'image'/,
    line: 3,
  },
  {
    name: 'weights with a bad name',
    yaml: 'model: r8.im/a/b\nweights:\n  - name: My_Weights\n    target: /weights\n    source: {uri: hf://org/repo}\n',
    field: 'weights[0].name',
    message: /lowercase/,
    line: 3,
  },
  {
    name: 'weights with overlapping targets',
    yaml: 'model: r8.im/a/b\nweights:\n  - {name: a, target: /w, source: {uri: hf://o/a}}\n  - {name: b, target: /w/b, source: {uri: hf://o/b}}\n',
    field: 'weights[1].target',
    message: /overlaps the target of weights\[0\]/,
    line: 4,
  },
  {
    name: 'weights with a relative target',
    yaml: 'model: r8.im/a/b\nweights:\n  - {name: a, target: w, source: {uri: hf://o/a}}\n',
    field: 'weights[0].target',
    message: /must be an absolute path/,
    line: 3,
  },
  {
    name: 'weights with a negated pattern',
    yaml: 'model: r8.im/a/b\nweights:\n  - name: a\n    target: /w\n    source:\n      uri: hf://o/a\n      include: ["!*.bin"]\n',
    field: 'weights[0].source[0].include[0]',
    message: /negated patterns/,
    line: 7,
  },
  {
    name: 'weights with an unsupported scheme',
    yaml: 'model: r8.im/a/b\nweights:\n  - {name: a, target: /w, source: [{uri: "s3://bucket/x"}]}\n',
    field: 'weights[0].source[0].uri',
    message: /unsupported scheme/,
    line: 3,
  },
  {
    name: 'sdk_version below 0.16.0',
    yaml: 'build:\n  python_version: "3.12"\n  sdk_version: "0.15.2"\n',
    field: 'build.sdk_version',
    message: /below the minimum required version 0\.16\.0/,
    line: 3,
  },
  {
    name: 'sdk_version not a version',
    yaml: 'build:\n  python_version: "3.12"\n  sdk_version: "latest"\n',
    field: 'build.sdk_version',
    message: /must be a version/,
    line: 3,
  },
  {
    name: 'gpu with unpinned torch',
    yaml: 'build:\n  python_version: "3.12"\n  gpu: true\n  python_requirements: requirements.txt\n',
    files: { 'requirements.txt': '# ml\nnumpy==2.0.0\ntorch\n' },
    field: 'build.python_requirements',
    message: /torch version must be specified when using CUDA/,
    line: 3,
    file: 'requirements.txt',
  },
  {
    name: 'artifact outside the project',
    yaml: 'build:\n  python_version: "3.12"\n  python_requirements: requirements.txt\n',
    files: { 'requirements.txt': 'numpy\n../outside/pkg-1.0-py3-none-any.whl\n' },
    field: 'build.python_requirements',
    message: /outside the project directory/,
    line: 2,
    file: 'requirements.txt',
  },
  {
    name: 'missing local artifact',
    yaml: 'build:\n  python_version: "3.12"\n  python_requirements: requirements.txt\n',
    files: { 'requirements.txt': './wheels/missing-1.0-py3-none-any.whl\n' },
    field: 'build.python_requirements',
    message: /local package artifact not found/,
    line: 1,
    file: 'requirements.txt',
  },
  {
    name: 'local directory requirement',
    yaml: 'build:\n  python_version: "3.12"\n  python_requirements: requirements.txt\n',
    files: { 'requirements.txt': 'numpy\n\n./src/mypkg\n' },
    field: 'build.python_requirements',
    message: /not a supported wheel or source archive/,
    line: 3,
    file: 'requirements.txt',
  },
  {
    name: 'name @ local path',
    yaml: 'build:\n  python_version: "3.12"\n  python_requirements: requirements.txt\n',
    files: { 'requirements.txt': 'mypkg @ ./dist/mypkg-1.0.tar.gz\n' },
    field: 'build.python_requirements',
    message: /`name @ path`\) are not supported/,
    line: 1,
    file: 'requirements.txt',
  },
  {
    name: 'YAML syntax error',
    yaml: 'build:\n  python_version: "3.12"\n  gpu: [true\nrun: x\n',
    field: 'cog.yaml',
    message: /invalid YAML/,
    line: 4,
  },
  {
    name: 'duplicate YAML key',
    yaml: 'run: a.py:A\nrun: b.py:B\n',
    field: 'cog.yaml',
    message: /invalid YAML: Map keys must be unique/,
    line: 2,
  },
  {
    name: 'two YAML documents',
    yaml: 'build:\n  python_version: "3.12"\n---\nbuild: {}\n',
    field: 'cog.yaml',
    message:
      /^invalid YAML: cog\.yaml holds more than one YAML document \(a second one starts here\); keep one$/,
    line: 3,
  },
];

for (const c of CASES) {
  test(`invalid cog.yaml: ${c.name}`, () => {
    const issues = issuesOf({ 'cog.yaml': c.yaml, ...(c.files ?? {}) });
    const issue = issues.find((i) => i.field === c.field && c.message.test(i.message));
    assert.ok(
      issue !== undefined,
      `no issue for ${c.field} ~ ${c.message}; got:\n${issues.map(formatIssue).join('\n')}`,
    );
    if (c.line !== undefined) {
      assert.equal(issue.location?.file, c.file ?? 'cog.yaml');
      assert.equal(issue.location?.line, c.line, formatIssue(issue));
    }
  });
}

test('all errors are reported at once, in file order, each with file:line:column', () => {
  const issues = issuesOf({
    'cog.yaml':
      'build:\n  python_version: "3.9"\n  cuda: "9.0"\nenvironment:\n  - PATH=/x\nconcurrency:\n  max: 0\n',
  });
  assert.deepEqual(
    issues.map((i) => [i.field, i.location?.line]),
    [
      ['build.python_version', 2],
      ['build.cuda', 3],
      ['environment[0]', 5],
      ['concurrency.max', 7],
    ],
  );
  assert.equal(
    formatIssue(issues[0] ?? { field: '', message: '' }),
    'cog.yaml:2:19: invalid build.python_version "3.9": minimum supported Python version is 3.10',
  );
});

test('schema errors are all collected too', () => {
  const issues = issuesOf({ 'cog.yaml': 'build:\n  gpu: 1\n  cuda: [1]\nimage: {a: b}\n' });
  assert.deepEqual(
    issues.map((i) => i.field),
    ['build.gpu', 'build.cuda', 'image'],
  );
});

test('a symlinked artifact that points outside the project is rejected', () => {
  const outside = project({ 'pkg-1.0-py3-none-any.whl': 'zip' });
  const dir = project({
    'cog.yaml': 'build:\n  python_version: "3.12"\n  python_requirements: requirements.txt\n',
    'requirements.txt': './wheels/pkg-1.0-py3-none-any.whl\n',
  });
  mkdirSync(join(dir, 'wheels'));
  symlinkSync(join(outside, 'pkg-1.0-py3-none-any.whl'), join(dir, 'wheels', 'pkg-1.0-py3-none-any.whl'));
  assert.throws(
    () => loadConfig({ cwd: dir, env: {} }),
    (err) =>
      err instanceof ConfigError && /requirements\.txt:1: .*outside the project directory/.test(err.message),
  );
});

test('merge keys (<<: *anchor) are read as go-yaml reads them; errors and unknown keys point into the anchor', () => {
  const anchor = 'x-base: &b\n  python_version: "3.11"\n  pyhton_packages: []\n';
  const good = project({ 'cog.yaml': `${anchor}build:\n  <<: *b\n  gpu: false\nrun: run.py:Runner\n` });
  const loaded = loadConfig({ cwd: good, env: {} });
  assert.equal(loaded.completed.pythonVersion, '3.11');
  assert.deepEqual(
    loaded.warnings.map((w) => formatIssue(w)),
    [
      'cog.yaml:1:1: unknown field "x-base" is ignored',
      'cog.yaml:3:3: unknown field "build.pyhton_packages" is ignored; did you mean "build.python_packages"?',
    ],
  );
  const issues = issuesOf({
    'cog.yaml': 'x-base: &b\n  python_version: "2.7"\nbuild:\n  <<: [*b]\nrun: run.py:Runner\n',
  });
  assert.equal(issues.length, 1);
  assert.match(formatIssue(issues[0]!), /^cog\.yaml:2:19: invalid build\.python_version "2\.7"/);
});

test('a requirements file that is a FIFO or cannot be read is named with the reason (both said "file does not exist")', () => {
  const yaml = 'build:\n  python_version: "3.12"\n  python_requirements: requirements.txt\n';
  const fifo = project({ 'cog.yaml': yaml });
  execFileSync('mkfifo', [join(fifo, 'requirements.txt')]);
  assert.throws(
    () => loadConfig({ cwd: fifo, env: {} }),
    (err) =>
      err instanceof ConfigError &&
      /cog\.yaml:3:24: invalid build\.python_requirements "requirements\.txt": is not a regular file/.test(
        err.message,
      ),
  );
  // a path under a file: nothing is there (it was an internal ENOTDIR error)
  const underFile = project({
    'cog.yaml': 'build:\n  python_version: "3.12"\n  python_requirements: requirements.txt/more.txt\n',
    'requirements.txt': 'numpy\n',
  });
  assert.throws(
    () => loadConfig({ cwd: underFile, env: {} }),
    (err) =>
      err instanceof ConfigError && /"requirements\.txt\/more\.txt": file does not exist/.test(err.message),
  );
  // a regular file whose read fails, whoever runs the tests (root reads a chmod 000 file)
  const unreadable = project({
    'cog.yaml': 'build:\n  python_version: "3.12"\n  python_requirements: /proc/self/mem\n',
  });
  assert.throws(
    () => loadConfig({ cwd: unreadable, env: {} }),
    (err) => err instanceof ConfigError && /"\/proc\/self\/mem": file cannot be read/.test(err.message),
  );
});

test('a misspelt required key: the error shows the unknown key and its "did you mean" beside "is required"', () => {
  const dir = project({ 'cog.yaml': 'build:\n  pythn_version: "3.12"\nrun: "run.py:Runner"\n' });
  assert.throws(
    () => loadConfig({ cwd: dir, env: {} }),
    (err) =>
      err instanceof ConfigError &&
      err.message ===
        'cog.yaml is not valid:\n' +
          '  - cog.yaml:1:1: build.python_version: python_version is required. Add it to the build section of your cog.yaml, e.g. `python_version: "3.13"`\n' +
          '  note: cog.yaml:2:3: unknown field "build.pythn_version" is ignored; did you mean "build.python_version"?' &&
      err.issues.length === 1 &&
      err.notes.length === 1,
  );
  // an error found by the schema (before validation) shows them too
  const schema = project({ 'cog.yaml': 'build:\n  gpu: "yes"\n  pythn_version: "3.12"\n' });
  assert.throws(
    () => loadConfig({ cwd: schema, env: {} }),
    (err) =>
      err instanceof ConfigError &&
      /\n {2}note: cog\.yaml:3:3: unknown field "build\.pythn_version" is ignored; did you mean "build\.python_version"\?$/.test(
        err.message,
      ),
  );
});
