// `cog predict`/`cog run`/`cog train` without Docker: the project is built and run in a BuildKit exec,
// or a pushed image is run; inputs are checked before anything starts; outputs are written like upstream.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { exec, execOk } from '../support/exec.js';
import { ensureTestbed, repoRoot, type Testbed } from '../support/testbed.js';

const cog = join(repoRoot, 'bin', 'cog');
const fixtures = join(repoRoot, 'fixtures', 'models');
let tb: Testbed;
let dir: string;

before(async () => {
  tb = await ensureTestbed();
  dir = await mkdtemp(join(tmpdir(), 'cogts-predict-'));
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

test('cog predict builds the project and prints a string output', { timeout: 600_000 }, async () => {
  const out = await execOk(cog, ['predict', '-i', 'name=cog-ts'], {
    env: tb.env,
    cwd: join(fixtures, 'hello'),
  });
  assert.equal(out.stdout, 'hello cog-ts\n');
});

test('cog run IMAGE runs a pushed image', { timeout: 600_000 }, async () => {
  const ref = `${tb.registry}/cogts-test/predict-hello:${Date.now().toString(36)}`;
  await execOk(cog, ['build', '-t', ref, '--push', '--progress', 'quiet'], {
    env: tb.env,
    cwd: join(fixtures, 'hello'),
  });
  const out = await execOk(cog, ['run', ref, '-i', 'name=image'], { env: tb.env, cwd: dir });
  assert.equal(out.stdout, 'hello image\n');
});

test('a Path input is sent as a file and a Path output is written', { timeout: 600_000 }, async () => {
  const input = join(dir, 'words.txt');
  await writeFile(input, 'quiet words\n');
  const output = join(dir, 'loud.txt');
  await execOk(cog, ['predict', '-i', `text_file=@${input}`, '-o', output], {
    env: tb.env,
    cwd: join(fixtures, 'path-io'),
  });
  assert.equal(await readFile(output, 'utf8'), 'QUIET WORDS\n');
});

test('an unknown input fails per field before the model starts', { timeout: 300_000 }, async () => {
  const started = Date.now();
  const out = await exec(cog, ['predict', '-i', 'nosuch=1', '--progress', 'plain'], {
    env: tb.env,
    cwd: join(fixtures, 'hello'),
  });
  assert.notEqual(out.code, 0);
  assert.match(out.stderr, /nosuch/);
  assert.doesNotMatch(out.stderr, /run the model/);
  assert.ok(Date.now() - started < 30_000);
});

test('a failing setup() gives a clear error and a non-zero exit', { timeout: 600_000 }, async () => {
  const out = await exec(cog, ['predict'], { env: tb.env, cwd: join(fixtures, 'setup-fails') });
  assert.notEqual(out.code, 0);
  assert.match(out.stderr, /Model setup failed/);
  assert.match(out.stderr, /weights not found: this fixture fails on purpose/);
});

test('cog train posts to /trainings', { timeout: 600_000 }, async () => {
  const out = await execOk(cog, ['train', '-i', 'steps=5'], { env: tb.env, cwd: join(fixtures, 'train') });
  assert.equal(out.stdout, 'trained for 5 steps\n');
});

test(
  'int, float, bool, list and dict inputs are coerced; an iterator output prints as a list',
  { timeout: 600_000 },
  async () => {
    const out = await execOk(
      cog,
      [
        'predict',
        '-i',
        'n=3',
        '-i',
        'x=2.5',
        '-i',
        'flag=true',
        '-i',
        'words=b',
        '-i',
        'words=c',
        '-i',
        'meta={"k": 1}',
      ],
      { env: tb.env, cwd: join(fixtures, 'types') },
    );
    assert.deepEqual(JSON.parse(out.stdout), ['n=3 x=2.5 flag=True', 'words=b,c', 'meta={"k": 1}']);
  },
);

test(
  'an input below its minimum is refused per field before the model starts',
  { timeout: 300_000 },
  async () => {
    const out = await exec(cog, ['predict', '-i', 'n=0', '-i', 'meta={}'], {
      env: tb.env,
      cwd: join(fixtures, 'types'),
    });
    assert.notEqual(out.code, 0);
    assert.match(out.stderr, /could not be validated/);
    assert.match(out.stderr, /- n: /);
  },
);

test('two predictions at once do not collide', { timeout: 600_000 }, async () => {
  const runs = await Promise.all(
    ['left', 'right'].map((name) =>
      execOk(cog, ['predict', '-i', `name=${name}`], { env: tb.env, cwd: join(fixtures, 'hello') }),
    ),
  );
  assert.deepEqual(
    runs.map((r) => r.stdout),
    ['hello left\n', 'hello right\n'],
  );
});
