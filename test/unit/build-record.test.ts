// Build records (src/build/build-record.ts): the key of a command, the fingerprints of what a build
// read, the racy window, storage, and that every environment variable the sources read is either in
// the key or named here as one that cannot change what a build makes.
import assert from 'node:assert/strict';
import {
  chmodSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import {
  type BuildRecord,
  affectsBuild,
  isPresentationVariable,
  keyArguments,
  fingerprintInputs,
  isCredentialVariable,
  fingerprintPath,
  inputsUnchanged,
  readRecord,
  recordFormat,
  recordKey,
  writeRecord,
} from '../../src/build/build-record.js';
import { tempDirsRemovedAfterTests } from '../support/temp-dirs.js';
import { buildEnvironment, builtLine } from '../../src/cli/up-to-date.js';
import { repoRoot } from '../support/testbed.js';

const tempDir = tempDirsRemovedAfterTests();
const base = { buildId: 'b1', cwd: '/p', argv: ['-t', 'x'], env: { COG_CA_CERT: '/ca.pem', TERM: 'xterm' } };
const later = BigInt(Date.now() + 60_000) * 1_000_000n;

async function project(): Promise<string> {
  const dir = await tempDir('cogts-record-');
  writeFileSync(join(dir, 'cog.yaml'), 'build:\n  python_version: "3.12"\n');
  writeFileSync(join(dir, 'predict.py'), 'print(1)\n');
  mkdirSync(join(dir, 'weights'));
  writeFileSync(join(dir, 'weights', 'w.bin'), 'w');
  return dir;
}

describe('record key', () => {
  test('the same request gives the same key; arguments, cwd, build and build variables change it', () => {
    const key = recordKey(base);
    assert.match(key, /^[0-9a-f]{64}$/);
    assert.equal(recordKey({ ...base, env: { TERM: 'xterm', COG_CA_CERT: '/ca.pem' } }), key);
    assert.notEqual(recordKey({ ...base, argv: ['-t', 'y'] }), key);
    assert.notEqual(recordKey({ ...base, argv: ['-t', 'x', '--push'] }), key);
    assert.notEqual(recordKey({ ...base, cwd: '/q' }), key);
    assert.notEqual(recordKey({ ...base, buildId: 'b2' }), key);
    assert.notEqual(recordKey({ ...base, env: { ...base.env, COG_CA_CERT: '/other.pem' } }), key);
    assert.notEqual(recordKey({ ...base, env: { ...base.env, SOURCE_DATE_EPOCH: '1' } }), key);
    assert.notEqual(recordKey({ ...base, env: { ...base.env, BUILDKIT_HOST: 'tcp://x:1' } }), key);
    // credentials: who may push, not what is built (and no hash of a password in a file name)
    assert.equal(
      recordKey({
        ...base,
        env: { ...base.env, COG_REGISTRY_PASSWORD: 'hunter2', DOCKER_AUTH_CONFIG: '{}' },
      }),
      key,
    );
    assert.equal(affectsBuild('GITHUB_TOKEN'), false);
    assert.equal(affectsBuild('COG_REGISTRY_USERNAME'), true);
    // the terminal, the shell's bookkeeping: not part of a build
    assert.equal(recordKey({ ...base, env: { ...base.env, TERM: 'dumb', OLDPWD: '/x', SHLVL: '3' } }), key);
  });

  test('how a build is shown or uploaded does not change its key', () => {
    const key = recordKey(base);
    for (const extra of [
      ['--progress', 'plain'],
      ['--progress=tty'],
      ['--no-color'],
      ['--color=false'],
      ['--debug'],
    ])
      assert.equal(recordKey({ ...base, argv: [...base.argv, ...extra] }), key, extra.join(' '));
    for (const name of [
      'BUILDKIT_PROGRESS',
      'COG_NO_COLOR',
      'COG_PUSH_CONCURRENCY',
      'COG_PUSH_DEFAULT_CHUNK_SIZE',
    ])
      assert.equal(recordKey({ ...base, env: { ...base.env, [name]: '3' } }), key, name);
    // a flag's value is only skipped for the flag: `-t plain` still names the image
    assert.notEqual(recordKey({ ...base, argv: ['--progress', 'plain', '-t', 'plain'] }), key);
    assert.deepEqual(keyArguments(['-t', 'x', '--progress', 'plain', '--push', '--debug']), [
      '-t',
      'x',
      '--push',
    ]);
  });

  test('every environment variable the sources read is in the key or cannot change an image', () => {
    // read by commands other than build, or only for what is printed
    const notBuildInputs = new Set(['TERM', 'NO_COLOR', 'RUST_LOG']);
    const names = new Set<string>();
    const walk = (dir: string) => {
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        const path = join(dir, entry.name);
        if (entry.isDirectory()) walk(path);
        else if (entry.name.endsWith('.ts') && !path.includes('/src/bench/')) {
          const text = readFileSync(path, 'utf8');
          for (const m of text.matchAll(/\benv(?:\.([A-Z][A-Z0-9_]*)|\[\s*'([A-Z][A-Z0-9_]*)'\s*\])/g))
            names.add((m[1] ?? m[2])!);
          for (const m of text.matchAll(/_ENV\s*=\s*'([A-Z][A-Z0-9_]*)'/g)) names.add(m[1]!);
        }
      }
    };
    walk(join(repoRoot, 'src'));
    assert.ok(names.has('COG_CA_CERT') && names.has('SOURCE_DATE_EPOCH') && names.has('COG_SDK_WHEEL'));
    const missing = [...names].filter(
      (n) =>
        !affectsBuild(n) && !notBuildInputs.has(n) && !isCredentialVariable(n) && !isPresentationVariable(n),
    );
    assert.deepEqual(missing, [], 'add these to affectsBuild (or to notBuildInputs, saying why)');
  });
});

