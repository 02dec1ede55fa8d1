// requirements.txt reading, local-artifact classification, versions, names and small pure helpers.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  checkBareRepository,
  checkSdkVersion,
  classifyRequirement,
  defaultImageName,
  findPackageVersion,
  isReservedEnvName,
  parseEnvironment,
  parseRequirementsText,
  suggestKey,
} from '../../src/config/index.js';
import { parseReference } from '../../src/registry/reference.js';
import { comparePep440, parsePep440, versionMatches } from '../../src/config/version.js';

test('requirements text: CRLF, continuations, comments, -e . and blank lines', () => {
  const text = [
    '# header',
    'numpy==2.0.0\r',
    'torch==2.7.0 \\',
    '  --extra-index-url=https://example.com/simple',
    '',
    '-e .',
    'pillow  # pinned later',
    'git+https://github.com/o/r.git#egg=r',
    'last\\',
  ].join('\n');
  assert.deepEqual(parseRequirementsText(text), [
    { text: 'numpy==2.0.0', line: 2 },
    { text: 'torch==2.7.0   --extra-index-url=https://example.com/simple', line: 3 },
    { text: 'pillow', line: 7 },
    { text: 'git+https://github.com/o/r.git#egg=r', line: 8 },
    { text: 'last', line: 9 },
  ]);
});

test('local artifacts: bare paths and archive names are artifacts', () => {
  for (const line of [
    './dist/pkg-1.0-py3-none-any.whl',
    '../x/pkg-1.0.tar.gz',
    '/abs/pkg.zip',
    'pkg-1.0.tgz',
    'vendor/pkg-1.0.tar.xz',
    'PKG.TAR.BZ2',
  ]) {
    assert.deepEqual(classifyRequirement(line), { kind: 'artifact', path: line }, line);
  }
});

test('local artifacts: remote and ordinary requirements pass through', () => {
  for (const line of [
    'numpy==2.0.0',
    'https://example.com/pkg-1.0-py3-none-any.whl',
    'git+https://github.com/o/r.git',
    'pkg @ https://example.com/pkg.whl',
    '--extra-index-url https://example.com/simple',
    '-f https://example.com/links',
    'requests[socks]>=2; python_version >= "3.10"',
  ]) {
    assert.deepEqual(classifyRequirement(line), { kind: 'other' }, line);
  }
});

test('local artifacts: the rejected forms', () => {
  const cases: [string, RegExp][] = [
    ['file:///tmp/pkg.whl', /local file URL/],
    ['pkg @ file:///tmp/pkg.whl', /local file URL/],
    ['pkg @ ./dist/pkg.whl', /`name @ path`/],
    ['pkg@../pkg', /`name @ path`/],
    ['-f ./wheels', /local requirements option "-f"/],
    ['--find-links=wheels', /"--find-links"/],
    ['-r other.txt', /"-r"/],
    ['--requirement ./more.txt', /"--requirement"/],
    ['./pkg-1.0-py3-none-any.whl --hash=sha256:abc', /inline options or hashes/],
    ['./pkg-1.0.tar.gz; sys_platform == "linux"', /environment markers/],
    ['./pkg-1.0.tar.gz[extra]', /extras are not supported/],
    ['./src/mypkg', /not a supported wheel or source archive/],
  ];
  for (const [line, message] of cases) {
    const kind = classifyRequirement(line);
    assert.equal(kind.kind, 'rejected', line);
    if (kind.kind === 'rejected') assert.match(kind.message, message, line);
  }
});

test('framework versions: first specifier, "" when unpinned, undefined when absent, artifacts skipped', () => {
  const lines = parseRequirementsText('torch>=2.0,<3\ntensorflow\n./torchvision-0.1.whl\n');
  assert.equal(findPackageVersion(lines, 'torch'), '2.0');
  assert.equal(findPackageVersion(lines, 'tensorflow'), '');
  assert.equal(findPackageVersion(lines, 'torchvision'), undefined);
  // the name must match exactly
  assert.equal(findPackageVersion(parseRequirementsText('torchaudio==2.0\n'), 'torch'), undefined);
});

test('versions: matches, PEP 440 and semver pre-releases', () => {
  assert.ok(versionMatches('2.3', '2.3.1'));
  assert.ok(versionMatches('12.8', '12.8.1'));
  assert.ok(!versionMatches('2.3.0', '2.3.1'));
  assert.ok(versionMatches('2.3.1+cu118', '2.3.1'));
  assert.equal(parsePep440('0.18.0-alpha1')?.text, '0.18.0a1');
  assert.equal(parsePep440('0.18.0-beta2')?.text, '0.18.0b2');
  assert.equal(parsePep440('0.18.0-rc1')?.text, '0.18.0rc1');
  assert.equal(parsePep440('0.18.0-dev3')?.text, '0.18.0.dev3');
  const v = (s: string) => parsePep440(s) ?? assert.fail(s);
  assert.ok(comparePep440(v('0.16.0rc1'), v('0.16.0')) < 0);
  assert.ok(comparePep440(v('0.16.0.dev1'), v('0.16.0a1')) < 0);
  assert.ok(comparePep440(v('0.16.1'), v('0.16.0')) > 0);
  assert.equal(parsePep440('latest'), undefined);
});

test('sdk_version: minimum 0.16.0, sentinel allowed', () => {
  assert.deepEqual(checkSdkVersion('0.16.0'), { ok: true });
  assert.deepEqual(checkSdkVersion('prerelease'), { ok: true });
  assert.deepEqual(checkSdkVersion('0.17.0-rc1'), { ok: true });
  assert.equal(checkSdkVersion('0.16.0rc1').ok, false);
  assert.equal(checkSdkVersion('0.9.26').ok, false);
});

test('environment: split on the first "=", reserved names and prefixes', () => {
  assert.deepEqual(parseEnvironment(['A=b=c', 'EMPTY=']).env, { A: 'b=c', EMPTY: '' });
  assert.ok(isReservedEnvName('NVIDIA_VISIBLE_DEVICES'));
  assert.ok(isReservedEnvName('KUBERNETES_SERVICE_HOST'));
  assert.ok(isReservedEnvName('HF_ENDPOINT'));
  assert.ok(!isReservedEnvName('HF_HOME'));
  assert.ok(!isReservedEnvName('MY_PATH'));
  assert.equal(parseEnvironment(['A=multi\nline']).errors.length, 1);
});

test('repositories: bare names pass, tags and digests do not', () => {
  for (const ok of ['r8.im/acme/model', 'localhost:5000/x', 'acme/model', 'ghcr.io/o/a-b_c.d']) {
    assert.deepEqual(checkBareRepository(ok), { ok: true }, ok);
  }
  for (const bad of ['acme/model:latest', 'r8.im/a/b@sha256:00', 'Acme/Model', 'a//b', '']) {
    assert.equal(checkBareRepository(bad).ok, false, bad);
  }
});

test('default image name', () => {
  assert.equal(defaultImageName('My Project!'), 'cog-my-project');
  assert.equal(defaultImageName('cog-thing'), 'cog-thing');
  assert.equal(defaultImageName('a'.repeat(40)).length, 30);
  // a cut or a name that leaves a dash at the end: a repository name may not end with a separator
  assert.equal(defaultImageName('my-super-cool-image-model-v2'), 'cog-my-super-cool-image-model');
  assert.equal(defaultImageName('model-'), 'cog-model');
  assert.equal(defaultImageName('model - '), 'cog-model');
  assert.equal(defaultImageName('--x--'), 'cog---x');
  // nothing left of the directory's name
  for (const empty of ['', 'cog-', 'cog---', '---', '模型', '!!!'])
    assert.equal(defaultImageName(empty), 'cog', empty);
});

test('the default image name is a valid reference whatever the directory is called', () => {
  const alphabet = ['a', 'Z', '9', '-', ' ', '_', '.', '!', 'é', '模', 'cog-'];
  let seed = 7;
  const random = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  const names = ['my-super-cool-image-model-v2', 'model-', 'cog-', 'a '.repeat(20), '-'.repeat(40)];
  for (let i = 0; i < 2000; i++) {
    names.push(Array.from({ length: random(40) }, () => alphabet[random(alphabet.length)]).join(''));
  }
  for (const dir of names) {
    const name = defaultImageName(dir);
    assert.deepEqual(checkBareRepository(name), { ok: true }, `${JSON.stringify(dir)} -> ${name}`);
    assert.doesNotThrow(() => parseReference(name), `${JSON.stringify(dir)} -> ${name}`);
    assert.ok(name.length <= 30, name);
  }
});

test('did-you-mean suggestions', () => {
  assert.equal(suggestKey('pyhton_version', ['gpu', 'python_version'], ['build']), 'python_version');
  assert.equal(suggestKey('enviroment', ['environment', 'image'], []), 'environment');
  assert.equal(suggestKey('cuda', ['build', 'run'], []), 'build.cuda');
  assert.equal(suggestKey('zzz', ['build', 'run'], []), undefined);
});