describe('fingerprints', () => {
  test('unchanged files keep the fingerprint; an edit, a new file, a mode or a link target change it', async () => {
    const dir = await project();
    const first = fingerprintPath(dir, true).hash;
    assert.equal(fingerprintPath(dir, true).hash, first);

    writeFileSync(join(dir, 'predict.py'), 'print(2)\n');
    const edited = fingerprintPath(dir, true).hash;
    assert.notEqual(edited, first);

    // an edit that keeps the size and puts the mtime back (as some tools do) still moves ctime
    const before = fingerprintPath(dir, true).hash;
    const { atime, mtime } = statSync(join(dir, 'predict.py'));
    writeFileSync(join(dir, 'predict.py'), 'print(3)\n');
    utimesSync(join(dir, 'predict.py'), atime, mtime);
    assert.notEqual(fingerprintPath(dir, true).hash, before);

    const beforeMode = fingerprintPath(dir, true).hash;
    chmodSync(join(dir, 'predict.py'), 0o755);
    assert.notEqual(fingerprintPath(dir, true).hash, beforeMode);

    const beforeNew = fingerprintPath(dir, true).hash;
    writeFileSync(join(dir, 'weights', 'more.bin'), 'm');
    assert.notEqual(fingerprintPath(dir, true).hash, beforeNew);

    // a requirements file linked from outside the project: its target's changes count
    const outside = await tempDir('cogts-record-out-');
    writeFileSync(join(outside, 'req.txt'), 'six\n');
    symlinkSync(join(outside, 'req.txt'), join(dir, 'requirements.txt'));
    const linked = fingerprintPath(dir, true).hash;
    writeFileSync(join(outside, 'req.txt'), 'six==1.17.0\n');
    assert.notEqual(fingerprintPath(dir, true).hash, linked);

    const missing = fingerprintPath(join(dir, 'absent')).hash;
    assert.equal(fingerprintPath(join(dir, 'absent')).hash, missing);
  });

  test('.git counts unless .dockerignore keeps it out of the image', async () => {
    const dir = await project();
    mkdirSync(join(dir, '.git'));
    writeFileSync(join(dir, '.git', 'index'), 'a');
    const withGit = fingerprintPath(dir, true).hash;
    writeFileSync(join(dir, '.git', 'index'), 'ab');
    assert.notEqual(fingerprintPath(dir, true).hash, withGit, 'no .dockerignore: .git is copied to /src');

    writeFileSync(join(dir, '.dockerignore'), '**/.git\n');
    const ignored = fingerprintPath(dir, true).hash;
    writeFileSync(join(dir, '.git', 'index'), 'abc');
    assert.equal(fingerprintPath(dir, true).hash, ignored, '.git is ignored: git bookkeeping is no change');

    // an exception below .git brings it back
    writeFileSync(join(dir, '.dockerignore'), '.git\n!.git/HEAD\n');
    const excepted = fingerprintPath(dir, true).hash;
    writeFileSync(join(dir, '.git', 'index'), 'abcd');
    assert.notEqual(fingerprintPath(dir, true).hash, excepted);
  });

  test('inputs changed within the racy window give no fingerprint; older ones do', async () => {
    const dir = await project();
    const now = BigInt(Date.now()) * 1_000_000n;
    assert.equal(fingerprintInputs([{ path: dir, project: true }], now), undefined);
    const inputs = fingerprintInputs([{ path: dir, project: true }, { path: join(dir, 'cog.yaml') }], later);
    assert.ok(inputs);
    assert.deepEqual(
      inputs.map((i) => [i.path, i.project ?? false]),
      [
        [dir, true],
        [join(dir, 'cog.yaml'), false],
      ],
    );
    assert.equal(inputsUnchanged({ inputs }), true);
    writeFileSync(join(dir, 'cog.yaml'), 'build:\n  python_version: "3.13"\n');
    assert.equal(inputsUnchanged({ inputs }), false);
  });
});

describe('storage', () => {
  const record = (key: string): BuildRecord => ({
    format: recordFormat,
    key,
    builtAt: new Date(0).toISOString(),
    imageName: 'x',
    digest: `sha256:${'0'.repeat(64)}`,
    output: { kind: 'store', root: '/store' },
    inputs: [],
    git: {},
    notes: ['cog: warning: w\n'],
  });

  test('a written record reads back under its key only; other formats are ignored', async () => {
    const dir = await tempDir('cogts-records-');
    const key = 'a'.repeat(64);
    writeRecord(dir, record(key));
    assert.deepEqual(readRecord(dir, key), record(key));
    assert.equal(readRecord(dir, 'b'.repeat(64)), undefined);
    writeFileSync(join(dir, `${key}.json`), JSON.stringify({ ...record(key), format: recordFormat + 1 }));
    assert.equal(readRecord(dir, key), undefined);
    writeFileSync(join(dir, `${key}.json`), '{ torn');
    assert.equal(readRecord(dir, key), undefined);
  });

  test('only the most recently written records are kept', async () => {
    const dir = await tempDir('cogts-records-');
    for (let i = 0; i < 5; i++) {
      const key = String(i).repeat(64);
      writeRecord(dir, record(key), 3);
      const t = new Date(Date.now() - (10 - i) * 1000);
      utimesSync(join(dir, `${key}.json`), t, t);
    }
    assert.deepEqual(
      readdirSync(dir).sort(),
      ['2', '3', '4'].map((d) => `${d.repeat(64)}.json`),
    );
  });
});

test('the check builds with the environment the --registry flag makes, as the recorded build did', () => {
  const env = { HOME: '/home/u', COG_REGISTRY_HOST: 'r8.im' };
  assert.equal(buildEnvironment(['-t', 'x'], env), env, 'no flag: the environment as it is');
  assert.equal(
    buildEnvironment(['--registry', 'reg.example:5000', '-t', 'x'], env).COG_REGISTRY_HOST,
    'reg.example:5000',
  );
  assert.equal(
    buildEnvironment(['--registry=a.example', '--registry', 'b.example'], env).COG_REGISTRY_HOST,
    'b.example',
  );
  assert.equal(
    buildEnvironment(['--', '--registry', 'c.example'], env).COG_REGISTRY_HOST,
    'r8.im',
    'not after --',
  );
  assert.equal(env.COG_REGISTRY_HOST, 'r8.im', 'the given environment is not changed');
});

test("cog build's closing line says what was written where: a type=tar file is a root filesystem, not an image of that name", () => {
  const digest = `sha256:${'a'.repeat(64)}`;
  assert.equal(
    builtLine('cog-hello', '', undefined, [{ type: 'tar', dest: 'x.tar' }]),
    'Root filesystem written to x.tar (type=tar: the built files, not an image; no image cog-hello was stored)\n',
  );
  assert.equal(
    builtLine('cog-hello', digest, undefined, [
      { type: 'oci', dest: 'x.tar' },
      { type: 'docker', dest: '-' },
    ]),
    `Image built as cog-hello@${digest}, written to x.tar (type=oci), stdout (type=docker)\n`,
  );
  assert.equal(
    builtLine('r/x', digest, { kind: 'push', ref: 'r/x' }, [{ type: 'tar', dest: 'fs.tar' }]),
    `Image built as r/x@${digest} and pushed; its root filesystem to fs.tar (type=tar)\n`,
  );
  // unchanged without files
  assert.equal(
    builtLine('cog-hello', digest, { kind: 'store', root: '/s' }),
    `Image built as cog-hello@${digest} (local image store /s)\n`,
  );
});
